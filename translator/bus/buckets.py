"""KV buckets of the service (worker heartbeats, the scalers' announcements and plans, the
store audit's watermarks, the translation cache): opened or created with their TTL and
replicas, and read without a consumer.

`KeyValue.keys()` leaves an ephemeral consumer behind on every call (for minutes): polled every
second, those pile up to the server's consumer limit. `read` takes the bucket's stream directly:
its subject list, then the last message of each."""

from __future__ import annotations

import contextlib
import logging
import re
from dataclasses import dataclass

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, KeyValueConfig, StorageType, StreamConfig
from nats.js.kv import KeyValue

from translator.bus.retry import patiently

log = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def safe_key(text: str) -> str:
    """`text` as one token of a key (a host name, a worker id): other characters become `_`."""
    return _UNSAFE.sub("_", text)


async def bucket(js: JetStreamContext, name: str, ttl: float, replicas: int) -> KeyValue:
    """The bucket, created on first use (in memory, entries expiring after `ttl`), kept on
    `replicas` servers (STREAM_REPLICAS) like every stream; retried through elections."""
    return await patiently(f"bucket {name}", lambda: _open(js, name, ttl, replicas))


async def _open(js: JetStreamContext, name: str, ttl: float, replicas: int) -> KeyValue:
    try:
        kv = await js.key_value(name)
    except nats.js.errors.BucketNotFoundError:
        config = KeyValueConfig(bucket=name, ttl=ttl, storage=StorageType.MEMORY, replicas=replicas)
        try:
            return await js.create_key_value(config)
        except nats.js.errors.BadRequestError:  # another process created it in between
            kv = await js.key_value(name)
    info = await js.stream_info(f"KV_{name}")
    if info.config.num_replicas != replicas:  # made before STREAM_REPLICAS changed
        info.config.num_replicas = replicas
        await js.update_stream(info.config)
        log.info("bucket %s now on %d replicas", name, replicas)
    return kv


async def cache_bucket(
    js: JetStreamContext, name: str, ttl: float, max_bytes: int, replicas: int
) -> KeyValue:
    """A KV bucket for a cache: on disk (it outlives restarts), entries expiring after `ttl`,
    and when `max_bytes` is reached the oldest entries go (a plain KV bucket refuses new ones)."""

    async def open_or_create() -> KeyValue:
        try:
            return await js.key_value(name)
        except nats.js.errors.BucketNotFoundError:
            pass
        config = StreamConfig(
            name=f"KV_{name}", subjects=[f"$KV.{name}.>"], max_msgs_per_subject=1,
            max_bytes=max_bytes, max_age=ttl, storage=StorageType.FILE,
            discard=DiscardPolicy.OLD, allow_rollup_hdrs=True, deny_delete=True,
            allow_direct=True, num_replicas=replicas,
        )  # fmt: skip
        with contextlib.suppress(nats.js.errors.BadRequestError):  # made by another meanwhile
            await js.add_stream(config)
        return await js.key_value(name)

    return await patiently(f"bucket {name}", open_or_create)


async def durable_bucket(js: JetStreamContext, name: str, replicas: int) -> KeyValue:
    """A KV bucket on disk whose entries do not expire (the store audit's watermarks)."""

    async def open_or_create() -> KeyValue:
        try:
            return await js.key_value(name)
        except nats.js.errors.BucketNotFoundError:
            pass
        config = KeyValueConfig(bucket=name, storage=StorageType.FILE, replicas=replicas)
        with contextlib.suppress(nats.js.errors.BadRequestError):  # made by another meanwhile
            await js.create_key_value(config)
        return await js.key_value(name)

    return await patiently(f"bucket {name}", open_or_create)


@dataclass(frozen=True)
class Entries:
    values: dict[str, bytes]  # key -> its latest value
    removed: frozenset[str]  # keys whose latest entry is a delete or purge marker


async def read(js: JetStreamContext, name: str, prefix: str = "") -> Entries:
    """The latest entry of every key of bucket `name` that starts with `prefix`."""
    stream, subjects = f"KV_{name}", f"$KV.{name}."
    try:
        info = await js.stream_info(stream, subjects_filter=f"{subjects}{prefix}>")
    except nats.js.errors.NotFoundError:
        return Entries({}, frozenset())
    values, removed = {}, set()
    for subject in info.state.subjects or {}:
        try:
            msg = await js.get_last_msg(stream, subject)
        except nats.js.errors.NotFoundError:
            continue  # expired between the two calls
        key = subject.removeprefix(subjects)
        if (msg.headers or {}).get("KV-Operation") in ("DEL", "PURGE"):
            removed.add(key)
        elif msg.data:
            values[key] = msg.data
    return Entries(values, frozenset(removed))
