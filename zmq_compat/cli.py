"""The `zmq-compat` command: the gateway's ZeroMQ protocol on top of JetStream."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import anyio

from translator import logs, tracing
from zmq_compat.settings import ShimSettings


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zmq-compat", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 0 if /ready answers 200")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = ShimSettings()
    if args.check:
        from translator.health import check_ready

        return check_ready(settings.zmq_health_port)
    logs.configure(settings.log_level, settings.log_json)
    tracing.setup("zmq-compat")
    from zmq_compat.service import run

    return anyio.run(run, settings)


if __name__ == "__main__":
    raise SystemExit(main())
