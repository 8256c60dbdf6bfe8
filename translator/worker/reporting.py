"""What a worker reports about itself: its state, resource use and counters, in heartbeats
(KV bucket `TRANSLATOR_WORKERS`, with a TTL) and in every result."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import anyio
import psutil
from nats.js.kv import KeyValue

from translator.bus import heartbeat
from translator.contracts.telemetry import WorkerHeartbeat, WorkerState
from translator.inference.models import ModelRegistry
from translator.worker.results import Usage, WorkerIdentity
from translator.worker.utilization import Counters, Utilization

log = logging.getLogger(__name__)


@dataclass
class WorkerStatus:
    """The worker's state as the loop changes it."""

    utilization: Utilization
    counters: Counters = field(default_factory=Counters)
    state: WorkerState = "loading"
    in_flight: int = 0
    unavailable: str = ""  # why the model cannot be had, in state `unavailable`


class Reporter:
    def __init__(
        self, who: WorkerIdentity, status: WorkerStatus, models: ModelRegistry, interval: float
    ) -> None:
        self.who = who
        self.status = status
        self.models = models
        self.interval = interval
        self._proc = psutil.Process()
        self._proc.cpu_percent(None)

    def usage(self) -> Usage:
        memory = self._proc.memory_info().rss / 2**20
        return Usage(round(memory, 1), round(self._proc.cpu_percent(None), 1))

    def heartbeat(self) -> WorkerHeartbeat:
        status, counters = self.status, self.status.counters
        return WorkerHeartbeat(
            worker_id=self.who.worker_id,
            pool=self.who.pool.value,
            pid=os.getpid(),
            host=self.who.host,
            state=status.state,
            in_flight=status.in_flight,
            utilization=status.utilization.value(),
            processed=counters.processed,
            failed=counters.failed,
            batches=counters.batches,
            generate_calls=counters.generate_calls,
            avg_processing_time=counters.avg_processing_time,
            rss_mb=self.usage().memory_mb,
            models=self.models.loaded,
            unavailable=status.unavailable,
            stats=counters.stats(self.models.load_seconds),
        )

    async def beat_forever(self, bucket: KeyValue) -> None:
        """A beat every interval; an outage is logged when it starts and when it ends (the
        bucket is on disk: a restarted nats-server still has it)."""
        failing: str | None = None
        while True:
            error = await heartbeat.publish(bucket, self.heartbeat())
            if error and not failing:
                log.warning("heartbeats not published: %s", error)
            elif failing and not error:
                log.info("heartbeats published again")
            failing = error
            await anyio.sleep(self.interval)
