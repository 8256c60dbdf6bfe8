"""Several hosts on one backlog: the scalers agree on one pool-wide decision per interval (the
lease holder decides, every host applies its share), and a host that dies is noticed."""

from __future__ import annotations

import itertools
import re
import signal
from pathlib import Path

import anyio
import pytest
from nats.aio.client import Client

from tests.support import (
    Models,
    alerts,
    publish_request,
    request,
    scaling_events,
    start_scaler,
    stop_process,
    worker_env,
)
from translator.bus.embedded import EmbeddedNats
from translator.inference import randomweights

pytestmark = pytest.mark.anyio


async def wait_log(log: Path, pattern: str, timeout: float = 60) -> None:
    with anyio.fail_after(timeout):
        while not re.search(pattern, log.read_text()):  # noqa: ASYNC110, ASYNC240
            await anyio.sleep(0.1)


async def test_two_hosts_grow_the_pool_by_one_step_and_notice_a_dead_host(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    paced = randomweights.build("t5", tmp_path / "paced", output_tokens=120, fixed_length=True)

    def host(name: str) -> dict[str, str]:
        return worker_env(
            nats_server.url, models, HOST_NAME=name, BASIC_MODEL=paced, BATCH_SIZE=1,
            NORMAL_WORKERS=1, ANY_WORKERS=0, MAX_NORMAL_WORKERS=3, NORMAL_SCALE_UP_QUEUE=5,
            NORMAL_SCALE_UP_STEP=1, NORMAL_SCALE_DOWN_QUEUE=0, SCALING_CHECK_INTERVAL=1,
            UTILIZATION_WINDOW=2, HOST_CAP_ENABLED="false",  # the rules' mechanics, not the cap
        )  # fmt: skip

    logs = {name: tmp_path / f"{name}.log" for name in ("host-a", "host-b")}
    first = start_scaler(host("host-a"), logs["host-a"])
    second = None
    try:
        await wait_log(logs["host-a"], "host-a leads the pool-wide scaling decisions")
        second = start_scaler(host("host-b"), logs["host-b"])
        await wait_log(logs["host-b"], "scaler running")
        for i in range(80):
            await publish_request(nc, request(text=f"backlog {i}"), "translate.result.hosts")
        with anyio.fail_after(90):
            while not [e for e in await scaling_events(nc) if e.direction == "up"]:  # noqa: ASYNC110
                await anyio.sleep(0.5)
        # the leader's host dies: the other takes the lease and notices it
        stop_process(first, signal.SIGKILL)
        await wait_log(logs["host-b"], "host-b leads the pool-wide scaling decisions")
        with anyio.fail_after(60):
            while not [a for a in await alerts(nc) if a.kind == "host_lost"]:  # noqa: ASYNC110
                await anyio.sleep(0.5)
        events = await scaling_events(nc)
        lost = [a for a in await alerts(nc) if a.kind == "host_lost"]
    finally:
        stop_process(first, signal.SIGKILL)
        if second is not None:
            assert stop_process(second) == 0

    ups = [e for e in events if e.direction == "up"]
    # one decision for the pool: 2 workers (one per host) -> 3, not one step per host
    assert (ups[0].from_workers, ups[0].to_workers) == (2, 3)
    assert sum(ups[0].shares.values()) == 3
    assert set(ups[0].shares) == {"host-a", "host-b"}
    assert ups[0].host == "host-a"
    for before, after in itertools.pairwise(events):
        assert after.from_workers <= before.to_workers  # each decision starts from the last
    assert "host-a" in lost[0].message
    assert lost[0].host == "host-b"
