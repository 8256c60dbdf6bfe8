"""`translator up`: the local all-in-one run.

An embedded NATS server unless NATS_URL is set, the topology, the gateway shim (zmq_compat) and
a fixed number of worker processes per pool (NORMAL_WORKERS / ANY_WORKERS), supervised.
Ctrl-C stops everything: the shim, then the workers, then NATS."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from contextlib import ExitStack

import anyio

from scaler.supervisor import Supervisor
from translator.children import spawn
from translator.connection import connect
from translator.embedded import EmbeddedNats
from translator.settings import TranslatorSettings
from translator.signals import stop_on_signal
from translator.subjects import Pool
from translator.topology import ensure_topology

log = logging.getLogger(__name__)


def with_nats(settings: TranslatorSettings, stack: ExitStack) -> TranslatorSettings:
    """The settings with NATS_URL pointing at a server: the given one or an embedded one."""
    if settings.nats_url:
        return settings
    server = stack.enter_context(
        EmbeddedNats(settings.data_dir / "nats", port=settings.embedded_nats_port)
    )
    return settings.model_copy(update={"nats_url": server.url})


async def run_up(settings: TranslatorSettings) -> int:
    with ExitStack() as stack:
        settings = with_nats(settings, stack)
        nc = await connect(settings, "translator-up")
        await ensure_topology(nc.jetstream(), settings)
        await nc.close()
        url = settings.nats_url or ""
        supervisor = Supervisor(env={"NATS_URL": url}, grace=settings.shutdown_grace_period + 5)
        shim = spawn([sys.executable, "-m", "zmq_compat"], {**os.environ, "NATS_URL": url})
        stack.callback(_stop, shim)
        stopped = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_on_signal, stopped.set)
            for pool in Pool:
                await supervisor.scale(pool, settings.initial_workers(pool))
            tg.start_soon(supervisor.supervise)
            log.info("translator up: NATS at %s; Ctrl-C to stop", url)
            await stopped.wait()
            tg.cancel_scope.cancel()
        with anyio.CancelScope(shield=True):
            _stop(shim)
            await supervisor.stop_all()
    return 0


def _stop(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
