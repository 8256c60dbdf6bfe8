"""Benchmark: one worker, a t5-small-shaped model with RANDOM WEIGHTS and a fixed output length.

Sentences/s one at a time (BATCH_SIZE=1, as 0.4.9 translated) against batched (BATCH_SIZE=32),
float32 against int8 (torch dynamic quantization), and the worker's RSS. Every configuration
runs the real worker subprocess against a real nats-server; median of --repeats runs.

    python -m bench.worker_throughput [--requests-single 24] [--requests-batched 256]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import anyio

from bench.common import (
    ROOT,
    machine,
    median,
    random_model,
    requests,
    run_load,
    start_worker,
    wait_ready,
    worker_beat,
)
from translator.connection import connect
from translator.embedded import EmbeddedNats
from translator.settings import TranslatorSettings
from translator.subjects import Pool
from translator.topology import ensure_topology


async def measure(
    url: str, model: Path, quantization: str, batch: int, count: int
) -> dict[str, float]:
    env = {
        "NATS_URL": url,
        "BASIC_MODEL": str(model),
        "MODELS_OFFLINE": "true",
        "QUANTIZATION_LEVEL": quantization,
        "BATCH_SIZE": str(batch),
        "BATCH_WINDOW_MS": "20",
        "LOG_LEVEL": "WARNING",
    }
    nc = await connect(TranslatorSettings(nats_url=url), "bench")
    worker = start_worker(Pool.NORMAL, env)
    try:
        await wait_ready(nc, {worker.pid})
        await run_load(nc, requests(4))  # warm-up
        seconds = await run_load(nc, requests(count))
        beat = await worker_beat(nc, worker.pid)
    finally:
        worker.terminate()
        worker.wait(60)
        await nc.close()
    return {"sentences_per_s": count / seconds, "rss_mb": beat.rss_mb if beat else 0.0}


async def main(args: argparse.Namespace) -> dict[str, object]:
    model = random_model(ROOT / ".data" / "bench-models", args.output_tokens)
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as store, EmbeddedNats(Path(store)) as server:
        settings = TranslatorSettings(nats_url=server.url)
        nc = await connect(settings, "bench-setup")
        await ensure_topology(nc.jetstream(), settings)
        await nc.close()
        sizes = [int(size) for size in args.batch_sizes.split(",")]
        for quantization in ("float32", "int8"):
            for batch in sizes:
                count = args.requests_single if batch == 1 else args.requests_batched
                runs = [
                    await measure(server.url, model, quantization, batch, count)
                    for _ in range(args.repeats)
                ]
                key = f"{quantization} batch={batch}"
                rows[key] = {
                    "sentences_per_s": round(median([r["sentences_per_s"] for r in runs]), 2),
                    "rss_mb": round(median([r["rss_mb"] for r in runs]), 1),
                    "runs": [round(r["sentences_per_s"], 2) for r in runs],  # type: ignore[dict-item]
                }
                print(key, rows[key], flush=True)
    speedup = (
        rows["float32 batch=32"]["sentences_per_s"] / rows["float32 batch=1"]["sentences_per_s"]
    )
    int8 = rows["int8 batch=32"]["sentences_per_s"] / rows["float32 batch=32"]["sentences_per_s"]
    return {
        "machine": machine(),
        "model": f"t5-small shape, RANDOM WEIGHTS, {args.output_tokens} output tokens",
        "results": rows,
        "batched_over_single_fp32": round(speedup, 1),
        "int8_over_fp32_batched": round(int8, 2),
    }


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests-single", type=int, default=24)
    parser.add_argument("--requests-batched", type=int, default=256)
    parser.add_argument("--output-tokens", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", default="1,32", help="comma-separated; 1 is required")
    report = anyio.run(main, parser.parse_args())
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    cli()
