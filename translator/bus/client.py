"""The intake and a small NATS-native client: `submit` stores a request in its pool's stream,
`queue` is the one intake of the shim, the HTTP API and the NATS micro service (`submit` within a
time limit, its failures as PoolFull or QueueUnavailable), `translate` publishes a request and
awaits its results (one per language)."""

from __future__ import annotations

import anyio
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.errors import APIError

from translator.contracts.errors import PoolFull, QueueUnavailable
from translator.contracts.messages import TranslationRequest, TranslationResult, encode
from translator.contracts.subjects import (
    HEADER_MSG_ID,
    HEADER_REPLY_TO,
    gateway_request_subject,
    request_subject,
)
from translator.runtime import tracing

# nats-server's JSStreamStoreFailedF: a publish the stream's limits refuse ("maximum messages
# exceeded", "maximum bytes exceeded": discard=new at capacity), and other store failures
JS_STREAM_STORE_FAILED = 10077
_LIMITS = ("maximum messages exceeded", "maximum bytes exceeded")
# a publish that cannot have reached JetStream: the connection is down and buffers nothing (the
# shim's), or nobody listens on the subject
NOT_SENT: tuple[type[Exception], ...] = (
    nats.errors.OutboundBufferLimitError,
    nats.errors.NoRespondersError,
)


def is_pool_full(error: APIError) -> bool:
    text = (error.description or "").lower()
    return error.err_code == JS_STREAM_STORE_FAILED and any(limit in text for limit in _LIMITS)


async def submit(
    nc: Client, request: TranslationRequest, reply_to: str, via_gateway: bool = False
) -> None:
    """Store the request in its pool's stream; PoolFull when the pool is at capacity.
    `via_gateway`: through the gateway intake (the shim's NATS user alone may publish there),
    so that its results may go to the reserved `translate.gateway.result.<name>`.

    A PRODUCER span, child of the current one, whose context travels in the headers."""
    pool = request.pool
    subject = gateway_request_subject(pool) if via_gateway else request_subject(pool)
    attributes = tracing.messaging(
        "nats", "send", subject, request.task_id, request.conversation_id
    )
    attributes["meeshy.message_id"] = request.message_id
    with tracing.tracer().start_as_current_span(
        f"send {subject}", kind=tracing.SpanKind.PRODUCER, attributes=attributes
    ) as span:
        headers = tracing.inject({HEADER_MSG_ID: request.task_id, HEADER_REPLY_TO: reply_to})
        try:
            await nc.jetstream().publish(subject, encode(request), headers=headers)
        except APIError as error:
            if is_pool_full(error):
                span.set_attribute("error.type", PoolFull.kind)
                raise PoolFull(request.pool.value) from error
            raise


async def queue(
    nc: Client,
    request: TranslationRequest,
    reply_to: str,
    timeout: float,
    via_gateway: bool = False,
) -> None:
    """`submit` within `timeout`: PoolFull when the pool is at capacity, QueueUnavailable when
    NATS did not take it (`maybe_stored` when the try went out and its answer did not come: the
    request may be stored, and translated)."""
    try:
        with anyio.fail_after(timeout):
            await submit(nc, request, reply_to, via_gateway)
    except (nats.errors.Error, TimeoutError, OSError) as exc:  # JetStream's APIError included
        raise QueueUnavailable(why(exc), maybe_stored=not isinstance(exc, NOT_SENT)) from exc


def why(exc: Exception) -> str:
    """A NATS failure in words: its type, and its text when it has one."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def translate(
    nc: Client, request: TranslationRequest, timeout: float = 60.0
) -> list[TranslationResult]:
    """Results for every target language, in the request's order; TimeoutError if late."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    results: dict[str, TranslationResult] = {}
    try:
        await submit(nc, request, inbox)
        with anyio.fail_after(timeout):
            while len(results) < len(request.target_languages):
                msg: Msg = await sub.next_msg(timeout=None)
                result = TranslationResult.model_validate_json(msg.data)
                results.setdefault(result.target_language, result)
    finally:
        await sub.unsubscribe()
    return [results[lang] for lang in request.target_languages if lang in results]
