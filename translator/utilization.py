"""Worker statistics: busy fraction over a sliding window, counts, average processing time."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field


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
class Counters:
    processed: int = 0
    failed: int = 0
    batches: int = 0
    generate_calls: int = 0
    _time_total: float = 0.0

    def record(self, ok: bool, seconds: float) -> None:
        if ok:
            self.processed += 1
        else:
            self.failed += 1
        self._time_total += seconds

    @property
    def avg_processing_time(self) -> float:
        done = self.processed + self.failed
        return round(self._time_total / done, 6) if done else 0.0
