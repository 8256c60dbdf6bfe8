"""Serving an ASGI application with uvicorn inside a service's own event loop, guarded against
clients that are slow or malformed.

uvicorn (h11) serves every connection on its own, so a slow client never blocks another; what
it leaves open is time: a connection that never finishes its request line and headers holds its
socket forever, and a body sent a byte a minute holds a request forever. Here:
- `HTTP_HEADER_TIMEOUT`: a connection whose next request's headers are not complete in time is
  closed (from its opening, or from the end of its previous response);
- `HTTP_BODY_TIMEOUT` and `HTTP_MAX_BODY_BYTES`: a body not received in time gets 408, a body
  larger than the limit (announced or counted) gets 413, before the application sees it;
- `HTTP_MAX_CONNECTIONS`: past it, new requests get 503 (uvicorn's `limit_concurrency`);
- `FORWARDED_ALLOW_IPS`: the proxies whose `X-Forwarded-For` gives the client's address; none
  by default (uvicorn's own default would believe any local process).

uvicorn's own signal handlers are not installed: the service's (runtime/signals.py) decide when
it stops; a cancelled `serve` closes the listening socket and every connection."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import h11
import uvicorn
from anyio.abc import TaskStatus
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from translator.contracts.settings import NatsSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpLimits:
    header_timeout: float = 10.0
    body_timeout: float = 10.0
    max_body_bytes: int = 1_048_576
    max_connections: int = 1_000
    keep_alive: int = 5
    forwarded_allow_ips: tuple[str, ...] = ()  # proxies whose X-Forwarded-* are believed

    @classmethod
    def of(cls, settings: NatsSettings) -> HttpLimits:
        return cls(
            header_timeout=settings.http_header_timeout,
            body_timeout=settings.http_body_timeout,
            max_body_bytes=settings.http_max_body_bytes,
            max_connections=settings.http_max_connections,
            forwarded_allow_ips=settings.forwarded_allow_ips,
        )


class _GuardedH11(H11Protocol):
    """uvicorn's h11 protocol with a deadline on each request's headers."""

    header_timeout: float = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._deadline: asyncio.TimerHandle | None = None
        self._arm()

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if getattr(self, "_deadline", None) is not None:
            self._deadline.cancel()  # type: ignore[union-attr]
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            log.info(
                "closing a connection whose request headers took over %.0fs", self.header_timeout
            )
            with contextlib.suppress(h11.LocalProtocolError):
                self.conn.send(h11.ConnectionClosed())
            self.transport.close()

    def handle_events(self) -> None:
        before = self.cycle
        super().handle_events()
        if self.cycle is not before:  # a request's headers are complete: the app has it
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


class BodyGuard:
    """ASGI middleware: 413 for a body over the limit, 408 for one that is not in on time."""

    def __init__(self, app: ASGIApp, limits: HttpLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.max_body_bytes
        announced = dict(scope["headers"]).get(b"content-length")
        if announced is not None and announced.isdigit() and int(announced) > limit:
            await _plain_error(send, 413, f"request body over {limit} bytes")
            return
        received = 0
        deadline = anyio.current_time() + self.limits.body_timeout
        done = False
        answered = False  # by this guard: what the application sends after it is dropped
        started = False

        async def refuse(status: int, reason: str) -> Message:
            nonlocal answered
            if not started and not answered:
                await _plain_error(send, status, reason)
            answered = True
            return {"type": "http.disconnect"}  # the application stops reading

        async def guarded() -> Message:
            nonlocal received, done
            if done or answered:
                return await receive() if not answered else {"type": "http.disconnect"}
            with anyio.move_on_after(max(deadline - anyio.current_time(), 0)):
                message = await receive()
                if message["type"] == "http.request":
                    received += len(message.get("body", b""))
                    if received > limit:
                        return await refuse(413, f"request body over {limit} bytes")
                    done = not message.get("more_body", False)
                return message
            timeout = self.limits.body_timeout
            return await refuse(408, f"request body not received within {timeout:g}s")

        async def tracking(message: Message) -> None:
            nonlocal started
            if answered:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, guarded, tracking)
        except Exception:
            if not answered:  # the application's own failure
                raise
            # else: its complaint about the disconnect it was given; the client has its answer


async def _plain_error(send: Send, status: int, reason: str) -> None:
    """The error body every endpoint uses: LibreTranslate's `error`, FastAPI's `detail`."""
    body = json.dumps({"error": reason, "detail": reason}).encode()
    headers = [(b"content-type", b"application/json"), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the service's own handlers stay


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


async def serve(
    app: ASGIApp,
    host: str,
    port: int,
    limits: HttpLimits,
    label: str = "health and metrics",
    *,
    task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on host:port (0: a free port) until cancelled; `task_status` gets the port
    once the socket listens (and the log says `<label> on http://host:port`)."""
    protocol = type("GuardedH11", (_GuardedH11,), {"header_timeout": limits.header_timeout})
    config = uvicorn.Config(
        BodyGuard(app, limits),
        http=protocol,
        lifespan="off",
        log_config=None,
        access_log=False,
        limit_concurrency=limits.max_connections,
        timeout_keep_alive=limits.keep_alive,
        server_header=False,
        # uvicorn believes X-Forwarded-For from 127.0.0.1 unless told otherwise: from nobody
        # but the proxies FORWARDED_ALLOW_IPS lists (a rate limit by address would fall to a
        # header otherwise)
        proxy_headers=bool(limits.forwarded_allow_ips),
        forwarded_allow_ips=list(limits.forwarded_allow_ips) or None,
    )
    sock = _listen(host, port)
    bound = int(sock.getsockname()[1])
    server = _Server(config)
    log.info("%s on http://%s:%d", label, host, bound)
    task_status.started(bound)
    try:
        await server.serve(sockets=[sock])
    finally:
        server.should_exit = True
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            await _close(server, sock)


async def _close(server: Any, sock: socket.socket) -> None:
    if server.started:
        for connection in list(server.server_state.connections):
            connection.shutdown()
        for listener in getattr(server, "servers", []):
            listener.close()
    sock.close()
