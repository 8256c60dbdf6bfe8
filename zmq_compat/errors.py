"""Errors of the shim.

ShimError
└── BadFrame(reason, message_id, task_id, conversation_id)   a frame that is no valid request
    └── TooLong(..., length, maximum, typed)                  a text over MAX_TEXT_LENGTH
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


class TooLong(BadFrame):
    """A request whose text is over the limit. `typed`: it came from the current gateway (it
    carries `type`), which also gets the `translation_skipped` its own translator sends."""

    def __init__(
        self,
        length: int,
        maximum: int,
        typed: bool,
        message_id: str | None,
        task_id: str | None,
        conversation_id: str | None,
    ) -> None:
        super().__init__(too_long(length, maximum), message_id, task_id, conversation_id)
        self.length = length
        self.maximum = maximum
        self.typed = typed


def too_long(length: int, maximum: int) -> str:
    """The reason given for a text over MAX_TEXT_LENGTH, whichever request carries it."""
    return f"text too long: {length} characters, the maximum is {maximum}"
