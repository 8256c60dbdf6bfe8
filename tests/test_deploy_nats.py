"""deploy/nats/nats.conf with the real nats-server: the operator sets up, each service works with
its own user, and the application in its account; the attacks on each boundary are in
tests/test_nats_boundaries.py."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import httpx
import nats
import nats.errors
import pytest

from scaler.records import StoreWatermark
from tests.deployed_nats import as_user, connected_as, deployed_nats, set_up
from tests.gateway import gateway, shim
from tests.probes import health_port, wait_status
from tests.support import (
    Models,
    free_port,
    http_ready,
    shim_env,
    start_scaler,
    stop_process,
    worker_env,
)
from translator.contracts.subjects import AUDIT_BUCKET, Pool, Role, request_stream
from translator.runtime.children import worker_command

pytestmark = pytest.mark.anyio


async def test_each_service_works_with_its_own_user_and_no_more(
    models: Models, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    with deployed_nats(tmp_path) as (server, _):
        http = free_port()
        scaler_env = worker_env(
            server.url, models, NORMAL_WORKERS=1, ANY_WORKERS=0, SCALING_CHECK_INTERVAL=0.5,
            SCALER_HEALTH_PORT=http,
        )  # fmt: skip
        await set_up(server.url, scaler_env)
        scaler = start_scaler(as_user(scaler_env, Role.SCALER), tmp_path / "scaler.log")
        try:
            assert await health_port(tmp_path / "scaler.log") == http
            await wait_status(http, "/ready", 200)  # its worker runs as `translator`
            async with shim(as_user(shim_env(server.url), Role.SHIM), log) as ports:
                async with gateway(ports) as gw:
                    results = await gw.results_for(await gw.request("Hello", ["fr", "de"]))
                # the HTTP API, as zmq_compat: a translation, and a detection the workers
                # answer as `translator` (translate.detect)
                async with httpx.AsyncClient(
                    base_url=f"http://127.0.0.1:{await http_ready(log)}", timeout=60
                ) as api:
                    ask = {"q": "Hello everyone", "source": "en", "target": "de"}
                    translated = await api.post("/translate", json=ask)
                    detected = await api.post("/detect", json={"q": "Bonjour à tous, ça va ?"})
            client = as_user(worker_env(server.url, models), Role.CLIENT)
            translate = ["submit", "Hi", "--from", "en", "--to", "fr"]
            submit = await anyio.run_process(
                [sys.executable, "-m", "translator", *translate], env=client, check=False
            )
            operator = as_user(worker_env(server.url, models), Role.OPERATOR)
            status = await anyio.run_process(
                [sys.executable, "-m", "translator", "status"], env=operator, check=False
            )
        finally:
            assert stop_process(scaler) == 0
        scaler_log = (tmp_path / "scaler.log").read_text()
        assert "leads the pool-wide scaling decisions" in scaler_log  # its lease, in its bucket
        assert "permissions violation" not in scaler_log.lower()
        assert "permissions violation" not in log.read_text().lower()
        assert "skipped" not in scaler_log  # neither a store audit nor a scaling check
        async with connected_as(server.url, Role.OPERATOR) as operator_nc:
            audit = await operator_nc.jetstream().key_value(AUDIT_BUCKET)  # the audit's marks
            for pool in Pool:
                entry = await audit.get(request_stream(pool))
                assert StoreWatermark.model_validate_json(entry.value or b"").stream == (
                    request_stream(pool)
                )
        shim_user = await nats.connect(server.url, user="zmq_compat", password="zmq_compat-secret")
        with pytest.raises(nats.errors.TimeoutError):  # a permissions violation: no answer
            await shim_user.jetstream().publish("translate.result.forged", b"{}", timeout=1)
        await shim_user.close()

    assert {m["type"] for m in results.values()} == {"translation_completed"}
    assert translated.status_code == 200, translated.text
    assert detected.status_code == 200, detected.text
    assert detected.json()[0]["language"] == "fr"
    assert submit.returncode == 0, submit.stderr.decode()[-2000:]
    assert b'"status":"ok"' in submit.stdout
    assert status.returncode == 0, status.stderr.decode()[-2000:]
    assert status.stdout.decode().splitlines()[0].split()[:2] == ["pool", "queue"]


async def test_a_service_refuses_to_start_on_a_topology_nobody_set_up(
    models: Models, tmp_path: Path
) -> None:
    """The services only check the topology (their users may not create it): without the
    operator's set-up, a worker says what is missing and who makes it, and exits."""
    with deployed_nats(tmp_path) as (server, _):
        # it waits TOPOLOGY_WAIT for the set-up (30 s by default), then refuses
        env = as_user(worker_env(server.url, models, TOPOLOGY_WAIT=2), Role.WORKER)
        done = await anyio.run_process(worker_command(Pool.NORMAL), env=env, check=False)
    said = done.stderr.decode() + done.stdout.decode()
    assert done.returncode == 1, said[-2000:]
    assert "does not exist" in said
    assert "translator setup" in said
