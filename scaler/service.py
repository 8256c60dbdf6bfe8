"""The scaler service: every SCALING_CHECK_INTERVAL, read lag and heartbeats, decide, apply.

It owns the worker processes (through the supervisor), so stopping it stops them."""

from __future__ import annotations

import logging
import socket

import anyio
import nats.errors
from nats.aio.client import Client
from nats.js.errors import Error as JetStreamError

from scaler import observe
from scaler.events import Events
from scaler.fleet import Fleet
from scaler.metrics import ScalerReadiness
from scaler.policy import Decision, desired_workers
from scaler.settings import ScalerSettings
from scaler.supervisor import Supervisor
from translator.bus import heartbeat
from translator.contracts.messages import Alert, ScalingEvent
from translator.contracts.subjects import Pool

log = logging.getLogger(__name__)


class Scaler:
    def __init__(self, settings: ScalerSettings, nc: Client, supervisor: Supervisor) -> None:
        self.settings = settings
        self.nc = nc
        self.supervisor = supervisor
        self.events = Events(nc)
        self.host = socket.gethostname()
        self._crashes_seen = dict.fromkeys(Pool, 0)
        self.views: dict[Pool, observe.PoolView] = {}
        self.fleet = Fleet(None if settings.observe_only else self.host)

    async def start(self) -> None:
        if self.settings.observe_only:
            return
        for pool in Pool:
            await self.supervisor.scale(pool, self.settings.rule(pool).initial)

    async def survey(self) -> dict[Pool, observe.PoolView]:
        """Every pool as it is now (also kept for /ready and /metrics)."""
        js = self.nc.jetstream()
        seen = await heartbeat.read(js)
        beats = seen.live
        self.fleet.update(beats, seen.stopped)
        for pool in Pool:
            queue, in_flight = await observe.lag(js, pool)
            mine = None if self.settings.observe_only else set(self.supervisor.pids(pool))
            self.views[pool] = observe.view(pool, queue, in_flight, beats, mine, self.host)
        return self.views

    def ready(self) -> tuple[bool, dict[str, object]]:
        """Connected to NATS, and every pool that should have workers has one loaded."""
        connected = self.nc.is_connected
        loaded = {
            pool.value: view.state.running
            for pool, view in self.views.items()
            if self.supervisor.wanted[pool] > 0
        }
        ok = connected and len(self.views) == len(Pool) and all(loaded.values())
        details: dict[str, object] = {"nats": connected, "workers_loaded": loaded}
        unavailable = {
            pool.value: view.unavailable[0].unavailable
            for pool, view in self.views.items()
            if view.unavailable
        }
        if unavailable:
            details["models_unavailable"] = unavailable
        return ok, details

    async def check(self) -> None:
        """One round: observe every pool, decide, apply, report."""
        total = sum(self.supervisor.count(pool) for pool in Pool)
        for pool, seen in (await self.survey()).items():
            room = self.settings.translation_workers - total
            if not self.settings.observe_only:
                decision = desired_workers(
                    seen.state, self.settings.rule(pool), room, self.settings.enable_dynamic_scaling
                )
                await self._apply(seen, decision)
                total += decision.desired - decision.current
            await self._alerts(seen)

    async def _apply(self, seen: observe.PoolView, decision: Decision) -> None:
        if decision.direction == "hold":
            return
        await self.supervisor.scale(seen.pool, decision.desired, seen.idle_pids)
        state = seen.state
        event = ScalingEvent(
            pool=seen.pool.value,
            from_workers=decision.current,
            to_workers=decision.desired,
            direction=decision.direction,
            reason=decision.reason,
            queue_depth=state.queue,
            in_flight=state.in_flight,
            utilization=state.utilization,
            running=state.running,
            starting=state.starting,
            host=self.host,
        )
        await self.events.scaled(event)

    async def _alerts(self, seen: observe.PoolView) -> None:
        pool, settings, queue = seen.pool, self.settings, seen.state.queue
        capacity = settings.pool_size(pool)
        if queue > settings.alert_queue_ratio * capacity:
            message = f"queue {queue} above {settings.alert_queue_ratio:.0%} of capacity {capacity}"
            await self._alert(
                pool, "queue_high", message, queue / capacity, settings.alert_queue_ratio
            )
        busy = seen.state.utilization
        if seen.state.running and busy > settings.alert_utilization:
            message = f"utilization {busy:.2f} above {settings.alert_utilization}"
            await self._alert(pool, "utilization_high", message, busy, settings.alert_utilization)
        failures = self.failures(pool)
        if failures > self._crashes_seen[pool]:
            new = failures - self._crashes_seen[pool]
            self._crashes_seen[pool] = failures
            message = f"{new} worker(s) exited unexpectedly or vanished; restarts back off"
            await self._alert(pool, "scaling_failed", message, float(new), 0.0)

    def failures(self, pool: Pool) -> int:
        """Workers that failed: every exit the supervisor did not ask for; in observe mode,
        where someone else runs the workers, every heartbeat gone without a clean stop."""
        if self.settings.observe_only:
            return self.fleet.lost[pool.value]
        return self.supervisor.crashes[pool]

    async def _alert(self, pool: Pool, kind: str, message: str, value: float, limit: float) -> None:
        alert = Alert.model_validate(
            {"pool": pool.value, "kind": kind, "message": message, "value": value,
             "threshold": limit, "host": self.host}
        )  # fmt: skip
        await self.events.alert(alert)

    async def check_forever(self) -> None:
        while True:
            await anyio.sleep(self.settings.scaling_check_interval)
            try:
                await self.check()
            except (nats.errors.Error, JetStreamError, TimeoutError) as exc:
                log.warning("scaling check skipped: %s", exc)

    async def survey_forever(self) -> None:
        while True:
            try:
                await self.survey()
            except (nats.errors.Error, JetStreamError, TimeoutError) as exc:
                log.debug("observation skipped: %s", exc)
            await anyio.sleep(self.settings.metrics_interval)


async def serve(
    settings: ScalerSettings, nc: Client, stop: anyio.Event, readiness: ScalerReadiness
) -> Scaler:
    """Run the scaler and its workers until `stop` is set; then stop every worker."""
    await heartbeat.heartbeat_bucket(nc.jetstream(), settings.heartbeat_ttl)  # with its TTL
    env = {"NATS_URL": settings.nats_url or ""}
    supervisor = Supervisor(env=env, grace=settings.worker_stop_grace)
    scaler = readiness.scaler = Scaler(settings, nc, supervisor)
    try:
        async with anyio.create_task_group() as tg:
            await scaler.start()
            tg.start_soon(supervisor.supervise)
            tg.start_soon(scaler.survey_forever)
            tg.start_soon(scaler.check_forever)
            log.info(
                "scaler running: %s mode, dynamic scaling %s",
                settings.scaler_mode,
                settings.enable_dynamic_scaling and not settings.observe_only,
            )
            await stop.wait()
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await supervisor.stop_all()
    return scaler
