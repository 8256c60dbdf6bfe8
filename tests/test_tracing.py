"""Traces: one trace per request from the gateway through the shim, JetStream, a worker and back;
a batched generate linked to every request it served; trace ids in the log lines.

The shim and the worker are real subprocesses exporting over OTLP/HTTP (the SDK's exporter,
set up by the standard OTEL_* variables) to a receiver in the test. The W3C context in the NATS
headers is also checked in process, with the SDK's in-memory span exporter."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from nats.aio.client import Client
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.gateway import gateway, shim, stored_at_least
from tests.otlp import Receiver, Span
from tests.support import Models, request, running_worker, shim_env, worker_env
from translator.bus.client import submit
from translator.bus.embedded import EmbeddedNats
from translator.contracts.subjects import (
    Pool,
    gateway_request_subject,
    request_stream,
    request_subject,
)
from translator.runtime import tracing

pytestmark = pytest.mark.anyio
SHIM, WORKER = "zmq-compat", "translator-worker"


def one(spans: list[Span], trace_id: str, service: str, name: str) -> Span:
    found = [s for s in spans if (s.trace_id, s.service, s.name) == (trace_id, service, name)]
    assert len(found) == 1, f"{service} {name!r} in {trace_id}: {found} of {spans}"
    return found[0]


async def spans_when(otlp: Receiver, count: int, timeout: float = 30) -> list[Span]:
    """The spans once `count` have arrived, and a moment more to see that no other comes."""
    with anyio.fail_after(timeout):
        while len(otlp.snapshot()) < count:  # noqa: ASYNC110 - spans arrive on another thread
            await anyio.sleep(0.1)
    await anyio.sleep(0.5)
    return otlp.snapshot()


async def test_a_request_is_one_trace_through_shim_worker_and_back_with_a_linked_generate(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    with Receiver() as otlp:
        worker = worker_env(nats_server.url, models, MAX_TEXT_LENGTH=40, **otlp.env())
        async with (
            shim(shim_env(nats_server.url, **otlp.env()), log) as ports,
            gateway(ports) as gw,
        ):
            sent = [await gw.request(f"Hello number {i}", ["fr"]) for i in range(3)]
            too_long = await gw.request("x" * 60, ["fr"])  # the shim's limit is 5000
            # queued before the worker starts: its first fetch takes all four
            await stored_at_least(nc, request_stream(Pool.NORMAL), 4)
            async with running_worker(nc, worker, Pool.NORMAL, log):
                for message in [*sent, too_long]:
                    await gw.results_for(message)
                # 4 requests x 5 spans (receive, send, process, send result, send back)
                spans = await spans_when(otlp, count=4 * 5 + 1)  # + one generate

    subject = gateway_request_subject(Pool.NORMAL)  # the shim's intake
    traces = {s.trace_id for s in spans if s.attributes.get("messaging.message.id")}
    roots = [s for s in spans if s.name == "receive translation_request"]
    by_task = {s.attributes["messaging.message.id"]: s.trace_id for s in roots}
    process_spans = []
    for message in sent:
        trace_id = by_task[message["taskId"]]
        receive = one(spans, trace_id, SHIM, "receive translation_request")
        publish = one(spans, trace_id, SHIM, f"send {subject}")
        process = one(spans, trace_id, WORKER, f"process {subject}")
        result = one(spans, trace_id, WORKER, "send translate.gateway.result.zmq_compat")
        sent_back = one(spans, trace_id, SHIM, "send translation_completed")
        chain = [receive, publish, process, result, sent_back]
        kinds = ["CONSUMER", "PRODUCER", "CONSUMER", "PRODUCER", "PRODUCER"]
        assert [s.kind for s in chain] == kinds
        assert receive.parent_id == ""
        assert [s.parent_id for s in chain[1:]] == [s.span_id for s in chain[:-1]]
        assert publish.attributes["messaging.system"] == "nats"
        assert publish.attributes["messaging.destination.name"] == subject
        assert publish.attributes["messaging.message.conversation_id"] == "conv-1"
        assert receive.attributes["meeshy.message_id"] == message["messageId"]
        assert process.attributes["messaging.consumer.group.name"] == "workers"
        assert process.attributes["messaging.message.id"] == message["taskId"]
        assert sent_back.attributes["messaging.system"] == "zeromq"
        assert all(s.status != 2 for s in chain)
        process_spans.append(process)

    generates = [s for s in spans if s.name.startswith("generate ")]
    assert len(generates) == 1, generates  # the three requests in one batched generate()
    generate = generates[0]
    assert generate.service == WORKER
    assert generate.kind == "INTERNAL"
    assert set(generate.links) == {(s.trace_id, s.span_id) for s in process_spans}
    assert generate.attributes["meeshy.model"] == str(models.t5)
    assert generate.attributes["meeshy.quantization"] == "float32"
    assert generate.attributes["meeshy.device"] == "cpu"
    assert generate.attributes["meeshy.random_weights"] is True
    assert generate.attributes["messaging.batch.message_count"] == 3

    rejected_trace = by_task[too_long["taskId"]]
    rejected = one(spans, rejected_trace, WORKER, f"process {subject}")
    assert rejected.status == 2  # error
    assert rejected.attributes["error.type"] == "text_too_long"
    one(spans, rejected_trace, SHIM, "send translation_error")
    assert len(traces) == 4
    assert len(spans) == 21, spans
    lines = [line for line in log.read_text().splitlines() if "rejected message" in line]
    assert lines, "the worker logged no rejection"
    assert re.search(rf"trace_id={rejected_trace} span_id={rejected.span_id}", lines[0])


@pytest.fixture
def memory_spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    original = trace._TRACER_PROVIDER
    trace._TRACER_PROVIDER = provider  # set_tracer_provider works once per process
    try:
        yield exporter
    finally:
        trace._TRACER_PROVIDER = original


async def test_submit_carries_the_producer_span_context_in_the_nats_headers(
    nc: Client, memory_spans: InMemorySpanExporter
) -> None:
    from translator.bus.topology import setup_topology
    from translator.contracts.settings import TranslatorSettings

    await setup_topology(nc.jetstream(), TranslatorSettings())
    req = request(text="Bonjour")
    with tracing.tracer().start_as_current_span("caller"):
        await submit(nc, req, "translate.result.test")
    caller, producer = sorted(memory_spans.get_finished_spans(), key=lambda s: s.name)
    assert producer.kind is trace.SpanKind.PRODUCER
    assert producer.parent is not None
    assert producer.parent.span_id == caller.context.span_id
    assert producer.attributes is not None
    assert producer.attributes["messaging.message.id"] == req.task_id
    stored = await nc.jetstream().get_last_msg(
        request_stream(Pool.NORMAL), request_subject(Pool.NORMAL)
    )
    version, trace_id, span_id, flags = (stored.headers or {})["traceparent"].split("-")
    assert (version, trace_id, span_id) == (
        "00",
        f"{producer.context.trace_id:032x}",
        f"{producer.context.span_id:016x}",
    )
    assert int(flags, 16) & 1  # sampled


def test_without_an_endpoint_nothing_is_exported_and_spans_are_no_ops() -> None:
    assert not tracing.export_wanted({})
    assert tracing.export_wanted({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert tracing.export_wanted({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"})
    assert not tracing.export_wanted(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}
    )
    assert tracing.inject({}) == {}  # no span, no provider: no header


def test_json_log_lines_carry_the_ids_of_the_span_they_were_written_in(
    memory_spans: InMemorySpanExporter,
) -> None:
    import io
    import json
    import logging

    from translator.runtime import logs

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(logs.TraceContext())
    handler.setFormatter(logs.JsonFormatter())
    logger = logging.getLogger("test.json")
    logger.addHandler(handler)
    try:
        logger.warning("outside")
        with tracing.tracer().start_as_current_span("inside") as span:
            logger.warning("inside")
    finally:
        logger.removeHandler(handler)
    outside, inside = (json.loads(line) for line in stream.getvalue().splitlines())
    assert "trace_id" not in outside
    assert inside["message"] == "inside"
    assert inside["trace_id"] == f"{span.get_span_context().trace_id:032x}"
    assert inside["span_id"] == f"{span.get_span_context().span_id:016x}"
