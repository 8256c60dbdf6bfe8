"""The scaler service: every SCALING_CHECK_INTERVAL, read lag and heartbeats, decide, apply.

It owns the worker processes (through the supervisor), so stopping it stops them."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

import anyio
import nats.errors
from nats.aio.client import Client
from nats.js.errors import Error as JetStreamError

from scaler import capacity, observe
from scaler.audit import StoreAudit
from scaler.capacity import HostCapacity
from scaler.coordination import Coordination, pool_rule, pool_wide, scalers_bucket, split
from scaler.events import Events
from scaler.fleet import Fleet
from scaler.metrics import ScalerReadiness
from scaler.policy import Decision, desired_workers
from scaler.records import HostBounds, PoolPlan, ScalerAnnouncement
from scaler.settings import ScalerSettings
from scaler.supervisor import Supervisor
from translator.bus import heartbeat
from translator.bus.client import why
from translator.contracts.messages import Alert, ScalingEvent
from translator.contracts.subjects import Pool

log = logging.getLogger(__name__)
_SERVING = ("ready", "busy", "draining")  # a worker that got this far is no crash loop
_UNLIMITED = 1_000_000  # room, to see what the rules alone want


class Scaler:
    def __init__(
        self,
        settings: ScalerSettings,
        nc: Client,
        supervisor: Supervisor,
        coordination: Coordination | None = None,
    ) -> None:
        """`coordination`: with the other hosts' scalers (supervise mode); None: observe mode."""
        self.settings = settings
        self.nc = nc
        self.supervisor = supervisor
        self.events = Events(nc)
        self.host = settings.host_name
        self._crashes_seen = dict.fromkeys(Pool, 0)
        self.views: dict[Pool, observe.PoolView] = {}
        self.observe_error: str | None = None  # why the last survey failed; None: it worked
        self.fleet = Fleet(None if settings.observe_only else self.host)
        self.coordination = coordination
        self.capacity: HostCapacity | None = None  # this host's, as of the last check
        self.audit = StoreAudit(nc, settings.stream_replicas)

    async def start(self) -> None:
        """The store audit, then (supervise mode) the first workers."""
        try:
            await self.audit_store()
        except (nats.errors.Error, JetStreamError, TimeoutError) as exc:
            log.warning("store audit at start skipped: %s", exc)
        if self.settings.observe_only:
            return
        if self.settings.host_cap_enabled:
            self.measure_capacity()
        for pool in Pool:
            await self.supervisor.scale(pool, self.settings.rule(pool).initial)

    async def survey(self) -> dict[Pool, observe.PoolView]:
        """Every pool as it is now (also kept for /ready and /metrics); a failed survey leaves
        no stale view behind (see `observing`)."""
        try:
            views = await self._survey()
        except (nats.errors.Error, JetStreamError, TimeoutError) as exc:
            if self.observe_error is None:
                log.warning("cannot observe the pools: %s", exc or type(exc).__name__)
            self.observe_error = why(exc)
            self.views = {}
            raise
        if self.observe_error is not None:
            log.info("observing the pools again")
        self.observe_error = None
        return views

    async def _survey(self) -> dict[Pool, observe.PoolView]:
        js = self.nc.jetstream()
        seen = await heartbeat.read(js)
        beats = seen.live
        self.fleet.update(beats, seen.stopped)
        self.supervisor.mark_serving(
            {b.pid for b in beats if b.host == self.host and b.state in _SERVING}
        )
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
        details["observing"] = self.observe_error is None
        if self.observe_error is not None:
            details["observe_error"] = self.observe_error
        unavailable = {
            pool.value: view.unavailable[0].unavailable
            for pool, view in self.views.items()
            if view.unavailable
        }
        if unavailable:
            details["models_unavailable"] = unavailable
        return ok, details

    async def check(self) -> None:
        """One round: observe every pool; decide once for the whole pool (the leader, see
        scaler/coordination.py), apply this host's share; report."""
        views = await self.survey()
        if not self.settings.observe_only:
            if self.settings.enable_dynamic_scaling and self.coordination is not None:
                await self._coordinated(self.coordination, views)
            else:  # fixed sizes: each host keeps its own
                for pool in Pool:
                    await self.supervisor.scale(pool, self.settings.rule(pool).initial)
        for seen in views.values():
            await self._alerts(seen)
        await self.audit_store()

    async def audit_store(self) -> None:
        """Acknowledged requests a damaged store lost (scaler/audit.py): one ERROR line and
        one `store_data_lost` alert per stream. One scaler audits: the leader, or the one
        scaler of observe mode."""
        if self.coordination is not None and not await self.coordination.lead():
            return
        for loss in await self.audit.check():
            message = (
                f"the store of {loss.stream} lost {loss.count} acknowledged request(s), "
                f"sequences {loss.describe()}: they will not be answered"
            )
            await self._alert(loss.pool, "store_data_lost", message, float(loss.count), 0.0)

    def measure_capacity(self) -> HostCapacity:
        """This host's cap, from its cores, its memory and its own workers' RSS."""
        s = self.settings
        mine = [b for v in self.views.values() for b in v.heartbeats if b.host == self.host]
        found = capacity.measure(
            s.worker_threads, s.host_memory_fraction, s.worker_rss_estimate_mb, mine
        )
        if self.capacity is None or found.cap != self.capacity.cap:
            log.info("this host can run %s", found.describe())
        self.capacity = found
        return found

    async def _coordinated(
        self, coordination: Coordination, views: dict[Pool, observe.PoolView]
    ) -> None:
        own = self._bounds()
        limit, cap, why = self.settings.translation_workers, 0, ""
        if self.settings.host_cap_enabled:
            host = self.measure_capacity()
            limit, cap, why = min(limit, host.cap), host.cap, host.describe()
        room = limit - sum(b.workers for b in own.values())
        await coordination.announce(own, room, cap, why)
        hosts = await coordination.survey_hosts()
        made = await self._decide(coordination, views, hosts) if await coordination.lead() else {}
        for pool, seen in views.items():
            plan = made.get(pool) or await coordination.plan(pool)
            share = plan.shares.get(self.host) if plan is not None else None
            if share is not None and share != self.supervisor.count(pool):
                await self.supervisor.scale(pool, share, seen.idle_pids)

    def _bounds(self) -> dict[Pool, HostBounds]:
        rules = {pool: self.settings.rule(pool) for pool in Pool}
        return {
            pool: HostBounds(
                workers=self.supervisor.count(pool), minimum=r.minimum, maximum=r.maximum
            )
            for pool, r in rules.items()
        }

    async def _decide(
        self,
        coordination: Coordination,
        views: dict[Pool, observe.PoolView],
        hosts: dict[str, ScalerAnnouncement],
    ) -> dict[Pool, PoolPlan]:
        """The leader's round: one decision per pool over every host, split into shares; the
        plans it published."""
        for host in sorted(coordination.lost):
            await self._host_lost(host)
        coordination.lost.clear()
        rooms = {host: seen.room for host, seen in hosts.items()}
        plans: dict[Pool, PoolPlan] = {}
        for pool, seen in views.items():
            bounds = {h: a.pools[pool.value] for h, a in hosts.items() if pool.value in a.pools}
            if not bounds:
                continue
            state, rule = pool_wide(seen, bounds), pool_rule(self.settings.rule(pool), bounds)
            decision = desired_workers(state, rule, sum(rooms.values()))
            wanted = desired_workers(state, rule, _UNLIMITED).desired
            if wanted > decision.desired:  # the rules want more than the hosts can hold
                await self._beyond_capacity(pool, wanted, decision, hosts)
            shares = split(decision.desired, bounds, rooms)
            for host, share in shares.items():
                rooms[host] -= share - bounds[host].workers
            plan = PoolPlan(pool=pool.value, desired=sum(shares.values()), shares=shares,
                            leader=self.host)  # fmt: skip
            await coordination.publish_plan(plan)
            plans[pool] = plan
            if decision.direction != "hold":
                await self._announce(seen, decision, shares)
        return plans

    async def _announce(
        self, seen: observe.PoolView, decision: Decision, shares: dict[str, int]
    ) -> None:
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
            shares=shares,
        )
        await self.events.scaled(event)

    async def _beyond_capacity(
        self, pool: Pool, wanted: int, decision: Decision, hosts: dict[str, ScalerAnnouncement]
    ) -> None:
        caps = "; ".join(f"{h}: {a.cap_reason or 'TRANSLATION_WORKERS'}" for h, a in hosts.items())
        message = (
            f"the rules want {wanted} {pool.value} workers ({decision.reason}); the hosts hold "
            f"{decision.desired}: {caps}"
        )
        await self._alert(pool, "scaling_failed", message, float(wanted), float(decision.desired))

    async def _host_lost(self, host: str) -> None:
        message = f"host {host} stopped announcing itself; its share goes to the other hosts"
        for pool in Pool:
            await self._alert(pool, "host_lost", message, 1.0, 0.0)

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
            # a failure is said once by `survey`, and shown in /ready and /metrics
            with contextlib.suppress(nats.errors.Error, JetStreamError, TimeoutError):
                await self.survey()
            await anyio.sleep(self.settings.metrics_interval)


async def serve(
    settings: ScalerSettings,
    nc: Client,
    stop: anyio.Event,
    readiness: ScalerReadiness,
    started: Callable[[], object] = lambda: None,
) -> Scaler:
    """Run the scaler and its workers until `stop` is set; then stop every worker. `started`
    is called once the store audit has run and the first workers are on their way."""
    await heartbeat.heartbeat_bucket(nc.jetstream())  # there, or the scaler does not start
    env = {
        "NATS_URL": settings.nats_url or "",
        "HOST_NAME": settings.host_name,
        "TORCH_THREADS": str(settings.worker_threads),  # threads x workers within the cores
        **settings.worker_credentials(),  # the workers' own NATS user, never the scaler's
    }
    supervisor = Supervisor(env=env, grace=settings.worker_stop_grace)
    coordination = None
    if not settings.observe_only:
        js = nc.jetstream()
        coordination = Coordination(js, await scalers_bucket(js), settings.host_name)
    scaler = readiness.scaler = Scaler(settings, nc, supervisor, coordination)
    try:
        async with anyio.create_task_group() as tg:
            await scaler.start()
            started()
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
