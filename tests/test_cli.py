"""The `translator` command as a user runs it: up, submit, models."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import nats
import nats.errors
import psutil
import pytest
from nats.aio.client import Client

from tests.gateway import Gateway
from tests.support import (
    ROOT,
    Models,
    free_port,
    stop_process,
    translator,
    wait_for_line,
    worker_env,
)
from translator.bus.embedded import EmbeddedNats


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


async def gateway_round_trip(pull: int, pub: int) -> dict[str, dict[str, object]]:
    gateway = Gateway(pull, pub)
    try:
        await gateway.connected()
        sent = await gateway.request("Hello from the gateway", ["fr", "de"])
        return await gateway.results_for(sent)
    finally:
        gateway.close()


async def anonymous(url: str) -> None:
    """Connect without a user; the client closed either way (a refused client left its socket
    open, and its garbage collection after the loop closed failed a later test's set-up)."""
    nc = nats.NATS()
    try:
        await nc.connect(url, allow_reconnect=False, connect_timeout=5)
    finally:
        await nc.close()


def test_up_runs_embedded_nats_and_workers_and_stops_everything_on_ctrl_c(
    tmp_path: Path, models: Models
) -> None:
    pull, pub, http, scaler_http = free_port(), free_port(), free_port(), free_port()
    env = worker_env(
        "",
        models,
        DATA_DIR=tmp_path / "data",
        EMBEDDED_NATS_PORT=-1,
        NORMAL_WORKERS=1,
        TRANSLATOR_ZMQ_PULL_PORT=pull,
        TRANSLATOR_ZMQ_PUB_PORT=pub,
        ZMQ_HEALTH_PORT=http,  # 8000 by default, as 0.4.9
        SCALER_HEALTH_PORT=scaler_http,
    )
    del env["NATS_URL"]
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "translator", "up"], env=env, cwd=ROOT, stdout=out, stderr=out
        )
    try:
        url = wait_for_line(log, r"NATS at (nats://[\d.:]+)").group(1)
        wait_for_line(log, r"serving pool normal")
        wait_for_line(log, r"serving pool any")
        children = descendants(up.pid)
        assert len(children) == 4  # nats-server, the shim and one worker per pool

        # as a person would on the same machine: no NATS_URL, no password (DATA_DIR's)
        submit_env = {k: v for k, v in env.items() if not k.startswith("NATS_")}
        done = translator(
            "submit", "Hello everyone", "--from", "en", "--to", "fr", "--to", "de", env=submit_env
        )
        lines = [json.loads(line) for line in done.stdout.splitlines()]
        assert done.returncode == 0, done.stderr
        assert [line["targetLanguage"] for line in lines] == ["fr", "de"]
        assert all(line["status"] == "ok" and line["translatedText"] for line in lines)
        wait_for_line(log, r"zmq_compat ready")
        assert sorted(anyio.run(gateway_round_trip, pull, pub)) == ["de", "fr"]
        wait_for_line(log, rf"HTTP API, health and metrics on http://[\d.]+:{http}")
        ask = {"q": "Hello everyone", "source": "en", "target": "fr"}
        reply = httpx.post(f"http://127.0.0.1:{http}/translate", json=ask, timeout=120)
        assert reply.status_code == 200, reply.text
        assert isinstance(reply.json()["translatedText"], str)
        assert httpx.get(f"http://127.0.0.1:{http}/health", timeout=30).status_code == 200
        # nobody else: no anonymous NATS connection, a password file for its owner alone, and
        # the gateway's and the API's sockets on loopback (LibreTranslate's default)
        with pytest.raises(nats.errors.Error, match=r"(?i)authorization"):
            anyio.run(anonymous, url)
        secrets = tmp_path / "data" / "nats" / "credentials.json"
        assert stat.S_IMODE(secrets.stat().st_mode) == 0o600
        assert re.search(
            rf"PULL on 127\.0\.0\.1:{pull}, PUB on 127\.0\.0\.1:{pub}", log.read_text()
        )
        assert f"HTTP API, health and metrics on http://127.0.0.1:{http}" in log.read_text()

        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0
        assert all(
            not child.is_running() or child.status() == psutil.STATUS_ZOMBIE for child in children
        )
        assert (tmp_path / "data" / "nats" / "jetstream").is_dir()  # the file store persists
    finally:
        stop_process(up, signal.SIGKILL)


