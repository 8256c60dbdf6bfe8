"""The worker's spans: one CONSUMER `process` span per message, from fetch to its fate, and one
`generate` span per generate() call, linked to the `process` span of every request it serves."""

from __future__ import annotations

from contextlib import AbstractContextManager

from nats.aio.msg import Msg
from opentelemetry import trace

from translator.contracts.messages import TranslationRequest, TranslationResult
from translator.contracts.subjects import HEADER_MSG_ID, WORKERS_CONSUMER, Pool
from translator.inference.models import LoadedModel
from translator.runtime import tracing
from translator.worker.jobs import GroupKey, Job


class MessageSpans:
    """The open `process` span of each message in hand, by message."""

    def __init__(self, pool: Pool, worker_id: str) -> None:
        self.pool = pool
        self.worker_id = worker_id
        self._open: dict[int, tracing.Span] = {}  # id(msg) -> its CONSUMER span

    def open(self, msg: Msg) -> None:
        """The request's `process` span, child of the PRODUCER span whose context it carries."""
        headers = msg.headers or {}
        attributes = tracing.messaging("nats", "process", msg.subject, headers.get(HEADER_MSG_ID))
        attributes["messaging.consumer.group.name"] = WORKERS_CONSUMER
        attributes["meeshy.pool"] = self.pool.value
        attributes["meeshy.worker_id"] = self.worker_id
        self._open[id(msg)] = tracing.tracer().start_span(
            f"process {msg.subject}",
            context=tracing.extract(headers),
            kind=tracing.SpanKind.CONSUMER,
            attributes=attributes,
        )

    def describe(self, msg: Msg, request: TranslationRequest) -> None:
        span = self._open[id(msg)]
        span.set_attribute("messaging.message.id", request.task_id)
        span.set_attribute("messaging.message.conversation_id", request.conversation_id)
        span.set_attribute("meeshy.message_id", request.message_id)

    def close(self, msg: Msg) -> trace.Span:
        """The message's span, no longer tracked (the caller ends it); a no-op span if none."""
        return self._open.pop(id(msg), None) or trace.INVALID_SPAN

    def end(self, msgs: list[Msg], why: str) -> None:
        for msg in msgs:
            if (span := self._open.pop(id(msg), None)) is not None:
                tracing.end(span, why)

    def generate(
        self, loaded: LoadedModel, key: GroupKey, jobs: list[Job]
    ) -> AbstractContextManager[trace.Span]:
        """One span per generate() call, linked to the `process` span of every request it
        serves (and the child of that span when it serves one request)."""
        spans = [self._open[id(job.msg)] for job in jobs if id(job.msg) in self._open]
        parent = trace.set_span_in_context(spans[0]) if len(spans) == 1 else None
        attributes: dict[str, str | int | bool] = {
            "meeshy.model": loaded.model_id,
            "meeshy.model_family": loaded.family.name,
            "meeshy.quantization": loaded.quantization,
            "meeshy.device": loaded.device,
            "meeshy.random_weights": loaded.random_weights,
            "meeshy.source_language": key.source,
            "meeshy.target_language": key.target,
            "messaging.batch.message_count": len(jobs),
        }
        return tracing.tracer().start_as_current_span(
            f"generate {loaded.model_id}",
            context=parent,
            links=[tracing.Link(span.get_span_context()) for span in spans],
            attributes=attributes,
        )


def mark_failed(reason: str, exc: BaseException | None = None) -> None:
    """The current span failed, for `reason` (and with the exception when there is one)."""
    span = trace.get_current_span()
    if exc is not None:
        span.record_exception(exc)
    span.set_status(trace.StatusCode.ERROR, reason)


def send(subject: str, results: list[TranslationResult]) -> AbstractContextManager[trace.Span]:
    """The PRODUCER span of one request's results; its context travels in their headers."""
    first = results[0]
    attributes: dict[str, str | int] = {
        **tracing.messaging("nats", "send", subject, first.task_id, first.conversation_id),
        "messaging.batch.message_count": len(results),
    }
    return tracing.tracer().start_as_current_span(
        f"send {subject}", kind=tracing.SpanKind.PRODUCER, attributes=attributes
    )
