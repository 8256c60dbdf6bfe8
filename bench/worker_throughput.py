"""Benchmark: one worker, a t5-small-shaped model with RANDOM WEIGHTS and a fixed output length.

Sentences/s one at a time (BATCH_SIZE=1, as 0.4.9 translated) against batched (BATCH_SIZE=32),
float32 against int8 (torch dynamic quantization), each INFERENCE_ENGINE (transformers,
ctranslate2), and the worker's RSS and model load time. Every configuration runs the real worker
subprocess against a real nats-server; median of --repeats runs.

    python -m bench.worker_throughput [--requests-single 24] [--requests-batched 256]
    python -m bench.worker_throughput --engines transformers,ctranslate2 --batch-sizes 32,64
    python -m bench.worker_throughput --device cuda --quantizations float32,float16,int8,int4
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
from translator.bus.connection import connect
from translator.bus.embedded import EmbeddedNats
from translator.bus.topology import setup_topology
from translator.contracts.settings import TranslatorSettings
from translator.contracts.subjects import Pool


async def measure(
    url: str,
    model: Path,
    quantization: str,
    batch: int,
    count: int,
    args: argparse.Namespace,
    engine: str,
) -> list[dict[str, float]]:
    """One worker for this configuration: a warm-up, then `repeats` timed loads."""
    env = {
        "DEVICE": args.device,
        "INFERENCE_ENGINE": engine,
        "MODELS_PATH": str(ROOT / ".data" / "bench-models" / "store"),  # conversions, kept
        "NATS_URL": url,
        "BASIC_MODEL": str(model),
        "MODELS_OFFLINE": "true",
        "QUANTIZATION_LEVEL": quantization,
        "BATCH_SIZE": str(batch),
        "BATCH_WINDOW_MS": "20",
        "LOG_LEVEL": "WARNING",
        "CACHE_ENABLED": "false",  # the same sentences again and again: the engine is measured
    }
    if args.threads:
        env["TORCH_THREADS"] = str(args.threads)
    nc = await connect(TranslatorSettings(nats_url=url), "bench")
    worker = start_worker(Pool.NORMAL, env)
    try:
        await wait_ready(nc, {worker.pid})
        await run_load(nc, requests(max(4, batch)))  # warm-up
        runs = []
        for _ in range(args.repeats):
            seconds = await run_load(nc, requests(count))
            beat = await worker_beat(nc, worker.pid)
            loads = beat.stats.model_load_seconds if beat else {}
            runs.append(
                {
                    "sentences_per_s": count / seconds,
                    "rss_mb": beat.rss_mb if beat else 0,
                    "load_s": max(loads.values(), default=0.0),
                }
            )
    finally:
        worker.terminate()
        worker.wait(60)
        await nc.close()
    return runs


async def main(args: argparse.Namespace) -> dict[str, object]:
    model = random_model(ROOT / ".data" / "bench-models", args.output_tokens, args.arch, args.shape)
    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as store, EmbeddedNats(Path(store)) as server:
        settings = TranslatorSettings(nats_url=server.url)
        nc = await connect(settings, "bench-setup")
        await setup_topology(nc.jetstream(), settings)
        await nc.close()
        sizes = [int(size) for size in args.batch_sizes.split(",")]
        engines = args.engines.split(",")
        for engine in engines:
            for quantization in args.quantizations.split(","):
                for batch in sizes:
                    count = args.requests_single if batch == 1 else args.requests_batched
                    runs = await measure(
                        server.url, model, quantization, batch, count, args, engine
                    )
                    key = f"{quantization} batch={batch}"
                    key = key if engine == "transformers" else f"{engine} {key}"
                    rows[key] = {
                        "sentences_per_s": round(median([r["sentences_per_s"] for r in runs]), 2),
                        "rss_mb": round(median([r["rss_mb"] for r in runs]), 1),
                        "load_s": round(median([r["load_s"] for r in runs]), 2),
                        "runs": [round(r["sentences_per_s"], 2) for r in runs],  # type: ignore[dict-item]
                    }
                    print(key, rows[key], flush=True)
    top = max(sizes)
    ratios = {
        f"{level} batch={top} / float32 batch={base}": round(
            rows[f"{level} batch={top}"]["sentences_per_s"]
            / rows[f"float32 batch={base}"]["sentences_per_s"],
            2,
        )
        for level in args.quantizations.split(",")
        for base in sorted({1, top})
        if f"{level} batch={top}" in rows and f"float32 batch={base}" in rows
    }
    for level in args.quantizations.split(","):
        for batch in sizes:
            mine, theirs = f"ctranslate2 {level} batch={batch}", f"{level} batch={batch}"
            if mine in rows and theirs in rows:
                ratios[f"{mine} / transformers"] = round(
                    rows[mine]["sentences_per_s"] / rows[theirs]["sentences_per_s"], 2
                )
    return {
        "machine": machine(),
        "device": args.device,
        "model": f"{args.arch} {args.shape} shape, RANDOM WEIGHTS, {args.output_tokens} tokens out",
        "results": rows,
        "ratios": ratios,
    }


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests-single", type=int, default=24)
    parser.add_argument("--requests-batched", type=int, default=256)
    parser.add_argument("--output-tokens", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", default="1,32", help="comma-separated")
    parser.add_argument("--quantizations", default="float32,int8", help="QUANTIZATION_LEVELs")
    parser.add_argument("--device", default="auto", help="DEVICE for the worker: cpu, cuda")
    parser.add_argument(
        "--engines", default="transformers", help="INFERENCE_ENGINEs, comma-separated"
    )
    parser.add_argument("--threads", type=int, default=0, help="TORCH_THREADS (0: the default)")
    parser.add_argument("--arch", default="t5", choices=["t5", "nllb", "m2m100", "marian"])
    parser.add_argument("--shape", default="small", help="tiny, small (t5-small), nllb-600m")
    report = anyio.run(main, parser.parse_args())
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    cli()
