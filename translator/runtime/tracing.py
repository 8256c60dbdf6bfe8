"""OpenTelemetry traces: one tracer provider per process, W3C trace context in NATS headers.

`setup(service)` exports spans over OTLP (http/protobuf) when `OTEL_EXPORTER_OTLP_ENDPOINT` or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set, configured by the standard `OTEL_*` variables;
otherwise the API's no-op tracer stays in place and a span costs next to nothing.
`OTEL_SDK_DISABLED=true` turns tracing off whatever else is set.

Span names and attributes follow the OTel messaging conventions:
`<operation> <destination>`, `messaging.system`, `messaging.operation.type`,
`messaging.destination.name`, `messaging.message.id`, `messaging.message.conversation_id`."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode

log = logging.getLogger(__name__)
_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
_TRACER = "meeshy.translator"

__all__ = ["Link", "Span", "SpanKind", "end", "extract", "inject", "messaging", "setup", "tracer"]


def export_wanted(env: Mapping[str, str] = os.environ) -> bool:
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(env.get(name) for name in _ENDPOINT_VARS)


def setup(service: str) -> bool:
    """Install the SDK's tracer provider if spans are to be exported; True if it was."""
    if not export_wanted():
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    protocol = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    if protocol != "http/protobuf":
        log.warning("OTEL_EXPORTER_OTLP_PROTOCOL=%s: only http/protobuf is built in", protocol)
    name = os.environ.get("OTEL_SERVICE_NAME") or service
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)  # flushed and shut down at exit by the SDK
    log.info("traces exported over OTLP as service %s", name)
    return True


def tracer() -> trace.Tracer:
    return trace.get_tracer(_TRACER)


def inject(headers: dict[str, str], context: Context | None = None) -> dict[str, str]:
    """Add `traceparent` (and `tracestate`) of the current or given context to `headers`."""
    propagate.inject(headers, context=context)
    return headers


def extract(headers: Mapping[str, str] | None) -> Context:
    return propagate.extract(dict(headers or {}))


def messaging(
    system: str,
    operation: str,
    destination: str,
    message_id: str | None = None,
    conversation_id: str | None = None,
) -> dict[str, str]:
    attributes = {
        "messaging.system": system,
        "messaging.operation.type": operation,
        "messaging.destination.name": destination,
    }
    if message_id:
        attributes["messaging.message.id"] = message_id
    if conversation_id:
        attributes["messaging.message.conversation_id"] = conversation_id
    return attributes


def end(span: Span, error: str | None = None) -> None:
    """End a span started with `start_span`, marking it failed when `error` says why."""
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, error))
    span.end()
