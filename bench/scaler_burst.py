"""Benchmark: a burst of queued requests against the scaler.

The scaler starts with NORMAL_WORKERS=1 and the 0.4.9 rules (queue > 100 and utilization > 0.8:
+5, bounded by MAX_NORMAL_WORKERS), a short check interval and the t5-small-shaped model with
RANDOM WEIGHTS of the worker benchmark (20 output tokens). Reports the time to the scale-up
decision, the time until the new workers return their first results, the time to drain the
queue, and how many requests were lost (must be 0).

    python -m bench.scaler_burst [--requests 2000] [--max-workers 4] [--interval 2]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import anyio
from nats.aio.msg import Msg

from bench.common import ROOT, machine, random_model, requests
from translator.bus.client import submit
from translator.bus.connection import connect
from translator.bus.embedded import EmbeddedNats
from translator.bus.topology import setup_topology
from translator.contracts.messages import ScalingEvent, TranslationResult
from translator.contracts.settings import TranslatorSettings
from translator.contracts.subjects import SCALING_EVENTS
from translator.runtime import logs
from translator.runtime.children import spawn


async def main(args: argparse.Namespace) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp, EmbeddedNats(Path(tmp) / "nats") as server:
        model = random_model(ROOT / ".data" / "bench-models", 20)
        settings = TranslatorSettings(nats_url=server.url)
        nc = await connect(settings, "bench-burst")
        await setup_topology(nc.jetstream(), settings)
        inbox = nc.new_inbox()
        results: dict[str, tuple[float, str]] = {}
        ups: list[tuple[float, ScalingEvent]] = []

        async def on_result(msg: Msg) -> None:
            result = TranslationResult.model_validate_json(msg.data)
            results.setdefault(result.task_id, (time.perf_counter(), result.worker_id))

        async def on_event(msg: Msg) -> None:
            event = ScalingEvent.model_validate_json(msg.data)
            if event.direction == "up":
                ups.append((time.perf_counter(), event))

        await nc.subscribe(inbox, cb=on_result)
        await nc.subscribe(SCALING_EVENTS, cb=on_event)
        burst = requests(args.requests)
        started = time.perf_counter()
        for req in burst:
            await submit(nc, req, inbox)
        env = {
            **os.environ,
            "NATS_URL": server.url,
            "BASIC_MODEL": str(model),
            "NORMAL_WORKERS": "1",
            "ANY_WORKERS": "0",
            "MAX_NORMAL_WORKERS": str(args.max_workers),
            "SCALING_CHECK_INTERVAL": str(args.interval),
            "UTILIZATION_WINDOW": "5",
            "TORCH_THREADS": str(args.torch_threads),
            "HOST_CAP_ENABLED": "false",  # what more workers than cores cost: measured here
            "LOG_LEVEL": "WARNING",
            "CACHE_ENABLED": "false",  # repeated sentences: the workers must translate them
        }
        scaler = spawn([sys.executable, "-m", "scaler"], env)
        try:
            with anyio.fail_after(args.timeout):
                while len(results) < len(burst):  # noqa: ASYNC110
                    await anyio.sleep(0.05)
        finally:
            scaler.terminate()
            scaler.wait(60)
            await nc.close()
    first_worker = min(results.values())[1]
    new_worker_firsts = [t for t, worker in results.values() if worker != first_worker]
    up_at, up = ups[0] if ups else (float("nan"), None)
    return {
        "machine": machine(),
        "model": "t5-small shape, RANDOM WEIGHTS, 20 output tokens",
        "requests": len(burst),
        "torch_threads_per_worker": args.torch_threads,
        "scale_up": f"{up.from_workers} -> {up.to_workers}: {up.reason}" if up else None,
        "seconds_to_scale_up_decision": round(up_at - started, 2),
        "seconds_to_first_result_of_new_workers": round(min(new_worker_firsts) - started, 2)
        if new_worker_firsts
        else None,
        "seconds_to_drain": round(max(t for t, _ in results.values()) - started, 2),
        "workers_that_answered": len({worker for _, worker in results.values()}),
        "lost": len(burst) - len(results),
    }


def cli() -> None:
    logs.quiet_progress_bars()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--max-workers", type=int, default=2)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--torch-threads", type=int, default=1, help="per worker")
    parser.add_argument("--timeout", type=float, default=600.0)
    print(json.dumps(anyio.run(main, parser.parse_args()), indent=2))


if __name__ == "__main__":
    cli()
