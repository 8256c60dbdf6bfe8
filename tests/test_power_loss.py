"""Acknowledged means on disk: a power cut under nats-server's store (tests/powerloss.py)
loses nothing the gateway shim was told is queued, and each request is answered exactly once.
The same cut with nats-server's default sync interval (2 minutes) loses acknowledged requests:
the test can tell the two apart."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from tests.gateway import Gateway, shim
from tests.powerloss import Disk
from tests.support import (
    Models,
    connected,
    free_port,
    running_worker,
    settled,
    shim_env,
    worker_env,
)
from translator.bus.embedded import EmbeddedNats
from translator.contracts.subjects import (
    Pool,
    request_stream,
)

pytestmark = pytest.mark.anyio
BEFORE, AT_THE_CUT = 10, 20  # answered before the cut; queued, unanswered, at the cut


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Disk]:
    disk = Disk(tmp_path).create()
    yield disk
    disk.unmount()


def test_a_write_that_was_not_fsynced_is_gone_after_the_cut(disk: Disk) -> None:
    """The simulation itself: what only the page cache held is lost, what was fsynced stays."""
    (disk.mountpoint / "cached").write_bytes(b"x" * 10_000)
    with open(disk.mountpoint / "synced", "wb") as synced:
        synced.write(b"y" * 10_000)
        synced.flush()
        os.fsync(synced.fileno())
    directory = os.open(disk.mountpoint, os.O_RDONLY)
    os.fsync(directory)
    os.close(directory)
    disk.power_cut()
    assert (disk.mountpoint / "synced").read_bytes() == b"y" * 10_000
    cached = disk.mountpoint / "cached"
    assert not cached.exists() or cached.stat().st_size == 0


async def queued(nc: Client) -> int:
    """Requests in the normal pool's stream; 0 when the cut took the stream itself."""
    try:
        info = await nc.jetstream().stream_info(request_stream(Pool.NORMAL))
    except NotFoundError:
        return 0
    return int(info.state.messages)


@pytest.mark.parametrize("sync", ["always", "2m"])
async def test_every_request_queued_for_the_gateway_survives_a_power_cut_exactly_once(
    sync: str, disk: Disk, models: Models, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    store = disk.mountpoint / "nats"
    port = free_port()
    nats = EmbeddedNats(store, port=port, sync_interval=sync).start()
    restarted: EmbeddedNats | None = None
    pull, pub = free_port(), free_port()
    small = {"CACHE_MAX_BYTES": 16 << 20}  # the cache's room within the 256 MB disk
    env = shim_env(nats.url, TRANSLATOR_ZMQ_PULL_PORT=pull, TRANSLATOR_ZMQ_PUB_PORT=pub, **small)
    gw = Gateway(pull, pub)
    try:
        async with shim(env, log):
            await gw.connected()
            nc = await connected(nats.url)
            async with running_worker(nc, worker_env(nats.url, models, **small), Pool.NORMAL, log):
                before = [await gw.request(f"before the cut {i}", ["fr"]) for i in range(BEFORE)]
                for sent in before:
                    await gw.results_for(sent, timeout=60)
            at_cut = [await gw.request(f"at the cut {i}", ["fr"]) for i in range(AT_THE_CUT)]
            await wait_until_queued(nc, AT_THE_CUT)  # each publish acked: the shim says queued
            await nc.close()
            nats.kill()
            disk.power_cut()
            restarted = EmbeddedNats(store, port=port, sync_interval=sync).start()
            nc = await connected(restarted.url)
            survived = await queued(nc)
            if sync != "always":
                assert survived < AT_THE_CUT, "a 2-minute sync interval lost nothing acked"
                await nc.close()
                return
            assert survived == AT_THE_CUT
            async with running_worker(
                nc, worker_env(restarted.url, models, **small), Pool.NORMAL, log
            ):
                for sent in at_cut:
                    await gw.results_for(sent, timeout=90)
                await settled(nc)
            await nc.close()
    finally:
        gw.close()
        for server in (restarted, nats):
            if server is not None:
                server.stop()
    answers = Counter(
        m["result"]["messageId"] for m in gw.received if m.get("type") == "translation_completed"
    )
    errors = [m for m in gw.received if m.get("type") == "translation_error"]
    assert errors == []
    assert {sent["messageId"] for sent in before + at_cut} == set(answers)
    assert set(answers.values()) == {1}, "a request answered twice"


async def wait_until_queued(nc: Client, count: int) -> None:
    with anyio.fail_after(30):
        while await queued(nc) < count:  # noqa: ASYNC110
            await anyio.sleep(0.05)
