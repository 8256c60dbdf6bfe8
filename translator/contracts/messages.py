"""Message models of the NATS contract (PROTOCOL.md section 2). JSON exists only at the edges:
`decode_request` / `encode` here, and nowhere else in the worker."""

from __future__ import annotations

import bisect
import json
import re
import time
import uuid
from typing import Any, Literal, TypeVar, get_args

from pydantic import AliasGenerator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic.alias_generators import to_camel

from translator.contracts.errors import InvalidRequest
from translator.contracts.subjects import Pool

ModelType = Literal["basic", "medium", "premium"]
MODEL_TYPES: tuple[ModelType, ...] = ("basic", "medium", "premium")
RESULT_VERSION = "1.0.0"
_LANGUAGE = re.compile(r"^[a-z]{2}$")


class _Message(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="ignore",
        populate_by_name=True,
        alias_generator=AliasGenerator(validation_alias=to_camel, serialization_alias=to_camel),
    )


def _language(value: str) -> str:
    code = value.strip().lower()
    if not _LANGUAGE.match(code):
        raise ValueError(f"{value!r} is not an ISO 639-1 language code")
    return code


def new_task_id() -> str:
    return str(uuid.uuid4())


# Identifiers travel in NATS headers (Nats-Msg-Id) and back to the gateway: bounded, printable.
MAX_ID_LENGTH = 256
MAX_TARGETS = 64  # target languages in one request (ISO 639-1 has 184 codes)
_IDENTIFIER = re.compile(rf"[^\x00-\x1f\x7f]{{1,{MAX_ID_LENGTH}}}")


def is_identifier(value: object) -> bool:
    """A taskId, messageId or conversationId fit to travel: 1-256 characters, none a control
    character (a line break would end a NATS header)."""
    return isinstance(value, str) and _IDENTIFIER.fullmatch(value) is not None


def _identifier(value: str) -> str:
    if not is_identifier(value):
        raise ValueError(
            f"at most {MAX_ID_LENGTH} characters, no control characters ({len(value)} given)"
        )
    return value


class TranslationRequest(_Message):
    task_id: str = Field(default_factory=new_task_id, min_length=1)
    message_id: str = Field(min_length=1)
    text: str = Field(min_length=1)
    source_language: str = "fr"
    target_languages: tuple[str, ...] = Field(min_length=1, max_length=MAX_TARGETS)
    conversation_id: str = ""
    model_type: ModelType = "basic"
    timestamp: float | None = None

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
        if not value.strip():
            raise ValueError("text is blank")
        return value

    @field_validator("source_language")
    @classmethod
    def _source(cls, value: str) -> str:
        return "auto" if value.strip().lower() == "auto" else _language(value)

    @field_validator("target_languages")
    @classmethod
    def _targets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(_language(code) for code in value))

    @property
    def pool(self) -> Pool:
        return Pool.for_conversation(self.conversation_id)


class TranslationResult(_Message):
    """One per target language; `status` says whether `translatedText` is a translation."""

    task_id: str
    message_id: str
    conversation_id: str = ""
    status: Literal["ok", "error"]
    error: str | None = None
    translated_text: str = ""
    source_language: str
    target_language: str
    confidence_score: float = 0.0
    processing_time: float = 0.0
    model_type: str = ""
    worker_name: str = ""
    translator_model: str = ""
    worker_id: str = ""
    pool_type: str = ""
    translation_time: float = 0.0
    queue_time: float = 0.0
    memory_usage: float = 0.0
    cpu_usage: float = 0.0
    timestamp: float = Field(default_factory=time.time)
    version: str = RESULT_VERSION
    processing_node: str = ""
    # NATS only (the ZeroMQ frames keep the 0.4.9 fields): what the translation was made of
    pieces: int = 0  # sentence pieces sent to a model or found in the cache
    pieces_cached: int = 0  # answered by the translation cache
    pieces_at_budget: int = 0  # stopped at their token budget (GENERATION_RATIO, MAX_NEW_TOKENS)
    fell_back_from: str = ""  # the tier asked for, when the next tier's model translated


