"""Faults at the edges, under a steady load through the gateway's protocol:
`python -m bench.edge_faults [--duration 120] [--rate 50]`.

A gateway emulator (PUSH + SUB, a ping before every request, as the 0.4.9 gateway) sends
requests at a fixed rate to the real shim; a scaler runs two normal workers (a tiny random-weight
t5); one nats-server. Meanwhile: a worker is SIGKILLed every 10 s (the scaler replaces it),
nats-server is SIGKILLed and restarted 3 s later, and the shim is stopped with SIGTERM and started
again on the same ports. Every frame the gateway receives is kept; at the end each request's
fate is counted: completed, refused with an error (and never completed), lost (neither),
duplicated (completed twice), both fates; latency is the first fate's arrival minus the send."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import anyio

import tests.gateway
from bench.common import SENTENCES, machine, restart_shim, stop_all
from tests.support import free_port, start_module
from translator.bus import heartbeat
from translator.bus.connection import connect
from translator.bus.embedded import EmbeddedNats
from translator.contracts.settings import TranslatorSettings
from translator.inference import randomweights


class Gateway(tests.gateway.Gateway):
    """The tests' gateway emulator, keeping every request's fates with their arrival times."""

    def __init__(self, pull: int, pub: int) -> None:
        super().__init__(pull, pub)
        self.sent: dict[str, float] = {}
        self.fates: dict[str, list[tuple[str, float]]] = defaultdict(list)
        self.pongs = 0

    prefix = "edge"  # of the message ids
    target = "fr"  # every request's one target language

    def text(self, index: int) -> str:
        return SENTENCES[index % len(SENTENCES)]

    async def send(self, index: int) -> None:
        message_id = f"{self.prefix}-{index}"
        ping = {"type": "ping", "timestamp": int(time.time() * 1000)}
        request = {
            "taskId": f"task-{index}-{time.time_ns()}", "messageId": message_id,
            "text": self.text(index), "sourceLanguage": "en",
            "targetLanguages": [self.target], "conversationId": "bench", "modelType": "basic",
        }  # fmt: skip
        await self.push.send(json.dumps(ping).encode())
        self.sent[message_id] = time.monotonic()
        await self.push.send(json.dumps(request).encode())

    def record(self, frame: bytes) -> None:
        message = json.loads(frame)
        now = time.monotonic()
        if message["type"] == "translation_completed":
            self.fates[message["result"]["messageId"]].append(("completed", now))
        elif message["type"] == "translation_error":
            self.fates[str(message.get("messageId"))].append(("error", now))
        elif message["type"] == "pong":
            self.pongs += 1

    async def read(self) -> None:
        while True:
            self.record(await self.sub.recv())

    def settled(self) -> bool:
        return all(m in self.fates for m in self.sent)


async def ready_workers(url: str) -> list[int]:
    nc = await connect(TranslatorSettings(nats_url=url), "bench-probe", patient=False)
    try:
        beats = await heartbeat.read_all(nc.jetstream())
    finally:
        await nc.close()
    return [b.pid for b in beats if b.state in ("ready", "busy")]


async def run(duration: float, rate: float, root: Path) -> dict[str, object]:
    model = randomweights.build("t5", root / "model")
    nats = EmbeddedNats(root / "nats").start()
    port = nats.port or 0
    pull, pub = free_port(), free_port()
    env = {
        **os.environ, "NATS_URL": nats.url, "BASIC_MODEL": str(model), "MODELS_OFFLINE": "true",
        "NORMAL_WORKERS": "2", "ANY_WORKERS": "0", "ENABLE_DYNAMIC_SCALING": "false",
        "SCALER_HEALTH_PORT": "0", "ZMQ_HEALTH_PORT": "0", "TORCH_THREADS": "1",
        "TRANSLATOR_ZMQ_PULL_PORT": str(pull), "TRANSLATOR_ZMQ_PUB_PORT": str(pub),
        "ZMQ_BIND_HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1", "METRICS_ENABLED": "false",
        "CACHE_ENABLED": "false",  # the same sentences again: the workers must do the work
    }  # fmt: skip
    scaler = start_module(["scaler"], env, root / "scaler.log")
    shims = [start_module(["zmq_compat"], env, root / "shim.log")]
    gateway = Gateway(pull, pub)
    faults: list[tuple[float, str]] = []
    try:
        with anyio.fail_after(300):
            while len(await ready_workers(nats.url)) < 2:  # noqa: ASYNC110
                await anyio.sleep(0.5)
        async with anyio.create_task_group() as tg:
            tg.start_soon(gateway.read)
            with anyio.fail_after(60):  # PUB reaches the gateway: the first pong
                while gateway.pongs == 0:
                    await gateway.push.send(b'{"type": "ping", "timestamp": 0}')
                    await anyio.sleep(0.2)
            total = int(duration * rate)
            nats_down, shim_stop = 0.3 * duration, 0.6 * duration
            next_kill = 10.0
            started = time.monotonic()
            for i in range(total):
                now = time.monotonic() - started
                if now >= next_kill:
                    next_kill += 10
                    pids = await _ready_or_none(nats.url)
                    if pids:
                        os.kill(pids[0], signal.SIGKILL)
                        faults.append((round(now, 1), f"SIGKILL worker {pids[0]}"))
                if nats_down and now >= nats_down:
                    nats_down = 0
                    faults.append((round(now, 1), "SIGKILL nats-server"))
                    nats.kill()
                    tg.start_soon(_restart_nats, nats, port, 3.0, faults, started)
                if shim_stop and now >= shim_stop:
                    shim_stop = 0
                    faults.append((round(now, 1), "SIGTERM shim, then start it again"))
                    tg.start_soon(_restart_shim, shims, env, root, faults, started)
                await gateway.send(i)
                await anyio.sleep(max(started + (i + 1) / rate - time.monotonic(), 0))
            elapsed = time.monotonic() - started
            with anyio.move_on_after(180):
                while not gateway.settled():  # noqa: ASYNC110
                    await anyio.sleep(0.2)
            await anyio.sleep(5)  # a second fate would come now
            tg.cancel_scope.cancel()
    finally:
        gateway.close()
        stop_all([scaler, *shims], nats)
    return report(gateway, elapsed, rate, faults)


async def _ready_or_none(url: str) -> list[int]:
    try:
        return await ready_workers(url)
    except Exception:  # NATS down at that moment: no kill this round
        return []


async def _restart_nats(
    nats: EmbeddedNats, port: int, after: float, faults: list[tuple[float, str]], t0: float
) -> None:
    await anyio.sleep(after)
    nats.requested_port = port  # the clients reconnect to where it was
    await anyio.to_thread.run_sync(nats.start)
    faults.append((round(time.monotonic() - t0, 1), "nats-server restarted"))


async def _restart_shim(
    shims: list[subprocess.Popen[bytes]],
    env: dict[str, str],
    root: Path,
    faults: list[tuple[float, str]],
    t0: float,
) -> None:
    code = await restart_shim(shims, env, root / "shim.log")
    faults.append((round(time.monotonic() - t0, 1), f"shim exited {code}, restarted"))


def report(
    gateway: Gateway, elapsed: float, rate: float, faults: list[tuple[float, str]]
) -> dict[str, object]:
    completed = errors = lost = duplicated = both = 0
    latencies: list[float] = []
    first = min(gateway.sent.values(), default=0.0)
    lost_at: list[float] = []
    worst: dict[int, float] = {}  # 5-second window of the send -> its slowest answer
    for message_id, sent in gateway.sent.items():
        fates = gateway.fates.get(message_id, [])
        kinds = [kind for kind, _ in fates]
        if not fates:
            lost += 1
            lost_at.append(round(sent - first, 2))
            continue
        latencies.append(fates[0][1] - sent)
        window = int((sent - first) // 5) * 5
        worst[window] = max(worst.get(window, 0.0), round(fates[0][1] - sent, 2))
        duplicated += max(kinds.count("completed") - 1, 0)
        if "completed" in kinds and "error" in kinds:
            both += 1
        elif "completed" in kinds:
            completed += 1
        else:
            errors += 1
    latencies.sort()

    def pct(q: float) -> float | None:
        if not latencies:
            return None
        return round(latencies[min(int(q * len(latencies)), len(latencies) - 1)], 3)

    return {
        "machine": machine(),
        "sent": len(gateway.sent),
        "offered_rate": rate,
        "achieved_send_rate": round(len(gateway.sent) / elapsed, 1),
        "completed": completed,
        "refused_with_error": errors,
        "lost": lost,
        "duplicated": duplicated,
        "both_fates": both,
        "latency_p50_s": pct(0.50),
        "latency_p99_s": pct(0.99),
        "latency_max_s": round(latencies[-1], 3) if latencies else None,
        "faults_at_s": faults,
        "lost_sent_at_s": lost_at,
        "slowest_answer_by_5s_window": worst,
    }


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--duration", type=float, default=120.0, help="seconds of load")
    args.add_argument("--rate", type=float, default=50.0, help="requests per second")
    args.add_argument("--keep", type=Path, help="a directory for the logs, kept afterwards")
    options = args.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = options.keep or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        result = anyio.run(run, options.duration, options.rate, root)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
