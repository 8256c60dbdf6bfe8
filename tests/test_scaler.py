"""The supervisor and the scaler with real worker subprocesses and a real nats-server."""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from collections import Counter
from pathlib import Path

import anyio
import psutil
import pytest
from nats.aio.client import Client

from scaler import capacity
from scaler.capacity import HostCapacity, default_threads
from scaler.supervisor import Backoff, Supervisor
from tests.probes import value, wait_metric
from tests.support import (
    Models,
    alerts,
    collect_results,
    free_port,
    publish_request,
    request,
    scaling_events,
    start_scaler,
    stop_process,
    wait_for_heartbeat,
    worker_env,
)
from translator.bus.embedded import EmbeddedNats
from translator.contracts.subjects import Pool
from translator.inference import randomweights

pytestmark = pytest.mark.anyio


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def wait_gone(pids: list[int], timeout: float = 30) -> None:
    with anyio.fail_after(timeout):
        while any(alive(pid) for pid in pids):  # noqa: ASYNC110
            await anyio.sleep(0.1)


async def test_supervisor_scales_down_gracefully_with_requests_in_flight_and_loses_none(
    nc: Client, nats_server: EmbeddedNats, models: Models
) -> None:
    queued = [request(text=f"in flight {i}") for i in range(24)]
    for req in queued:
        await publish_request(nc, req, "translate.result.scale-down")
    env = worker_env(nats_server.url, models, BASIC_MODEL=models.slow_t5, BATCH_SIZE=4)
    supervisor = Supervisor(env=env, grace=60)
    await supervisor.scale(Pool.NORMAL, 3)
    pids = supervisor.pids(Pool.NORMAL)
    try:
        for pid in pids:
            await wait_for_heartbeat(nc, pid, state="busy")
        await supervisor.scale(Pool.NORMAL, 1)  # two busy workers drain and stop
        stopped = [pid for pid in pids if pid not in supervisor.pids(Pool.NORMAL)]
        results = await collect_results(nc, "translate.result.scale-down", 24, timeout=120)
    finally:
        await supervisor.stop_all()

    assert len(stopped) == 2
    assert not any(alive(pid) for pid in stopped)
    delivered = Counter(r.task_id for r in results)
    assert set(delivered) == {q.task_id for q in queued}
    assert max(delivered.values()) == 1


async def test_supervisor_replaces_a_worker_killed_with_sigkill(
    nc: Client, nats_server: EmbeddedNats, models: Models
) -> None:
    supervisor = Supervisor(env=worker_env(nats_server.url, models), grace=10)
    await supervisor.scale(Pool.ANY, 1)
    (victim,) = supervisor.pids(Pool.ANY)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(supervisor.supervise, 0.1)
            await wait_for_heartbeat(nc, victim, state="ready")
            psutil.Process(victim).kill()
            with anyio.fail_after(20):
                while supervisor.pids(Pool.ANY) in ([], [victim]):  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            (replacement,) = supervisor.pids(Pool.ANY)
            await wait_for_heartbeat(nc, replacement, state="ready")
            tg.cancel_scope.cancel()
    finally:
        await supervisor.stop_all()
    assert replacement != victim
    assert supervisor.crashes[Pool.ANY] == 1


async def test_a_worker_that_always_crashes_is_restarted_with_growing_delays() -> None:
    def crashing(pool: Pool) -> list[str]:
        return [sys.executable, "-c", "import sys; sys.exit(3)"]

    supervisor = Supervisor(command=crashing, backoff=lambda: Backoff(initial=0.2, maximum=5))
    await supervisor.scale(Pool.NORMAL, 1)
    with anyio.move_on_after(3):
        await supervisor.supervise(0.02)
    await supervisor.stop_all()
    # delays 0.2, 0.4, 0.8, 1.6 s: about five starts in three seconds, not a hundred
    assert 3 <= supervisor.crashes[Pool.NORMAL] <= 6
    assert supervisor.backoff[Pool.NORMAL].failures >= 3


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
async def test_stopping_the_scaler_leaves_no_worker_behind(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path, sig: int
) -> None:
    env = worker_env(nats_server.url, models, NORMAL_WORKERS=2, ANY_WORKERS=1)
    scaler = start_scaler(env, tmp_path / "scaler.log")
    try:
        with anyio.fail_after(60):
            while len(workers := psutil.Process(scaler.pid).children()) < 3:  # noqa: ASYNC110
                await anyio.sleep(0.1)
        pids = [w.pid for w in workers]
        for pid in pids:
            await wait_for_heartbeat(nc, pid, state="ready")
        code = stop_process(scaler, sig)
        await wait_gone(pids)
    finally:
        stop_process(scaler, signal.SIGKILL)
    assert code == (0 if sig == signal.SIGTERM else -signal.SIGKILL)


