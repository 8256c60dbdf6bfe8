"""Graceful shim restarts under a steady load through the gateway's protocol:
`python -m bench.shim_restarts [--gateway current|0.4.9] [--restarts 20] [--every 6] [--rate 40]`.

A gateway emulator sends requests with two targets (fr, de) at a fixed rate to the real shim; a
scaler runs two normal workers (a tiny RANDOM-WEIGHT t5, the cache off); one nats-server. The
shim is stopped with SIGTERM every `--every` seconds (at a random point between two sends) and
started again on the same ports as soon as it has exited, `--restarts` times, while the gateway
keeps sending (its PUSH holds what it sends while no shim listens). `current`: frames as the
current Meeshy gateway builds them, and its
retry (after 30 s without a result, the same taskId with the targets still pending, up to 4
times); `0.4.9`: a ping before every request, no retry. Every frame the gateway receives is
kept; each (message, target) pair's fates are counted at the end: completed, error, none (lost),
answered twice (two completions, or a completion and an error)."""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import anyio

import tests.gateway
from bench.common import machine, restart_shim, stop_all, unique_sentence
from bench.edge_faults import ready_workers
from tests.current_gateway import stringify
from tests.support import free_port, start_module
from translator.bus.embedded import EmbeddedNats
from translator.inference import randomweights

TARGETS = ("fr", "de")
RETRY_AFTER, MAX_RETRIES = 30.0, 4  # the current gateway's ZMQ timeout and ZMQ_MAX_RETRIES


class Gateway(tests.gateway.Gateway):
    """Keeps each (messageId, target) pair's fates with their arrival times."""

    def __init__(self, pull: int, pub: int, current: bool) -> None:
        super().__init__(pull, pub)
        self.current = current
        self.sent: dict[str, dict[str, Any]] = {}  # messageId -> the request
        self.sent_at: dict[str, float] = {}
        self.retries: dict[str, int] = defaultdict(int)
        self.fates: dict[tuple[str, str], list[tuple[str, float]]] = defaultdict(list)
        self.pongs = 0

    async def send(self, index: int) -> None:
        request: dict[str, Any] = {
            "taskId": str(uuid.uuid4()), "messageId": f"restart-{index}",
            "text": unique_sentence(index), "sourceLanguage": "en",
            "targetLanguages": list(TARGETS), "conversationId": "bench", "modelType": "basic",
            "timestamp": int(time.time() * 1000),
        }  # fmt: skip
        self.sent[request["messageId"]] = request
        self.sent_at[request["messageId"]] = time.monotonic()
        await self._push(request)

    async def _push(self, request: dict[str, Any]) -> None:
        if self.current:
            await self.push.send(stringify({"type": "translation", **request}))
        else:
            await self.push.send(json.dumps({"type": "ping", "timestamp": 0}).encode())
            await self.push.send(json.dumps(request).encode())

    def pending(self, message_id: str) -> list[str]:
        return [t for t in TARGETS if not self.fates.get((message_id, t))]

    async def retry_due(self) -> None:
        """The current gateway's timeouts: the same taskId, the targets still pending."""
        now = time.monotonic()
        for message_id, request in self.sent.items():
            waited = now - self.sent_at[message_id]
            if self.retries[message_id] >= MAX_RETRIES:
                continue
            if waited < RETRY_AFTER * (self.retries[message_id] + 1):
                continue
            left = self.pending(message_id)
            if left:
                self.retries[message_id] += 1
                await self._push({**request, "targetLanguages": left})

    def record(self, frame: bytes) -> None:
        message = json.loads(frame)
        now = time.monotonic()
        kind = message["type"]
        if kind == "translation_completed":
            pair = (message["result"]["messageId"], message["targetLanguage"])
            self.fates[pair].append(("completed", now))
        elif kind == "translation_error":  # no target named (0.4.9's shape): every pending one
            message_id = str(message.get("messageId"))
            named = message.get("targetLanguage")
            for target in [named] if named else self.pending(message_id) or list(TARGETS):
                self.fates[(message_id, target)].append(("error", now))
        elif kind == "pong":
            self.pongs += 1

    async def read(self) -> None:
        while True:
            self.record(await self.sub.recv())

    def settled(self) -> bool:
        return all(not self.pending(m) for m in self.sent)


