"""Benchmark: what tracing costs one request, in-process: the span work the shim, the client
and the worker do for one request (6 spans, 2 injects, 2 extracts), with no tracer provider (the
default when OTEL_EXPORTER_OTLP_ENDPOINT is unset) and with the SDK's provider recording every
span (a batch processor whose exporter discards them: the cost of recording, not of the network).

    python -m bench.tracing_overhead [--requests 20000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from bench.common import machine, median
from translator.runtime import tracing


class Discard(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def one_request(tracer: trace.Tracer) -> None:
    """The spans of one request, in the order the services make them."""
    attributes = tracing.messaging("nats", "send", "translate.request.normal", "task", "conv")
    receive = tracer.start_span("receive translation_request", kind=trace.SpanKind.CONSUMER)
    with (
        trace.use_span(receive, end_on_exit=True),
        tracer.start_as_current_span("send translate.request.normal", attributes=attributes),
    ):
        headers = tracing.inject({"Nats-Msg-Id": "task"})
    process = tracer.start_span("process", context=tracing.extract(headers), attributes=attributes)
    link = tracing.Link(process.get_span_context())
    with tracer.start_as_current_span("generate", links=[link], attributes=attributes):
        pass
    with trace.use_span(process, end_on_exit=True), tracer.start_as_current_span("send result"):
        result_headers = tracing.inject({})
    with tracer.start_as_current_span("send back", context=tracing.extract(result_headers)):
        pass


def measure(tracer: trace.Tracer, requests: int) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        one_request(tracer)
    return (time.perf_counter() - started) / requests * 1e6  # microseconds per request


def main(args: argparse.Namespace) -> dict[str, object]:
    noop = trace.NoOpTracerProvider().get_tracer("bench")
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(Discard(), max_queue_size=100_000))
    recording = provider.get_tracer("bench")
    rows: dict[str, list[float]] = {"unset (no-op)": [], "SDK, recording": []}
    for _ in range(args.repeats):
        rows["unset (no-op)"].append(measure(noop, args.requests))
        rows["SDK, recording"].append(measure(recording, args.requests))
    provider.shutdown()
    return {
        "machine": machine(),
        "microseconds_per_request": {k: round(median(v), 1) for k, v in rows.items()},
        "runs": {k: [round(x, 1) for x in v] for k, v in rows.items()},
    }


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    print(json.dumps(main(parser.parse_args()), indent=2))


if __name__ == "__main__":
    cli()
