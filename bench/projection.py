"""What the output projection costs at NLLB-200-600M's shape (RANDOM WEIGHTS, 256,206 tokens, 20
tokens out, int8), and what a smaller output vocabulary gives back.

    python -m bench.projection                      # both engines, batches of 1 and 16
    python -m bench.projection --seconds 30 --sizes 256206,131072,32768,8192

transformers: the share of `engine.translate`'s wall time spent in the output projection
(`get_output_embeddings()`, dynamically quantized to int8 like every Linear), timed with forward
hooks around it. CTranslate2: sentences/s of `engine.translate` with a vocabulary map
(`use_vmap`, ct2.with_vocabulary) that keeps K pieces always (chosen at random, seeded: random
weights have no language, so K stands for the pieces of a deployment's target scripts), and
without a map (K = 0 in the report: the whole vocabulary). Each configuration runs in its own
process, one at a time, with every core. The output length is fixed by the model, so every
configuration decodes as many steps."""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import random
import time
from typing import Any

from bench.common import ROOT, machine, random_model, unique_sentence
from translator.contracts.settings import TranslatorSettings
from translator.inference import ct2, engine, generation
from translator.inference.models import LoadedModel, load

OUTPUT_TOKENS = 20
STORE = ROOT / ".data" / "bench-models" / "store"


def _settings(engine_name: str) -> TranslatorSettings:
    return TranslatorSettings(
        models_offline=True, models_path=STORE, quantization_level="int8",
        inference_engine=engine_name, torch_threads=os.cpu_count() or 1,
    )  # fmt: skip


def _rate(loaded: LoadedModel, batch: int, seconds: float) -> tuple[float, float]:
    """Sentences/s of the call a worker makes, and the wall seconds it ran."""
    budget = generation.Budget(2.0, 16, OUTPUT_TOKENS)
    texts = [unique_sentence(i) for i in range(batch)]

    def translate() -> None:
        engine.translate(loaded, texts, "en", "fr", budget=budget, repetition_limit=4)

    translate()  # warm-up
    done, started = 0, time.perf_counter()
    while time.perf_counter() < started + seconds:
        translate()
        done += batch
    wall = time.perf_counter() - started
    return done / wall, wall


def _transformers(model: str, batch: int, seconds: float, out: Any) -> None:
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    loaded = load(model, _settings("transformers"))
    head = loaded.model.get_output_embeddings()
    spent = [0.0]
    began = [0.0]
    head.register_forward_pre_hook(lambda *_: began.__setitem__(0, time.perf_counter()))
    head.register_forward_hook(
        lambda *_: spent.__setitem__(0, spent[0] + time.perf_counter() - began[0])
    )
    _rate(loaded, batch, 1.0)
    spent[0] = 0.0
    rate, wall = _rate(loaded, batch, seconds)
    out.put({"sentences_per_s": round(rate, 2), "projection_share": round(spent[0] / wall, 3)})


def _ctranslate2(model: str, batch: int, seconds: float, size: int, out: Any) -> None:
    import ctranslate2

    loaded = load(model, _settings("ctranslate2"))
    if size:  # 0: the whole vocabulary, no map
        specials = set(loaded.tokenizer.all_special_tokens)
        pieces = [p for p in loaded.tokenizer.get_vocab() if p not in specials]
        kept = random.Random(0).sample(sorted(pieces), size)
        path, digest = ct2.with_vocabulary(loaded.model.path, ["\t" + " ".join(kept)])
        translator = ctranslate2.Translator(
            str(path), compute_type=loaded.model.compute_type, inter_threads=1,
            intra_threads=os.cpu_count() or 1,
        )  # fmt: skip
        model_k = dataclasses.replace(loaded.model, translator=translator)
        loaded = dataclasses.replace(
            loaded, model=model_k, vmap=digest, vmap_targets=frozenset({"fr"})
        )
    rate, _ = _rate(loaded, batch, seconds)
    out.put({"sentences_per_s": round(rate, 2)})


def _alone(target: Any, *args: Any) -> dict[str, float]:
    """One measure in a fresh process (its own threads, nothing left from the last)."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    process = context.Process(target=target, args=(*args, out))
    process.start()
    result: dict[str, float] = out.get(timeout=1800)
    process.join(60)
    return result


def main(args: argparse.Namespace) -> dict[str, object]:
    model = str(random_model(ROOT / ".data" / "bench-models", OUTPUT_TOKENS, "nllb", "nllb-600m"))
    report: dict[str, Any] = {
        "machine": machine(),
        "model": f"nllb-600m shape, RANDOM WEIGHTS, {OUTPUT_TOKENS} tokens out, int8",
        "seconds": args.seconds,
    }
    for batch in args.batches:
        row: dict[str, Any] = {}
        if "transformers" in args.engines:
            row["transformers"] = _alone(_transformers, model, batch, args.seconds)
            print(f"batch {batch} transformers", row["transformers"], flush=True)
        if "ctranslate2" in args.engines:
            sizes: dict[str, Any] = {}
            for size in (0, *args.sizes):
                sizes[str(size)] = _alone(_ctranslate2, model, batch, args.seconds, size)
                print(f"batch {batch} ctranslate2 K={size}", sizes[str(size)], flush=True)
            full = sizes["0"]["sentences_per_s"]
            for measured in sizes.values():
                measured["over_whole_vocabulary"] = round(measured["sentences_per_s"] / full, 2)
            row["ctranslate2"] = sizes
        report[f"batch {batch}"] = row
    return report


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ints = lambda s: [int(x) for x in s.split(",")]  # noqa: E731
    parser.add_argument("--batches", type=ints, default=[1, 16])
    parser.add_argument("--sizes", type=ints, default=[131072, 65536, 32768, 8192])
    parser.add_argument("--seconds", type=float, default=20.0, help="per configuration")
    parser.add_argument(
        "--engines", type=lambda s: s.split(","), default=["transformers", "ctranslate2"]
    )
    print(json.dumps(main(parser.parse_args()), indent=2))


if __name__ == "__main__":
    cli()
