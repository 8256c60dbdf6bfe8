"""The scaler's /ready and /metrics: pools, workers and scaling, from its latest observation.

A Prometheus collector read at scrape time (translator/runtime/telemetry.py): the pools' gauges,
the scaling-event and alert counters (every label from 0), and the workers' own figures summed
from their heartbeats (scaler/fleet.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from prometheus_client.core import Metric

from scaler.capacity import HostCapacity
from scaler.events import Events
from scaler.fleet import Fleet
from scaler.observe import PoolView
from scaler.settings import ScalerSettings
from translator.contracts.subjects import Pool
from translator.runtime import telemetry
from translator.runtime.health import HealthServer
from translator.runtime.http import HttpLimits


class Scaler(Protocol):
    """What the metrics read of the scaler (`scaler.service.Scaler`); a protocol, so that this
    module does not import the service that imports it."""

    settings: ScalerSettings
    views: dict[Pool, PoolView]
    events: Events
    fleet: Fleet

    observe_error: str | None
    capacity: HostCapacity | None

    def ready(self) -> tuple[bool, dict[str, object]]: ...


class ScalerReadiness:
    """Not ready before NATS is reached and the scaler runs; then the scaler's own check."""

    def __init__(self) -> None:
        self.scaler: Scaler | None = None

    def check(self) -> tuple[bool, dict[str, object]]:
        if self.scaler is None:
            return False, {"nats": False}
        return self.scaler.ready()

    def register(self, settings: ScalerSettings) -> HealthServer:
        """The health server; with its /metrics when METRICS_ENABLED."""
        metrics = telemetry.endpoint(self, settings.metrics_enabled)
        return HealthServer(self.check, metrics, HttpLimits.of(settings))

    def collect(self) -> Iterator[Metric]:
        yield telemetry.service_info("scaler")
        if self.scaler is not None:
            observing = [((), 0.0 if self.scaler.observe_error else 1.0)]
            yield telemetry.gauge(
                "translator_scaler_observing",
                "1 while the scaler reads the pools; 0: its pool gauges are left out, not stale",
                [],
                observing,
            )
            yield from _pools(self.scaler)
            yield from _capacity(self.scaler)
            yield from _events(self.scaler.events)
            yield from self.scaler.fleet.families()


def _pools(scaler: Scaler) -> Iterator[Metric]:
    def per_pool(value: Callable[[PoolView], float]) -> telemetry.Rows:
        return [((pool.value,), value(view)) for pool, view in scaler.views.items()]

    pool = ["pool"]
    yield telemetry.gauge(
        "translator_queue_depth",
        "Requests waiting in the pool's stream (not yet delivered to a worker)",
        pool,
        per_pool(lambda v: v.state.queue),
    )
    yield telemetry.gauge(
        "translator_in_flight",
        "Requests delivered to a worker and not yet acknowledged",
        pool,
        per_pool(lambda v: v.state.in_flight),
    )
    yield telemetry.gauge(
        "translator_queue_capacity",
        "The pool's stream capacity, waiting and in-flight requests together",
        pool,
        per_pool(lambda v: scaler.settings.pool_size(v.pool)),
    )
    yield telemetry.gauge(
        "translator_worker_utilization",
        "Busy fraction of the pool's serving workers",
        pool,
        per_pool(lambda v: v.state.utilization),
    )
    yield telemetry.gauge(
        "translator_workers",
        "Worker processes by state",
        [*pool, "state"],
        _workers(scaler).items(),
    )


def _capacity(scaler: Scaler) -> Iterator[Metric]:
    """This host's cap on workers and what bounds it (absent in observe mode)."""
    host = scaler.capacity
    if host is None:
        return
    name = scaler.settings.host_name
    yield telemetry.gauge(
        "translator_host_worker_cap",
        "The most worker processes this host runs: cores over threads, memory over RSS",
        ["host", "bound"],
        [((name, "cores"), host.by_cores), ((name, "memory"), host.by_memory)],
    )
    yield telemetry.gauge(
        "translator_worker_threads",
        "Threads each worker process of this host uses (TORCH_THREADS)",
        ["host"],
        [((name,), host.threads)],
    )


def _workers(scaler: Scaler) -> dict[tuple[str, ...], float]:
    rows: dict[tuple[str, ...], float] = {}
    for pool, view in scaler.views.items():
        unavailable = len(view.unavailable)
        rows[pool.value, "running"] = view.state.running
        rows[pool.value, "starting"] = max(view.state.starting - unavailable, 0)
        rows[pool.value, "unavailable"] = unavailable
    return rows


def _events(events: Events) -> Iterator[Metric]:
    yield telemetry.counter(
        "translator_scaling_events",
        "Scaling decisions applied, by direction",
        ["pool", "direction"],
        events.scaling.items(),
    )
    yield telemetry.counter(
        "translator_alerts",
        "Alerts raised by the scaler, by kind",
        ["pool", "kind"],
        events.alerts.items(),
    )
