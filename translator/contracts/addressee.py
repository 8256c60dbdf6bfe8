"""Where a request's results go, read from whatever came in: enough of a request (its taskId,
messageId, targets, reply subject) to address an error result to each target even when the
request does not validate."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from translator.contracts.messages import (
    MAX_CODE_LENGTH,
    MAX_ID_LENGTH,
    MAX_TARGETS,
    MODEL_TYPES,
    TranslationRequest,
    distinct,
    loads,
)

MAX_TARGET_LENGTH = MAX_CODE_LENGTH  # the longest target an error result may echo


@dataclass(frozen=True)
class Addressee:
    """Where a request's results go, per target: enough of the request to address an error
    result to each target it lists, even when it fails validation."""

    task_id: str
    message_id: str
    conversation_id: str
    source_language: str
    targets: tuple[str, ...]
    model_type: str

    @classmethod
    def of(cls, request: TranslationRequest) -> Addressee:
        return cls(
            request.task_id, request.message_id, request.conversation_id,
            request.source_language, request.target_languages, request.model_type,
        )  # fmt: skip


def _echo(payload: dict[str, Any], key: str, limit: int = MAX_ID_LENGTH) -> str:
    """A field of an invalid request that is safe to echo in a result (and its headers):
    a string of printable characters, within `limit`; otherwise empty."""
    value = payload.get(key)
    if isinstance(value, str) and 0 < len(value) <= limit and value.isprintable():
        return value
    return ""


def read_addressee(data: bytes, fallback_task_id: str) -> Addressee | None:
    """The addressee of a request that failed validation: None when it names no target an
    error result can be addressed to (not a JSON object, no list of string targets)."""
    payload = loads(data)
    raw = payload.get("targetLanguages") if isinstance(payload, dict) else None
    if not isinstance(payload, dict) or not isinstance(raw, list):
        return None
    codes = (t.strip() for t in raw[:MAX_TARGETS] if isinstance(t, str))
    targets = distinct(c for c in codes if 0 < len(c) <= MAX_TARGET_LENGTH and c.isprintable())
    if not targets:
        return None
    model_type = payload.get("modelType", "basic")
    return Addressee(
        task_id=_echo(payload, "taskId") or fallback_task_id,
        message_id=_echo(payload, "messageId"),
        conversation_id=_echo(payload, "conversationId"),
        source_language=_echo(payload, "sourceLanguage", MAX_TARGET_LENGTH),
        targets=targets,
        model_type=model_type if model_type in MODEL_TYPES else "",
    )
