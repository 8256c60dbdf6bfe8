"""The current Meeshy gateway's requests beside 0.4.9's (docs/GATEWAYS.md). Every request is
JSON in frame 0 with a `type`; frames 1+ are binary parts that its `binaryFrames` describes
(audio, voice embeddings), which text translation never reads.

- `translation`, or no type (0.4.9): text translation (`protocol.parse`).
- `story_text_object_translation`: text translation in another envelope, answered with one
  `story_text_object_translation_completed` carrying every target's text (`stories.py`).
- The audio and voice types: not served here. Each gets at once the error event the gateway
  listens for, in the shape its own translator sends."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from translator.contracts.messages import is_identifier

STORY = "story_text_object_translation"
STORY_COMPLETED = "story_text_object_translation_completed"
STORY_TASK_PREFIX = "story:"  # the shim's task ids for story requests: the gateway sends none
AUDIO = "audio_process"
TRANSCRIPTION = "transcription_only"
VOICE_API = frozenset(
    {
        "voice_translate", "voice_translate_async", "voice_analyze", "voice_compare",
        "voice_profile_get", "voice_profile_create", "voice_profile_update",
        "voice_profile_delete", "voice_profile_list", "voice_job_status", "voice_job_cancel",
        "voice_feedback", "voice_history", "voice_stats", "voice_admin_metrics", "voice_health",
        "voice_languages",
    }
)  # fmt: skip
VOICE_PROFILE = frozenset(
    {"voice_profile_analyze", "voice_profile_verify", "voice_profile_compare"}
)
NOT_SERVED = (AUDIO, TRANSCRIPTION, *sorted(VOICE_API), *sorted(VOICE_PROFILE))
NOT_SERVED_REASON = "{kind} is not served here: this translator translates text only"


@dataclass(frozen=True)
class Unsupported:
    """A request of a type this service does not serve, with the error event it gets."""

    kind: str
    frame: bytes


def _dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def _id(payload: dict[str, Any], key: str) -> str:
    """An id echoed back as the gateway's translator does (empty when absent or unfit)."""
    value = payload.get(key)
    return value if is_identifier(value) else ""


def unsupported(kind: str, payload: dict[str, Any]) -> Unsupported | None:
    """The error event for a request of `kind`, or None when `kind` is not one of the
    current gateway's (then it is an unknown type)."""
    error = NOT_SERVED_REASON.format(kind=kind)
    now = time.time()
    if kind in (AUDIO, TRANSCRIPTION):
        event = AUDIO + "_error" if kind == AUDIO else "transcription_error"
        body = {
            "type": event,
            "taskId": _id(payload, "taskId") or str(uuid.uuid4()),
            "messageId": _id(payload, "messageId"),
            "attachmentId": _id(payload, "attachmentId"),
            "error": error,
            "errorCode": "pipeline_unavailable",
            "timestamp": now,
        }
    elif kind in VOICE_API:
        body = {
            "type": "voice_api_error",
            "taskId": _id(payload, "taskId"),
            "requestType": kind,
            "error": error,
            "errorCode": "SERVICE_UNAVAILABLE",
            "timestamp": now,
        }
    elif kind in VOICE_PROFILE:
        body = {
            "type": "voice_profile_error",
            "request_id": _id(payload, "request_id"),
            "user_id": _id(payload, "user_id"),
            "error": error,
            "success": False,
            "timestamp": now,
        }
    else:
        return None
    return Unsupported(kind, _dumps(body))


def translation_skipped(
    message_id: str | None, length: int, maximum: int, conversation_id: str | None
) -> bytes:
    """What the current gateway's translator sends for a text over its limit (the gateway
    itself only logs it; the `translation_error` that follows is the request's fate)."""
    return _dumps(
        {
            "type": "translation_skipped",
            "messageId": message_id,
            "reason": "message_too_long",
            "length": length,
            "max_length": maximum,
            "conversationId": conversation_id or "unknown",
        }
    )


def story_completed(post_id: str, index: int, translations: dict[str, str]) -> bytes:
    """One story text object's translations, by target language (the failed ones left out, as
    the gateway's translator does; none at all still tells the gateway it is done)."""
    return _dumps(
        {
            "type": STORY_COMPLETED,
            "postId": post_id,
            "textObjectIndex": index,
            "translations": translations,
            "timestamp": int(time.time() * 1000),
        }
    )
