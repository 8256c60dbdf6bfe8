"""Worker heartbeats in a NATS KV bucket with a TTL: a dead worker disappears on its own."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.kv import KeyValue

from translator.bus.retry import patiently
from translator.contracts.messages import WorkerHeartbeat, encode
from translator.contracts.subjects import HEARTBEAT_BUCKET

log = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_KEY_PREFIX = f"$KV.{HEARTBEAT_BUCKET}."
_STREAM = f"KV_{HEARTBEAT_BUCKET}"


def heartbeat_key(pool: str, worker_id: str) -> str:
    return f"{pool}.{_UNSAFE.sub('_', worker_id)}"


async def heartbeat_bucket(js: JetStreamContext, ttl: float, replicas: int = 1) -> KeyValue:
    """The bucket, created on first use (TTL: how long a silent worker stays listed), kept on
    `replicas` servers (STREAM_REPLICAS) like every stream; retried through elections."""
    return await patiently("heartbeat bucket", lambda: _bucket(js, ttl, replicas))


async def _bucket(js: JetStreamContext, ttl: float, replicas: int) -> KeyValue:
    try:
        bucket = await js.key_value(HEARTBEAT_BUCKET)
    except nats.js.errors.BucketNotFoundError:
        config = KeyValueConfig(
            bucket=HEARTBEAT_BUCKET, ttl=ttl, storage=StorageType.MEMORY, replicas=replicas
        )
        try:
            return await js.create_key_value(config)
        except nats.js.errors.BadRequestError:  # another process created it in between
            bucket = await js.key_value(HEARTBEAT_BUCKET)
    info = await js.stream_info(_STREAM)
    if info.config.num_replicas != replicas:  # a bucket made before STREAM_REPLICAS changed
        info.config.num_replicas = replicas
        await js.update_stream(info.config)
        log.info("heartbeat bucket now on %d replicas", replicas)
    return bucket


async def publish(bucket: KeyValue, beat: WorkerHeartbeat) -> str | None:
    """Put the beat; why it failed (NATS or the bucket's leader briefly away: the next beat
    will do), or None."""
    try:
        await bucket.put(heartbeat_key(beat.pool, beat.worker_id), encode(beat))
    except (nats.errors.Error, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
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
    """Every live worker's last heartbeat, and the workers that stopped cleanly.

    Reads the bucket's stream directly (its subject list, then the last message of each) rather
    than with `KeyValue.keys()`, which leaves an ephemeral consumer behind on every call: polled
    every second by the scaler, those pile up to the server's consumer limit."""
    stream = _STREAM
    try:
        info = await js.stream_info(stream, subjects_filter=f"{_KEY_PREFIX}>")
    except nats.js.errors.NotFoundError:
        return Heartbeats([])
    beats, stopped = [], set()
    for subject in info.state.subjects or {}:
        try:
            msg = await js.get_last_msg(stream, subject)
        except nats.js.errors.NotFoundError:
            continue  # expired between the two calls
        operation = (msg.headers or {}).get("KV-Operation")
        if operation in ("DEL", "PURGE"):
            stopped.add(subject.removeprefix(_KEY_PREFIX))
        elif msg.data:
            beats.append(WorkerHeartbeat.model_validate_json(msg.data))
    return Heartbeats(beats, frozenset(stopped))


async def read_all(js: JetStreamContext) -> list[WorkerHeartbeat]:
    """Every live worker's last heartbeat."""
    return (await read(js)).live
