"""Worker heartbeats in a NATS KV bucket with a TTL: a dead worker disappears on its own."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import nats.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from translator.bus import buckets
from translator.bus.client import why
from translator.contracts.messages import encode
from translator.contracts.subjects import HEARTBEAT_BUCKET
from translator.contracts.telemetry import WorkerHeartbeat

log = logging.getLogger(__name__)


def heartbeat_key(pool: str, worker_id: str) -> str:
    return f"{pool}.{buckets.safe_key(worker_id)}"


async def heartbeat_bucket(js: JetStreamContext) -> KeyValue:
    """The bucket (its TTL, HEARTBEAT_TTL: how long a silent worker stays listed)."""
    return await buckets.open_bucket(js, HEARTBEAT_BUCKET)


async def publish(bucket: KeyValue, beat: WorkerHeartbeat) -> str | None:
    """Put the beat; why it failed (NATS or the bucket's leader briefly away: the next beat
    will do), or None."""
    try:
        await bucket.put(heartbeat_key(beat.pool, beat.worker_id), encode(beat))
    except (nats.errors.Error, TimeoutError) as exc:
        return why(exc)
    return None


async def remove(bucket: KeyValue, pool: str, worker_id: str) -> None:
    try:
        await bucket.purge(heartbeat_key(pool, worker_id))
    except nats.errors.Error as exc:
        log.warning("heartbeat not removed: %s", exc)


@dataclass(frozen=True)
class Heartbeats:
    live: list[WorkerHeartbeat]
    # keys (`heartbeat_key`) of workers that stopped cleanly: `remove` leaves a purge marker,
    # kept until the TTL; a worker that died leaves nothing (its last beat expires)
    stopped: frozenset[str] = frozenset()


async def read(js: JetStreamContext) -> Heartbeats:
    """Every live worker's last heartbeat, and the workers that stopped cleanly."""
    entries = await buckets.read(js, HEARTBEAT_BUCKET)
    beats = [WorkerHeartbeat.model_validate_json(data) for data in entries.values.values()]
    return Heartbeats(beats, entries.removed)


async def read_all(js: JetStreamContext) -> list[WorkerHeartbeat]:
    """Every live worker's last heartbeat."""
    return (await read(js)).live
