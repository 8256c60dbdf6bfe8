"""Health endpoints and metrics of the shim and the scaler, from outside, over HTTP."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from nats.aio.client import Client

from tests.probes import get, health_port, wait_status
from tests.support import (
    ROOT,
    Models,
    free_port,
    publish_request,
    request,
    set_up,
    shim_env,
    start_scaler,
    start_shim,
    stop_process,
    worker_env,
)
from translator.bus.embedded import EmbeddedNats

pytestmark = pytest.mark.anyio


def check(module: str, env: dict[str, str]) -> int:
    done = subprocess.run(
        [sys.executable, "-m", module, "--check"], env=env, cwd=ROOT, timeout=30, check=False
    )
    return done.returncode


async def test_shim_is_live_at_once_and_ready_only_once_nats_is_up(tmp_path: Path) -> None:
    nats_port = free_port()
    http = free_port()
    env = shim_env(f"nats://127.0.0.1:{nats_port}", ZMQ_HEALTH_PORT=http)
    shim = start_shim(env, tmp_path / "shim.log")
    try:
        assert await health_port(tmp_path / "shim.log") == http
        assert get(http, "/live") == (200, '{"status": "alive"}')
        status, body = get(http, "/ready")
        assert status == 503
        assert json.loads(body)["nats"] is False
        assert check("zmq_compat", env) == 1

        with EmbeddedNats(tmp_path / "nats", port=nats_port):
            set_up(env)  # the operator's, which the shim waits for (TOPOLOGY_WAIT)
            body = await wait_status(http, "/ready", 200)
            assert json.loads(body) == {"status": "ready", "nats": True, "zmq": True}
            assert get(http, "/health")[0] == 200
            assert check("zmq_compat", env) == 0
            assert "zmq_compat_requests" in get(http, "/metrics")[1]
            assert stop_process(shim) == 0
    finally:
        stop_process(shim, signal.SIGKILL)


async def test_scaler_is_ready_with_a_loaded_worker_per_pool_and_not_after_one_dies(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    log = tmp_path / "scaler.log"
    env = worker_env(nats_server.url, models, NORMAL_WORKERS=1, ANY_WORKERS=1, METRICS_INTERVAL=0.2)
    for i in range(3):
        await publish_request(
            nc, request(text=f"waiting {i}", conversation_id="any"), "translate.result.h"
        )
    scaler = start_scaler(env, log)
    try:
        http = await health_port(log)
        assert get(http, "/live")[0] == 200
        body = json.loads(await wait_status(http, "/ready", 200))
        assert body["workers_loaded"] == {"normal": 1, "any": 1}

        metrics = get(http, "/metrics")[1]
        assert re.search(r'translator_workers\{.*pool="normal".*state="running".*\} 1\.0', metrics)
        assert re.search(r'translator_queue_capacity\{.*pool="any".*\} 10000\.0', metrics)
        assert "translator_queue_depth{" in metrics
        assert "translator_worker_utilization{" in metrics

        (any_worker,) = [
            p for p in psutil.Process(scaler.pid).children() if p.cmdline()[-1] == "any"
        ]
        any_worker.kill()
        body = json.loads(await wait_status(http, "/ready", 503, timeout=20))
        assert body["workers_loaded"]["any"] == 0
        await wait_status(http, "/ready", 200)  # the replacement has loaded its model
    finally:
        assert stop_process(scaler) == 0


async def test_metrics_have_their_own_switch_and_outlive_otel_sdk_disabled(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    """OTEL_SDK_DISABLED turns tracing off, not the metrics; METRICS_ENABLED=false does."""
    for metrics_enabled, expected in (("true", 200), ("false", 404)):
        http = free_port()
        env = shim_env(
            nats_server.url, ZMQ_HEALTH_PORT=http, OTEL_SDK_DISABLED="true",
            METRICS_ENABLED=metrics_enabled,
        )  # fmt: skip
        log = tmp_path / f"shim-{metrics_enabled}.log"
        shim = start_shim(env, log)
        try:
            assert await health_port(log) == http
            await wait_status(http, "/ready", 200)
            status, body = get(http, "/metrics")
            assert status == expected
            if expected == 200:
                assert 'zmq_compat_requests_total{outcome="pool_full"} 0.0' in body
                assert 'translator_service_info{service="zmq_compat"' in body
        finally:
            assert stop_process(shim) == 0
