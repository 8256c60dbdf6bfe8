"""Streams, consumers and buckets (PROTOCOL.md section 2): made by the operator's set-up step
(`translator setup`, idempotent: changed limits such as a new pool size are applied by running
it again), and only checked by the services at their start (`verify_topology`): they refuse to
start, saying what is missing or different, rather than build or change what their NATS users
may not touch (docs/SECURITY.md)."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import anyio
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import BadRequestError, NotFoundError

from translator.bus import buckets
from translator.bus.retry import patiently
from translator.contracts.errors import TopologyMissing
from translator.contracts.settings import TranslatorSettings
from translator.contracts.subjects import (
    AUDIT_BUCKET,
    CACHE_BUCKET,
    DLQ_STREAM,
    DLQ_SUBJECTS,
    EVENTS_STREAM,
    EVENTS_SUBJECTS,
    GATEWAY_RESULTS_STREAM,
    GATEWAY_RESULTS_SUBJECTS,
    HEARTBEAT_BUCKET,
    RESULTS_STREAM,
    RESULTS_SUBJECTS,
    SCALERS_BUCKET,
    WORKERS_CONSUMER,
    Pool,
    gateway_request_subject,
    request_stream,
    request_subject,
)

log = logging.getLogger(__name__)


def request_stream_config(settings: TranslatorSettings, pool: Pool) -> StreamConfig:
    return StreamConfig(
        name=request_stream(pool),
        subjects=[request_subject(pool), gateway_request_subject(pool)],
        retention=RetentionPolicy.WORK_QUEUE,
        storage=StorageType.FILE,
        num_replicas=settings.stream_replicas,
        discard=DiscardPolicy.NEW,
        max_msgs=settings.pool_size(pool),
        duplicate_window=settings.request_duplicate_window,
    )


def results_stream_config(
    settings: TranslatorSettings, name: str = RESULTS_STREAM, subjects: str = RESULTS_SUBJECTS
) -> StreamConfig:
    """Results kept for their readers: TRANSLATE_RESULTS, and the gateway's own stream."""
    return StreamConfig(
        name=name,
        subjects=[subjects],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=settings.stream_replicas,
        max_age=settings.results_max_age,
        duplicate_window=settings.results_duplicate_window,
    )


def dead_letter_stream_config(settings: TranslatorSettings) -> StreamConfig:
    return StreamConfig(
        name=DLQ_STREAM,
        subjects=[DLQ_SUBJECTS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=settings.stream_replicas,
        max_age=settings.dead_letter_max_age,
    )


def events_stream_config(settings: TranslatorSettings) -> StreamConfig:
    """Scaling events and alerts, kept for `translator status` and audits."""
    return StreamConfig(
        name=EVENTS_STREAM,
        subjects=[EVENTS_SUBJECTS],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        num_replicas=settings.stream_replicas,
        max_age=settings.dead_letter_max_age,
        max_msgs_per_subject=1_000,
    )


def workers_consumer_config(settings: TranslatorSettings) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=WORKERS_CONSUMER,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=settings.ack_wait,
        max_deliver=settings.max_deliver,
        max_ack_pending=settings.max_ack_pending,
    )


def _differs(current: Any, wanted: Any) -> bool:
    """Whether a field we set (one not left at its default) differs on the server."""
    defaults = type(wanted)()
    for item in dataclasses.fields(wanted):
        value = getattr(wanted, item.name)
        chosen = value is not None and value != getattr(defaults, item.name)
        if chosen and getattr(current, item.name, None) != value:
            return True
    return False


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        info = await js.stream_info(config.name or "")
    except NotFoundError:
        try:
            await js.add_stream(config)
            log.info("created stream %s", config.name)
            return
        except BadRequestError:  # another host created it in between: compare with that one
            info = await js.stream_info(config.name or "")
    if _differs(info.config, config):
        await js.update_stream(config)
        log.info("updated stream %s", config.name)


async def ensure_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig) -> None:
    try:
        info = await js.consumer_info(stream, config.durable_name or "")
    except NotFoundError:
        await js.add_consumer(stream, config)
        log.info("created consumer %s on %s", config.durable_name, stream)
        return
    if _differs(info.config, config):
        await js.add_consumer(stream, config)  # create-or-update on nats-server 2.10+
        log.info("updated consumer %s on %s", config.durable_name, stream)


