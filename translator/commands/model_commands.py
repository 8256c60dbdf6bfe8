"""`translator models list|download|random`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from translator.contracts.messages import MODEL_TYPES, ModelType
from translator.contracts.settings import TranslatorSettings
from translator.inference import firefox, quantization, randomweights
from translator.inference.models import engine_for, is_present, load, local_path


def list_models(settings: TranslatorSettings) -> int:
    """A JSON line per tier, then per pair of the pair table: its model, whether present, where."""
    for model_type in MODEL_TYPES:
        print(
            json.dumps({"modelType": model_type, **_where(settings.model_id(model_type), settings)})
        )
    for pair, model_id in sorted(settings.pair_table().items()):
        print(json.dumps({"pair": pair, **_where(model_id, settings)}))
    return 0


def _where(model_id: str, settings: TranslatorSettings) -> dict[str, object]:
    path = settings.models_path
    where = local_path(model_id, path) or firefox.directory(model_id, path)
    return {
        "model": model_id,
        "present": is_present(model_id, path),
        "path": str(where) if where else None,
    }


def download(settings: TranslatorSettings, model_types: list[ModelType]) -> int:
    """from_pretrained (network), then save_pretrained into MODELS_PATH/<model id>; where
    INFERENCE_ENGINE serves a model with CTranslate2, its conversion too (at QUANTIZATION_LEVEL),
    so that a baked image's workers start without converting."""
    fetching = settings.model_copy(
        update={
            "models_offline": False,
            "quantization_level": "float32",
            "inference_engine": "transformers",  # save_pretrained needs transformers' model
        }
    )
    unknown = set(model_types) - set(MODEL_TYPES)
    if unknown:
        raise SystemExit(f"unknown model types {sorted(unknown)}: use {', '.join(MODEL_TYPES)}")
    for model_type in model_types or list(MODEL_TYPES):
        model_id = settings.model_id(model_type)
        target = settings.models_path / model_id
        loaded = load(model_id, fetching)
        loaded.tokenizer.save_pretrained(target)
        loaded.model.save_pretrained(target)
        line = {"modelType": model_type, "model": model_id, "path": str(target)}
        if engine_for(settings, quantization.resolve_device(settings.device)) == "ctranslate2":
            served = load(model_id, settings.model_copy(update={"models_offline": True}))
            if served.engine == "ctranslate2":
                line["ctranslate2"] = str(served.model.path)
        print(json.dumps(line))
    return 0


def random_model(args: argparse.Namespace) -> int:
    path = randomweights.build(
        args.arch,
        Path(args.directory),
        shape=args.shape,
        output_tokens=args.output_tokens,
        fixed_length=args.fixed_length,
        pair=(args.pair[0], args.pair[1]),
    )
    print(
        json.dumps(
            {
                "path": str(path),
                "architecture": args.arch,
                "shape": args.shape,
                "warning": "RANDOM WEIGHTS: this model's output is meaningless",
            }
        )
    )
    return 0


def firefox_model(directory: str) -> int:
    """A Firefox Translations model's directory made ready to serve: tokenizer.json written
    from its vocabulary when missing, its files checked, the model loaded and run once in a
    child process; then the PAIR_MODELS entry that serves it."""
    from translator.inference import firefox

    where = Path(directory).expanduser()
    try:
        if not (where / "tokenizer.json").is_file():
            print(f"wrote {firefox.write_tokenizer(where)}")
        found = firefox.files(where)
        firefox.probe(where, str(found.model.stat().st_mtime_ns))
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    pair = f"{found.source}-{found.target}"
    print(f"{found.name}: {found.source} -> {found.target}, real weights, ready")
    print(f'serve it with PAIR_MODELS=\'{{"{pair}": "{where.resolve()}"}}\'')
    return 0


def run(settings: TranslatorSettings, args: argparse.Namespace) -> int:
    if args.action == "firefox":
        return firefox_model(args.directory)
    if args.action == "list":
        return list_models(settings)
    if args.action == "download":
        return download(settings, list(args.model_types))
    return random_model(args)
