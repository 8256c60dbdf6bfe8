"""The scaling policy with plain values: every rule, threshold edge, bound and cap."""

from __future__ import annotations

import pytest

from scaler.policy import PoolRule, PoolState, desired_workers, utilization
from scaler.settings import ScalerSettings
from translator.contracts.subjects import Pool

NORMAL = ScalerSettings(normal_workers=2, any_workers=1).rule(Pool.NORMAL)
ANY = ScalerSettings(normal_workers=2, any_workers=1).rule(Pool.ANY)
ROOM = 100


def state(queue: int, busy: float, running: int = 4, starting: int = 0) -> PoolState:
    return PoolState(queue=queue, in_flight=0, running=running, starting=starting, utilization=busy)


def test_the_defaults_are_the_0_4_9_rules() -> None:
    assert (NORMAL.up_queue, NORMAL.up_utilization, NORMAL.up_step) == (100, 0.8, 5)
    assert (NORMAL.down_queue, NORMAL.down_utilization, NORMAL.down_step) == (10, 0.3, 2)
    assert (ANY.up_queue, ANY.up_utilization, ANY.up_step) == (50, 0.8, 3)
    assert (ANY.down_queue, ANY.down_utilization, ANY.down_step) == (5, 0.3, 1)
    assert (NORMAL.maximum, ANY.maximum) == (40, 20)
    assert (NORMAL.minimum, ANY.minimum) == (2, 1)  # minimums default to the initial sizes


def test_normal_pool_grows_by_five_when_deep_and_busy() -> None:
    decision = desired_workers(state(101, 0.81), NORMAL, ROOM)
    assert (decision.current, decision.desired, decision.direction) == (4, 9, "up")
    assert "queue 101 > 100" in decision.reason


def test_normal_pool_shrinks_by_two_when_shallow_and_idle() -> None:
    decision = desired_workers(state(9, 0.29, running=6), NORMAL, ROOM)
    assert (decision.desired, decision.direction) == (4, "down")


def test_any_pool_uses_its_own_thresholds_and_steps() -> None:
    assert desired_workers(state(51, 0.9), ANY, ROOM).desired == 7
    assert desired_workers(state(4, 0.1), ANY, ROOM).desired == 3


@pytest.mark.parametrize(
    ("queue", "busy"),
    [(100, 0.9), (101, 0.8), (10, 0.1), (5, 0.3), (50, 0.5)],
)
def test_normal_pool_holds_at_the_threshold_edges_and_between(queue: int, busy: float) -> None:
    decision = desired_workers(state(queue, busy), NORMAL, ROOM)
    assert decision.direction == "hold"
    assert decision.desired == 4


def test_growth_stops_at_the_pool_maximum() -> None:
    assert desired_workers(state(500, 1.0, running=38), NORMAL, ROOM).desired == 40
    assert desired_workers(state(500, 1.0, running=40), NORMAL, ROOM).direction == "hold"


def test_shrinking_stops_at_the_pool_minimum() -> None:
    assert desired_workers(state(0, 0.0, running=3), NORMAL, ROOM).desired == 2
    assert desired_workers(state(0, 0.0, running=2), NORMAL, ROOM).direction == "hold"


def test_a_pool_below_its_minimum_is_brought_back_up() -> None:
    decision = desired_workers(state(0, 0.0, running=0), NORMAL, ROOM)
    assert (decision.desired, decision.direction) == (2, "up")


def test_the_total_cap_limits_growth() -> None:
    decision = desired_workers(state(500, 1.0, running=4), NORMAL, room=2)
    assert decision.desired == 6
    assert "room 2" in decision.reason
    assert desired_workers(state(500, 1.0), NORMAL, room=0).direction == "hold"


def test_workers_still_loading_count_as_capacity_on_its_way() -> None:
    decision = desired_workers(state(500, 1.0, running=4, starting=5), NORMAL, ROOM)
    assert decision.direction == "hold"
    assert decision.current == 9
    assert "5 workers still loading" in decision.reason


def test_fixed_sizes_when_dynamic_scaling_is_off() -> None:
    assert desired_workers(state(5000, 1.0), NORMAL, ROOM, dynamic=False).desired == 2
    assert desired_workers(state(0, 0.0, running=0), NORMAL, ROOM, dynamic=False).desired == 2


def test_every_number_is_configurable() -> None:
    rule = ScalerSettings(
        normal_scale_up_queue=10, normal_scale_up_step=1, max_normal_workers=3, min_normal_workers=0
    ).rule(Pool.NORMAL)
    assert rule == PoolRule(10, 0.8, 1, 10, 0.3, 2, minimum=0, maximum=3, initial=2)


def test_utilization_of_a_pool_without_workers_is_full_when_work_waits() -> None:
    assert utilization([], queue=3) == 1.0
    assert utilization([], queue=0) == 0.0
    assert utilization([0.5, 1.0], queue=0) == 0.75