def test_submit_without_a_server_fails_with_a_clear_message(models: Models) -> None:
    env = worker_env("nats://127.0.0.1:1", models, NATS_CONNECT_TIMEOUT=1)
    done = translator("submit", "Hello", "--to", "fr", env=env, timeout=60)
    assert done.returncode != 0
    assert "nats" in (done.stderr + done.stdout).lower()


def test_models_list_says_what_is_configured_and_present(tmp_path: Path, models: Models) -> None:
    env = {**os.environ, "BASIC_MODEL": str(models.t5), "MODELS_PATH": str(tmp_path)}
    done = translator("models", "list", env=env)
    lines = {line["modelType"]: line for line in map(json.loads, done.stdout.splitlines())}
    assert done.returncode == 0
    assert lines["basic"]["present"] is True
    assert lines["medium"] == {
        "modelType": "medium",
        "model": "facebook/nllb-200-distilled-600M",
        "present": False,
        "path": None,
    }


def test_models_random_writes_a_loadable_model_and_says_it_is_random(tmp_path: Path) -> None:
    done = translator(
        "models", "random", str(tmp_path / "m"), "--arch", "nllb", env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr
    assert "RANDOM WEIGHTS" in json.loads(done.stdout)["warning"]
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["meeshy_random_weights"] is True
    assert config["model_type"] == "m2m_100"


def _hub_cache(models_path: Path, model_id: str, files: Path) -> None:
    """`model_id` as the hub client keeps a download under MODELS_PATH/.hub: what
    `from_pretrained` finds when the hub itself cannot be reached (no network here)."""
    repo = models_path / ".hub" / f"models--{model_id.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    shutil.copytree(files, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)


def test_models_download_saves_the_model_and_its_ctranslate2_conversion(
    tmp_path: Path, models: Models
) -> None:
    """With INFERENCE_ENGINE=auto on a CPU the workers serve with CTranslate2: download saves
    transformers' files and converts them at QUANTIZATION_LEVEL, so a worker loads at once."""
    store = tmp_path / "store"
    _hub_cache(store, "meeshy-test/tiny-t5", models.t5)
    env = {
        **os.environ, "MODELS_PATH": str(store), "BASIC_MODEL": "meeshy-test/tiny-t5",
        "INFERENCE_ENGINE": "auto", "QUANTIZATION_LEVEL": "int8", "HUB_TIMEOUT": "1",
    }  # fmt: skip
    done = translator("models", "download", "basic", env=env, timeout=180)
    assert done.returncode == 0, done.stderr
    line = json.loads(done.stdout)
    saved = Path(line["path"])
    assert saved == store / "meeshy-test" / "tiny-t5"
    assert (saved / "config.json").is_file()
    assert any(saved.glob("*.safetensors")) or any(saved.glob("*.bin"))
    converted = Path(line["ctranslate2"])
    assert converted.parent == store / "ctranslate2"
    assert converted.name.endswith("-int8_float32")
    assert (converted / "model.bin").is_file()
    # transformers alone: nothing to convert, nothing said about it
    env["INFERENCE_ENGINE"] = "transformers"
    done = translator("models", "download", "basic", env=env, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "ctranslate2" not in json.loads(done.stdout)


@pytest.mark.parametrize(
    "args", [["worker"], ["worker", "--pool", "vip"], ["models", "download", "ultra"]]
)
def test_bad_command_lines_are_refused(args: list[str]) -> None:
    done = translator(*args, env=dict(os.environ))
    assert done.returncode != 0
    assert done.stderr


@pytest.mark.anyio
async def test_status_shows_every_pool_before_any_scaling_event(
    nc: Client, nats_server: EmbeddedNats
) -> None:
    env = {**os.environ, "NATS_URL": nats_server.url}
    done = await anyio.run_process(
        [sys.executable, "-m", "translator", "status"], env=env, check=False
    )
    lines = done.stdout.decode().splitlines()
    assert done.returncode == 0, done.stderr
    assert [line.split()[0] for line in lines] == ["pool", "normal", "any"]
    assert all(
        line.split()[1:4] == ["0", "0", "10000"] and line.endswith("-") for line in lines[1:]
    )
