"""Streams and consumers, created or updated idempotently at start-up (PROTOCOL.md section 2).

Changed limits (a new pool size, ack wait, max deliver...) are applied on the next start."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

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

from translator.bus.retry import patiently
from translator.contracts.settings import TranslatorSettings
from translator.contracts.subjects import (
    DLQ_STREAM,
    DLQ_SUBJECTS,
    EVENTS_STREAM,
    EVENTS_SUBJECTS,
    GATEWAY_RESULTS_STREAM,
    GATEWAY_RESULTS_SUBJECTS,
    RESULTS_STREAM,
    RESULTS_SUBJECTS,
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


async def ensure_topology(js: JetStreamContext, settings: TranslatorSettings) -> None:
    """Every stream and consumer of the contract, as the settings say; retried through leader
    elections (another host may be creating them at the same moment)."""
    await patiently("creating the streams and consumers", lambda: _ensure_all(js, settings))


async def _ensure_all(js: JetStreamContext, settings: TranslatorSettings) -> None:
    for pool in Pool:
        await ensure_stream(js, request_stream_config(settings, pool))
        await ensure_consumer(js, request_stream(pool), workers_consumer_config(settings))
    await ensure_stream(js, results_stream_config(settings))
    gateway = results_stream_config(settings, GATEWAY_RESULTS_STREAM, GATEWAY_RESULTS_SUBJECTS)
    await ensure_stream(js, gateway)
    await ensure_stream(js, dead_letter_stream_config(settings))
    await ensure_stream(js, events_stream_config(settings))
