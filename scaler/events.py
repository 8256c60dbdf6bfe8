"""Scaling events and alerts: published on NATS (kept in TRANSLATE_EVENTS), logged, counted."""

from __future__ import annotations

import logging
from collections import Counter

import nats.errors
from nats.aio.client import Client

from translator.contracts.messages import (
    ALERT_KINDS,
    SCALING_DIRECTIONS,
    Alert,
    ScalingEvent,
    encode,
)
from translator.contracts.subjects import ALERT_EVENTS, SCALING_EVENTS, Pool

log = logging.getLogger(__name__)
_DATA_LOST = ("store_data_lost",)  # logged as errors: requests that will not be answered


class Events:
    def __init__(self, nc: Client) -> None:
        self.nc = nc
        # every (pool, direction) and (pool, kind) from 0: see translator/runtime/telemetry.py
        self.scaling: Counter[tuple[str, str]] = Counter(
            {(pool.value, direction): 0 for pool in Pool for direction in SCALING_DIRECTIONS}
        )
        self.alerts: Counter[tuple[str, str]] = Counter(
            {(pool.value, kind): 0 for pool in Pool for kind in ALERT_KINDS}
        )

    async def scaled(self, event: ScalingEvent) -> None:
        self.scaling[event.pool, event.direction] += 1
        log.info(
            "scaling %s %s: %d -> %d workers (%s)",
            event.pool,
            event.direction,
            event.from_workers,
            event.to_workers,
            event.reason,
        )
        await self._publish(SCALING_EVENTS, encode(event))

    async def alert(self, alert: Alert) -> None:
        self.alerts[alert.pool, alert.kind] += 1
        level = logging.ERROR if alert.kind in _DATA_LOST else logging.WARNING
        log.log(level, "alert %s %s: %s", alert.pool, alert.kind, alert.message)
        await self._publish(ALERT_EVENTS, encode(alert))

    async def _publish(self, subject: str, data: bytes) -> None:
        try:
            await self.nc.jetstream().publish(subject, data)
        except nats.errors.Error as exc:  # NATS away: the event is still logged and counted
            log.warning("event not published on %s: %s", subject, exc)
