"""Connecting to NATS as the settings say: URL, user/password, token, creds file, TLS; each
service with the inbox prefix of its role (its replies on a subject no other user may read).
With NATS_URL unset and no credentials given, the embedded server's generated ones for the
role (bus/credentials.py), as `translator up` made them."""

from __future__ import annotations

import logging
import ssl
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client

from translator.bus import credentials
from translator.contracts.settings import NatsSettings
from translator.contracts.subjects import Role

log = logging.getLogger(__name__)
DEFAULT_URL = "nats://127.0.0.1:4222"


def _tls(settings: NatsSettings) -> ssl.SSLContext | None:
    if not (settings.nats_tls_ca or settings.nats_tls_cert):
        return None
    context = ssl.create_default_context(
        cafile=str(settings.nats_tls_ca) if settings.nats_tls_ca else None
    )
    if settings.nats_tls_cert and settings.nats_tls_key:
        context.load_cert_chain(str(settings.nats_tls_cert), str(settings.nats_tls_key))
    return context


def servers(url: str | None) -> list[str]:
    """NATS_URL as a server list: one URL, or several separated by commas (as the NATS tools
    take them), for a cluster."""
    found = [part.strip() for part in (url or DEFAULT_URL).split(",") if part.strip()]
    return found or [DEFAULT_URL]


def connect_options(
    settings: NatsSettings,
    name: str,
    patient: bool = True,
    buffered: bool = True,
    role: Role | None = None,
) -> dict[str, Any]:
    settings = credentials.for_role(settings, role)
    options: dict[str, Any] = {
        "servers": servers(settings.nats_url),
        "name": name,
        "connect_timeout": settings.nats_connect_timeout,
        "max_reconnect_attempts": -1 if patient else 1,
        "reconnect_time_wait": 1,
        "allow_reconnect": True,
    }
    if role is not None:
        options["inbox_prefix"] = role.inbox_prefix
    if not buffered:  # a publish while disconnected fails at once instead of going out later
        options["pending_size"] = 0
    if settings.nats_user:
        options["user"] = settings.nats_user
        options["password"] = settings.nats_password
    if settings.nats_token:
        options["token"] = settings.nats_token
    if settings.nats_creds:
        options["user_credentials"] = str(settings.nats_creds)
    tls = _tls(settings)
    if tls is not None:
        options["tls"] = tls
    return options


async def _on_error(exc: Exception) -> None:
    log.warning("nats: %s", exc)


async def _on_reconnected() -> None:
    log.info("nats: reconnected")


async def connect(
    settings: NatsSettings,
    name: str,
    role: Role | None = None,
    *,
    patient: bool = True,
    buffered: bool = True,
) -> Client:
    """A connection that logs its ups and downs; a patient one waits and reconnects forever,
    an impatient one (a CLI command) raises NatsUnreachable at once. An unbuffered one has no
    reconnect buffer: what it publishes while disconnected raises OutboundBufferLimitError
    rather than leaving later, behind its sender's back."""
    client = Client()

    async def on_disconnected() -> None:
        if client.is_closed or client.is_draining:  # our own close: nothing to warn about
            log.debug("nats: connection closed")
        else:
            log.warning("nats: disconnected")

    try:
        await client.connect(
            **connect_options(settings, name, patient, buffered, role),
            error_cb=_on_error,
            disconnected_cb=on_disconnected,
            reconnected_cb=_on_reconnected,
        )
    except (OSError, nats.errors.NoServersError, nats.errors.Error) as exc:
        raise NatsUnreachable(settings.nats_url or DEFAULT_URL, exc) from exc
    return client


class NatsUnreachable(ConnectionError):
    def __init__(self, url: str, cause: Exception) -> None:
        super().__init__(f"cannot reach NATS at {url}: {cause or type(cause).__name__}")
        self.url = url
