"""The scaling policy of the 0.4.9 release notes, as pure functions of plain values.

normal: queue > 100 and utilization > 0.8 -> +5; queue < 10 and utilization < 0.3 -> -2
any:    queue > 50  and utilization > 0.8 -> +3; queue < 5  and utilization < 0.3 -> -1
within [minimum, maximum] per pool and TRANSLATION_WORKERS for all pools together. Workers
still loading their model are capacity on its way: no scale-up while some are loading."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Direction = Literal["up", "down", "hold"]


@dataclass(frozen=True)
class PoolRule:
    up_queue: int
    up_utilization: float
    up_step: int
    down_queue: int
    down_utilization: float
    down_step: int
    minimum: int
    maximum: int
    initial: int


@dataclass(frozen=True)
class PoolState:
    queue: int  # the consumer's num_pending
    in_flight: int  # num_ack_pending
    running: int  # workers with their model loaded
    starting: int  # workers spawned, still loading
    utilization: float  # mean busy fraction of the running workers

    @property
    def workers(self) -> int:
        return self.running + self.starting


@dataclass(frozen=True)
class Decision:
    current: int
    desired: int
    reason: str

    @property
    def direction(self) -> Direction:
        if self.desired > self.current:
            return "up"
        return "down" if self.desired < self.current else "hold"


def desired_workers(state: PoolState, rule: PoolRule, room: int, dynamic: bool = True) -> Decision:
    """How many workers a pool should have; `room`: how many more the total cap allows."""
    current = state.workers
    if not dynamic:
        return _bounded(current, rule.initial, rule, room, "fixed size (dynamic scaling off)")
    if state.queue > rule.up_queue and state.utilization > rule.up_utilization:
        if state.starting:
            return Decision(current, current, f"{state.starting} workers still loading")
        reason = _why(state, ">", rule.up_queue, rule.up_utilization)
        return _bounded(current, current + rule.up_step, rule, room, reason)
    if state.queue < rule.down_queue and state.utilization < rule.down_utilization:
        reason = _why(state, "<", rule.down_queue, rule.down_utilization)
        return _bounded(current, current - rule.down_step, rule, room, reason)
    return _bounded(current, current, rule, room, "within thresholds")


def _why(state: PoolState, sign: str, queue: int, busy: float) -> str:
    return f"queue {state.queue} {sign} {queue}, utilization {state.utilization:.2f} {sign} {busy}"


def _bounded(current: int, wanted: int, rule: PoolRule, room: int, reason: str) -> Decision:
    desired = max(rule.minimum, min(wanted, rule.maximum))
    if desired > current:
        desired = current + min(desired - current, max(room, 0))
    if desired != wanted:
        reason += f"; bounded to {desired} (min {rule.minimum}, max {rule.maximum}, room {room})"
    return Decision(current, desired, reason)


def utilization(values: list[float], queue: int) -> float:
    """Mean utilization of a pool's workers; a pool with none is saturated if work waits."""
    if not values:
        return 1.0 if queue > 0 else 0.0
    return sum(values) / len(values)
