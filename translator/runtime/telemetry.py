"""OpenTelemetry metrics, exported in Prometheus format (served on a service's /metrics)."""

from __future__ import annotations

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from prometheus_client import REGISTRY, generate_latest


def meter(service: str) -> Meter:
    """A meter whose instruments appear on `prometheus_text()` (one provider per process)."""
    provider = MeterProvider(
        metric_readers=[PrometheusMetricReader()],
        resource=Resource.create({SERVICE_NAME: service}),
    )
    return provider.get_meter(service)


def prometheus_text() -> bytes:
    return generate_latest(REGISTRY)
