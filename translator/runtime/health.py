"""HTTP `/live`, `/ready`, `/health` and `/metrics` for a service, on one small server.

`/live` answers while the process runs; `/ready` and `/health` answer 200 or 503 with the
service's own check (connected to NATS, workers loaded...); `/metrics` is Prometheus text."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable

import anyio
from anyio.abc import SocketStream, TaskStatus

log = logging.getLogger(__name__)
Check = Callable[[], tuple[bool, dict[str, object]]]
_REASONS = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}


class HealthServer:
    def __init__(self, check: Check, metrics: Callable[[], bytes] | None = None) -> None:
        self.check = check
        self.metrics = metrics

    def respond(self, path: str) -> tuple[int, str, bytes]:
        if path == "/live":
            return 200, "application/json", b'{"status": "alive"}'
        if path in ("/ready", "/health"):
            ok, details = self.check()
            body = json.dumps({"status": "ready" if ok else "not ready", **details})
            return (200 if ok else 503), "application/json", body.encode()
        if path == "/metrics" and self.metrics is not None:
            return 200, "text/plain; version=0.0.4; charset=utf-8", self.metrics()
        return 404, "text/plain", b"not found"

    async def _handle(self, stream: SocketStream) -> None:
        async with stream:
            with anyio.move_on_after(5):
                request = await stream.receive(4096)
                parts = request.split(b" ", 2)
                path = parts[1].decode("latin-1").split("?")[0] if len(parts) > 1 else "/"
                status, kind, body = self.respond(path)
                head = (
                    f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {kind}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                )
                await stream.send(head.encode() + body)

    async def serve(
        self, host: str, port: int, *, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        listener = await anyio.create_tcp_listener(local_host=host, local_port=port)
        bound = int(listener.extra(anyio.abc.SocketAttribute.local_port))
        log.info("health and metrics on http://%s:%d", host, bound)
        task_status.started(bound)
        await listener.serve(self._handle)


def check_ready(port: int, host: str = "127.0.0.1", timeout: float = 3.0) -> int:
    """For container health checks (`--check`): 0 when /ready answers 200, else 1."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/ready", timeout=timeout) as reply:
            return 0 if reply.status == 200 else 1
    except (urllib.error.URLError, OSError):
        return 1
