"""Filling a batch from a pull consumer (the workers' request consumers, the shim's results).

nats-py's `fetch` returns as soon as one message is there, and raises a timeout (sometimes
the builtin TimeoutError) when none is; so the first fetch long-polls, and later ones fill the
batch until it is full or the batch window has passed."""

from __future__ import annotations

import logging
import time

import anyio
import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext

log = logging.getLogger(__name__)
_MIN_FETCH = 0.002


async def _fetch(sub: JetStreamContext.PullSubscription, size: int, timeout: float) -> list[Msg]:
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
    return msgs


async def fetch_batch(
    sub: JetStreamContext.PullSubscription, size: int, window: float, timeout: float
) -> list[Msg]:
    """Up to `size` messages: wait up to `timeout` for the first, then keep filling the batch
    for at most `window` while the consumer still holds queued messages (`num_pending`). An idle
    queue is not waited on: a lone message at low load goes through at once."""
    msgs = await _fetch(sub, size, timeout)
    deadline = time.monotonic() + window
    while msgs and len(msgs) < size and _more_queued(msgs[-1]):
        left = deadline - time.monotonic()
        if left < _MIN_FETCH:
            break
        more = await _fetch(sub, size - len(msgs), left)
        if not more:
            break
        msgs.extend(more)
    return msgs


def _more_queued(msg: Msg) -> bool:
    pending = msg.metadata.num_pending
    return pending is None or pending > 0
