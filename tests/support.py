"""Test helpers: a real nats-server per test, real worker subprocesses, tiny real models."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from unittest.mock import patch

import anyio
from nats.aio.client import Client
from nats.js.api import ConsumerConfig, DeliverPolicy

from translator.bus import heartbeat
from translator.bus.connection import connect
from translator.bus.topology import setup_topology
from translator.contracts.messages import (
    Alert,
    DeadLetter,
    ScalingEvent,
    TranslationRequest,
    TranslationResult,
    encode,
)
from translator.contracts.settings import TranslatorSettings
from translator.contracts.subjects import (
    ALERT_EVENTS,
    EVENTS_STREAM,
    GATEWAY_RESULTS_STREAM,
    HEADER_MSG_ID,
    HEADER_REPLY_TO,
    SCALING_EVENTS,
    WORKERS_CONSUMER,
    Pool,
    Role,
    dead_letter_subject,
    request_stream,
    request_subject,
)
from translator.contracts.telemetry import WorkerHeartbeat
from translator.runtime.children import worker_command
from zmq_compat.settings import ShimSettings

ROOT = Path(__file__).resolve().parent.parent
SERVICES = ("zmq_compat", "scaler")
T = TypeVar("T")


@dataclass(frozen=True)
class Models:
    t5: Path
    nllb: Path
    marian: Path
    m2m100: Path
    slow_t5: Path


def worker_env(nats_url: str, models: Models, **overrides: object) -> dict[str, str]:
    env = {
        **os.environ,
        "NATS_URL": nats_url,
        "BASIC_MODEL": str(models.t5),
        "MEDIUM_MODEL": str(models.nllb),
        "PREMIUM_MODEL": str(models.marian),
        "MODELS_OFFLINE": "true",
        "HEARTBEAT_INTERVAL": "0.2",
        "BATCH_WINDOW_MS": "50",
        "ACK_WAIT": "3",
        "RETRY_DELAY": "0.2",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
        "ZMQ_HEALTH_PORT": "0",
        "SCALER_HEALTH_PORT": "0",
    }
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def settings_of(env: dict[str, str]) -> TranslatorSettings:
    """The settings `env` alone makes, read as a service reads its environment."""
    with patch.dict(os.environ, env, clear=True):
        return TranslatorSettings()


def run_apart(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """`await work()` on an event loop of its own, in a thread: from synchronous code (a
    fixture, a process helper) whatever the caller runs."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, work()).result()


def set_up(env: dict[str, str]) -> None:
    """The operator's set-up (`translator setup`) with the settings of `env`, before a service
    that only checks the topology starts. Skipped where `env` names a NATS user: a test of the
    shipped users sets up as the operator itself."""
    if "NATS_USER" in env or not env.get("NATS_URL"):
        return
    settings = settings_of(env)

    async def go() -> None:
        try:
            nc = await connect(settings, "tests-setup", Role.OPERATOR, patient=False)
        except ConnectionError:
            return  # not up yet: the test sets up once it is (a service waits TOPOLOGY_WAIT)
        try:
            await setup_topology(nc.jetstream(), settings)
        finally:
            await nc.close()

    run_apart(go)


