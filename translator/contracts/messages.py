"""Message models of the NATS contract (PROTOCOL.md section 2). JSON exists only at the edges:
`decode_request` / `encode` here, and nowhere else in the worker.

Each field's docstring is its documentation: docs/MESSAGES.md and docs/schemas/ are generated
from these models (`translator schemas`), and a test keeps them current."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterable
from typing import Any, Literal, TypeGuard, get_args

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from translator.contracts.errors import ErrorCode, InvalidRequest, validation_summary
from translator.contracts.subjects import Pool

ModelType = Literal["basic", "medium", "premium"]
MODEL_TYPES: tuple[ModelType, ...] = ("basic", "medium", "premium")
RESULT_VERSION = "1.0.0"
MAX_CODE_LENGTH = 35  # a language code on the wire: a BCP 47 tag's longest (`zh-Hant-TW`...)


class Message(BaseModel):
    """The base of every message on NATS: camelCase on the wire, frozen, each field's docstring
    its documentation, unknown keys ignored."""

    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        populate_by_name=True,
        alias_generator=AliasGenerator(validation_alias=to_camel, serialization_alias=to_camel),
        use_attribute_docstrings=True,
        json_schema_serialization_defaults_required=True,  # what is sent has every field
    )


def _code(value: str) -> str:
    """A language code as a client wrote it, checked for its shape only: what language it
    names is the table's business (translator/inference/languages.py), per target."""
    code = value.strip()
    if not code or len(code) > MAX_CODE_LENGTH or not code.isprintable():
        raise ValueError(
            f"{value[:40]!r} is not a language code (1 to {MAX_CODE_LENGTH} printable characters)"
        )
    return code


def distinct(codes: Iterable[str]) -> tuple[str, ...]:
    """The codes with repeats dropped, whatever their case, each as first written."""
    seen: dict[str, str] = {}
    for code in codes:
        seen.setdefault(code.lower(), code)
    return tuple(seen.values())


def new_task_id() -> str:
    return str(uuid.uuid4())


# Identifiers travel in NATS headers (Nats-Msg-Id) and back to the gateway: bounded, printable.
MAX_ID_LENGTH = 256
MAX_TARGETS = 64  # target languages in one request (ISO 639-1 has 184 codes)
_IDENTIFIER = re.compile(rf"[^\x00-\x1f\x7f]{{1,{MAX_ID_LENGTH}}}")


def is_identifier(value: object) -> TypeGuard[str]:
    """A taskId, messageId or conversationId fit to travel: 1-256 characters, none a control
    character (a line break would end a NATS header)."""
    return isinstance(value, str) and _IDENTIFIER.fullmatch(value) is not None


def not_blank(value: str) -> str:
    """A text with something in it besides whitespace (Python's, str.isspace)."""
    if not value.strip():
        raise ValueError("text is blank")
    return value


def _identifier(value: str) -> str:
    if not is_identifier(value):
        raise ValueError(
            f"at most {MAX_ID_LENGTH} characters, no control characters ({len(value)} given)"
        )
    return value


class TranslationRequest(Message):
    """A translation request: JSON on `translate.request.<pool>` (or `translate.rpc`)."""

    task_id: str = Field(default_factory=new_task_id, min_length=1)
    """The requester's id for this request (a UUID); echoed in every result. Absent: the
    `Nats-Msg-Id` header, else one derived from the stream sequence. At most 256 characters,
    no control characters."""
    message_id: str = Field(min_length=1)
    """The chat message's id, copied into every result. At most 256 characters, no
    control characters."""
    text: str = Field(min_length=1)
    """The text to translate: not blank, at most MAX_TEXT_LENGTH (5000) characters."""
    source_language: str = "fr"
    """The text's language, or `auto` (detected). Default `fr`, as 0.4.9. Any code of the
    language table: ISO 639-1 or 639-3, a BCP 47 tag with a script or region (`pt-BR`,
    `zh-Hant`) (docs/TRANSLATION.md, "Language codes")."""
    target_languages: tuple[str, ...] = Field(min_length=1, max_length=MAX_TARGETS)
    """1 to 64 codes, as `sourceLanguage` takes them. Each target has its own fate: one that
    no configured model writes, or that is not a language code, gets its own error result,
    the others their translations. Repeats, whatever their case, are dropped: one result per
    distinct code, which names it as first written (`["fr", "FR", "fr"]` gets one, `fr`,
    and its `expectedResults` says 1)."""
    conversation_id: str = ""
    """`any` (the global public conversation) goes to the `any` pool, anything else to
    `normal`. Copied into every result."""
    model_type: ModelType = "basic"
    """`basic`, `medium` or `premium`: the model tier (docs/TRANSLATION.md)."""
    timestamp: float | None = None
    """Informational: when the request was made, in milliseconds since the epoch (as the 0.4.9
    gateway sends it). Results carry their own `timestamp`, in seconds."""

    @field_validator("task_id", "message_id")
    @classmethod
    def _ids(cls, value: str) -> str:
        return _identifier(value)

    @field_validator("conversation_id")
    @classmethod
    def _conversation(cls, value: str) -> str:
        return value and _identifier(value)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        return not_blank(value)

    @field_validator("source_language")
    @classmethod
    def _source(cls, value: str) -> str:
        return "auto" if value.strip().lower() == "auto" else _code(value)

    @field_validator("target_languages")
    @classmethod
    def _targets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return distinct(_code(code) for code in value)

    @property
    def pool(self) -> Pool:
        return Pool.for_conversation(self.conversation_id)


