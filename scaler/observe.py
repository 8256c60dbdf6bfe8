"""What the scaler reads: the `workers` consumer's lag and the workers' heartbeats."""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext

from scaler.policy import PoolState, utilization
from translator.contracts.subjects import WORKERS_CONSUMER, Pool, request_stream
from translator.contracts.telemetry import WorkerHeartbeat

SERVING = ("ready", "busy")


@dataclass(frozen=True)
class PoolView:
    pool: Pool
    state: PoolState
    heartbeats: tuple[WorkerHeartbeat, ...]  # every worker of the pool, on any host
    unavailable: tuple[WorkerHeartbeat, ...] = ()  # the counted ones whose model cannot be had

    @property
    def idle_pids(self) -> list[int]:
        return [b.pid for b in self.heartbeats if b.in_flight == 0]


async def lag(js: JetStreamContext, pool: Pool) -> tuple[int, int]:
    """(num_pending, num_ack_pending) of the pool's `workers` consumer."""
    info = await js.consumer_info(request_stream(pool), WORKERS_CONSUMER)
    return int(info.num_pending or 0), int(info.num_ack_pending or 0)


def view(
    pool: Pool,
    queue: int,
    in_flight: int,
    beats: list[WorkerHeartbeat],
    mine: set[int] | None,
    host: str,
) -> PoolView:
    """The pool as the policy sees it; `mine`: pids this scaler supervises on `host`, or None
    to count every worker of every host (observe mode)."""
    pooled = tuple(b for b in beats if b.pool == pool.value)
    serving = [b for b in pooled if b.state in SERVING]
    counted = pooled if mine is None else [b for b in pooled if b.pid in mine and b.host == host]
    unavailable = tuple(b for b in counted if b.state == "unavailable")
    if mine is None:
        running = len(serving)
        # capacity on its way: loading, or retrying a model that cannot be had yet
        starting = sum(1 for b in pooled if b.state == "loading") + len(unavailable)
    else:
        running = sum(1 for b in serving if b.pid in mine and b.host == host)
        starting = max(len(mine) - running, 0)
    state = PoolState(
        queue=queue,
        in_flight=in_flight,
        running=running,
        starting=starting,
        utilization=round(utilization([b.utilization for b in serving], queue), 4),
    )
    return PoolView(pool, state, pooled, unavailable)