class DetectRequest(_Message):
    """A request on DETECT_SUBJECT: which language is `text` in (among DETECT_LANGUAGES)."""

    text: str = Field(min_length=1)


class Detection(_Message):
    language: str
    confidence: float  # 0 to 1


class DetectResult(_Message):
    """The reply: the likeliest languages first; none when no language is recognised."""

    status: Literal["ok", "error"]
    languages: tuple[Detection, ...] = ()
    error: str | None = None


class DeadLetter(_Message):
    """A request that could not be processed, with why and how often it was tried."""

    pool: str
    reason: str
    deliveries: int
    request: str
    task_id: str | None = None
    message_id: str | None = None
    timestamp: float = Field(default_factory=time.time)


# `unavailable`: its model cannot be had (not local, hub unreachable); it retries with backoff.
WorkerState = Literal["loading", "unavailable", "ready", "busy", "draining"]
# A worker's batch, stage by stage: waiting for and fetching it, decoding and planning its
# requests, the cache's lookups, generate() (in a thread), the cache's writes, results and acks.
BATCH_STAGES = ("fetch", "admit", "cache_lookup", "generate", "cache_store", "settle")
# Upper bounds (seconds) of the processing- and queue-time histograms, shared by the workers
# that count and the scaler that exports them.
SECONDS_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
)  # fmt: skip


def bucket_index(seconds: float) -> int:
    """The SECONDS_BUCKETS bound a value falls under (len(SECONDS_BUCKETS): +Inf)."""
    return bisect.bisect_left(SECONDS_BUCKETS, seconds)


class Histogram(_Message):
    """Observations per SECONDS_BUCKETS bound (not cumulative; the last one is +Inf), and sum."""

    counts: tuple[int, ...] = (0,) * (len(SECONDS_BUCKETS) + 1)
    total: float = 0.0

    def observe(self, value: float) -> Histogram:
        counts = list(self.counts)
        counts[bucket_index(value)] += 1
        return Histogram(counts=tuple(counts), total=self.total + value)

    def plus(self, other: Histogram, sign: int = 1) -> Histogram:
        counts = tuple(a + sign * b for a, b in zip(self.counts, other.counts, strict=True))
        return Histogram(counts=counts, total=self.total + sign * other.total)


class WorkerStats(_Message):
    """One worker's cumulative figures since it started, carried in every heartbeat, so that
    the scaler exports the figures of all its workers on one scrape target."""

    translations: dict[str, int] = Field(default_factory=dict)  # by status: ok / error
    errors: dict[str, int] = Field(default_factory=dict)  # by reason
    dead_letters: int = 0
    processing_seconds: Histogram = Histogram()
    queue_seconds: Histogram = Histogram()
    model_load_seconds: dict[str, float] = Field(default_factory=dict)  # by model id
    fallbacks: dict[str, int] = Field(default_factory=dict)  # "asked>used:source-target"
    cache: dict[str, int] = Field(default_factory=dict)  # hits, misses, bytes_written, errors
    # where the batches' time went: wall seconds by BATCH_STAGES; and the process's CPU seconds
    # while generate() ran (against its wall seconds x threads: whether it had its cores)
    batch_seconds: dict[str, float] = Field(default_factory=dict)
    generate_cpu_seconds: float = 0.0

    def plus(self, other: WorkerStats, sign: int = 1) -> WorkerStats:
        """Counters and histograms added (sign=-1: taken away); load times kept, the latest."""
        return WorkerStats(
            translations=_add(self.translations, other.translations, sign),
            errors=_add(self.errors, other.errors, sign),
            dead_letters=self.dead_letters + sign * other.dead_letters,
            processing_seconds=self.processing_seconds.plus(other.processing_seconds, sign),
            queue_seconds=self.queue_seconds.plus(other.queue_seconds, sign),
            model_load_seconds={**self.model_load_seconds, **other.model_load_seconds},
            fallbacks=_add(self.fallbacks, other.fallbacks, sign),
            cache=_add(self.cache, other.cache, sign),
            batch_seconds=_add(self.batch_seconds, other.batch_seconds, sign),
            generate_cpu_seconds=self.generate_cpu_seconds + sign * other.generate_cpu_seconds,
        )


