"""Benchmark helpers: an embedded nats-server, real worker subprocesses, load, timing."""

from __future__ import annotations

import os
import platform
import signal
import statistics
import subprocess
import time
from pathlib import Path

import anyio
import psutil
from nats.aio.client import Client

from tests.support import start_module
from translator.bus import heartbeat
from translator.bus.client import submit
from translator.bus.embedded import EmbeddedNats
from translator.contracts.messages import TranslationRequest
from translator.contracts.subjects import Pool
from translator.contracts.telemetry import WorkerHeartbeat
from translator.inference import randomweights
from translator.runtime.children import spawn, worker_command

ROOT = Path(__file__).resolve().parent.parent
SENTENCES = [
    "Hello everyone, how are you today?",
    "The meeting starts at noon, please do not be late.",
    "I will send you the documents tomorrow morning.",
    "Thanks a lot for your help with the project!",
    "Could we move our call to Thursday afternoon?",
    "The weather is nice, let us have lunch outside.",
    "Did you see the new design of the application?",
    "See you at the station after work.",
]


def unique_sentence(index: int) -> str:
    """A chat line made unique by a number inside its one sentence: a worker translates each
    distinct sentence of a batch once, so repeated sentences would measure that, not the model."""
    line = SENTENCES[index % len(SENTENCES)]
    return f"{line[:-1]} {index}{line[-1]}"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    memory = psutil.virtual_memory().total / 2**30
    python = platform.python_version()
    described = f"{os.cpu_count()} CPU cores ({cpu}), {memory:.0f} GiB RAM, Python {python}"
    import torch

    if torch.cuda.is_available():
        described += f", {torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return described


def random_model(
    cache: Path, output_tokens: int, arch: randomweights.Architecture = "t5", shape: str = "small"
) -> Path:
    """A model with RANDOM WEIGHTS at a real model's shape, with a fixed output length (built
    once): t5-small's by default."""
    path = cache / f"{arch}-{shape}-random-{output_tokens}"
    if not (path / "config.json").is_file():
        randomweights.build(arch, path, shape=shape, output_tokens=output_tokens, fixed_length=True)
    return path


def start_worker(pool: Pool, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return spawn(worker_command(pool), {**os.environ, **env})


async def wait_ready(nc: Client, pids: set[int], timeout: float = 300) -> list[WorkerHeartbeat]:
    with anyio.fail_after(timeout):
        while True:
            ready = [
                b
                for b in await heartbeat.read_all(nc.jetstream())
                if b.pid in pids and b.state == "ready"
            ]
            if len(ready) == len(pids):
                return ready
            await anyio.sleep(0.1)


async def worker_beat(nc: Client, pid: int) -> WorkerHeartbeat | None:
    return next((b for b in await heartbeat.read_all(nc.jetstream()) if b.pid == pid), None)


def requests(
    count: int, pool: Pool = Pool.NORMAL, targets: tuple[str, ...] = ("fr",)
) -> list[TranslationRequest]:
    """`count` requests, each text a different sentence (`unique_sentence`)."""
    conversation = "any" if pool is Pool.ANY else "bench"
    return [
        TranslationRequest(
            message_id=f"bench-{i}",
            text=unique_sentence(i),
            source_language="en",
            target_languages=targets,
            conversation_id=conversation,
        )
        for i in range(count)
    ]


async def run_load(nc: Client, reqs: list[TranslationRequest], timeout: float = 600) -> float:
    """Submit every request at once; seconds until the last result arrived."""
    inbox = nc.new_inbox()
    expected = sum(len(r.target_languages) for r in reqs)
    arrivals: list[float] = []
    done = anyio.Event()

    async def on_result(_msg: object) -> None:
        arrivals.append(time.perf_counter())
        if len(arrivals) == expected:
            done.set()

    sub = await nc.subscribe(inbox, cb=on_result)
    try:
        started = time.perf_counter()
        for req in reqs:
            await submit(nc, req, inbox)
        with anyio.fail_after(timeout):
            await done.wait()
    finally:
        await sub.unsubscribe()
    return arrivals[-1] - started


def median(values: list[float]) -> float:
    return statistics.median(values)


def percentile(values: list[float], q: float) -> float:
    """The `q` quantile of already sorted `values` (nan for none)."""
    return values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")


def stop_all(processes: list[subprocess.Popen[bytes]], nats: EmbeddedNats) -> None:
    """The end of a run: SIGTERM to every process still running, then the wait for each (each
    drains as in production), then the NATS server."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        process.wait(60)
    nats.stop()


async def restart_shim(
    shims: list[subprocess.Popen[bytes]], env: dict[str, str], log: Path, wait: float = 60
) -> int:
    """SIGTERM the latest shim, wait for its exit, start the next one (appended to `shims`) on
    the same settings; the exit code of the one stopped."""
    shim = shims[-1]
    shim.send_signal(signal.SIGTERM)
    code = await anyio.to_thread.run_sync(shim.wait, wait)
    shims.append(start_module(["zmq_compat"], env, log))
    return int(code)
