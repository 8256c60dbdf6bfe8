"""What every long-running service's command shares: no arguments but `--check` (exit 0 when
its /ready answers 200, for container health checks); otherwise logging and tracing set up
once, then the service until a signal stops it."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import anyio

from translator.contracts.errors import TopologyMissing
from translator.contracts.settings import NatsSettings
from translator.runtime import logs, tracing
from translator.runtime.health import check_ready

S = TypeVar("S", bound=NatsSettings)
log = logging.getLogger(__name__)


def parser(prog: str, description: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--check", action="store_true", help="exit 0 if /ready answers 200")
    return parser


def run_service(
    command: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    settings: S,
    health_port: int,
    service_name: str,
    serve: Callable[[S], Awaitable[int]],
) -> int:
    if command.parse_args(argv).check:
        return check_ready(health_port)
    logs.configure(settings.log_level, settings.log_json)
    tracing.setup(service_name)
    return explained(service_name, lambda: anyio.run(serve, settings))


def explained(service_name: str, run: Callable[[], int]) -> int:
    """`run()`; NATS or its JetStream API out of reach past their deadlines (a ConnectionError),
    or a topology not as the set-up makes it (TopologyMissing), possibly inside a task group's
    exception group, is one clear log line and exit code 1."""
    try:
        return run()
    except (ConnectionError, TopologyMissing, BaseExceptionGroup) as exc:
        reason = _cannot_go_on(exc)
        if reason is None:
            raise
        log.error("%s cannot go on: %s", service_name, reason)
        return 1


def _cannot_go_on(exc: BaseException) -> Exception | None:
    if isinstance(exc, ConnectionError | TopologyMissing):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _cannot_go_on(inner)) is not None:
                return found
    return None