def start_module(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`python -m <args>` as a real subprocess, its output appended to `log`; a service (shim,
    scaler) after the set-up of the topology it checks."""
    return _start([sys.executable, "-m", *args], env, log, service=args[0] in SERVICES)


def start_worker(env: dict[str, str], pool: Pool, log: Path) -> subprocess.Popen[bytes]:
    """A worker process, started as the scaler starts one."""
    return _start(worker_command(pool), env, log, service=True)


def _start(
    command: list[str], env: dict[str, str], log: Path, service: bool
) -> subprocess.Popen[bytes]:
    if service:
        set_up(env)
    with log.open("ab") as out:
        return subprocess.Popen(command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


async def wait_for_heartbeat(
    nc: Client,
    pid: int,
    timeout: float = 60.0,
    where: Callable[[WorkerHeartbeat], bool] = lambda beat: True,
    **fields: object,
) -> WorkerHeartbeat:
    """The first heartbeat of worker `pid` whose fields match (e.g. state="ready"), and `where`."""
    with anyio.fail_after(timeout):
        while True:
            for beat in await heartbeat.read_all(nc.jetstream()):
                matches = all(getattr(beat, k) == v for k, v in fields.items())
                if beat.pid == pid and matches and where(beat):
                    return beat
            await anyio.sleep(0.05)


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> int:
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(45)  # outlasts the shim's stop (zmq_compat.service.stop_budget)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


@asynccontextmanager
async def running_worker(
    nc: Client, env: dict[str, str], pool: Pool, log: Path
) -> AsyncIterator[subprocess.Popen[bytes]]:
    process = start_worker(env, pool, log)
    try:
        await wait_for_heartbeat(nc, process.pid, state="ready")
        yield process
    finally:
        with anyio.CancelScope(shield=True):  # the stop waits in a thread, not on the loop
            await anyio.to_thread.run_sync(stop_process, process)


def request(
    text: str = "Hello everyone",
    targets: tuple[str, ...] = ("fr",),
    **fields: object,
) -> TranslationRequest:
    values: dict[str, object] = {
        "message_id": f"msg-{time.monotonic_ns()}",
        "text": text,
        "source_language": "en",
        "target_languages": targets,
        "conversation_id": "conv-1",
    }
    values.update(fields)
    return TranslationRequest.model_validate(values)


async def publish_raw(
    nc: Client, pool: Pool, data: bytes, reply_to: str, msg_id: str | None = None
) -> None:
    headers = {HEADER_REPLY_TO: reply_to}
    if msg_id:
        headers[HEADER_MSG_ID] = msg_id
    await nc.jetstream().publish(request_subject(pool), data, headers=headers)


async def publish_request(nc: Client, req: TranslationRequest, reply_to: str) -> None:
    await publish_raw(nc, req.pool, encode(req), reply_to, req.task_id)


async def collect_results(
    nc: Client, subject: str, count: int, timeout: float = 60.0
) -> list[TranslationResult]:
    """Read `count` results stored on `subject` in TRANSLATE_RESULTS (from the start)."""
    js = nc.jetstream()
    sub = await js.subscribe(
        subject, ordered_consumer=True, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    results: list[TranslationResult] = []
    try:
        with anyio.fail_after(timeout):
            while len(results) < count:
                msg = await sub.next_msg(timeout=None)
                results.append(TranslationResult.model_validate_json(msg.data))
    finally:
        await sub.unsubscribe()
    return results


async def stored_count(nc: Client, stream: str, subject: str | None = None) -> int:
    info = await nc.jetstream().stream_info(stream, subjects_filter=subject)
    if subject is None:
        return int(info.state.messages)
    return sum((info.state.subjects or {}).values())


def shim_env(nats_url: str, **overrides: object) -> dict[str, str]:
    env = {
        **os.environ,
        "NATS_URL": nats_url,
        "TRANSLATOR_ZMQ_PULL_PORT": "0",
        "TRANSLATOR_ZMQ_PUB_PORT": "0",
        "ZMQ_BIND_HOST": "127.0.0.1",
        "ZMQ_HEALTH_PORT": "0",
        "ACK_WAIT": "3",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def start_shim(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return start_module(["zmq_compat"], env, log)


def _logged_port(log: Path, what: str) -> int | None:
    match = re.search(rf"{re.escape(what)} on http://[\d.]+:(\d+)", log.read_text())
    return int(match.group(1)) if match else None


def logged_port(log: Path, what: str, timeout: float = 60) -> int:
    """The port of an HTTP server, from its log line `<what> on http://host:port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (port := _logged_port(log, what)) is not None:
            return port
        time.sleep(0.05)
    raise AssertionError(log.read_text()[-3000:])


async def port_logged(log: Path, what: str, timeout: float = 60) -> int:
    """`logged_port` without blocking the event loop."""
    return await until(lambda: _logged_port(log, what), timeout)


async def until(probe: Callable[[], T | None], timeout: float) -> T:
    """`probe()` every 50 ms until it answers (not None), without blocking the event loop."""
    with anyio.fail_after(timeout):
        while (found := probe()) is None:  # noqa: ASYNC110
            await anyio.sleep(0.05)
    return found


def wait_logged(log: Path, text: str, timeout: float = 60) -> None:
    """Until `text` is in `log` (a process says it is ready)."""
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        if time.monotonic() > deadline:
            raise AssertionError(f"{text!r} not logged:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)


def http_port(log: Path) -> int:
    """The port of the shim's HTTP API."""
    return logged_port(log, _HTTP_API)


async def http_ready(log: Path) -> int:
    """`http_port` without blocking the event loop."""
    return await port_logged(log, _HTTP_API)


async def text_logged(log: Path, text: str, timeout: float = 60) -> None:
    """`wait_logged` without blocking the event loop."""
    await until(lambda: _logged(log, text), timeout)


def _logged(log: Path, text: str) -> bool | None:
    return True if text in log.read_text() else None


_HTTP_API = "HTTP API, health and metrics"


_SHIM_PORTS = re.compile(r"PULL on [\d.]+:(\d+), PUB on [\d.]+:(\d+)")


def _ready_shim_ports(log: Path, after: int) -> tuple[int, int] | None:
    text = log.read_text()[after:]
    match = _SHIM_PORTS.search(text)
    if match and "zmq_compat ready" in text:
        return int(match.group(1)), int(match.group(2))
    return None


def shim_ports(log: Path, after: int = 0, timeout: float = 30) -> tuple[int, int]:
    """(pull, pub) ports from the shim's log line, once it is ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (ports := _ready_shim_ports(log, after)) is not None:
            return ports
        time.sleep(0.05)
    raise AssertionError(f"shim not ready:\n{log.read_text()[-3000:]}")


async def shim_ready(log: Path, after: int = 0, timeout: float = 30) -> tuple[int, int]:
    """`shim_ports` without blocking the event loop (an async test's other tasks go on)."""
    return await until(lambda: _ready_shim_ports(log, after), timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_scaler(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return start_module(["scaler"], env, log)


SHIM_CONSUMER = ShimSettings.model_fields["zmq_shim_name"].default  # the shim's durable


async def connected(url: str) -> Client:
    return await connect(TranslatorSettings(nats_url=url, nats_connect_timeout=10), "tests")


async def settled(nc: Client, pool: Pool = Pool.NORMAL) -> None:
    """Nothing left to redeliver: the pool's requests all acked, the shim's results all acked."""
    js = nc.jetstream()
    with anyio.fail_after(60):
        while True:
            requests = await js.consumer_info(request_stream(pool), WORKERS_CONSUMER)
            results = await js.consumer_info(GATEWAY_RESULTS_STREAM, SHIM_CONSUMER)
            pending = (requests.num_pending, requests.num_ack_pending)
            if pending == (0, 0) and (results.num_pending, results.num_ack_pending) == (0, 0):
                return
            await anyio.sleep(0.1)


async def stored_events(nc: Client, subject: str) -> list[bytes]:
    sub = await nc.jetstream().subscribe(
        subject, stream=EVENTS_STREAM, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL
    )
    found = []
    try:
        while True:
            found.append((await sub.next_msg(timeout=0.5)).data)
    except TimeoutError:
        pass
    finally:
        await sub.unsubscribe()
    return found


async def scaling_events(nc: Client) -> list[ScalingEvent]:
    return [
        ScalingEvent.model_validate_json(data) for data in await stored_events(nc, SCALING_EVENTS)
    ]


async def alerts(nc: Client) -> list[Alert]:
    return [Alert.model_validate_json(data) for data in await stored_events(nc, ALERT_EVENTS)]


def translator(
    *args: str, env: dict[str, str], timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "translator", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def wait_for_line(log: Path, pattern: str, timeout: float = 60) -> re.Match[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(pattern, log.read_text())
        if match:
            return match
        time.sleep(0.1)
    raise AssertionError(f"{pattern!r} not in log:\n{log.read_text()[-3000:]}")


async def read_dead_letters(nc: Client, count: int) -> list[DeadLetter]:
    sub = await nc.jetstream().subscribe(dead_letter_subject(Pool.NORMAL), ordered_consumer=True)
    letters: list[DeadLetter] = []
    with anyio.fail_after(30):
        while len(letters) < count:
            msg = await sub.next_msg(timeout=None)
            letters.append(DeadLetter.model_validate_json(msg.data))
    await sub.unsubscribe()
    return letters


MESSAGE = (
    "@alice Bonjour à tous ! 😂 Voir https://example.com/a_(b).html?x=1, merci.\n\n"
    "Deuxième paragraphe 👨‍👩‍👧 avec `npm install` et bob@mail.fr 👍🏽🇫🇷1️⃣\n"
    "```\nprint('hello world')\n```\n"
    "Fin."
)


PROTECTED = [
    "@alice", "😂", "https://example.com/a_(b).html?x=1", "👨‍👩‍👧", "`npm install`",
    "bob@mail.fr", "👍🏽", "🇫🇷", "1️⃣", "```\nprint('hello world')\n```",
]  # fmt: skip
