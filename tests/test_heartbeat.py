"""Worker heartbeats in their KV bucket: read back, removed, and read without leaving consumers."""

from __future__ import annotations

import pytest
from nats.aio.client import Client

from translator.bus import heartbeat
from translator.contracts.subjects import HEARTBEAT_BUCKET
from translator.contracts.telemetry import WorkerHeartbeat

pytestmark = pytest.mark.anyio


def beat(worker: str, pid: int) -> WorkerHeartbeat:
    return WorkerHeartbeat(worker_id=worker, pool="normal", pid=pid, host="h", state="ready")


async def test_read_all_lists_live_workers_and_leaves_no_consumer_behind(nc: Client) -> None:
    js = nc.jetstream()
    bucket = await heartbeat.heartbeat_bucket(js)  # made by the set-up (the fixture's)
    assert await heartbeat.read_all(js) == []  # an empty bucket
    await heartbeat.publish(bucket, beat("w/1", 11))
    await heartbeat.publish(bucket, beat("w2", 12))
    await heartbeat.publish(bucket, beat("w2", 13))  # a newer beat of the same worker
    await heartbeat.remove(bucket, "normal", "w/1")
    for _ in range(20):
        beats = await heartbeat.read_all(js)
        assert [b.pid for b in beats] == [13]
    info = await js.stream_info(f"KV_{HEARTBEAT_BUCKET}")
    assert info.state.consumer_count == 0


async def test_read_tells_a_clean_stop_from_a_worker_that_vanished(nc: Client) -> None:
    js = nc.jetstream()
    bucket = await heartbeat.heartbeat_bucket(js)
    await heartbeat.publish(bucket, beat("stops.cleanly", 21))
    await heartbeat.publish(bucket, beat("keeps-going", 22))
    await heartbeat.remove(bucket, "normal", "stops.cleanly")
    seen = await heartbeat.read(js)
    assert [b.pid for b in seen.live] == [22]
    assert seen.stopped == {heartbeat.heartbeat_key("normal", "stops.cleanly")}
