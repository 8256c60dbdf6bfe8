"""What the workers report about themselves: their heartbeat (KV bucket TRANSLATOR_WORKERS) and
the cumulative figures it carries (`WorkerStats`, with its histograms), which the scaler sums and
exports for all its workers on one scrape target (scaler/fleet.py)."""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass
from typing import Literal, TypeVar

from pydantic import Field

from translator.contracts.messages import Message

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


class Histogram(Message):
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


class WorkerStats(Message):
    """One worker's cumulative figures since it started, carried in every heartbeat, so that
    the scaler exports the figures of all its workers on one scrape target."""

    translations: dict[str, int] = Field(default_factory=dict)  # by status: ok / error
    errors: dict[str, int] = Field(default_factory=dict)  # by reason
    dead_letters: int = 0
    processing_seconds: Histogram = Histogram()
    queue_seconds: Histogram = Histogram()
    model_load_seconds: dict[str, float] = Field(default_factory=dict)  # by model id
    fallbacks: dict[str, int] = Field(default_factory=dict)  # by `Fallback.key`
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


class WorkerHeartbeat(Message):
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


@dataclass(frozen=True)
class Fallback:
    """A translation served by another tier's model than the one asked for; its key in
    `WorkerStats.fallbacks` is `asked>used:source-target` (a JSON object's key is a string)."""

    asked: str
    used: str
    source: str
    target: str

    @property
    def key(self) -> str:
        return f"{self.asked}>{self.used}:{self.source}-{self.target}"

    @classmethod
    def of(cls, key: str) -> Fallback:
        tiers, pair = key.split(":", 1)
        asked, used = tiers.split(">", 1)
        source, target = pair.split("-", 1)
        return cls(asked, used, source, target)
