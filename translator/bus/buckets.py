"""KV buckets of the service (worker heartbeats, the scalers' announcements and plans, the
store audit's watermarks, the translation cache): their configurations (the operator's set-up
creates them, bus/topology.py), opened by the services, and read without a consumer.

`KeyValue.keys()` leaves an ephemeral consumer behind on every call (for minutes): polled every
second, those pile up to the server's consumer limit. `read` takes the bucket's stream directly:
its subject list, then the last message of each."""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, StorageType, StreamConfig
from nats.js.kv import KeyValue

from translator.bus.retry import patiently
from translator.contracts.errors import TopologyMissing

log = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_DUPLICATE_WINDOW = 120.0  # nats-server's default


def safe_key(text: str) -> str:
    """`text` as one token of a key (a host name, a worker id): other characters become `_`."""
    return _UNSAFE.sub("_", text)


def kv_config(name: str, ttl: float | None, replicas: int) -> StreamConfig:
    """A plain KV bucket on disk (it outlives a NATS restart), entries expiring after `ttl`
    (None: never): heartbeats, the scalers' announcements and lease, the store audit."""
    window = min(ttl, _DUPLICATE_WINDOW) if ttl else _DUPLICATE_WINDOW  # at most the TTL
    return StreamConfig(
        name=f"KV_{name}", subjects=[f"$KV.{name}.>"], max_msgs_per_subject=1,
        max_age=ttl or 0.0, storage=StorageType.FILE, discard=DiscardPolicy.NEW,
        allow_rollup_hdrs=True, deny_delete=True, allow_direct=True, num_replicas=replicas,
        duplicate_window=window,
    )  # fmt: skip


def cache_config(name: str, ttl: float, max_bytes: int, replicas: int) -> StreamConfig:
    """A KV bucket for a cache: on disk, entries expiring after `ttl`, and when `max_bytes` is
    reached the oldest entries go (a plain bucket refuses new ones)."""
    return dataclasses.replace(
        kv_config(name, ttl, replicas), max_bytes=max_bytes, discard=DiscardPolicy.OLD
    )


async def open_bucket(js: JetStreamContext, name: str) -> KeyValue:
    """A bucket the operator's set-up made (`translator setup`); TopologyMissing when there is
    none. Retried through elections."""

    async def opened() -> KeyValue:
        try:
            return await js.key_value(name)
        except nats.js.errors.BucketNotFoundError as exc:
            raise TopologyMissing(f"bucket {name} does not exist") from exc

    return await patiently(f"bucket {name}", opened)


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