_N = TypeVar("_N", int, float)


def _add(left: dict[str, _N], right: dict[str, _N], sign: int) -> dict[str, _N]:
    return {k: left.get(k, 0) + sign * right.get(k, 0) for k in left.keys() | right.keys()}


class WorkerHeartbeat(_Message):
    """What a worker reports about itself, every few seconds, into a KV bucket with a TTL."""

    worker_id: str
    pool: str
    pid: int
    host: str
    state: WorkerState
    in_flight: int = 0
    utilization: float = 0.0
    processed: int = 0
    failed: int = 0
    batches: int = 0
    generate_calls: int = 0
    avg_processing_time: float = 0.0
    rss_mb: float = 0.0
    models: tuple[str, ...] = ()
    unavailable: str = ""  # in state `unavailable`: why the model cannot be had
    stats: WorkerStats = WorkerStats()
    timestamp: float = Field(default_factory=time.time)


class ScalingEvent(_Message):
    """One scaling decision of the scaler, with the inputs that decided it."""

    pool: str
    from_workers: int
    to_workers: int
    direction: Literal["up", "down", "hold"]  # a `hold` is never published
    reason: str
    queue_depth: int
    in_flight: int
    utilization: float
    running: int
    starting: int
    host: str = ""  # the scaler that decided (the leader, with several hosts)
    shares: dict[str, int] = Field(default_factory=dict)  # host -> its workers of the pool
    timestamp: float = Field(default_factory=time.time)


class HostBounds(_Message):
    """One pool on one host: how many workers it has, and may have."""

    workers: int
    minimum: int
    maximum: int


class ScalerAnnouncement(_Message):
    """A scaler's host, as it tells the others every scaling check (KV bucket
    TRANSLATOR_SCALERS, key `host.<host>`, expiring with the lease TTL)."""

    host: str
    pools: dict[str, HostBounds]
    room: int  # how many more workers this host takes (TRANSLATION_WORKERS, its capacity)
    cap: int = 0  # the most workers this host can run (0: not capped)
    cap_reason: str = ""  # what the cap comes from (cores, threads, memory)
    timestamp: float = Field(default_factory=time.time)


class PoolPlan(_Message):
    """The leader's decision for a pool (key `plan.<pool>`): the pool-wide size, split into
    each host's share."""

    pool: str
    desired: int
    shares: dict[str, int]
    leader: str
    timestamp: float = Field(default_factory=time.time)


AlertKind = Literal["queue_high", "utilization_high", "scaling_failed", "host_lost"]
# The label values of the scaler's counters, exported at 0 from the start.
ALERT_KINDS: tuple[AlertKind, ...] = get_args(AlertKind)
SCALING_DIRECTIONS = ("up", "down")
RESULT_STATUSES = ("ok", "error")


class Alert(_Message):
    """Queue above 80% of capacity, utilization above 90%, a scaling action that failed."""

    pool: str
    kind: AlertKind
    message: str
    value: float
    threshold: float
    host: str = ""
    timestamp: float = Field(default_factory=time.time)


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
    try:  # a lone surrogate (`"\\ud800"`) decodes, but can be neither stored nor sent
        json.dumps(payload, ensure_ascii=False).encode()
    except UnicodeEncodeError as exc:
        raise InvalidRequest("text that is not valid Unicode (a lone surrogate)") from exc
    if fallback_task_id and not payload.get("taskId"):
        payload["taskId"] = fallback_task_id
    try:
        return TranslationRequest.model_validate(payload)
    except ValidationError as exc:
        raise InvalidRequest(_describe(exc)) from exc


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "request"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def loads(data: bytes) -> Any:
    """JSON from the wire, or None when it is not: invalid UTF-8 or JSON, nesting too deep for
    the parser (RecursionError), an integer beyond Python's 4,300 digits (ValueError)."""
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError, RecursionError):  # JSONDecodeError is a ValueError
        return None


def peek_message_id(data: bytes) -> str | None:
    """The messageId of a request that failed validation, when one can be read."""
    payload = loads(data)
    value = payload.get("messageId") if isinstance(payload, dict) else None
    return value if is_identifier(value) else None