async def test_a_worker_that_cannot_start_raises_a_scaling_failed_alert(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    """A setting no retry can fix (int4 on a CPU) makes the worker exit: a failed start. (A
    model that cannot be had keeps the worker up, retrying: tests/test_model_unavailable.py.)"""
    env = worker_env(
        nats_server.url, models, QUANTIZATION_LEVEL="int4", DEVICE="cpu", ANY_WORKERS=0,
        NORMAL_WORKERS=1, SCALING_CHECK_INTERVAL=0.5,
    )  # fmt: skip
    scaler = start_scaler(env, tmp_path / "scaler.log")
    try:
        with anyio.fail_after(60):
            while not any(a.kind == "scaling_failed" for a in await alerts(nc)):  # noqa: ASYNC110
                await anyio.sleep(0.5)
    finally:
        assert stop_process(scaler) == 0
    failed = next(a for a in await alerts(nc) if a.kind == "scaling_failed")
    assert failed.pool == "normal"
    assert "exited unexpectedly" in failed.message
    assert "quantization 'int4' is not supported on cpu" in (tmp_path / "scaler.log").read_text()


async def test_a_burst_scales_the_pool_up_and_idleness_scales_it_down(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    paced = randomweights.build("t5", tmp_path / "paced", output_tokens=120, fixed_length=True)
    env = worker_env(
        nats_server.url,
        models,
        BASIC_MODEL=paced,
        BATCH_SIZE=2,
        NORMAL_WORKERS=1,
        ANY_WORKERS=0,
        MAX_NORMAL_WORKERS=3,
        NORMAL_SCALE_UP_QUEUE=5,
        NORMAL_SCALE_UP_STEP=2,
        NORMAL_SCALE_DOWN_STEP=2,
        SCALING_CHECK_INTERVAL=1,
        UTILIZATION_WINDOW=2,
        HOST_CAP_ENABLED="false",  # the 0.4.9 rules' mechanics; the cap has its own test
    )
    burst = [request(text=f"burst {i}") for i in range(40)]
    scaler = start_scaler(env, tmp_path / "scaler.log")
    try:
        for req in burst:
            await publish_request(nc, req, "translate.result.burst")
        results = await collect_results(nc, "translate.result.burst", 40, timeout=150)
        with anyio.fail_after(120):  # margins for a slow, shared machine: it takes seconds
            while not any(e.direction == "down" for e in await scaling_events(nc)):  # noqa: ASYNC110
                await anyio.sleep(0.5)
        events = await scaling_events(nc)
        status = await anyio.run_process(
            [sys.executable, "-m", "translator", "status"], env=env, check=False
        )
    finally:
        assert stop_process(scaler) == 0

    assert sorted(r.task_id for r in results) == sorted(r.task_id for r in burst)
    up = next(e for e in events if e.direction == "up")
    down = next(e for e in events if e.direction == "down")
    assert (up.pool, up.from_workers, up.to_workers) == ("normal", 1, 3)
    assert up.queue_depth > 5
    assert up.utilization > 0.8
    assert (down.from_workers, down.to_workers) == (3, 1)
    assert down.queue_depth < 10  # the 0.4.9 scale-down threshold
    assert "scaling normal up: 1 -> 3 workers" in (tmp_path / "scaler.log").read_text()
    assert time.time() - down.timestamp < 60
    table = status.stdout.decode().splitlines()
    assert status.returncode == 0, status.stderr
    assert table[0].split()[:4] == ["pool", "queue", "in", "flight"]
    normal = next(line for line in table if line.startswith("normal"))
    assert normal.split()[1:4] == ["0", "0", "10000"]  # queue, in flight, capacity
    assert "3->1" in normal
    assert any(a.kind == "utilization_high" and a.value > 0.9 for a in await alerts(nc))


async def test_the_scaler_stops_at_what_the_host_can_hold_and_says_so(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    """The rules want +5 workers; the host's memory share holds one worker of the measured
    size (HOST_MEMORY_FRACTION tiny): no scale-up, a scaling_failed alert that says why, the
    cap in /metrics and in `translator status`."""
    http = free_port()
    env = worker_env(
        nats_server.url, models, BASIC_MODEL=models.slow_t5, NORMAL_WORKERS=1, ANY_WORKERS=0,
        MAX_NORMAL_WORKERS=10, NORMAL_SCALE_UP_QUEUE=5, SCALING_CHECK_INTERVAL=1, BATCH_SIZE=2,
        UTILIZATION_WINDOW=2, HOST_MEMORY_FRACTION=0.001, SCALER_HEALTH_PORT=http,
    )  # fmt: skip
    for i in range(40):
        await publish_request(nc, request(text=f"load {i}"), "translate.result.capped")
    scaler = start_scaler(env, tmp_path / "scaler.log")
    try:
        with anyio.fail_after(150):  # the worker loads, gets busy, then the rules want more
            while not any(a.kind == "scaling_failed" for a in await alerts(nc)):  # noqa: ASYNC110
                await anyio.sleep(0.5)
        samples = await wait_metric(http, "translator_host_worker_cap", 1, bound="memory")
        status = await anyio.run_process(
            [sys.executable, "-m", "translator", "status"], env=env, check=False
        )
        events = await scaling_events(nc)
    finally:
        assert stop_process(scaler) == 0
    failed = next(a for a in await alerts(nc) if a.kind == "scaling_failed")
    assert failed.pool == "normal"
    assert "the rules want 6 normal workers" in failed.message
    assert "hold 1" in failed.message
    assert "MB" in failed.message
    assert (failed.value, failed.threshold) == (6.0, 1.0)
    assert not [e for e in events if e.direction == "up"]
    assert value(samples, "translator_host_worker_cap", bound="cores") >= 1
    assert value(samples, "translator_worker_threads") >= 1
    text = status.stdout.decode()
    assert status.returncode == 0, status.stderr.decode()
    assert re.search(r"host \S+: 1 workers, room for 0 more; cap 1 workers \(", text), text
    assert "this host can run 1 workers" in (tmp_path / "scaler.log").read_text()


def test_capacity_is_cores_over_threads_and_memory_over_a_worker() -> None:
    host = HostCapacity(cores=8, threads=2, memory_mb=4000, worker_mb=900, measured=True)
    assert (host.by_cores, host.by_memory, host.cap, host.bound) == (4, 4, 4, "cores")
    small = HostCapacity(cores=8, threads=1, memory_mb=2000, worker_mb=900, measured=False)
    assert (small.by_cores, small.by_memory, small.cap, small.bound) == (8, 2, 2, "memory")
    assert "900 MB estimated" in small.describe()
    assert default_threads(2, 3) == 1
    assert default_threads(16, 3) == 5
    assert default_threads(4, 0) == 4


def test_a_containers_quota_and_memory_limit_bound_the_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # 1.5 CPUs: 2 cores' worth at most
    (tmp_path / "memory.max").write_text(f"{2 * 2**30}\n")
    monkeypatch.setattr(capacity, "CGROUP", tmp_path)
    assert capacity.host_cores() == min(2, len(os.sched_getaffinity(0)))
    assert capacity.host_memory_mb() == 2048
    (tmp_path / "cpu.max").write_text("max 100000\n")  # no quota, no limit: the machine's
    (tmp_path / "memory.max").write_text("max\n")
    assert capacity.host_cores() == len(os.sched_getaffinity(0))
    assert capacity.host_memory_mb() == psutil.virtual_memory().total / 2**20
