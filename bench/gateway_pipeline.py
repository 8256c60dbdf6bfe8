"""Benchmark: gateway emulator -> zmq_compat -> JetStream -> worker -> back, with the
benchmark-only echo backend (no model: only the pipeline is measured), and, in the same run,
raw nats-py publish + fetch + ack for comparison.

    python -m bench.gateway_pipeline [--requests 3000] [--rate 100] [--seconds 10]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
import zmq
import zmq.asyncio
from nats.js.api import ConsumerConfig, RetentionPolicy, StorageType, StreamConfig

from bench.common import machine, start_worker, wait_ready
from translator.bus.connection import connect
from translator.bus.embedded import EmbeddedNats
from translator.bus.topology import setup_topology
from translator.contracts.settings import TranslatorSettings
from translator.contracts.subjects import Pool
from translator.inference.models import ECHO_MODEL_ID
from translator.runtime.children import spawn


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Gateway:
    """Like the Meeshy gateway: PUSH + SUB(""), a ping before every request."""

    def __init__(self, pull: int, pub: int) -> None:
        self.context = zmq.asyncio.Context()
        self.push = self.context.socket(zmq.PUSH)
        self.sub = self.context.socket(zmq.SUB)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.push.connect(f"tcp://127.0.0.1:{pull}")
        self.sub.connect(f"tcp://127.0.0.1:{pub}")
        self.sent: dict[str, float] = {}
        self.latency: dict[str, float] = {}
        self.done = anyio.Event()
        self.expected = 0

    async def send(self, index: int) -> None:
        message_id = f"bench-{index}"
        ping = json.dumps({"type": "ping", "timestamp": int(time.time() * 1000)}).encode()
        request = {
            "taskId": f"task-{index}-{time.monotonic_ns()}",
            "messageId": message_id,
            "text": "Bonjour à tous, comment allez-vous ?",
            "sourceLanguage": "fr",
            "targetLanguages": ["en"],
            "conversationId": "bench",
            "modelType": "basic",
        }
        await self.push.send(ping)
        self.sent[message_id] = time.perf_counter()
        await self.push.send(json.dumps(request).encode())

    async def read(self) -> None:
        while True:
            message = json.loads(await self.sub.recv())
            if message["type"] == "translation_completed":
                message_id = message["result"]["messageId"]
                self.latency[message_id] = time.perf_counter() - self.sent[message_id]
                if len(self.latency) >= self.expected:
                    self.done.set()
            elif message["type"] == "translation_error":
                raise RuntimeError(f"unexpected error: {message}")

    async def warm_up(self) -> None:
        """Wait until PUB reaches us (the shim forwards results only to a subscribed gateway)."""
        self.expected = 1
        with anyio.fail_after(30):
            await self.send(-1)
            await self.done.wait()
        self.reset()

    def reset(self) -> None:
        self.sent.clear()
        self.latency.clear()
        self.done = anyio.Event()

    def close(self) -> None:
        self.push.close(linger=0)
        self.sub.close(linger=0)
        self.context.term()


async def throughput(gateway: Gateway, count: int) -> float:
    gateway.reset()
    gateway.expected = count
    started = time.perf_counter()
    for index in range(count):
        await gateway.send(index)
    with anyio.fail_after(300):
        await gateway.done.wait()
    return count / (time.perf_counter() - started)


async def paced_latency(gateway: Gateway, rate: float, seconds: float) -> dict[str, float]:
    gateway.reset()
    count = int(rate * seconds)
    gateway.expected = count
    started = time.perf_counter()
    for index in range(count):
        await anyio.sleep(max(started + index / rate - time.perf_counter(), 0))
        await gateway.send(index)
    with anyio.fail_after(120):
        await gateway.done.wait()
    values = sorted(gateway.latency.values())
    return {
        "requests": count,
        "p50_ms": round(statistics.median(values) * 1000, 3),
        "p99_ms": round(values[int(len(values) * 0.99) - 1] * 1000, 3),
        "max_ms": round(values[-1] * 1000, 3),
    }


async def raw_nats(url: str, count: int) -> dict[str, float]:
    """nats-py alone: publish to a file-backed work queue, then fetch + ack, one process."""
    nc = await connect(TranslatorSettings(nats_url=url), "bench-raw")
    js = nc.jetstream()
    await js.add_stream(
        StreamConfig(
            name="BENCH_RAW",
            subjects=["bench.raw"],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
        )
    )
    await js.add_consumer("BENCH_RAW", ConsumerConfig(durable_name="raw"))
    payload = b'{"messageId":"m","text":"Bonjour","targetLanguages":["en"]}'
    started = time.perf_counter()
    for index in range(count):
        await js.publish("bench.raw", payload, headers={"Nats-Msg-Id": f"raw-{index}"})
    published = time.perf_counter()
    sub = await js.pull_subscribe_bind("raw", "BENCH_RAW")
    done = 0
    while done < count:
        for msg in await sub.fetch(batch=256, timeout=5):
            await msg.ack()
            done += 1
    consumed = time.perf_counter()
    await nc.close()
    return {
        "publish_per_s": round(count / (published - started)),
        "fetch_ack_per_s": round(count / (consumed - published)),
        "publish_fetch_ack_per_s": round(count / (consumed - started)),
    }


async def main(args: argparse.Namespace) -> dict[str, object]:
    pull, pub = free_port(), free_port()
    with tempfile.TemporaryDirectory() as store, EmbeddedNats(Path(store)) as server:
        settings = TranslatorSettings(nats_url=server.url)
        nc = await connect(settings, "bench")
        await setup_topology(nc.jetstream(), settings)
        raw = await raw_nats(server.url, args.requests)
        env = {
            "NATS_URL": server.url,
            "BASIC_MODEL": ECHO_MODEL_ID,
            "BATCH_SIZE": "64",
            "LOG_LEVEL": "WARNING",
            "TRANSLATOR_ZMQ_PULL_PORT": str(pull),
            "TRANSLATOR_ZMQ_PUB_PORT": str(pub),
            "ZMQ_BIND_HOST": "127.0.0.1",
        }
        worker = start_worker(Pool.NORMAL, env)
        shim = spawn([sys.executable, "-m", "zmq_compat"], {**os.environ, **env})
        gateway = Gateway(pull, pub)
        try:
            await wait_ready(nc, {worker.pid})
            async with anyio.create_task_group() as tg:
                tg.start_soon(gateway.read)
                await gateway.warm_up()
                rate = await throughput(gateway, args.requests)
                latency = await paced_latency(gateway, args.rate, args.seconds)
                tg.cancel_scope.cancel()
        finally:
            gateway.close()
            for process in (shim, worker):
                process.terminate()
                process.wait(30)
            await nc.close()
    return {
        "machine": machine(),
        "backend": f"{ECHO_MODEL_ID} (no model: the pipeline alone)",
        "raw_nats_py": raw,
        "pipeline_requests_per_s": round(rate),
        "pipeline_over_raw": round(rate / raw["publish_fetch_ack_per_s"], 2),
        f"latency_at_{args.rate:g}_per_s": latency,
    }


def cli() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=100.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    print(json.dumps(anyio.run(main, parser.parse_args()), indent=2))


if __name__ == "__main__":
    cli()
