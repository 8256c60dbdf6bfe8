"""The workers' own figures, for the scaler's /metrics: one scrape target for a host's workers.

Each worker's heartbeat carries its cumulative `WorkerStats`. The scaler sums them per pool over
the workers of its host, and keeps what a worker had counted once it is gone, so the counters
never go back when a worker stops or dies (up to the last heartbeat it sent)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from translator.contracts.messages import SECONDS_BUCKETS, Histogram, WorkerHeartbeat, WorkerStats

_KEEP_RETIRED = 1_000  # workers remembered after they are gone (in case one comes back)


class Fleet:
    def __init__(self, host: str | None) -> None:
        self.host = host  # None: every host's workers (a scaler in observe mode)
        self.live: dict[str, WorkerHeartbeat] = {}
        self._retired: dict[str, WorkerStats] = {}  # per pool: what gone workers had counted
        self._gone: dict[str, WorkerHeartbeat] = {}  # worker id -> its last heartbeat

    def update(self, beats: list[WorkerHeartbeat]) -> None:
        """The latest heartbeats of every worker; those of other hosts are left out, unless
        the fleet is every host's."""
        now = {b.worker_id: b for b in beats if self.host in (None, b.host)}
        for worker_id, beat in self.live.items():
            if worker_id not in now:
                self._retire(beat)
        for worker_id in now:
            if (back := self._gone.pop(worker_id, None)) is not None:
                self._retired[back.pool] = self._retired[back.pool].plus(back.stats, -1)
        self.live = now

    def _retire(self, beat: WorkerHeartbeat) -> None:
        self._retired[beat.pool] = self._retired.get(beat.pool, WorkerStats()).plus(beat.stats)
        self._gone[beat.worker_id] = beat
        while len(self._gone) > _KEEP_RETIRED:
            del self._gone[next(iter(self._gone))]

    def totals(self) -> dict[str, WorkerStats]:
        """Per pool: everything its workers of this host have counted, gone ones included."""
        pools = dict(self._retired)
        for beat in self.live.values():
            pools[beat.pool] = pools.get(beat.pool, WorkerStats()).plus(beat.stats)
        return pools

    def families(self) -> Iterator[Metric]:
        totals = self.totals()
        translations = CounterMetricFamily(
            "translator_translations", "Results published, by status", labels=["pool", "status"]
        )
        errors = CounterMetricFamily(
            "translator_errors", "Error results, by reason", labels=["pool", "reason"]
        )
        dead = CounterMetricFamily(
            "translator_dead_letters", "Requests sent to the dead-letter stream", labels=["pool"]
        )
        processing = HistogramMetricFamily(
            "translator_processing_seconds",
            "Time from a worker's receipt of a request to its results",
            labels=["pool"],
        )
        queued = HistogramMetricFamily(
            "translator_queue_seconds",
            "Time a request waited in its pool's stream",
            labels=["pool"],
        )
        for pool, stats in sorted(totals.items()):
            for status, n in sorted(stats.translations.items()):
                translations.add_metric([pool, status], n)
            for reason, n in sorted(stats.errors.items()):
                errors.add_metric([pool, reason], n)
            dead.add_metric([pool], stats.dead_letters)
            processing.add_metric([pool], *_buckets(stats.processing_seconds))
            queued.add_metric([pool], *_buckets(stats.queue_seconds))
        yield from (translations, errors, dead, processing, queued)
        yield from self._gauges()

    def _gauges(self) -> Iterator[Metric]:
        loads = GaugeMetricFamily(
            "translator_model_load_seconds",
            "Seconds the latest load of a model took, in a live worker",
            labels=["pool", "model"],
        )
        rss = GaugeMetricFamily(
            "translator_worker_rss_bytes",
            "Resident memory of a live worker",
            labels=["pool", "worker"],
        )
        latest: dict[tuple[str, str], float] = {}
        for beat in sorted(self.live.values(), key=lambda b: b.timestamp):
            latest.update({(beat.pool, m): s for m, s in beat.stats.model_load_seconds.items()})
            rss.add_metric([beat.pool, beat.worker_id], beat.rss_mb * 2**20)
        for (pool, model), seconds in sorted(latest.items()):
            loads.add_metric([pool, model], seconds)
        yield from (loads, rss)


def _buckets(histogram: Histogram) -> tuple[list[tuple[str, float]], float]:
    cumulative, rows = 0, []
    for bound, count in zip((*SECONDS_BUCKETS, float("inf")), histogram.counts, strict=True):
        cumulative += count
        rows.append(("+Inf" if bound == float("inf") else str(bound), float(cumulative)))
    return rows, histogram.total
