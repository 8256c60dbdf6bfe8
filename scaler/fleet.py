"""The workers' own figures, for the scaler's /metrics: one scrape target for a host's workers.

Each worker's heartbeat carries its cumulative `WorkerStats`. The scaler sums them per pool over
the workers of its host, and keeps what a worker had counted once it is gone, so the counters
never go back when a worker stops or dies (up to the last heartbeat it sent). Every series whose
labels are known in advance (pools, statuses, error reasons) is there from the start, at 0.

A worker whose heartbeat disappears without a clean stop (no purge marker) is `lost`: a failure,
in every scaler mode."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from translator.bus.heartbeat import heartbeat_key
from translator.contracts.errors import ERROR_REASONS
from translator.contracts.messages import RESULT_STATUSES
from translator.contracts.subjects import Pool
from translator.contracts.telemetry import (
    BATCH_STAGES,
    SECONDS_BUCKETS,
    Fallback,
    Histogram,
    WorkerHeartbeat,
    WorkerStats,
)

_KEEP_RETIRED = 1_000  # workers remembered after they are gone (in case one comes back)


class Fleet:
    def __init__(self, host: str | None) -> None:
        self.host = host  # None: every host's workers (a scaler in observe mode)
        self.live: dict[str, WorkerHeartbeat] = {}
        self._retired: dict[str, WorkerStats] = {}  # per pool: what gone workers had counted
        self._gone: dict[str, WorkerHeartbeat] = {}  # worker id -> its last heartbeat
        self.lost: Counter[str] = Counter(dict.fromkeys((p.value for p in Pool), 0))

    def update(self, beats: list[WorkerHeartbeat], stopped: frozenset[str] = frozenset()) -> None:
        """The latest heartbeats of every worker; those of other hosts are left out, unless
        the fleet is every host's. `stopped`: the keys of workers that stopped cleanly."""
        now = {b.worker_id: b for b in beats if self.host in (None, b.host)}
        for worker_id, beat in self.live.items():
            if worker_id not in now:
                self._retire(beat)
                if heartbeat_key(beat.pool, worker_id) not in stopped:
                    self.lost[beat.pool] += 1
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
        pools = {pool.value: WorkerStats() for pool in Pool} | self._retired
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
        cache = CounterMetricFamily(
            "translator_cache_lookups",
            "Sentence pieces looked up in the translation cache, by result (hit / miss)",
            labels=["pool", "result"],
        )
        cache_bytes = CounterMetricFamily(
            "translator_cache_written_bytes",
            "Bytes of translations written to the translation cache",
            labels=["pool"],
        )
        fallbacks = CounterMetricFamily(
            "translator_model_fallbacks",
            "Groups translated by another tier's model, the asked one unable to do the pair",
            labels=["pool", "asked", "used", "source", "target"],
        )
        stages = CounterMetricFamily(
            "translator_batch_seconds",
            "Wall seconds of the workers' batches, by stage (generate: the model's own share)",
            labels=["pool", "stage"],
        )
        generate_cpu = CounterMetricFamily(
            "translator_generate_cpu_seconds",
            "The workers' CPU seconds while generate() ran (over stage=generate x threads: the "
            "share of their cores they got)",
            labels=["pool"],
        )
        for pool, stats in sorted(totals.items()):
            for stage in sorted({*BATCH_STAGES, *stats.batch_seconds}):
                stages.add_metric([pool, stage], stats.batch_seconds.get(stage, 0.0))
            generate_cpu.add_metric([pool], stats.generate_cpu_seconds)
            cache.add_metric([pool, "hit"], stats.cache.get("hits", 0))
            cache.add_metric([pool, "miss"], stats.cache.get("misses", 0))
            cache_bytes.add_metric([pool], stats.cache.get("bytes_written", 0))
            for key, n in sorted(stats.fallbacks.items()):
                fell = Fallback.of(key)
                fallbacks.add_metric([pool, fell.asked, fell.used, fell.source, fell.target], n)
            for status in RESULT_STATUSES:
                translations.add_metric([pool, status], stats.translations.get(status, 0))
            for reason in sorted({*ERROR_REASONS, *stats.errors}):
                errors.add_metric([pool, reason], stats.errors.get(reason, 0))
            dead.add_metric([pool], stats.dead_letters)
            processing.add_metric([pool], *_buckets(stats.processing_seconds))
            queued.add_metric([pool], *_buckets(stats.queue_seconds))
        yield from (translations, errors, dead, processing, queued, cache, cache_bytes, fallbacks)
        yield from (stages, generate_cpu)
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