def stream_configs(settings: TranslatorSettings) -> list[StreamConfig]:
    """Every stream of the contract, the buckets' included (the cache's when CACHE_ENABLED), as
    the settings say."""
    replicas = settings.stream_replicas
    return [
        *(request_stream_config(settings, pool) for pool in Pool),
        results_stream_config(settings),
        results_stream_config(settings, GATEWAY_RESULTS_STREAM, GATEWAY_RESULTS_SUBJECTS),
        dead_letter_stream_config(settings),
        events_stream_config(settings),
        buckets.kv_config(HEARTBEAT_BUCKET, settings.heartbeat_ttl, replicas),
        buckets.kv_config(SCALERS_BUCKET, settings.lease_ttl, replicas),
        buckets.kv_config(AUDIT_BUCKET, None, replicas),
        *(
            [
                buckets.cache_config(
                    CACHE_BUCKET, settings.cache_ttl, settings.cache_max_bytes, replicas
                )
            ]
            if settings.cache_enabled
            else []  # CACHE_ENABLED=false: no bucket, no room reserved for one
        ),
    ]


async def setup_topology(js: JetStreamContext, settings: TranslatorSettings) -> None:
    """The operator's step: every stream, bucket and consumer of the contract, created or
    updated as the settings say; retried through leader elections (another host may be setting
    up at the same moment)."""

    async def everything() -> None:
        for config in stream_configs(settings):
            await ensure_stream(js, config)
        for pool in Pool:
            await ensure_consumer(js, request_stream(pool), workers_consumer_config(settings))

    await patiently("setting up the streams, buckets and consumers", everything)


# what a service checks of each stream: a difference here means another contract
_STRUCTURE = ("subjects", "retention", "storage", "discard")
# and what the set-up decides: a difference is said, and the set-up's value applies
_LIMITS = ("max_msgs", "max_bytes", "max_age", "duplicate_window", "num_replicas")


async def verify_topology(
    js: JetStreamContext, settings: TranslatorSettings, consumer_limits: bool = False
) -> None:
    """Check that every stream, bucket and consumer is there as the set-up makes it, waiting
    up to TOPOLOGY_WAIT for a set-up that runs beside the service (a Kubernetes Job, a compose
    service); TopologyMissing says what is not. `consumer_limits` (a worker): the workers'
    consumers must also redeliver as this service's ACK_WAIT and MAX_DELIVER say, which its
    fates rely on."""

    async def check() -> None:
        for config in stream_configs(settings):
            await _verify_stream(js, config)
        for pool in Pool:
            await _verify_consumer(js, request_stream(pool), settings, consumer_limits)

    deadline = anyio.current_time() + settings.topology_wait
    while True:
        try:
            await patiently("checking the streams, buckets and consumers", check)
            return
        except TopologyMissing as missing:
            if anyio.current_time() >= deadline:
                raise
            log.warning("%s; waiting for it (TOPOLOGY_WAIT)", missing.problem)
            await anyio.sleep(min(2.0, settings.topology_wait))


async def _verify_stream(js: JetStreamContext, wanted: StreamConfig) -> None:
    name = wanted.name or ""
    try:
        found = (await js.stream_info(name)).config
    except NotFoundError as exc:
        raise TopologyMissing(f"stream {name} does not exist") from exc
    for field in _STRUCTURE:
        have, want = getattr(found, field), getattr(wanted, field)
        if field == "subjects":
            have, want = sorted(have or []), sorted(want or [])
        if want is not None and have != want:
            raise TopologyMissing(f"stream {name}: {field} is {have}, not {want}")
    if name.startswith("KV_"):
        return  # a bucket's TTL is its users' business (the scalers' lease, the heartbeats')
    for field in _LIMITS:
        have, want = getattr(found, field), getattr(wanted, field)
        if want and have != want:
            log.warning(
                "stream %s: %s is %s (as set up), this service's settings say %s",
                name, field, have, want,
            )  # fmt: skip


async def _verify_consumer(
    js: JetStreamContext, stream: str, settings: TranslatorSettings, limits: bool
) -> None:
    try:
        found = (await js.consumer_info(stream, WORKERS_CONSUMER)).config
    except NotFoundError as exc:
        raise TopologyMissing(f"consumer {WORKERS_CONSUMER} on {stream} does not exist") from exc
    if found.ack_policy != AckPolicy.EXPLICIT:
        raise TopologyMissing(f"consumer {WORKERS_CONSUMER} on {stream} does not ack explicitly")
    if limits:
        for field, want in (("ack_wait", settings.ack_wait), ("max_deliver", settings.max_deliver)):
            if getattr(found, field) != want:
                raise TopologyMissing(
                    f"consumer {WORKERS_CONSUMER} on {stream}: {field} is"
                    f" {getattr(found, field)}, this worker's settings say {want}"
                )