class TranslationResult(Message):
    """One per distinct target language; `status` says whether `translatedText` is a
    translation. Header `Nats-Msg-Id: <taskId>:<targetLanguage>` on every result."""

    task_id: str
    """The request's `taskId` (or the id the worker gave it)."""
    message_id: str
    """The request's `messageId` (empty when the request had none: an error result)."""
    conversation_id: str = ""
    """The request's `conversationId`."""
    status: Literal["ok", "error"]
    """`ok`: `translatedText` is the translation. `error`: it is empty; see `error`,
    `errorCode`."""
    error: str | None = None
    """Why it failed, for people (null when `ok`)."""
    error_code: ErrorCode | None = None
    """Why it failed, for programs (null when `ok`): from workers `invalid_request`,
    `text_too_long`, `unsupported_language`, `model_unavailable`, `model_failure`; from
    `translate.rpc` also `pool_full`, `unavailable` (docs/NATS.md)."""
    expected_results: int = 0
    """How many results this request gets in all: one per distinct target language."""
    translated_text: str = ""
    """The translation (empty for an error)."""
    source_language: str
    """The language translated from: the detected one when the request said `auto` (as the
    request gave it, or empty, on an error result for a request that could not be read)."""
    target_language: str
    """The language of this result, as the request wrote it (`pt-BR` stays `pt-BR`)."""
    confidence_score: float = 0.0
    """0 to 1: the model's mean token probability over the translation (1 for a text kept as it
    is)."""
    processing_time: float = 0.0
    """Seconds from the worker taking the request to this result."""
    model_type: str = ""
    """The tier the request asked for (`basic`, `medium`, `premium`)."""
    worker_name: str = ""
    """`<pool>_worker_<pid>` of the worker that answered."""
    translator_model: str = ""
    """The tier that produced the text (`basic`, `medium`, `premium`; after a fallback, the
    tier that translated), as both Meeshy translators send it: the gateway ranks a message's
    translations by it (empty on an error result)."""
    model_name: str = ""
    """The model that produced the text: a name (`t5-small`), never a local path."""
    worker_id: str = ""
    """`<host>-<pid>` of the worker that answered."""
    pool_type: str = ""
    """The pool that served it: `normal` or `any`."""
    translation_time: float = 0.0
    """Seconds spent in the model for this request's pieces."""
    queue_time: float = 0.0
    """Seconds from the request being stored in its stream to this result."""
    memory_usage: float = 0.0
    """The worker's resident memory, MB."""
    cpu_usage: float = 0.0
    """The worker's CPU use, percent of one core."""
    timestamp: float = Field(default_factory=time.time)
    """When the result was made, in seconds since the epoch (0.4.9's unit for results)."""
    version: str = RESULT_VERSION
    """The result format's version, `1.0.0` (0.4.9's)."""
    processing_node: str = ""
    """The host name of the worker that answered."""
    # NATS only (the ZeroMQ frames keep the 0.4.9 fields): what the translation was made of
    pieces: int = 0
    """Sentence pieces sent to a model or found in the cache (0: nothing to translate)."""
    pieces_cached: int = 0
    """Of those, the pieces the translation cache answered."""
    pieces_at_budget: int = 0
    """Of those, the pieces stopped at their token budget (GENERATION_RATIO, MAX_NEW_TOKENS)."""
    fell_back_from: str = ""
    """The tier asked for, when the next tier's model translated (empty otherwise)."""
    pivot_language: str = ""
    """`en` when no model translates the pair and the text went through English (two models,
    both in `modelName`: `firefox-pt-en-tiny > t5-small`); empty for a direct translation."""


class DetectRequest(Message):
    """A request on `translate.detect`: which language is `text` in (among DETECT_LANGUAGES)."""

    text: str = Field(min_length=1)
    """The text, at most MAX_TEXT_LENGTH characters."""


class Detection(Message):
    """One candidate language."""

    language: str
    """ISO 639-1 code."""
    confidence: float
    """0 to 1."""


class DetectResult(Message):
    """The reply on `translate.detect`."""

    status: Literal["ok", "error"]
    """`ok`, or `error` (see `error`)."""
    languages: tuple[Detection, ...] = ()
    """The likeliest languages first; empty when none is recognised (digits, emoji)."""
    error: str | None = None
    """Why it failed (null when `ok`)."""