async def run(options: argparse.Namespace, root: Path) -> dict[str, object]:
    model = randomweights.build("t5", root / "model")
    nats = EmbeddedNats(root / "nats").start()
    pull, pub = free_port(), free_port()
    env = {
        **os.environ, "NATS_URL": nats.url, "BASIC_MODEL": str(model), "MODELS_OFFLINE": "true",
        "NORMAL_WORKERS": "2", "ANY_WORKERS": "0", "ENABLE_DYNAMIC_SCALING": "false",
        "SCALER_HEALTH_PORT": "0", "ZMQ_HEALTH_PORT": "0", "TORCH_THREADS": "1",
        "TRANSLATOR_ZMQ_PULL_PORT": str(pull), "TRANSLATOR_ZMQ_PUB_PORT": str(pub),
        "ZMQ_BIND_HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1", "METRICS_ENABLED": "false",
        "CACHE_ENABLED": "false",
    }  # fmt: skip
    scaler = start_module(["scaler"], env, root / "scaler.log")
    shims = [start_module(["zmq_compat"], env, root / "shim.log")]
    gateway = Gateway(pull, pub, options.gateway == "current")
    restarts: list[dict[str, float]] = []
    chance = random.Random(options.seed)
    try:
        with anyio.fail_after(300):
            while len(await ready_workers(nats.url)) < 2:  # noqa: ASYNC110
                await anyio.sleep(0.5)
        async with anyio.create_task_group() as tg:
            tg.start_soon(gateway.read)
            with anyio.fail_after(60):
                while gateway.pongs == 0:
                    await gateway.push.send(b'{"type": "ping", "timestamp": 0}')
                    await anyio.sleep(0.2)
            duration = 5 + options.restarts * options.every + 5
            total = int(duration * options.rate)
            started = time.monotonic()
            next_stop = 5.0
            for i in range(total):
                now = time.monotonic() - started
                if len(restarts) < options.restarts and now >= next_stop:
                    next_stop += options.every
                    restarts.append({"at_s": round(now, 2)})
                    phase = chance.uniform(0, 1 / options.rate)
                    tg.start_soon(_restart, shims, env, root, restarts[-1], started, phase)
                await gateway.send(i)
                if gateway.current and i % options.rate == 0:
                    await gateway.retry_due()
                await anyio.sleep(max(started + (i + 1) / options.rate - time.monotonic(), 0))
            elapsed = time.monotonic() - started
            limit = RETRY_AFTER * (MAX_RETRIES + 1) if gateway.current else 120
            with anyio.move_on_after(limit):
                while not gateway.settled():
                    if gateway.current:
                        await gateway.retry_due()
                    await anyio.sleep(0.5)
            await anyio.sleep(5)  # a second fate would come now
            tg.cancel_scope.cancel()
    finally:
        gateway.close()
        stop_all([scaler, *shims], nats)
    return report(gateway, elapsed, options, restarts)


async def _restart(
    shims: list[subprocess.Popen[bytes]],
    env: dict[str, str],
    root: Path,
    record: dict[str, float],
    t0: float,
    phase: float,
) -> None:
    await anyio.sleep(phase)  # anywhere between two of the gateway's sends
    record["at_s"] = round(time.monotonic() - t0, 3)
    record["exit_code"] = await restart_shim(shims, env, root / "shim.log", wait=120)
    record["exited_s"] = round(time.monotonic() - t0, 2)


def report(
    gateway: Gateway, elapsed: float, options: argparse.Namespace, restarts: list[dict[str, float]]
) -> dict[str, object]:
    counts: dict[str, int] = defaultdict(int)
    latencies: list[float] = []
    first = min(gateway.sent_at.values(), default=0.0)
    irregular = []  # no fate, two, or one after a retry: when it was sent and each fate came
    for message_id, sent in gateway.sent_at.items():
        for target in TARGETS:
            fates = gateway.fates.get((message_id, target), [])
            kinds = [kind for kind, _ in fates]
            if not fates or len(fates) > 1 or fates[0][1] - sent > RETRY_AFTER:
                irregular.append(
                    f"{message_id}/{target} sent at {sent - first:.2f} s: "
                    + (", ".join(f"{k} +{t - sent:.2f} s" for k, t in fates) or "no fate")
                )
            if not fates:
                counts["no_fate"] += 1
                continue
            latencies.append(fates[0][1] - sent)
            if len(fates) > 1:
                counts["answered_twice"] += 1
            counts["completed" if kinds[0] == "completed" else "error"] += 1
    latencies.sort()

    def pct(q: float) -> float | None:
        return round(latencies[min(int(q * len(latencies)), len(latencies) - 1)], 3)

    gaps = [r["exited_s"] - r["at_s"] for r in restarts if "exited_s" in r]
    return {
        "machine": machine(),
        "gateway": options.gateway,
        "requests": len(gateway.sent),
        "pairs": len(gateway.sent) * len(TARGETS),
        "offered_rate": options.rate,
        "achieved_send_rate": round(len(gateway.sent) / elapsed, 1),
        "shim_sigterms": len(restarts),
        "exit_codes": sorted({r.get("exit_code", -1) for r in restarts}),
        "sigterm_to_exit_s_max": round(max(gaps, default=0.0), 2),
        "retries_sent": sum(gateway.retries.values()),
        "completed": counts["completed"],
        "error": counts["error"],
        "no_fate": counts["no_fate"],
        "answered_twice": counts["answered_twice"],
        "latency_p50_s": pct(0.50) if latencies else None,
        "latency_p99_s": pct(0.99) if latencies else None,
        "latency_max_s": round(latencies[-1], 3) if latencies else None,
        "restarts_at_s": [r["at_s"] for r in restarts],
        "irregular": irregular,
    }


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--gateway", choices=("current", "0.4.9"), default="current")
    args.add_argument("--restarts", type=int, default=20, help="shim SIGTERMs")
    args.add_argument("--every", type=float, default=6.0, help="seconds between SIGTERMs")
    args.add_argument("--rate", type=int, default=40, help="requests per second")
    args.add_argument("--seed", type=int, default=37, help="of each SIGTERM's random phase")
    args.add_argument("--keep", type=Path, help="a directory for the logs, kept afterwards")
    options = args.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = options.keep or Path(scratch)
        root.mkdir(parents=True, exist_ok=True)
        result = anyio.run(run, options, root)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
