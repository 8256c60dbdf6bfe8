"""A chat-like workload through a real worker: `python -m bench.chat_workload [--messages 400]`.

Messages (deterministic): short lines (the English ones of `bench/data/chat_lines.tsv`), some
with emoji, a URL or an @mention, one in ten a multi-paragraph message, and about a third
repeats of popular lines. One worker (t5-small shape, RANDOM WEIGHTS, TORCH_THREADS=2), all
messages submitted at once; translations/s and latency (submission to result) in one run of:
- text plan against whole messages (TEXT_PLAN=false), cache off, with a model that never ends a
  row by itself, so that each row runs to its budget (GENERATION_RATIO=1.2, no repetition stop):
  every row costs about what a real model's output would, about the source's length;
- the cache on against off, plans on both, with a model whose rows are all 16 tokens (a random
  model's rows cut by a budget are incomplete, and never cached);
- one long message (12 paragraphs, about 1,500 tokens) alone, with its plan and whole."""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

import anyio
import nats.js.errors
from nats.aio.client import Client

from bench.common import ROOT, machine, random_model, start_worker, wait_ready
from bench.detection import lines
from translator.bus.client import submit
from translator.bus.connection import connect
from translator.bus.embedded import EmbeddedNats
from translator.bus.topology import setup_topology
from translator.contracts.messages import TranslationRequest, TranslationResult
from translator.contracts.settings import TranslatorSettings
from translator.contracts.subjects import Pool
from translator.inference import randomweights

DECORATIONS = [" 😂", " 👍🏽", " https://meeshy.me/c/123", " @marie", " 🎉🎉", ""]


