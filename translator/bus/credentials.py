"""The embedded server's passwords: one per user of contracts/permissions.py, generated at its
first start and kept in `DATA_DIR/nats/credentials.json` with the server's URL, readable by its
owner only. The server reads them from its environment (the same `$<USER>_NATS_PASSWORD`
references as the shipped nats.conf); `translator up` hands each service its own; the
`translator` commands run on the same machine read them from the file (`for_role`), for that
server only. Nobody connects without one."""

from __future__ import annotations

import json
import os
import secrets
import string
from pathlib import Path

from translator.contracts.permissions import USERS
from translator.contracts.settings import NatsSettings
from translator.contracts.subjects import Role

FILE_NAME = "credentials.json"


def path_of(settings: NatsSettings) -> Path:
    return settings.data_dir / "nats" / FILE_NAME


def new_password() -> str:
    """32 letters and digits (190 bits), a letter first: nats-server reads a variable's value
    as a config value, and one that starts with a digit as a number (`Expected a digit`)."""
    alphabet = string.ascii_letters + string.digits
    return secrets.choice(string.ascii_letters) + "".join(
        secrets.choice(alphabet) for _ in range(31)
    )


def ensure(path: Path) -> dict[Role, str]:
    """Every user's password: the file's, with new ones for users it lacks."""
    kept = load(path)
    passwords = {role: kept.get(role) or new_password() for role in USERS}
    if passwords != kept:
        _write(path, passwords, _stored(path).get("url"))
    return passwords


def record_url(path: Path, url: str) -> None:
    """The URL the embedded server listens on, for the commands that read the file."""
    _write(path, load(path), url)


def _write(path: Path, passwords: dict[Role, str], url: object) -> None:
    """Owner-only, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".tmp")
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"url": url, **{role.value: pw for role, pw in passwords.items()}}, out)
    os.replace(scratch, path)
    path.chmod(0o600)


def _stored(path: Path) -> dict[str, object]:
    return dict(json.loads(path.read_text())) if path.is_file() else {}


def load(path: Path) -> dict[Role, str]:
    stored = _stored(path)
    return {role: str(stored[role.value]) for role in Role if role.value in stored}


def server_environment(passwords: dict[Role, str]) -> dict[str, str]:
    """The variables the server's configuration reads the passwords from."""
    return {USERS[role].password_variable: pw for role, pw in passwords.items()}


def as_role(settings: NatsSettings, role: Role, password: str) -> NatsSettings:
    return settings.model_copy(update={"nats_user": role.value, "nats_password": password})


def for_role(settings: NatsSettings, role: Role | None) -> NatsSettings:
    """The settings as given; with no credentials, and NATS_URL unset or the embedded
    server's, its URL and its password for `role` (a command on the machine where `translator
    up` runs). Another server never gets them."""
    given = settings.nats_user or settings.nats_token or settings.nats_creds
    path = path_of(settings)
    if role is None or given or not path.is_file():
        return settings
    url = _stored(path).get("url")
    password = load(path).get(role)
    if not isinstance(url, str) or not password or settings.nats_url not in (None, url):
        return settings
    found = as_role(settings, role, password)
    return found.model_copy(update={"nats_url": url})
