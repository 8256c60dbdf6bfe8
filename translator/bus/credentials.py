"""The embedded server's passwords: one per user of contracts/permissions.py, generated at its
first start and kept in `DATA_DIR/nats/credentials.json`, readable by its owner only. The server
reads them from its environment (the same `$<USER>_NATS_PASSWORD` references as the shipped
nats.conf); `translator up` hands each service its own; the `translator` commands run on the same
machine read them from the file (`for_role`). Nobody connects without one."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from translator.contracts.permissions import USERS
from translator.contracts.settings import NatsSettings
from translator.contracts.subjects import Role

FILE_NAME = "credentials.json"


def path_of(settings: NatsSettings) -> Path:
    return settings.data_dir / "nats" / FILE_NAME


def ensure(path: Path) -> dict[Role, str]:
    """Every user's password: the file's, with new ones for users it lacks (written owner-only,
    atomically)."""
    kept = load(path)
    passwords = {role: kept.get(role) or secrets.token_urlsafe(24) for role in USERS}
    if passwords != kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_suffix(".tmp")
        fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({role.value: pw for role, pw in passwords.items()}, out, indent=1)
        os.replace(scratch, path)
    path.chmod(0o600)
    return passwords


def load(path: Path) -> dict[Role, str]:
    if not path.is_file():
        return {}
    stored = json.loads(path.read_text())
    return {role: str(stored[role.value]) for role in Role if role.value in stored}


def server_environment(passwords: dict[Role, str]) -> dict[str, str]:
    """The variables the server's configuration reads the passwords from."""
    return {USERS[role].password_variable: pw for role, pw in passwords.items()}


def as_role(settings: NatsSettings, role: Role, password: str) -> NatsSettings:
    return settings.model_copy(update={"nats_user": role.value, "nats_password": password})


def for_role(settings: NatsSettings, role: Role | None) -> NatsSettings:
    """The settings as given; with no NATS_URL and no credentials, the embedded server's for
    `role` (a command on the machine where `translator up` runs)."""
    given = settings.nats_user or settings.nats_token or settings.nats_creds
    if role is None or given or settings.nats_url is not None:
        return settings
    password = load(path_of(settings)).get(role)
    return as_role(settings, role, password) if password else settings
