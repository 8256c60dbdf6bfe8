"""The scaler's /ready and /metrics: pools, workers and scaling, from its latest observation."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from opentelemetry.metrics import CallbackOptions, Observation
from prometheus_client import REGISTRY
from prometheus_client.core import Metric

from scaler.events import Events
from scaler.fleet import Fleet
from scaler.observe import PoolView
from scaler.settings import ScalerSettings
from translator.contracts.subjects import Pool
from translator.runtime import telemetry
from translator.runtime.health import HealthServer


class Scaler(Protocol):
    """What the metrics read of the scaler (`scaler.service.Scaler`); a protocol, so that this
    module does not import the service that imports it."""

    settings: ScalerSettings
    views: dict[Pool, PoolView]
    events: Events
    fleet: Fleet

    def ready(self) -> tuple[bool, dict[str, object]]: ...


Reading = Callable[[CallbackOptions], Iterable[Observation]]


class ScalerReadiness:
    """Not ready before NATS is reached and the scaler runs; then the scaler's own check."""

    def __init__(self) -> None:
        self.scaler: Scaler | None = None

    def check(self) -> tuple[bool, dict[str, object]]:
        if self.scaler is None:
            return False, {"nats": False}
        return self.scaler.ready()

    def _pools(self, read: Callable[[Scaler], Iterable[tuple[float, dict[str, str]]]]) -> Reading:
        def callback(_options: CallbackOptions) -> Iterable[Observation]:
            return (
                [Observation(v, labels) for v, labels in read(self.scaler)] if self.scaler else []
            )

        return callback

    def register(self) -> HealthServer:
        meter = telemetry.meter("scaler")
        gauges: dict[str, Callable[[Scaler], Iterable[tuple[float, dict[str, str]]]]] = {
            "translator_queue_depth": lambda s: _per_pool(s, lambda v: v.state.queue),
            "translator_in_flight": lambda s: _per_pool(s, lambda v: v.state.in_flight),
            "translator_queue_capacity": lambda s: [
                (s.settings.pool_size(p), {"pool": p.value}) for p in s.views
            ],
            "translator_worker_utilization": lambda s: _per_pool(s, lambda v: v.state.utilization),
            "translator_workers": _workers,
        }
        for name, read in gauges.items():
            meter.create_observable_gauge(name, callbacks=[self._pools(read)])
        meter.create_observable_counter(
            "translator_scaling_events", callbacks=[self._pools(_scaling)]
        )
        meter.create_observable_counter("translator_alerts", callbacks=[self._pools(_alerts)])
        REGISTRY.register(self)  # the workers' figures: see `collect`
        return HealthServer(self.check, telemetry.prometheus_text)

    def collect(self) -> Iterator[Metric]:
        """The workers' counters and histograms, from their heartbeats (scaler/fleet.py).
        A Prometheus collector: OTel has no instrument for a histogram counted elsewhere."""
        if self.scaler is not None:
            yield from self.scaler.fleet.families()


def _per_pool(scaler: Scaler, value: Callable[..., float]) -> list[tuple[float, dict[str, str]]]:
    return [(float(value(view)), {"pool": pool.value}) for pool, view in scaler.views.items()]


def _workers(scaler: Scaler) -> list[tuple[float, dict[str, str]]]:
    rows = []
    for pool, view in scaler.views.items():
        rows.append((float(view.state.running), {"pool": pool.value, "state": "running"}))
        rows.append((float(view.state.starting), {"pool": pool.value, "state": "starting"}))
    return rows


def _scaling(scaler: Scaler) -> list[tuple[float, dict[str, str]]]:
    return [
        (float(n), {"pool": pool, "direction": direction})
        for (pool, direction), n in scaler.events.scaling.items()
    ]


def _alerts(scaler: Scaler) -> list[tuple[float, dict[str, str]]]:
    return [
        (float(n), {"pool": pool, "kind": kind}) for (pool, kind), n in scaler.events.alerts.items()
    ]
