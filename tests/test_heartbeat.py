"""Worker heartbeats in their KV bucket: read back, removed, and read without leaving consumers."""

from __future__ import annotations

import pytest
from nats.aio.client import Client

from translator.bus import heartbeat
from translator.contracts.messages import WorkerHeartbeat
from translator.contracts.subjects import HEARTBEAT_BUCKET

pytestmark = pytest.mark.anyio


def beat(worker: str, pid: int) -> WorkerHeartbeat:
    return WorkerHeartbeat(worker_id=worker, pool="normal", pid=pid, host="h", state="ready")


async def test_read_all_lists_live_workers_and_leaves_no_consumer_behind(nc: Client) -> None:
    js = nc.jetstream()
    assert await heartbeat.read_all(js) == []  # no bucket yet
    bucket = await heartbeat.heartbeat_bucket(js, ttl=10)
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
