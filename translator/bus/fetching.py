"""Filling a batch from a pull consumer (the workers' request consumers, the shim's results).

nats-py's `fetch` returns as soon as one message is there, and raises a timeout (sometimes
the builtin TimeoutError) when none is; so the first fetch long-polls, and later ones fill the
batch until it is full or the batch window has passed.

Whatever arrives on the pull inbox is a delivery of that consumer only if its ack subject says
so: anything else (a message published to the inbox, a delivery of a consumer someone pointed
there) is handed to `refuse` and dropped, never processed and never fatal (docs/SECURITY.md)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import anyio
import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext

log = logging.getLogger(__name__)
_MIN_FETCH = 0.002
Refuse = Callable[[Msg, str], None]


def log_refusal(msg: Msg, why: str) -> None:
    log.warning("dropped a message on a pull inbox: %s (subject %s)", why, msg.subject[:80])


def foreign(msg: Msg, stream: str, consumer: str) -> str | None:
    """Why `msg` is not a delivery of `consumer` on `stream` (None: it is)."""
    try:
        origin = msg.metadata
    except Exception as exc:  # not JetStream's ack subject, or a malformed one: all the same
        return f"not a JetStream delivery ({type(exc).__name__})"
    if (origin.stream, origin.consumer) != (stream, consumer):
        return f"a delivery of {origin.consumer} on {origin.stream}, not of {consumer} on {stream}"
    return None


async def _fetch(
    sub: JetStreamContext.PullSubscription, size: int, timeout: float, refuse: Refuse
) -> list[Msg]:
    try:
        msgs: list[Msg] = await sub.fetch(batch=size, timeout=timeout)
    except (TimeoutError, nats.errors.TimeoutError):
        return []
    except nats.errors.Error as exc:  # reconnecting, slow consumer...: try again shortly
        if isinstance(exc, nats.errors.ConnectionClosedError):
            log.debug("fetch: the connection is closed")  # our own stop: nothing to warn about
        else:
            log.warning("fetch failed: %s", exc)
        await anyio.sleep(min(timeout, 0.5))
        return []
    kept = []
    for msg in msgs:
        why = foreign(msg, sub._stream, sub._consumer)
        if why is None:
            kept.append(msg)
        else:
            refuse(msg, why)
    return kept


async def fetch_batch(
    sub: JetStreamContext.PullSubscription,
    size: int,
    window: float,
    timeout: float,
    refuse: Refuse = log_refusal,
) -> list[Msg]:
    """Up to `size` deliveries: wait up to `timeout` for the first, then keep filling the batch
    for at most `window` while the consumer still holds queued messages (`num_pending`). An idle
    queue is not waited on: a lone message at low load goes through at once."""
    msgs = await _fetch(sub, size, timeout, refuse)
    deadline = time.monotonic() + window
    while msgs and len(msgs) < size and _more_queued(msgs[-1]):
        left = deadline - time.monotonic()
        if left < _MIN_FETCH:
            break
        more = await _fetch(sub, size - len(msgs), left, refuse)
        if not more:
            break
        msgs.extend(more)
    return msgs


def _more_queued(msg: Msg) -> bool:
    pending = msg.metadata.num_pending
    return pending is None or pending > 0
