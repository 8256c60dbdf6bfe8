"""`zmq-compat`: the shim's process, put together."""

from __future__ import annotations

import logging

import anyio

from translator.connection import connect
from translator.signals import stop_on_signal
from translator.topology import ensure_topology
from zmq_compat.settings import ShimSettings
from zmq_compat.shim import Shim

log = logging.getLogger(__name__)


async def run(settings: ShimSettings) -> int:
    nc = await connect(settings, f"zmq-compat-{settings.zmq_shim_name}")
    await ensure_topology(nc.jetstream(), settings)
    shim = Shim(settings, nc)
    shim.bind()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_on_signal, tg.cancel_scope.cancel)
            await tg.start(shim.receive)
            tg.start_soon(shim.track_subscribers)
            tg.start_soon(shim.forward_results)
            log.info("zmq_compat ready (session %s)", shim.session_id)
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            shim.close()
            await nc.close()  # unacked results are redelivered to the next shim
    log.info("zmq_compat stopped: %s", dict(shim.counts))
    return 0
