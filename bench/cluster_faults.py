"""Faults on a 3-node JetStream cluster, under a steady load: `python -m bench.cluster_faults`.

Three nats-servers run the deployed `deploy/nats/cluster.conf` on loopback, every stream and
bucket on three replicas; two "hosts" (two scalers, HOST_NAME host-a and host-b, one worker
each, a tiny random-weight t5) share the normal pool; a NATS-native client sends requests at a
fixed rate, retrying a publish that fails with the same Nats-Msg-Id (JetStream de-duplicates).
Meanwhile: the requests stream's leader node is killed, then restarted; host-a is SIGKILLed; a
second node is killed, then restarted. At the end every result is read back from
TRANSLATE_RESULTS: sent, results, lost, duplicated, latency (the result's worker-side timestamp
minus the send time), and how long publishing stalled after each node kill."""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import anyio
from nats.aio.client import Client
from nats.js.api import ConsumerConfig, DeliverPolicy

from bench.common import ROOT, SENTENCES, machine
from tests.cluster import NatsCluster, leader
from tests.deployed_nats import as_user, set_up, settings_as
from translator.bus import heartbeat
from translator.bus.connection import connect
from translator.bus.retry import patiently
from translator.contracts.messages import TranslationRequest, TranslationResult, encode
from translator.contracts.subjects import (
    HEADER_MSG_ID,
    HEADER_REPLY_TO,
    Pool,
    Role,
    request_stream,
    request_subject,
)
from translator.inference import randomweights

REPLY = "translate.result.bench-cluster"


SETTINGS = {
    "STREAM_REPLICAS": "3", "NORMAL_WORKERS": "1", "ANY_WORKERS": "0",
    "ENABLE_DYNAMIC_SCALING": "false", "SCALER_HEALTH_PORT": "0", "TORCH_THREADS": "1",
    "BATCH_WINDOW_MS": "20", "ACK_WAIT": "5", "HEARTBEAT_TTL": "5", "PYTHONUNBUFFERED": "1",
}  # fmt: skip


def scaler(env: dict[str, str], host: str, log: Path) -> subprocess.Popen[bytes]:
    settings = {**SETTINGS, "HOST_NAME": host}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "scaler"], env=as_user({**env, **settings}, Role.SCALER),
            stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
        )  # fmt: skip


class Load:
    def __init__(self, client: Client, rate: float) -> None:
        self.client = client
        self.rate = rate
        self.sent: dict[str, float] = {}  # task id -> send time
        self.stalls: list[float] = []  # seconds a publish took, beyond a normal one

    async def send(self, i: int) -> None:
        req = TranslationRequest(
            message_id=f"cluster-{i}", text=SENTENCES[i % len(SENTENCES)], source_language="en",
            target_languages=("fr",), conversation_id="bench",
        )  # fmt: skip
        headers = {HEADER_MSG_ID: req.task_id, HEADER_REPLY_TO: REPLY}
        js = self.client.jetstream()
        started = time.time()
        await patiently(
            "publish",
            lambda: js.publish(request_subject(Pool.NORMAL), encode(req), headers=headers),
            deadline=120,
        )
        self.sent[req.task_id] = started
        if (took := time.time() - started) > 0.5:
            self.stalls.append(round(took, 2))


async def read_results(nc: Client, expected: int, timeout: float) -> list[TranslationResult]:
    js = nc.jetstream()
    sub = await js.subscribe(
        REPLY, ordered_consumer=True, config=ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
    )
    results: list[TranslationResult] = []
    with anyio.move_on_after(timeout):
        while len(results) < expected:
            msg = await sub.next_msg(timeout=None)
            results.append(TranslationResult.model_validate_json(msg.data))
    with anyio.move_on_after(3):  # anything stored twice arrives right after
        while True:
            msg = await sub.next_msg(timeout=None)
            results.append(TranslationResult.model_validate_json(msg.data))
    await sub.unsubscribe()
    return results


