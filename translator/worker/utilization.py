"""Worker statistics: busy fraction over a sliding window, counts, average processing time,
where the batches' time goes."""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from translator.contracts.telemetry import (
    BATCH_STAGES,
    SECONDS_BUCKETS,
    Fallback,
    Histogram,
    WorkerStats,
    bucket_index,
)


@dataclass
class Utilization:
    """Fraction of the last `window` seconds spent busy (processing a batch)."""

    window: float
    _spans: deque[tuple[float, float]] = field(default_factory=deque)
    _busy_since: float | None = None

    def start(self, now: float | None = None) -> None:
        self._busy_since = time.monotonic() if now is None else now

    def stop(self, now: float | None = None) -> None:
        if self._busy_since is not None:
            self._spans.append((self._busy_since, time.monotonic() if now is None else now))
            self._busy_since = None

    def value(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        floor = now - self.window
        while self._spans and self._spans[0][1] <= floor:
            self._spans.popleft()
        busy = sum(end - max(start, floor) for start, end in self._spans)
        if self._busy_since is not None:
            busy += now - max(self._busy_since, floor)
        return round(min(busy / self.window, 1.0), 4)


@dataclass
class _Tally:
    """A histogram counted in place, once per request; a `Histogram` only for heartbeats."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(SECONDS_BUCKETS) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bucket_index(seconds)] += 1
        self.total += seconds

    def histogram(self) -> Histogram:
        return Histogram(counts=tuple(self.counts), total=self.total)


@dataclass
class Counters:
    """What a worker has done since it started; `stats()` is what its heartbeats carry."""

    processed: int = 0  # ok results
    failed: int = 0  # error results, and requests that could not be read
    batches: int = 0
    generate_calls: int = 0
    _time_total: float = 0.0
    _timed: int = 0
    _results: Counter[str] = field(default_factory=Counter)
    _errors: Counter[str] = field(default_factory=Counter)
    _dead_letters: int = 0
    _fallbacks: Counter[str] = field(default_factory=Counter)  # by `Fallback.key`
    cache: Counter[str] = field(default_factory=Counter)  # the translation cache's, shared
    _processing: _Tally = field(default_factory=lambda: _Tally())
    _queue: _Tally = field(default_factory=lambda: _Tally())
    _stages: dict[str, float] = field(default_factory=lambda: dict.fromkeys(BATCH_STAGES, 0.0))
    _generate_cpu: float = 0.0

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Count the wall seconds of the block as a batch stage (BATCH_STAGES); for generate(),
        the process's CPU seconds meanwhile too."""
        wall, cpu = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.add_stage(name, time.perf_counter() - wall)
            if name == "generate":
                self._generate_cpu += time.process_time() - cpu

    def add_stage(self, name: str, seconds: float) -> None:
        self._stages[name] += seconds

    def result(self, error_kind: str | None, seconds: float | None = None) -> None:
        """One result published (one per target language): ok, or an error of `error_kind`;
        `seconds`: the request's processing time, for the average (None: not processed)."""
        if error_kind is None:
            self.processed += 1
            self._results["ok"] += 1
        else:
            self.failed += 1
            self._results["error"] += 1
            self._errors[error_kind] += 1
        if seconds is not None:
            self._time_total += seconds
            self._timed += 1

    def unreadable(self, kind: str) -> None:
        """A request that cannot be read: no result can be addressed, an error all the same."""
        self.failed += 1
        self._errors[kind] += 1

    def request(self, processing_seconds: float, queue_seconds: float) -> None:
        """One request done: how long it waited in its queue, how long the worker took."""
        self._processing.observe(processing_seconds)
        self._queue.observe(queue_seconds)

    def dead_letter(self) -> None:
        self._dead_letters += 1

    def fallback(self, asked: str, used: str, source: str, target: str) -> None:
        """A group translated by the `used` tier's model because `asked`'s cannot do the pair."""
        self._fallbacks[Fallback(asked, used, source, target).key] += 1

    def stats(self, model_load_seconds: dict[str, float]) -> WorkerStats:
        return WorkerStats(
            translations=dict(self._results),
            errors=dict(self._errors),
            dead_letters=self._dead_letters,
            processing_seconds=self._processing.histogram(),
            queue_seconds=self._queue.histogram(),
            model_load_seconds=model_load_seconds,
            fallbacks=dict(self._fallbacks),
            cache=dict(self.cache),
            batch_seconds={k: round(v, 6) for k, v in self._stages.items()},
            generate_cpu_seconds=round(self._generate_cpu, 6),
        )

    @property
    def avg_processing_time(self) -> float:
        return round(self._time_total / self._timed, 6) if self._timed else 0.0
