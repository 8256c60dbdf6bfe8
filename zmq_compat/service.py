"""`zmq-compat`: the shim's process, put together: HTTP first (health, metrics and the HTTP API,
which answers 503 until NATS is reached), then NATS, then ZeroMQ."""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Iterator

import anyio
import nats.errors
from nats.aio.client import Client
from prometheus_client.core import Metric

from translator.api.app import build_app, endpoints
from translator.api.operations import Api
from translator.api.relay import Relay
from translator.bus.connection import connect
from translator.bus.topology import verify_topology
from translator.contracts.subjects import Role
from translator.inference.catalog import Catalog
from translator.runtime import http, telemetry
from translator.runtime.health import HealthServer
from translator.runtime.looplag import LoopLag
from translator.runtime.signals import stop_on_signal
from zmq_compat import envelopes
from zmq_compat.outcomes import Outcome
from zmq_compat.settings import ShimSettings
from zmq_compat.shim import Shim

log = logging.getLogger(__name__)
_RESULTS_STOP = 5.0  # a stop: the longest the batch of results in hand may take to be sent
_CLOSE = 10.0  # a stop: the longest the sockets and the NATS connection may take to close


def stop_budget(settings: ShimSettings) -> float:
    """The longest a stop takes: the drain, then the answers of what it still held (each
    within one publish try), the results in hand, the close. A grace period (compose,
    Kubernetes) must outlast it, or SIGKILL comes while a request has no fate yet."""
    return settings.zmq_drain_timeout + settings.zmq_publish_timeout + 1 + _RESULTS_STOP + _CLOSE


class Readiness:
    """Ready once connected to NATS with the ZeroMQ sockets bound."""

    def __init__(self) -> None:
        self.nc: Client | None = None
        self.shim: Shim | None = None
        self.api: Api | None = None
        self.relay: Relay | None = None
        self.endpoints: tuple[str, ...] = ()  # the HTTP API's, once it is built
        self.lag = LoopLag()  # the event loop's lateness: HTTP, pongs and acks wait that long

    def check(self) -> tuple[bool, dict[str, object]]:
        connected = self.nc is not None and self.nc.is_connected
        bound = self.shim is not None and self.shim.pull_port > 0
        return connected and bound, {"nats": connected, "zmq": bound}

    def collect(self) -> Iterator[Metric]:
        """/metrics: the requests and results by outcome, every outcome from 0."""
        yield telemetry.service_info("zmq_compat")
        yield from self.lag.collect()
        counts = Counter(self.shim.counts if self.shim else {})  # every outcome, 0 if none
        counts[Outcome.FOREIGN] += self.relay.refused if self.relay else 0  # the API's inbox too
        rows = [((outcome.value,), float(counts[outcome])) for outcome in Outcome]
        yield telemetry.counter(
            "zmq_compat_requests", "Gateway requests and results, by outcome", ["outcome"], rows
        )
        refused = float(self.shim.peers.refused) if self.shim else 0.0
        yield telemetry.counter(
            "zmq_compat_peers_refused",
            "Connections to the gateway's sockets from addresses not in ZMQ_ALLOWED_PEERS",
            [],
            [((), refused)],
        )
        kinds = self.shim.unsupported if self.shim else dict.fromkeys(envelopes.NOT_SERVED, 0)
        yield telemetry.counter(
            "zmq_compat_unsupported_requests",
            "The current gateway's requests of a type not served here (audio, voice), by type",
            ["type"],
            [((kind,), float(n)) for kind, n in kinds.items()],
        )
        if self.api is not None:
            counted = self.api.requests
            known = {key for key in counted} | {(e, "200") for e in self.endpoints}
            yield telemetry.counter(
                "translator_http_requests",
                "HTTP API requests, by endpoint and status code",
                ["endpoint", "code"],
                [((e, code), float(counted.get((e, code), 0))) for e, code in sorted(known)],
            )


async def run(settings: ShimSettings) -> int:
    readiness = Readiness()
    health = HealthServer(readiness.check, telemetry.endpoint(readiness, settings.metrics_enabled))
    relay = readiness.relay = Relay(settings.api_timeout)
    catalog = Catalog.of(settings)  # what the models write: the API's languages, the shim's
    if settings.http_api_enabled:
        readiness.api = Api(settings, relay, catalog)
    app = build_app(readiness.api, health.routes())
    readiness.endpoints = endpoints(app)
    stopping = anyio.Event()
    async with anyio.create_task_group() as tg:

        def stop() -> None:  # before the shim serves, a stop is immediate; then, a drain
            stopping.set()
            if readiness.shim is None:
                tg.cancel_scope.cancel()

        tg.start_soon(stop_on_signal, stop)
        tg.start_soon(readiness.lag.watch)
        await tg.start(
            http.serve, app, settings.health_host, settings.zmq_health_port,
            http.HttpLimits.of(settings),
            "HTTP API, health and metrics" if readiness.api else "health and metrics",
        )  # fmt: skip
        readiness.nc = nc = await connect(
            settings, f"zmq-compat-{settings.zmq_shim_name}", Role.SHIM, buffered=False
        )
        await verify_topology(nc.jetstream(), settings)
        await relay.start(nc)
        shim = Shim(settings, nc, catalog)
        await shim.remember()  # before the gateway's retries can come
        shim.bind()
        readiness.shim = shim
        try:
            async with anyio.create_task_group() as work:
                await work.start(shim.receive)
                work.start_soon(shim.track_subscribers)
                work.start_soon(shim.forward_results)
                log.info("zmq_compat ready (session %s)", shim.session_id)
                await stopping.wait()
                await shim.drain(settings.zmq_drain_timeout)
                await shim.stop_results(_RESULTS_STOP)
                work.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLOSE):
                shim.close()
                with contextlib.suppress(OSError, nats.errors.Error):
                    await nc.close()  # unacked results are redelivered to the next shim
            log.info(
                "zmq_compat stopped: %d frames taken from PULL while stopping; %s",
                shim.taken_on_stop,
                {outcome.value: n for outcome, n in shim.counts.items()},
            )
        tg.cancel_scope.cancel()
    return 0
