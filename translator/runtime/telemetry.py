"""Prometheus metrics, as collectors read at scrape time (prometheus_client) and served on each
service's /metrics.

They do not go through the OpenTelemetry SDK: `OTEL_SDK_DISABLED=true` (or
`OTEL_TRACES_EXPORTER=none`) turns tracing off and leaves the metrics as they are;
`METRICS_ENABLED=false` turns /metrics off. Every labelled counter whose label values are known
in advance is exported at 0 from the start, so that `increase()` sees its first event."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from prometheus_client import REGISTRY, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from translator import __version__

SERVICE_INFO = "translator_service_info"
Rows = Iterable[tuple[Sequence[str], float]]  # (label values, value)


def service_info(service: str) -> Metric:
    """1 while the process answers; the `TranslatorDown` alert joins `up` on it by target, so
    it works whatever the scrape jobs are called."""
    info = GaugeMetricFamily(
        SERVICE_INFO, "A process of the translator service", labels=["service", "version"]
    )
    info.add_metric([service, __version__], 1.0)
    return info


def gauge(name: str, documentation: str, labels: Iterable[str], rows: Rows) -> Metric:
    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    for values, value in rows:
        family.add_metric(list(values), float(value))
    return family


def counter(name: str, documentation: str, labels: Iterable[str], rows: Rows) -> Metric:
    """A counter family (`name` is exported as `<name>_total`)."""
    family = CounterMetricFamily(name, documentation, labels=list(labels))
    for values, value in rows:
        family.add_metric(list(values), float(value))
    return family


def endpoint(collector: Collector, enabled: bool) -> Callable[[], bytes] | None:
    """What a service's /metrics serves: `collector` (with the process's own series) when
    METRICS_ENABLED, nothing otherwise."""
    if not enabled:
        return None
    REGISTRY.register(collector)
    return prometheus_text


def prometheus_text() -> bytes:
    return generate_latest(REGISTRY)
