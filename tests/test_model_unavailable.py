"""A model that cannot be had (not local, the hub unreachable): the worker says so in one line
within seconds, stays up in state `unavailable` and retries with a growing delay instead of a
crash loop; /ready, `translator status` and the metrics show the pool's state; a stop is prompt,
also while a load is stuck inside `from_pretrained`.

The hub is pointed at loopback (HF_ENDPOINT): a closed port, or a listener that never answers
(a black-holed network), so the tests do not depend on this machine's network."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest
from nats.aio.client import Client

from tests.probes import health_port, value, wait_metric, wait_status
from tests.support import (
    Models,
    free_port,
    start_scaler,
    start_worker,
    stop_process,
    wait_for_heartbeat,
    worker_env,
)
from translator.bus.embedded import EmbeddedNats
from translator.contracts.subjects import Pool

pytestmark = pytest.mark.anyio


def unreachable_hub_env(
    nats_url: str, models: Models, endpoint: str, **extra: object
) -> dict[str, str]:
    return worker_env(
        nats_url, models, BASIC_MODEL="acme/missing-model", MODELS_OFFLINE="false",
        HF_ENDPOINT=endpoint, MODEL_RETRY_INITIAL=1, MODEL_RETRY_MAX=2, **extra,
    )  # fmt: skip


def closed_port_endpoint() -> str:
    return f"http://127.0.0.1:{free_port()}"  # nothing listens there: refused at once


@contextmanager
def silent_endpoint() -> Iterator[str]:
    """A hub that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


async def test_a_worker_without_its_model_says_why_and_retries_without_exiting(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    env = unreachable_hub_env(nats_server.url, models, closed_port_endpoint(), MODELS_PATH=tmp_path)
    log = tmp_path / "worker.log"
    started = time.monotonic()
    worker = start_worker(env, Pool.NORMAL, log)
    try:
        beat = await wait_for_heartbeat(nc, worker.pid, state="unavailable")
        assert time.monotonic() - started < 30  # seconds, not the hub client's ~50 s of retries
        assert "acme/missing-model" in beat.unavailable
        assert "cannot be reached" in beat.unavailable
        assert "translator models download" in beat.unavailable
        assert "translator models random" in beat.unavailable
        with anyio.fail_after(60):  # tries again (1 s, then 2 s), still the same process
            while log.read_text().count("is not available") < 3:  # noqa: ASYNC110
                await anyio.sleep(0.2)
        assert worker.poll() is None
    finally:
        stopping = time.monotonic()
        assert stop_process(worker) == 0
        assert time.monotonic() - stopping < 10
    text = log.read_text()
    assert "Retrying in" not in text  # no hub client retry loop
    assert text.count("WARNING") == 0


async def test_a_stop_during_a_stuck_model_load_is_prompt(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    with silent_endpoint() as endpoint:
        env = unreachable_hub_env(nats_server.url, models, endpoint, HUB_TIMEOUT=120)
        worker = start_worker(env, Pool.NORMAL, tmp_path / "worker.log")
        try:
            await wait_for_heartbeat(nc, worker.pid, state="loading")
            await anyio.sleep(2)  # inside from_pretrained, waiting on the silent hub
            assert worker.poll() is None
        finally:
            stopping = time.monotonic()
            code = stop_process(worker)
            elapsed = time.monotonic() - stopping
    assert code == 0, (tmp_path / "worker.log").read_text()[-2000:]
    assert elapsed < 10  # not the load's 120 s, not the 30 s before a SIGKILL
    assert "abandoned model load" in (tmp_path / "worker.log").read_text()


async def test_the_scaler_status_and_metrics_show_a_pool_whose_model_is_unavailable(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    http = free_port()
    env = unreachable_hub_env(
        nats_server.url, models, closed_port_endpoint(), MODELS_PATH=tmp_path, NORMAL_WORKERS=1,
        ANY_WORKERS=0, METRICS_INTERVAL=0.2, SCALING_CHECK_INTERVAL=0.5, SCALER_HEALTH_PORT=http,
    )  # fmt: skip
    log = tmp_path / "scaler.log"
    scaler = start_scaler(env, log)
    try:
        assert await health_port(log) == http
        samples = await wait_metric(
            http, "translator_workers", 1, pool="normal", state="unavailable"
        )
        assert value(samples, "translator_workers", pool="normal", state="running") == 0
        body = await wait_status(http, "/ready", 503)
        assert "acme/missing-model" in body
        assert '"models_unavailable"' in body
        status = await anyio.run_process(
            [sys.executable, "-m", "translator", "status"],
            env={**os.environ, "NATS_URL": nats_server.url},
            check=False,
        )
        lines = status.stdout.decode().splitlines()
        assert lines[0].split()[4:8] == ["capacity", "running", "starting", "unavailable"]
        normal = lines[1].split()
        assert normal[0] == "normal"
        assert normal[4:7] == ["0", "0", "1"]  # running, starting, unavailable
        assert any(line.startswith("normal: model 'acme/missing-model'") for line in lines)
        await anyio.sleep(3)  # several retries: the same worker, no crash loop
    finally:
        stopping = time.monotonic()
        assert stop_process(scaler) == 0
        assert time.monotonic() - stopping < 15
    assert "exited with" not in log.read_text()
