"""The gateway's ZeroMQ wire format (PROTOCOL.md section 1): frames <-> translator models.

One UTF-8 JSON object in frame 0, written like Python's `json.dumps` defaults; the frames
after it (the current gateway's binary parts) are not read. The current gateway's other
request types are in `envelopes.py`, its story text objects in `stories.py`."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any

from translator.contracts.errors import InvalidRequest
from translator.contracts.messages import (
    MAX_ID_LENGTH,
    TranslationRequest,
    TranslationResult,
    decode_request,
    is_identifier,
    loads,
)
from zmq_compat import envelopes
from zmq_compat.envelopes import Unsupported
from zmq_compat.errors import BadFrame, TooLong
from zmq_compat.stories import StoryRequest, parse_story

TRANSLATOR_VERSION = "1.0.0"
_PEEK_BYTES = 65_536


def _peek(frame: bytes, key: str) -> str | None:
    """A string field read straight from the bytes of a frame too large to parse."""
    pattern = rb'"%s"\s*:\s*"([^"\\]{1,%d})"' % (key.encode(), MAX_ID_LENGTH)
    match = re.search(pattern, frame[:_PEEK_BYTES])
    value = match.group(1).decode("utf-8", "replace") if match else None
    return value if is_identifier(value) else None


@dataclass(frozen=True)
class Ping:
    timestamp: float | None


def dumps(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def _fields(payload: Any) -> dict[str, str | None]:
    """The ids of a bad request that can be echoed back: bounded, printable ones only."""

    def text(key: str) -> str | None:
        value = payload.get(key) if isinstance(payload, dict) else None
        return value if is_identifier(value) else None

    return {
        "message_id": text("messageId"),
        "task_id": text("taskId"),
        "conversation_id": text("conversationId"),
    }


@dataclass(frozen=True)
class TextRequest:
    """A text's translation request; `typed`: the current gateway's (it has a `type`)."""

    request: TranslationRequest
    typed: bool


Parsed = Ping | TextRequest | StoryRequest | Unsupported


def parse(frame: bytes, max_bytes: int, max_text_length: int) -> Parsed:
    """A ping, a request (a text's, a story text object's, or one not served here, with its
    error event); BadFrame (with what could be read of it) otherwise."""
    if len(frame) > max_bytes:
        raise BadFrame(
            f"frame too large: {len(frame)} bytes, the maximum is {max_bytes}",
            _peek(frame, "messageId"),
            _peek(frame, "taskId"),
            _peek(frame, "conversationId"),
        )
    payload = loads(frame)
    if payload is None:
        raise BadFrame("invalid request: not JSON (or nested too deep, or a number too long)")
    kind = payload.get("type") if isinstance(payload, dict) else None
    if kind is not None and not isinstance(kind, str):
        raise BadFrame("invalid request: type is not a string", **_fields(payload))
    if kind == "ping":
        stamp = payload.get("timestamp")
        return Ping(stamp if isinstance(stamp, int | float) else None)
    if kind == envelopes.STORY:
        return parse_story(payload, max_text_length)
    if kind not in (None, "translation"):
        refusal = envelopes.unsupported(kind, payload)
        if refusal is None:
            raise BadFrame(f"unknown message type {kind[:64]!r}", **_fields(payload))
        return refusal
    typed = kind is not None
    return TextRequest(_request(frame, payload, max_text_length, typed), typed)


def _request(frame: bytes, payload: Any, max_text_length: int, typed: bool) -> TranslationRequest:
    try:
        request = decode_request(frame)
    except InvalidRequest as exc:
        raise BadFrame(str(exc), **_fields(payload)) from exc
    if request.task_id.startswith(envelopes.STORY_TASK_PREFIX):
        reason = f"invalid request: taskId {envelopes.STORY_TASK_PREFIX!r}... is the shim's own"
        raise BadFrame(reason, request.message_id, None, request.conversation_id)
    if len(request.text) > max_text_length:
        raise TooLong(
            len(request.text),
            max_text_length,
            typed,
            request.message_id,
            request.task_id,
            request.conversation_id,
        )
    return request


def pong(pub_port: int, pull_port: int) -> bytes:
    return dumps(
        {
            "type": "pong",
            "timestamp": time.time(),
            "translator_status": "alive",
            "translator_port_pub": pub_port,
            "translator_port_pull": pull_port,
        }
    )


def translation_error(
    task_id: str | None, message_id: str | None, error: str, conversation_id: str | None
) -> bytes:
    return dumps(
        {
            "type": "translation_error",
            "taskId": task_id,
            "messageId": message_id,
            "error": error,
            "conversationId": conversation_id,
        }
    )


def translation_completed(result: TranslationResult, session_id: str) -> bytes:
    """The 0.4.9 `translation_completed`, every key in its order. `translatorModel` and
    `metadata.modelVersion` carry the tier that produced the text, as both Meeshy translators
    send them (the gateway ranks a message's translations by it); the model's name travels in
    the added `modelName`, last (PROTOCOL.md)."""
    body = {
        "messageId": result.message_id,
        "translatedText": result.translated_text,
        "sourceLanguage": result.source_language,
        "targetLanguage": result.target_language,
        "confidenceScore": float(result.confidence_score),
        "processingTime": float(result.processing_time),
        "modelType": result.model_type,
        "workerName": result.worker_name,
        "translatorModel": result.translator_model,
        "workerId": result.worker_id,
        "poolType": result.pool_type,
        "translationTime": float(result.translation_time),
        "queueTime": float(result.queue_time),
        "memoryUsage": float(result.memory_usage),
        "cpuUsage": float(result.cpu_usage),
        "timestamp": float(result.timestamp),
        "version": result.version,
        "modelName": result.model_name,
    }
    metadata = {
        "translatorVersion": TRANSLATOR_VERSION,
        "modelVersion": result.translator_model,
        "processingNode": result.processing_node,
        "sessionId": session_id,
        "requestId": result.task_id,
        "protocol": "ZMQ_PUB_SUB",
        "encoding": "UTF-8",
    }
    return dumps(
        {
            "type": "translation_completed",
            "taskId": result.task_id,
            "result": body,
            "targetLanguage": result.target_language,
            "timestamp": time.time(),
            "metadata": metadata,
        }
    )


def target_error(request: TranslationRequest, target: str, reason: str, typed: bool) -> bytes:
    """One target's `translation_error`: 0.4.9's shape exactly (its reason names the target);
    the current gateway's with `targetLanguage` too, which it ignores and a person reads."""
    frame = json.loads(
        translation_error(request.task_id, request.message_id, reason, request.conversation_id)
    )
    return dumps({**frame, "targetLanguage": target} if typed else frame)


def result_frame(result: TranslationResult, session_id: str) -> bytes:
    """A result from NATS as the gateway expects it: completed, or an error."""
    if result.status == "ok":
        return translation_completed(result, session_id)
    error = result.error or "translation failed"
    return translation_error(result.task_id, result.message_id, error, result.conversation_id)
