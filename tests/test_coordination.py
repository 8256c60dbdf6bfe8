"""The pool-wide decision's pure parts: shares per host, the pool as the rules see it across
hosts, the hosts' bounds added up; and NATS_URL as a server list."""

from __future__ import annotations

from scaler.coordination import pool_rule, pool_wide, split
from scaler.observe import PoolView
from scaler.policy import PoolRule, PoolState, desired_workers
from scaler.records import HostBounds
from translator.bus.connection import servers
from translator.contracts.subjects import Pool
from translator.contracts.telemetry import WorkerHeartbeat

RULE = PoolRule(
    up_queue=100, up_utilization=0.8, up_step=5, down_queue=10, down_utilization=0.3,
    down_step=2, minimum=1, maximum=4, initial=1,
)  # fmt: skip


def bounds(workers: int, minimum: int = 1, maximum: int = 4) -> HostBounds:
    return HostBounds(workers=workers, minimum=minimum, maximum=maximum)


def test_split_adds_to_the_hosts_with_the_fewest_and_keeps_what_runs() -> None:
    hosts = {"a": bounds(1), "b": bounds(1)}
    assert split(7, hosts, {"a": 10, "b": 10}) == {"a": 4, "b": 3}
    assert split(2, hosts, {"a": 10, "b": 10}) == {"a": 1, "b": 1}  # a hold moves nothing


def test_split_respects_each_hosts_maximum_minimum_and_room() -> None:
    hosts = {"a": bounds(1, maximum=2), "b": bounds(1), "c": bounds(3, minimum=2)}
    assert split(20, hosts, {"a": 10, "b": 1, "c": 10}) == {"a": 2, "b": 2, "c": 4}
    assert split(0, hosts, {}) == {"a": 1, "b": 1, "c": 2}


def test_split_takes_from_the_hosts_with_the_most() -> None:
    hosts = {"a": bounds(4), "b": bounds(2), "c": bounds(1)}
    assert split(4, hosts, {}) == {"a": 2, "b": 1, "c": 1}


def beat(host: str, pid: int, state: str) -> WorkerHeartbeat:
    return WorkerHeartbeat.model_validate(
        {"workerId": f"{host}-{pid}", "pool": "normal", "pid": pid, "host": host, "state": state,
         "utilization": 1.0}
    )  # fmt: skip


def test_one_step_for_the_whole_pool_not_one_per_host() -> None:
    """Two hosts with one worker each on a backlog of 256: +5 for the pool, split 4 + 3."""
    seen = PoolView(
        Pool.NORMAL,
        PoolState(queue=256, in_flight=2, running=1, starting=0, utilization=1.0),
        (beat("a", 1, "busy"), beat("b", 2, "busy")),
    )
    hosts = {"a": bounds(1, maximum=40), "b": bounds(1, maximum=40)}
    state = pool_wide(seen, hosts)
    assert (state.running, state.starting) == (2, 0)
    rule = pool_rule(RULE, hosts)
    assert (rule.minimum, rule.maximum) == (2, 80)
    decision = desired_workers(state, rule, room=100)
    assert (decision.current, decision.desired) == (2, 7)
    assert split(decision.desired, hosts, {"a": 59, "b": 59}) == {"a": 4, "b": 3}


def test_workers_without_a_heartbeat_yet_are_capacity_on_its_way() -> None:
    seen = PoolView(
        Pool.NORMAL,
        PoolState(queue=256, in_flight=0, running=1, starting=0, utilization=1.0),
        (beat("a", 1, "busy"), beat("b", 2, "loading")),
    )
    state = pool_wide(seen, {"a": bounds(3), "b": bounds(2)})
    assert (state.running, state.starting) == (1, 4)
    assert desired_workers(state, pool_rule(RULE, {"a": bounds(3)}), 10).direction == "hold"


def test_nats_url_may_list_several_servers() -> None:
    assert servers("nats://n1:4222, nats://n2:4222,nats://n3:4222") == [
        "nats://n1:4222", "nats://n2:4222", "nats://n3:4222",
    ]  # fmt: skip
    assert servers(None) == ["nats://127.0.0.1:4222"]
    assert servers("nats://only:4222") == ["nats://only:4222"]
