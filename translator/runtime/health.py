"""`/live`, `/ready`, `/health` and `/metrics` of a service, as routes of its ASGI application.

`/live` answers while the process runs; `/ready` and `/health` answer 200 or 503 with the
service's own check (connected to NATS, workers loaded...); `/metrics` is Prometheus text. The
shim serves them beside the HTTP API (translator/api); the scaler serves them alone."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable

import anyio
from anyio.abc import TaskStatus
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from translator.runtime.http import HttpLimits
from translator.runtime.http import serve as serve_http

Check = Callable[[], tuple[bool, dict[str, object]]]


class _Json(JSONResponse):
    """JSON as the service always wrote it (`json.dumps` separators): the same bytes."""

    def render(self, content: object) -> bytes:
        return json.dumps(content).encode()


PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


class HealthServer:
    def __init__(
        self,
        check: Check,
        metrics: Callable[[], bytes] | None = None,
        limits: HttpLimits | None = None,
    ) -> None:
        self.check = check
        self.metrics = metrics
        self.limits = limits or HttpLimits()

    async def _live(self, request: Request) -> Response:
        return _Json({"status": "alive"})

    async def _ready(self, request: Request) -> Response:
        ok, details = self.check()
        body = {"status": "ready" if ok else "not ready", **details}
        return _Json(body, status_code=200 if ok else 503)

    async def _metrics(self, request: Request) -> Response:
        assert self.metrics is not None
        return Response(self.metrics(), media_type=PROMETHEUS_TEXT)

    def routes(self) -> list[BaseRoute]:
        """GET (and HEAD) routes; `/metrics` only when metrics are enabled."""
        routes: list[BaseRoute] = [
            Route("/live", self._live, methods=["GET"], include_in_schema=False),
            Route("/ready", self._ready, methods=["GET"], include_in_schema=False),
            Route("/health", self._ready, methods=["GET"], include_in_schema=False),
        ]
        if self.metrics is not None:
            routes.append(Route("/metrics", self._metrics, methods=["GET"]))
        return routes

    async def serve(
        self, host: str, port: int, *, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """These routes alone, on their own server (the scaler's)."""
        app = Starlette(routes=self.routes())
        await serve_http(app, host, port, self.limits, task_status=task_status)


def check_ready(port: int, host: str = "127.0.0.1", timeout: float = 3.0) -> int:
    """For container health checks (`--check`): 0 when /health answers 200, else 1."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=timeout) as reply:
            return 0 if reply.status == 200 else 1
    except (urllib.error.URLError, OSError):
        return 1