class DeadLetter(Message):
    """A request that could not be processed (`translate.dead.<pool>`, stream TRANSLATE_DLQ),
    with why and how often it was tried."""

    pool: str
    """The pool whose stream held it."""
    reason: str
    """Why it was given up (the error results' `error`, `retries exhausted`, a refused reply
    subject...)."""
    deliveries: int
    """How many times it was delivered to a worker."""
    request: str
    """The request as received (UTF-8, invalid bytes replaced)."""
    task_id: str | None = None
    """Its taskId (or Nats-Msg-Id), when one could be read."""
    message_id: str | None = None
    """Its messageId, when one could be read."""
    reply_to: str = ""
    """Its Translate-Reply-To header (empty: none, the default subject)."""
    timestamp: float = Field(default_factory=time.time)
    """When it was given up, in seconds since the epoch."""


class ScalingEvent(Message):
    """One scaling decision of the scaler (`translate.event.scaling`, stream TRANSLATE_EVENTS),
    with the inputs that decided it."""

    pool: str
    """`normal` or `any`."""
    from_workers: int
    """The pool's workers before."""
    to_workers: int
    """The pool's workers wanted after."""
    direction: Literal["up", "down", "hold"]
    """`up` or `down` (a `hold` is never published)."""
    reason: str
    """The rule that decided, in words."""
    queue_depth: int
    """Requests waiting in the pool's stream (the consumer's pending count)."""
    in_flight: int
    """Requests delivered to workers and not yet acked."""
    utilization: float
    """The pool's workers' mean busy fraction, 0 to 1."""
    running: int
    """Workers serving."""
    starting: int
    """Workers still loading their model."""
    host: str = ""
    """The scaler that decided (the leader, with several hosts)."""
    shares: dict[str, int] = Field(default_factory=dict)
    """Host -> its workers of the pool, after the decision."""
    timestamp: float = Field(default_factory=time.time)
    """When it was decided, in seconds since the epoch."""


AlertKind = Literal[
    "queue_high", "utilization_high", "scaling_failed", "host_lost", "store_data_lost"
]
# The label values of the scaler's counters, exported at 0 from the start.
ALERT_KINDS: tuple[AlertKind, ...] = get_args(AlertKind)
SCALING_DIRECTIONS = ("up", "down")
RESULT_STATUSES = ("ok", "error")


class Alert(Message):
    """An alert (`translate.event.alert`, stream TRANSLATE_EVENTS): a queue above 80% of its
    capacity, utilization above 90%, a scaling action that failed, a host lost, acknowledged
    requests that a damaged store lost."""

    pool: str
    """`normal` or `any`."""
    kind: AlertKind
    """`queue_high`, `utilization_high`, `scaling_failed`, `host_lost` or `store_data_lost`."""
    message: str
    """What happened, in words."""
    value: float
    """The measured value (`store_data_lost`: how many requests were lost)."""
    threshold: float
    """The threshold it crossed."""
    host: str = ""
    """The scaler that raised it."""
    timestamp: float = Field(default_factory=time.time)
    """When it was raised, in seconds since the epoch."""


def encode(message: BaseModel) -> bytes:
    return message.model_dump_json(by_alias=True).encode()


def decode_request(data: bytes, fallback_task_id: str | None = None) -> TranslationRequest:
    """Parse a request, raising InvalidRequest with a reason a person can act on.

    A request without `taskId` takes `fallback_task_id` (a worker passes one derived from the
    stream sequence, so a redelivery keeps the same id and results stay de-duplicated)."""
    payload = loads(data)
    if payload is None:
        raise InvalidRequest("not JSON")
    if not isinstance(payload, dict):
        raise InvalidRequest("not a JSON object")
    if fallback_task_id and not payload.get("taskId"):
        payload["taskId"] = fallback_task_id
    return validate_request(payload)


def validate_request(payload: dict[str, Any]) -> TranslationRequest:
    """A request from its JSON fields, or InvalidRequest with a reason a person can act on."""
    try:  # a lone surrogate (`"\\ud800"`) decodes, but can be neither stored nor sent
        json.dumps(payload, ensure_ascii=False).encode()
    except UnicodeEncodeError as exc:
        raise InvalidRequest("text that is not valid Unicode (a lone surrogate)") from exc
    try:
        return TranslationRequest.model_validate(payload)
    except ValidationError as exc:
        raise InvalidRequest(validation_summary(exc.errors(include_url=False))) from exc


def loads(data: bytes) -> Any:
    """JSON from the wire, or None when it is not: invalid UTF-8 or JSON, nesting too deep for
    the parser (RecursionError), an integer beyond Python's 4,300 digits (ValueError)."""
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError):  # JSONDecodeError is a ValueError
        return None
