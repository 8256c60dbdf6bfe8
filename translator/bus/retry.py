"""Retrying the JetStream API through a NATS cluster's leader elections and brief outages.

While a stream, consumer or meta leader is elected, or a node restarts, the JetStream API answers
with a timeout, "no responders", "no response from stream" or a 503/500 for a few seconds (4-5 s
measured per leader kill). `patiently` retries such calls with a growing delay and gives up only
after a bounded time, with `JetStreamUnavailable` naming what it was trying to do (a service that
must not stop meanwhile passes `deadline=math.inf`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import nats.errors
import nats.js.errors

log = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT: tuple[type[Exception], ...] = (
    TimeoutError,  # nats.errors.TimeoutError is one too
    nats.errors.NoRespondersError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,  # an unbuffered connection (the shim's) while it is down
    nats.js.errors.NoStreamResponseError,
    nats.js.errors.ServiceUnavailableError,  # 503: JetStream temporarily unavailable
    nats.js.errors.ServerError,  # 500: e.g. no peers for a replica while a node is down
)
DEFAULT_DEADLINE = 60.0


class JetStreamUnavailable(ConnectionError):
    """The JetStream API did not answer within the deadline."""

    def __init__(self, what: str, seconds: float, cause: Exception) -> None:
        super().__init__(
            f"{what}: JetStream did not answer for {seconds:.0f}s "
            f"({type(cause).__name__}: {cause}); is the NATS cluster up, with a quorum?"
        )
        self.what = what


async def patiently(
    what: str,
    call: Callable[[], Awaitable[T]],
    deadline: float = DEFAULT_DEADLINE,
    first_delay: float = 0.2,
    max_delay: float = 3.0,
) -> T:
    """`await call()`, again after each transient failure, for at most `deadline` seconds."""
    started = time.monotonic()
    delay = first_delay
    while True:
        try:
            return await call()
        except TRANSIENT as exc:
            waited = time.monotonic() - started
            if waited + delay > deadline:
                raise JetStreamUnavailable(what, waited, exc) from exc
            log.warning("%s: %s; trying again in %.1fs", what, exc or type(exc).__name__, delay)
            await anyio.sleep(delay)
            delay = min(delay * 2, max_delay)
