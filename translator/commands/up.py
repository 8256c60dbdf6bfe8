"""`translator up`: the local all-in-one run.

An embedded NATS server unless NATS_URL is set (with the accounts and users of the shipped
configuration, and passwords generated at its first start: bus/credentials.py), the set-up of
the topology as the operator, the scaler, which audits the store and runs and scales the worker
processes of both pools, and then the gateway shim (zmq_compat). Each part connects as its own
user. Ctrl-C stops everything: the shim, then the workers, then NATS.

With NATS_URL set, every part connects with the credentials given (a server where that user may
do everything, such as a developer's); a production deployment runs the parts apart, each with
its user (docs/DEPLOY.md)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from contextlib import ExitStack

import anyio

from scaler.metrics import ScalerReadiness
from scaler.service import serve as serve_scaler
from scaler.settings import ScalerSettings
from translator.bus import accounts, credentials
from translator.bus.connection import connect
from translator.bus.embedded import EmbeddedNats
from translator.bus.topology import ensure_stream, results_stream_config, setup_topology
from translator.contracts.subjects import Role
from translator.runtime.children import spawn, stop
from translator.runtime.signals import stop_on_signal

log = logging.getLogger(__name__)
SHIM_GRACE = 25.0  # the shim's drain (ZMQ_DRAIN_TIMEOUT, 15 s) and its closing, before SIGKILL
Users = dict[Role, ScalerSettings]


def with_nats(settings: ScalerSettings, stack: ExitStack) -> Users:
    """The settings each part connects with: the given ones for all, or an embedded server's
    URL with each part's own user."""
    if settings.nats_url:
        return dict.fromkeys(Role, settings)
    passwords = credentials.ensure(credentials.path_of(settings))
    server = stack.enter_context(
        EmbeddedNats(
            settings.data_dir / "nats",
            port=settings.embedded_nats_port,
            sync_interval=settings.embedded_nats_sync,
            accounts=accounts.block(),
            env=credentials.server_environment(passwords),
        )
    )
    credentials.record_url(credentials.path_of(settings), server.url)
    located = settings.model_copy(update={"nats_url": server.url})
    users = {role: _as(located, role, pw) for role, pw in passwords.items()}
    worker = {"worker_nats_user": Role.WORKER.value, "worker_nats_password": passwords[Role.WORKER]}
    users[Role.SCALER] = users[Role.SCALER].model_copy(update=worker)
    return users


def _as(settings: ScalerSettings, role: Role, password: str) -> ScalerSettings:
    return settings.model_copy(update={"nats_user": role.value, "nats_password": password})


async def set_up(users: Users) -> None:
    """The operator's set-up, and the application's results stream (`translator setup`)."""
    nc = await connect(users[Role.OPERATOR], "translator-up-setup", Role.OPERATOR)
    await setup_topology(nc.jetstream(), users[Role.OPERATOR])
    await nc.close()
    if users[Role.CLIENT] is not users[Role.OPERATOR]:  # an embedded server: APP's own stream
        app = await connect(users[Role.CLIENT], "translator-up-app", Role.CLIENT)
        await ensure_stream(app.jetstream(), results_stream_config(users[Role.CLIENT]))
        await app.close()


def shim_environment(settings: ScalerSettings) -> dict[str, str]:
    env = {**os.environ, "NATS_URL": settings.nats_url or ""}
    if settings.nats_user:
        env.update(NATS_USER=settings.nats_user, NATS_PASSWORD=settings.nats_password or "")
    return env


async def run_up(settings: ScalerSettings) -> int:
    with ExitStack() as stack:
        users = with_nats(settings, stack)
        await set_up(users)
        scaling = users[Role.SCALER]
        nc = await connect(scaling, "translator-up", Role.SCALER)
        shims: list[subprocess.Popen[bytes]] = []

        def start_shim() -> None:  # once the store audit has run (scaler/audit.py)
            env = shim_environment(users[Role.SHIM])
            shims.append(spawn([sys.executable, "-m", "zmq_compat"], env))
            stack.callback(stop, shims[0], SHIM_GRACE)

        stopped = anyio.Event()
        readiness = ScalerReadiness()
        health = readiness.register(scaling)
        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_on_signal, stopped.set)
            await tg.start(health.serve, scaling.health_host, scaling.scaler_health_port)
            log.info("translator up: NATS at %s; Ctrl-C to stop", scaling.nats_url)
            tg.start_soon(_stop_shim_first, stopped, shims)
            await serve_scaler(scaling, nc, stopped, readiness, started=start_shim)
            tg.cancel_scope.cancel()
        await nc.close()
    return 0


async def _stop_shim_first(stopped: anyio.Event, shims: list[subprocess.Popen[bytes]]) -> None:
    await stopped.wait()
    for shim in shims:
        await anyio.to_thread.run_sync(stop, shim, SHIM_GRACE)
