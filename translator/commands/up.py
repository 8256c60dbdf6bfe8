"""`translator up`: the local all-in-one run.

An embedded NATS server unless NATS_URL is set, the topology, the scaler, which audits the store
and runs and scales the worker processes of both pools, and then the gateway shim (zmq_compat).
Ctrl-C stops everything: the shim, then the workers, then NATS."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from contextlib import ExitStack

import anyio

from scaler.metrics import ScalerReadiness
from scaler.service import serve as serve_scaler
from scaler.settings import ScalerSettings
from translator.bus.connection import connect
from translator.bus.embedded import EmbeddedNats
from translator.bus.topology import ensure_topology
from translator.runtime.children import spawn, stop
from translator.runtime.signals import stop_on_signal

log = logging.getLogger(__name__)
SHIM_GRACE = 25.0  # the shim's drain (ZMQ_DRAIN_TIMEOUT, 15 s) and its closing, before SIGKILL


def with_nats(settings: ScalerSettings, stack: ExitStack) -> ScalerSettings:
    """The settings with NATS_URL pointing at a server: the given one or an embedded one."""
    if settings.nats_url:
        return settings
    server = stack.enter_context(
        EmbeddedNats(
            settings.data_dir / "nats",
            port=settings.embedded_nats_port,
            sync_interval=settings.embedded_nats_sync,
        )
    )
    return settings.model_copy(update={"nats_url": server.url})


async def run_up(settings: ScalerSettings) -> int:
    with ExitStack() as stack:
        settings = with_nats(settings, stack)
        url = settings.nats_url or ""
        nc = await connect(settings, "translator-up")
        await ensure_topology(nc.jetstream(), settings)
        shims: list[subprocess.Popen[bytes]] = []

        def start_shim() -> None:  # once the store audit has run (scaler/audit.py)
            shims.append(
                spawn([sys.executable, "-m", "zmq_compat"], {**os.environ, "NATS_URL": url})
            )
            stack.callback(stop, shims[0], SHIM_GRACE)

        stopped = anyio.Event()
        readiness = ScalerReadiness()
        health = readiness.register(settings)
        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_on_signal, stopped.set)
            await tg.start(health.serve, settings.health_host, settings.scaler_health_port)
            log.info("translator up: NATS at %s; Ctrl-C to stop", url)
            tg.start_soon(_stop_shim_first, stopped, shims)
            await serve_scaler(settings, nc, stopped, readiness, started=start_shim)
            tg.cancel_scope.cancel()
        await nc.close()
    return 0


async def _stop_shim_first(stopped: anyio.Event, shims: list[subprocess.Popen[bytes]]) -> None:
    await stopped.wait()
    for shim in shims:
        await anyio.to_thread.run_sync(stop, shim, SHIM_GRACE)
