"""The shipped NATS configuration (deploy/nats/nats.conf with its accounts.conf) on loopback, for
tests: every user's password, each service's environment and settings as its own user, the
operator's set-up and the application's."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from nats.aio.client import Client

from tests.support import ROOT, free_port, settings_of
from translator.bus.connection import connect
from translator.bus.embedded import EmbeddedNats
from translator.bus.topology import ensure_stream, results_stream_config, setup_topology
from translator.contracts.permissions import USERS
from translator.contracts.settings import TranslatorSettings
from translator.contracts.subjects import Role

DEPLOY_NATS = ROOT / "deploy" / "nats"
PASSWORDS = {user.password_variable: f"{user.name}-secret" for user in USERS.values()}
ROUTE_PASSWORD = "route-secret"
TENANT = "tenant_example"  # the example of deploy/nats/tenants.conf
TENANT_PASSWORD = "tenant-secret"


def tenant_example() -> str:
    """The commented example account of deploy/nats/tenants.conf, as the docs say to add it."""
    lines = (DEPLOY_NATS / "tenants.conf").read_text().splitlines()
    start = lines.index("# TENANT_EXAMPLE {")
    block = [line.removeprefix("# ").removeprefix("#") for line in lines[start:]]
    return "\n".join(block) + "\n"


def password(role: Role) -> str:
    return PASSWORDS[USERS[role].password_variable]


def as_user(env: dict[str, str], role: Role) -> dict[str, str]:
    """`env` with the credentials of `role`'s user (the scaler's with its workers' too)."""
    found = {**env, "NATS_USER": role.value, "NATS_PASSWORD": password(role)}
    if role is Role.SCALER:
        found.update(WORKER_NATS_USER=Role.WORKER.value, WORKER_NATS_PASSWORD=password(Role.WORKER))
    return found


def settings_as(url: str, role: Role, **values: object) -> TranslatorSettings:
    found = TranslatorSettings(nats_url=url, nats_user=role.value, nats_password=password(role))
    return found.model_copy(update=values)


def local_config(tmp_path: Path, monitor_port: int | None = None, tenant: bool = False) -> Path:
    """The deployed files, with a temporary store, the monitoring port on a free port of
    loopback (`monitor_port`) or none, and the example tenant account added (`tenant`)."""
    text = (DEPLOY_NATS / "nats.conf").read_text()
    assert "store_dir: /data" in text
    assert "http_port: 8222" in text
    text = text.replace("store_dir: /data", f'store_dir: "{tmp_path / "store"}"')
    monitor = f"http: 127.0.0.1:{monitor_port}" if monitor_port else ""
    (tmp_path / "nats.conf").write_text(text.replace("http_port: 8222", monitor))
    shutil.copy(DEPLOY_NATS / "accounts.conf", tmp_path / "accounts.conf")
    tenants = (DEPLOY_NATS / "tenants.conf").read_text()
    (tmp_path / "tenants.conf").write_text(tenants + (tenant_example() if tenant else ""))
    return tmp_path / "nats.conf"


@contextmanager
def deployed_nats(
    tmp_path: Path, monitor: bool = False, tenant: bool = False
) -> Iterator[tuple[EmbeddedNats, int]]:
    """A real nats-server with the shipped configuration: (it, its monitoring port or 0)."""
    port = free_port() if monitor else 0
    config = local_config(tmp_path, port or None, tenant)
    env = {**PASSWORDS, "TENANT_EXAMPLE_NATS_PASSWORD": TENANT_PASSWORD}
    with EmbeddedNats(tmp_path / "nats", config=config, env=env) as server:
        yield server, port


@asynccontextmanager
async def connected_as(url: str, role: Role) -> AsyncIterator[Client]:
    nc = await connect(settings_as(url, role), f"tests-{role.value}", role)
    try:
        yield nc
    finally:
        await nc.close()


async def set_up(url: str, env: dict[str, str] | None = None) -> None:
    """`translator setup` as the operator, and `translator setup --app` as the application,
    with the settings of `env` (a service's environment) or the defaults."""
    wanted = settings_of(env or {}).model_dump(exclude={"nats_url", "nats_user", "nats_password"})
    async with connected_as(url, Role.OPERATOR) as nc:
        await setup_topology(nc.jetstream(), settings_as(url, Role.OPERATOR, **wanted))
    async with connected_as(url, Role.CLIENT) as app:
        config = results_stream_config(settings_as(url, Role.CLIENT, **wanted))
        await ensure_stream(app.jetstream(), config)