def workload(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    english = [line for language, line in lines() if language == "en"]
    popular = english[:6]
    messages = []
    for i in range(count):
        roll = rng.random()
        if roll < 0.33:
            messages.append(rng.choice(popular))  # "ok thanks", "see you tomorrow"...
        elif roll < 0.43:
            paragraphs = [
                " ".join(s.capitalize() + "." for s in rng.sample(english, 3)) for _ in range(3)
            ]
            messages.append("\n\n".join(paragraphs))
        else:
            prefix = "@alex " if rng.random() < 0.15 else ""
            messages.append(prefix + rng.choice(english) + rng.choice(DECORATIONS))
        if i % 50 == 49:
            messages[-1] = messages[-1] + " 😂😂"
    return messages


def long_message() -> str:
    english = [line for language, line in lines() if language == "en"]
    paragraphs = [" ".join(s.capitalize() + "." for s in english[i : i + 10]) for i in range(12)]
    return "\n\n".join(paragraphs)


async def load(nc: Client, texts: list[str]) -> dict[str, float]:
    """Submit every message at once; throughput and each message's latency."""
    inbox = nc.new_inbox()
    sent: dict[str, float] = {}
    latencies: list[float] = []
    cached = pieces = 0
    done = anyio.Event()

    async def on_result(msg: object) -> None:
        nonlocal cached, pieces
        result = TranslationResult.model_validate_json(msg.data)  # type: ignore[attr-defined]
        latencies.append(time.perf_counter() - sent[result.task_id])
        cached += result.pieces_cached
        pieces += result.pieces
        if len(latencies) == len(texts):
            done.set()

    sub = await nc.subscribe(inbox, cb=on_result)
    started = time.perf_counter()
    for text in texts:
        request = TranslationRequest(
            message_id=f"chat-{len(sent)}", text=text, source_language="en",
            target_languages=("fr",), conversation_id="bench",
        )  # fmt: skip
        sent[request.task_id] = time.perf_counter()
        await submit(nc, request, inbox)
    with anyio.fail_after(1800):
        await done.wait()
    elapsed = time.perf_counter() - started
    await sub.unsubscribe()
    latencies.sort()
    return {
        "messages": len(texts),
        "translations_per_s": round(len(texts) / elapsed, 2),
        "seconds": round(elapsed, 2),
        "latency_p50_s": round(statistics.median(latencies), 3),
        "latency_p99_s": round(latencies[min(int(0.99 * len(latencies)), len(latencies) - 1)], 3),
        "pieces": pieces,
        "pieces_from_cache": cached,
    }


async def mode(url: str, model: Path, texts: list[str], **settings: str) -> dict[str, float]:
    env = {
        "NATS_URL": url, "BASIC_MODEL": str(model), "MODELS_OFFLINE": "true",
        "TORCH_THREADS": "2", "BATCH_SIZE": "32", "LOG_LEVEL": "WARNING", **settings,
    }  # fmt: skip
    nc = await connect(TranslatorSettings(nats_url=url), "bench")
    js = nc.jetstream()
    with contextlib.suppress(nats.js.errors.NotFoundError):  # not created yet
        await js.purge_stream("KV_TRANSLATOR_CACHE")
    worker = start_worker(Pool.NORMAL, env)
    try:
        await wait_ready(nc, {worker.pid})
        await load(nc, ["warm up", "the worker"])
        result = await load(nc, texts)
    finally:
        worker.terminate()
        worker.wait(60)
        await nc.close()
    print(settings, result, flush=True)
    return result


async def main(args: argparse.Namespace) -> dict[str, object]:
    cache = ROOT / ".data" / "bench-models"
    free = cache / "t5-small-random-free"
    if not (free / "config.json").is_file():
        randomweights.build("t5", free, shape="small", output_tokens=512)
    fixed = random_model(cache, 16)  # 16 tokens for every row, complete by the model's own say
    texts = workload(args.messages)
    no_cache = {"CACHE_ENABLED": "false"}
    # a random model never ends a row: it runs to its budget, here about a real model's output
    to_budget = {"GENERATION_RATIO": "1.2", "GENERATION_FLOOR": "4", "MAX_NEW_TOKENS": "512",
                 "REPETITION_LIMIT": "0"}  # fmt: skip
    with tempfile.TemporaryDirectory() as store, EmbeddedNats(Path(store)) as server:
        settings = TranslatorSettings(nats_url=server.url)
        nc = await connect(settings, "bench-setup")
        await setup_topology(nc.jetstream(), settings)
        await nc.close()
        url = server.url
        plan_or_whole = {
            "plan": await mode(url, free, texts, **no_cache, **to_budget),
            "whole": await mode(url, free, texts, **no_cache, **to_budget, TEXT_PLAN="false"),
        }
        cache_or_not = {
            "plan_and_cache": await mode(url, fixed, texts),
            "plan_no_cache": await mode(url, fixed, texts, **no_cache),
        }
        long = [long_message()]
        long_case = {
            "plan": await mode(url, free, long, **no_cache, **to_budget),
            "whole": await mode(url, free, long, **no_cache, **to_budget, TEXT_PLAN="false"),
        }

    def ratio(a: dict[str, float], b: dict[str, float]) -> float:
        return round(a["translations_per_s"] / b["translations_per_s"], 2)

    return {
        "machine": machine(),
        "workload": {
            "messages": len(texts),
            "repeats": len(texts) - len(set(texts)),
            "multi_paragraph": sum(1 for t in texts if "\n\n" in t),
        },
        "plan_or_whole": {
            "model": "t5-small shape, RANDOM WEIGHTS, each row runs to its budget (ratio 1.2)",
            **plan_or_whole,
            "plan_over_whole": ratio(plan_or_whole["plan"], plan_or_whole["whole"]),
        },
        "cache_or_not": {
            "model": "t5-small shape, RANDOM WEIGHTS, 16 tokens out for every row",
            **cache_or_not,
            "cache_over_none": ratio(cache_or_not["plan_and_cache"], cache_or_not["plan_no_cache"]),
        },
        "long_message": long_case,
    }


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=400)
    print(json.dumps(anyio.run(main, parser.parse_args()), indent=2))


if __name__ == "__main__":
    cli()
