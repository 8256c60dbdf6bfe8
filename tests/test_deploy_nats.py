"""deploy/nats/nats.conf with the real nats-server: each service works with its own user, and a
user cannot do what it does not need."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import httpx
import nats
import nats.errors
import pytest

from tests.gateway import gateway, shim
from tests.support import (
    ROOT,
    Models,
    free_port,
    http_port,
    shim_env,
    start_scaler,
    stop_process,
    worker_env,
)
from tests.test_health import health_port, wait_status
from translator.bus.embedded import EmbeddedNats
from translator.contracts.messages import StoreWatermark
from translator.contracts.subjects import AUDIT_BUCKET, Pool, request_stream

pytestmark = pytest.mark.anyio
CONFIG = ROOT / "deploy" / "nats" / "nats.conf"
PASSWORDS = {
    "TRANSLATOR_NATS_PASSWORD": "t-secret",
    "ZMQ_COMPAT_NATS_PASSWORD": "z-secret",
    "CLIENT_NATS_PASSWORD": "c-secret",
}


def local_config(tmp_path: Path) -> Path:
    """The deployed file, with a temporary store and without the fixed monitoring port."""
    text = CONFIG.read_text()
    assert "store_dir: /data" in text
    assert "http_port: 8222" in text
    text = text.replace("store_dir: /data", f"store_dir: {tmp_path / 'store'}")
    path = tmp_path / "nats.conf"
    path.write_text(text.replace("http_port: 8222", ""))
    return path


def as_user(env: dict[str, str], user: str) -> dict[str, str]:
    password = PASSWORDS[f"{user.upper()}_NATS_PASSWORD"]
    return {**env, "NATS_USER": user, "NATS_PASSWORD": password}


async def test_each_service_works_with_its_own_user_and_no_more(
    models: Models, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    config = local_config(tmp_path)
    with EmbeddedNats(tmp_path / "nats", config=config, env=PASSWORDS) as server:
        translator = await nats.connect(server.url, user="translator", password="t-secret")
        http = free_port()
        scaler_env = worker_env(
            server.url, models, NORMAL_WORKERS=1, ANY_WORKERS=0, SCALING_CHECK_INTERVAL=0.5,
            SCALER_HEALTH_PORT=http,
        )  # fmt: skip
        scaler = start_scaler(as_user(scaler_env, "translator"), tmp_path / "scaler.log")
        try:
            assert health_port(tmp_path / "scaler.log") == http
            await wait_status(http, "/ready", 200)  # its worker runs as `translator` too
            with shim(as_user(shim_env(server.url), "zmq_compat"), log) as ports:
                async with gateway(ports) as gw:
                    results = await gw.results_for(await gw.request("Hello", ["fr", "de"]))
                # the HTTP API, as zmq_compat: a translation, and a detection the workers
                # answer as `translator` (translate.detect)
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{http_port(log)}", timeout=60
                ) as api:
                    ask = {"q": "Hello everyone", "source": "en", "target": "de"}
                    translated = await api.post("/translate", json=ask)
                    detected = await api.post("/detect", json={"q": "Bonjour à tous, ça va ?"})
            client = as_user(worker_env(server.url, models), "client")
            translate = ["submit", "Hi", "--from", "en", "--to", "fr"]
            submit = await anyio.run_process(
                [sys.executable, "-m", "translator", *translate], env=client, check=False
            )
            status = await anyio.run_process(
                [sys.executable, "-m", "translator", "status"], env=client, check=False
            )
        finally:
            assert stop_process(scaler) == 0
        scaler_log = (tmp_path / "scaler.log").read_text()
        assert "leads the pool-wide scaling decisions" in scaler_log  # its lease, in its bucket
        assert "Permissions Violation" not in scaler_log
        assert "skipped" not in scaler_log  # neither a store audit nor a scaling check
        audit = await translator.jetstream().key_value(AUDIT_BUCKET)  # the store audit's marks
        for pool in Pool:
            mark = StoreWatermark.model_validate_json((await audit.get(request_stream(pool))).value)
            assert mark.stream == request_stream(pool)

        shim_user = await nats.connect(server.url, user="zmq_compat", password="z-secret")
        with pytest.raises(nats.errors.TimeoutError):  # a permissions violation: no answer
            await shim_user.jetstream().publish("translate.result.forged", b"{}", timeout=1)
        reader = await nats.connect(server.url, user="client", password="c-secret")
        with pytest.raises(nats.errors.TimeoutError):
            await reader.jetstream().delete_stream(request_stream(Pool.NORMAL))
        assert (await translator.jetstream().stream_info(request_stream(Pool.NORMAL))).config
        for nc in (translator, shim_user, reader):
            await nc.close()

    assert {m["type"] for m in results.values()} == {"translation_completed"}
    assert translated.status_code == 200, translated.text
    assert detected.status_code == 200, detected.text
    assert detected.json()[0]["language"] == "fr"
    assert submit.returncode == 0, submit.stderr.decode()[-2000:]
    assert b'"status":"ok"' in submit.stdout
    assert status.returncode == 0, status.stderr.decode()[-2000:]
    assert status.stdout.decode().splitlines()[0].split()[:2] == ["pool", "queue"]
