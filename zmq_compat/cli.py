"""The `zmq-compat` command: the gateway's ZeroMQ protocol on top of JetStream."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from translator.runtime import entrypoint
from zmq_compat.settings import ShimSettings


def parser() -> argparse.ArgumentParser:
    return entrypoint.parser("zmq-compat", __doc__)


async def run(settings: ShimSettings) -> int:
    from zmq_compat.service import run as serve  # not needed by `--check`

    return await serve(settings)


def main(argv: Sequence[str] | None = None) -> int:
    settings = ShimSettings()
    return entrypoint.run_service(
        parser(), argv, settings, settings.zmq_health_port, "zmq-compat", run
    )


if __name__ == "__main__":
    raise SystemExit(main())
