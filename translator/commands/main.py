"""The `translator` command: up, setup, worker, submit, status, models, schemas, nats-config."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

import anyio
from nats.aio.client import Client

from translator.contracts.messages import MODEL_TYPES
from translator.contracts.settings import TranslatorSettings
from translator.contracts.subjects import Pool, Role
from translator.runtime import entrypoint, logs, tracing
from translator.runtime.signals import exit_without_threads


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="translator", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("up", help="embedded NATS (unless NATS_URL) and the worker pools")
    setup = commands.add_parser(
        "setup", help="the operator's set-up: every stream, consumer and bucket"
    )
    setup.add_argument(
        "--app", action="store_true", help="as an application: its own TRANSLATE_RESULTS"
    )
    worker = commands.add_parser("worker", help="one worker process of a pool")
    worker.add_argument("--pool", choices=[p.value for p in Pool], required=True)
    submit = commands.add_parser("submit", help="translate TEXT through NATS; one JSON per line")
    submit.add_argument("text")
    submit.add_argument("--from", dest="source", default="fr")
    submit.add_argument("--to", dest="targets", action="append", required=True)
    submit.add_argument("--model", choices=MODEL_TYPES, default="basic")
    submit.add_argument("--conversation", default="cli")
    submit.add_argument("--timeout", type=float, default=120.0)
    status = commands.add_parser("status", help="queue, workers and scaling per pool")
    status.add_argument("--watch", action="store_true", help="refresh every 2 seconds")
    models = commands.add_parser("models", help="list, download or generate models")
    actions = models.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="configured models and whether they are present")
    download = actions.add_parser("download", help="download into MODELS_PATH")
    download.add_argument("model_types", nargs="*", metavar="TYPE", help="default: all types")
    random = actions.add_parser("random", help="write a model with RANDOM WEIGHTS (tests only)")
    random.add_argument("directory")
    random.add_argument("--arch", choices=["t5", "nllb", "m2m100", "marian"], default="t5")
    random.add_argument("--shape", choices=["tiny", "small", "nllb-600m"], default="tiny")
    random.add_argument("--output-tokens", type=int, default=8)
    random.add_argument("--fixed-length", action="store_true")
    random.add_argument("--pair", nargs=2, default=["en", "fr"], metavar=("SRC", "TGT"))
    marian = actions.add_parser(
        "firefox", help="ready a Firefox Translations model directory (tokenizer.json, checks)"
    )
    marian.add_argument("directory", help="Mozilla's files for one pair, gunzipped")
    docs = commands.add_parser("schemas", help="write the NATS messages' JSON Schemas and docs")
    docs.add_argument("--out", default="docs", help="the docs directory (default: docs)")
    docs.add_argument("--check", action="store_true", help="only say whether they are current")
    conf = commands.add_parser(
        "nats-config", help="write the NATS accounts and users (deploy/nats, Helm values)"
    )
    conf.add_argument("--out", default="deploy", help="the deploy directory (default: deploy)")
    conf.add_argument("--check", action="store_true", help="only say whether they are current")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "schemas":
        from pathlib import Path

        from translator.commands import schema_commands

        return schema_commands.run(Path(args.out), args.check)
    if args.command == "nats-config":
        from pathlib import Path

        from translator.commands import nats_config

        return nats_config.run(Path(args.out), args.check)
    settings = TranslatorSettings()
    logs.configure(settings.log_level, settings.log_json)
    if args.command == "worker":
        from translator.worker.runner import run_worker

        tracing.setup("translator-worker")
        run = lambda: anyio.run(run_worker, settings, Pool(args.pool))  # noqa: E731
        return exit_without_threads(entrypoint.explained("translator worker", run))
    if args.command == "up":
        from scaler.settings import ScalerSettings
        from translator.commands.up import run_up

        tracing.setup("translator-scaler")
        return anyio.run(run_up, ScalerSettings())
    if args.command == "setup":
        from translator.commands.setup import run_setup

        return anyio.run(run_setup, settings, args.app)
    if args.command == "submit":
        tracing.setup("translator-client")
        return anyio.run(_submit, settings, args)
    if args.command == "status":
        return anyio.run(_status, settings, args.watch)
    from translator.commands import model_commands

    return model_commands.run(settings, args)


async def _connect_once(settings: TranslatorSettings, name: str, role: Role) -> Client | None:
    """A connection for a one-shot command, or None after saying why there is none."""
    from translator.bus.connection import NatsUnreachable, connect

    try:
        return await connect(settings, name, role, patient=False)
    except NatsUnreachable as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return None


async def _status(settings: TranslatorSettings, watch: bool) -> int:
    from translator.bus.retry import JetStreamUnavailable
    from translator.commands.status import show

    nc = await _connect_once(settings, "translator-status", Role.OPERATOR)
    if nc is None:
        return 2
    try:
        await show(nc, watch)
    except JetStreamUnavailable as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 1
    finally:
        await nc.close()
    return 0


async def _submit(settings: TranslatorSettings, args: argparse.Namespace) -> int:
    from translator.bus.client import translate
    from translator.contracts.errors import TranslatorError
    from translator.contracts.messages import TranslationRequest

    request = TranslationRequest(
        message_id=f"cli-{anyio.current_time():.0f}",
        text=args.text,
        source_language=args.source,
        target_languages=tuple(args.targets),
        model_type=args.model,
        conversation_id=args.conversation,
    )
    nc = await _connect_once(settings, "translator-submit", Role.CLIENT)
    if nc is None:
        return 2
    try:
        results = await translate(nc, request, timeout=args.timeout)
    except (TranslatorError, TimeoutError) as exc:
        print(json.dumps({"error": str(exc) or "timed out"}), file=sys.stderr)
        return 1
    finally:
        await nc.close()
    for result in results:
        print(result.model_dump_json(by_alias=True))
    return 0 if all(r.status == "ok" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
