"""How late the event loop runs: a task asks to wake every TICK and records by how much it was
late, as a histogram (`translator_event_loop_lag_seconds`). Everything the process serves (HTTP,
pongs, acks) waits that long whenever the loop is held, so it should stay near 0: CPU work goes
to threads (docs/SECURITY.md, "One request, bounded work")."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
from prometheus_client.core import HistogramMetricFamily, Metric

TICK = 0.05
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class LoopLag:
    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)  # per bucket, the last one past every bound
        self.total = 0.0
        self.worst = 0.0

    def observe(self, late: float) -> None:
        self.counts[next((i for i, b in enumerate(BUCKETS) if late <= b), len(BUCKETS))] += 1
        self.total += late
        self.worst = max(self.worst, late)

    async def watch(self) -> None:
        while True:
            asked = anyio.current_time() + TICK
            await anyio.sleep(TICK)
            self.observe(max(anyio.current_time() - asked, 0.0))

    def collect(self) -> Iterator[Metric]:
        cumulative, running = [], 0
        for bound, count in zip((*map(str, BUCKETS), "+Inf"), self.counts, strict=True):
            running += count
            cumulative.append((bound, float(running)))
        family = HistogramMetricFamily(
            "translator_event_loop_lag_seconds",
            f"How late the event loop woke a task that asked to wake every {TICK:g} s",
        )
        family.add_metric([], cumulative, sum_value=self.total)
        yield family
