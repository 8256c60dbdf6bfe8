"""The 0.4.9 gateway's reading pace, and ZMQ_PONG_INTERVAL: `python -m bench.slow_gateway
[--requests 200]`.

The Meeshy 0.4.9 gateway's ZeroMQ client reads at most one frame per 100 ms
(`setInterval(checkForMessages, 100)`), pongs included, and pings before every request. A burst
of N requests therefore takes about 2N x 0.1 s to come back, whatever the translator does. This
measures that ceiling with the echo backend (no model), the shim answering every ping (the
protocol's default) against at most one pong per second (ZMQ_PONG_INTERVAL=1), in one run."""

from __future__ import annotations

import argparse
import json
import os
import signal
import tempfile
import time
from pathlib import Path

import anyio

from bench.common import machine, start_worker, wait_ready
from bench.edge_faults import Gateway
from tests.support import free_port, start_module
from translator.bus.connection import connect
from translator.bus.embedded import EmbeddedNats
from translator.bus.topology import setup_topology
from translator.contracts.settings import TranslatorSettings
from translator.contracts.subjects import Pool
from translator.inference.models import ECHO_MODEL_ID

TICK = 0.1  # the 0.4.9 client's read interval


class PacedGateway(Gateway):
    async def read(self) -> None:
        """One frame per tick, as the 0.4.9 client does."""
        while True:
            self.record(await self.sub.recv())
            await anyio.sleep(TICK)


async def burst(env: dict[str, str], count: int, log: Path) -> dict[str, float]:
    pull, pub = free_port(), free_port()
    shim_env = {**env, "TRANSLATOR_ZMQ_PULL_PORT": str(pull), "TRANSLATOR_ZMQ_PUB_PORT": str(pub)}
    shim = start_module(["zmq_compat"], shim_env, log)
    gateway = PacedGateway(pull, pub)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(gateway.read)
            with anyio.fail_after(60):
                while gateway.pongs == 0:
                    await gateway.push.send(b'{"type": "ping", "timestamp": 0}')
                    await anyio.sleep(0.5)
            await anyio.sleep(1.5)  # the warm-up pongs are read
            gateway.pongs = 0
            started = time.monotonic()
            for i in range(count):
                await gateway.send(i)
            with anyio.fail_after(count * 2 * TICK * 3 + 60):
                while not gateway.settled():  # noqa: ASYNC110
                    await anyio.sleep(0.05)
            took = time.monotonic() - started
            tg.cancel_scope.cancel()
    finally:
        gateway.close()
        shim.send_signal(signal.SIGTERM)
        shim.wait(60)
    return {"seconds": round(took, 1), "pongs_read": gateway.pongs, "results_read": count}


async def run(count: int, root: Path) -> dict[str, object]:
    with EmbeddedNats(root / "nats") as server:
        settings = TranslatorSettings(nats_url=server.url)
        nc = await connect(settings, "bench")
        await setup_topology(nc.jetstream(), settings)
        env = {
            **os.environ, "NATS_URL": server.url, "BASIC_MODEL": ECHO_MODEL_ID,
            "LOG_LEVEL": "WARNING", "ZMQ_BIND_HOST": "127.0.0.1", "ZMQ_HEALTH_PORT": "0",
            "METRICS_ENABLED": "false",
        }  # fmt: skip
        worker = start_worker(Pool.NORMAL, env)
        try:
            await wait_ready(nc, {worker.pid})
            every_ping = await burst({**env, "ZMQ_PONG_INTERVAL": "0"}, count, root / "a.log")
            one_per_s = await burst({**env, "ZMQ_PONG_INTERVAL": "1"}, count, root / "b.log")
        finally:
            worker.terminate()
            worker.wait(30)
            await nc.close()
    return {
        "machine": machine(),
        "backend": f"{ECHO_MODEL_ID} (no model)",
        "requests_in_burst": count,
        "gateway_read_interval_s": TICK,
        "pong_every_ping": every_ping,
        "pong_at_most_one_per_s": one_per_s,
        "speedup": round(every_ping["seconds"] / one_per_s["seconds"], 2),
    }


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--requests", type=int, default=200)
    options = args.parse_args()
    with tempfile.TemporaryDirectory() as root:
        print(json.dumps(anyio.run(run, options.requests, Path(root)), indent=2))


if __name__ == "__main__":
    main()
