"""Errors of the shim.

ShimError
└── BadFrame(reason, message_id, task_id, conversation_id)   a frame that is no valid request
"""

from __future__ import annotations


class ShimError(Exception):
    """Base of the shim's errors."""


class BadFrame(ShimError):
    """A frame the shim cannot turn into a request; answered with `translation_error` when the
    gateway can match it (a messageId could be read)."""

    def __init__(
        self,
        reason: str,
        message_id: str | None = None,
        task_id: str | None = None,
        conversation_id: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.message_id = message_id
        self.task_id = task_id
        self.conversation_id = conversation_id
