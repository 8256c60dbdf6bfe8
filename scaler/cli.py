"""The `scaler` command: the worker pools, scaled on queue depth and utilization."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import anyio

from scaler.settings import ScalerSettings
from translator.runtime import entrypoint


async def run(settings: ScalerSettings) -> int:
    from scaler.metrics import ScalerReadiness
    from scaler.service import serve
    from translator.bus.connection import connect
    from translator.bus.topology import verify_topology
    from translator.contracts.subjects import Role
    from translator.runtime.signals import stop_on_signal

    readiness = ScalerReadiness()
    health = readiness.register(settings)
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(stop_on_signal, stop.set)
        await tg.start(health.serve, settings.health_host, settings.scaler_health_port)
        nc = await connect(settings, "scaler", Role.SCALER)
        await verify_topology(nc.jetstream(), settings)
        scaler = await serve(settings, nc, stop, readiness)
        tg.cancel_scope.cancel()
    await nc.drain()
    counts = {key: n for key, n in scaler.events.scaling.items() if n}
    logging.getLogger(__name__).info("scaler stopped: scaling events %s", counts)
    return 0


def parser() -> argparse.ArgumentParser:
    return entrypoint.parser("scaler", __doc__)


def main(argv: Sequence[str] | None = None) -> int:
    settings = ScalerSettings()
    return entrypoint.run_service(
        parser(), argv, settings, settings.scaler_health_port, "translator-scaler", run
    )


if __name__ == "__main__":
    raise SystemExit(main())
