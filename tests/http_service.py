"""The HTTP API as tests start it: the shim's process on a free port, ready once it translates
(or answers /ready), driven with httpx."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support import Models, http_port, shim_env, start_shim, stop_process


@dataclass
class Api:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=120)


def models_env(models: Models) -> dict[str, str]:
    """The workers' models: the API's /languages and /models describe the same ones."""
    tiers = {"BASIC_MODEL": models.t5, "MEDIUM_MODEL": models.nllb, "PREMIUM_MODEL": models.marian}
    return {key: str(path) for key, path in tiers.items()}


def translates(client: httpx.Client) -> bool:
    """Ready: NATS reached, and a worker answers."""
    reply = client.post("/translate", json={"q": "Hi", "source": "en", "target": "de"})
    return reply.status_code == 200


def is_ready(client: httpx.Client) -> bool:
    """Ready as /ready says (for an API whose keys would refuse a probe, or with no worker)."""
    return client.get("/ready").status_code == 200


def start_api(
    nats_url: str, log: Path, ready: Callable[[httpx.Client], bool] = translates, **settings: object
) -> Api:
    env = shim_env(nats_url, **{"HTTP_HEADER_TIMEOUT": 120, **settings})
    process = start_shim(env, log)
    api = Api(f"http://127.0.0.1:{http_port(log)}", process, log)
    with api.client() as client:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            if ready(client):
                return api
            time.sleep(0.5)
    stop_process(process)
    raise AssertionError(f"the API never got ready:\n{log.read_text()[-3000:]}")