async def run(duration: float, rate: float, root: Path) -> dict[str, object]:
    model = randomweights.build("t5", root / "model")
    cluster = NatsCluster(root / "cluster")
    for name in ("n1", "n2", "n3"):
        cluster.start(name)
    env = {**os.environ, "NATS_URL": cluster.url, "BASIC_MODEL": str(model),
           "MODELS_OFFLINE": "true", "CACHE_ENABLED": "false"}  # fmt: skip
    await set_up(cluster.url, {**env, **SETTINGS})  # the operator's, three replicas each
    hosts = {h: scaler(env, h, root / f"{h}.log") for h in ("host-a", "host-b")}
    client = await connect(settings_as(cluster.url, Role.CLIENT), "bench-client", Role.CLIENT)
    reader = await connect(settings_as(cluster.url, Role.OPERATOR), "bench-reader", Role.OPERATOR)
    faults: list[tuple[float, str]] = []
    try:
        with anyio.fail_after(300):  # both hosts' workers ready
            while await patiently("heartbeats", lambda: _ready_workers(reader)) < 2:  # noqa: ASYNC110
                await anyio.sleep(0.5)
        total = int(duration * rate)
        load = Load(client, rate)
        plan = {
            int(total * 0.20): "kill requests leader",
            int(total * 0.35): "restart it",
            int(total * 0.50): "SIGKILL host-a",
            int(total * 0.65): "kill another node",
            int(total * 0.80): "restart it",
        }
        killed: list[str] = []
        started = time.monotonic()
        for i in range(total):
            if (fault := plan.get(i)) is not None:
                faults.append((round(time.monotonic() - started, 1), fault))
                await _fault(fault, cluster, reader, hosts, killed)
            await load.send(i)
            await anyio.sleep(max(started + (i + 1) / rate - time.monotonic(), 0))
        elapsed = time.monotonic() - started
        results = await read_results(client, len(load.sent), timeout=180)  # APP's copy
    finally:
        await client.close()
        await reader.close()
        for process in hosts.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in hosts.values():
            process.wait(60)
        cluster.stop()
    return report(load, results, elapsed, faults)


async def _ready_workers(nc: Client) -> int:
    return sum(1 for b in await heartbeat.read_all(nc.jetstream()) if b.state == "ready")


async def _fault(
    fault: str,
    cluster: NatsCluster,
    nc: Client,
    hosts: dict[str, subprocess.Popen[bytes]],
    killed: list[str],
) -> None:
    if fault == "kill requests leader":
        name = await patiently(
            "leader", lambda: leader(nc.jetstream(), request_stream(Pool.NORMAL))
        )
        cluster.kill(name)
        killed.append(name)
    elif fault == "kill another node":
        name = next(n for n in ("n1", "n2", "n3") if n in cluster.nodes and n not in killed)
        cluster.kill(name)
        killed.append(name)
    elif fault == "restart it":
        cluster.start(killed[-1])
    elif fault == "SIGKILL host-a":
        hosts["host-a"].kill()


def report(
    load: Load, results: list[TranslationResult], elapsed: float, faults: list[tuple[float, str]]
) -> dict[str, object]:
    counts = Counter(r.task_id for r in results)
    latencies = sorted(
        r.timestamp - load.sent[r.task_id] for r in results if r.task_id in load.sent
    )

    def pct(q: float) -> float:
        return round(latencies[min(int(q * len(latencies)), len(latencies) - 1)], 3)

    return {
        "machine": machine(),
        "sent": len(load.sent),
        "offered_rate": round(load.rate, 1),
        "achieved_send_rate": round(len(load.sent) / elapsed, 1),
        "results": len(results),
        "ok": sum(1 for r in results if r.status == "ok"),
        "lost": len(set(load.sent) - set(counts)),
        "duplicated": sum(n - 1 for n in counts.values() if n > 1),
        "latency_p50_s": pct(0.50),
        "latency_p99_s": pct(0.99),
        "latency_max_s": round(latencies[-1], 3) if latencies else None,
        "latency_mean_s": round(statistics.fmean(latencies), 3) if latencies else None,
        "publish_stalls_s": load.stalls,
        "faults_at_s": faults,
    }


def main() -> None:
    args = argparse.ArgumentParser(description=__doc__)
    args.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    args.add_argument("--rate", type=float, default=30.0, help="requests per second")
    options = args.parse_args()
    with tempfile.TemporaryDirectory() as root:
        result = anyio.run(run, options.duration, options.rate, Path(root))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
