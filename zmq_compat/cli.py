"""The `zmq-compat` command: the gateway's ZeroMQ protocol on top of JetStream."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import anyio

from translator import logs
from zmq_compat.settings import ShimSettings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="zmq-compat", description=__doc__)
    parser.parse_args(argv)
    settings = ShimSettings()
    logs.configure(settings.log_level, settings.log_json)
    from zmq_compat.service import run

    return anyio.run(run, settings)


if __name__ == "__main__":
    raise SystemExit(main())
