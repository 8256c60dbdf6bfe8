"""What `sync_interval: always` costs a JetStream publish on this machine's disk.

For each policy (`always`, nats-server's default `2m`) an embedded nats-server on a temporary
store, one file stream like the request streams, and a request-sized message (about 300 bytes)
published by one client: sequentially (each publish waits for its ack: the latency the gateway
shim sees per request) and with `--window` publishes in flight (the shim's concurrent
publishers: throughput). Reports medians and p99 over `--rounds` alternating rounds.

    python -m bench.durability --count 2000 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import anyio
import nats
from nats.js.api import StorageType, StreamConfig

from bench.common import machine, percentile
from translator.bus.embedded import EmbeddedNats

POLICIES = ("always", "2m")
BODY = json.dumps({"text": "x" * 240, "sourceLanguage": "en", "targetLanguage": "fr"}).encode()


async def one_round(policy: str, count: int, window: int) -> dict[str, float]:
    with (
        tempfile.TemporaryDirectory() as store,
        EmbeddedNats(Path(store), sync_interval=policy) as server,
    ):
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await js.add_stream(
            StreamConfig(name="BENCH", subjects=["bench.>"], storage=StorageType.FILE)
        )
        latencies = []
        for i in range(count):
            started = time.perf_counter()
            await js.publish("bench.seq", BODY, headers={"Nats-Msg-Id": f"s{i}"})
            latencies.append(time.perf_counter() - started)
        limiter = anyio.Semaphore(window)

        async def publish(i: int) -> None:
            try:
                await js.publish("bench.win", BODY, headers={"Nats-Msg-Id": f"w{i}"})
            finally:
                limiter.release()

        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for i in range(count):
                await limiter.acquire()
                tg.start_soon(publish, i)
        concurrent = count / (time.perf_counter() - started)
        await nc.close()
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": percentile(sorted(latencies), 0.99) * 1000,
        "sequential_per_s": count / sum(latencies),
        "concurrent_per_s": concurrent,
    }


async def main(args: argparse.Namespace) -> dict[str, object]:
    rounds: dict[str, list[dict[str, float]]] = {policy: [] for policy in POLICIES}
    for _ in range(args.rounds):
        for policy in POLICIES:  # alternating: the machine's noise falls on both
            rounds[policy].append(await one_round(policy, args.count, args.window))
    medians = {
        policy: {key: round(statistics.median(r[key] for r in runs), 2) for key in runs[0]}
        for policy, runs in rounds.items()
    }
    fast, safe = medians["2m"], medians["always"]
    return {
        "machine": machine(),
        "count": args.count,
        "window": args.window,
        "rounds": args.rounds,
        "medians": medians,
        "always_over_2m": {
            "p50_latency": round(safe["p50_ms"] / fast["p50_ms"], 2),
            "concurrent_rate": round(safe["concurrent_per_s"] / fast["concurrent_per_s"], 2),
        },
    }


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=2000, help="publishes per round and mode")
    parser.add_argument("--window", type=int, default=64, help="publishes in flight")
    parser.add_argument("--rounds", type=int, default=3)
    print(json.dumps(anyio.run(main, parser.parse_args()), indent=2))


if __name__ == "__main__":
    cli()
