"""A gateway emulator that behaves like the Meeshy gateway's ZeroMQ client (0.4.9-alpha):
PUSH and SUB connect, SUB subscribes to everything, a ping goes before every request, and
results are matched on messageId + targetLanguage."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import zmq
import zmq.asyncio
from nats.aio.client import Client

from tests.support import shim_ready, start_shim, stop_process


class Gateway:
    """`source`: the address it connects from (a loopback one other than 127.0.0.1 stands for
    another host)."""

    def __init__(
        self, pull_port: int, pub_port: int, host: str = "127.0.0.1", source: str = ""
    ) -> None:
        self.context = zmq.asyncio.Context()
        self.push = self.context.socket(zmq.PUSH)
        self.sub = self.context.socket(zmq.SUB)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        origin = f"{source}:0;" if source else ""
        self.push.connect(f"tcp://{origin}{host}:{pull_port}")
        self.sub_endpoint = f"tcp://{origin}{host}:{pub_port}"
        self.sub.connect(self.sub_endpoint)
        self.received: list[dict[str, Any]] = []
        self.raw: list[bytes] = []

    async def resubscribe(self) -> None:
        """A new SUB socket, as the gateway makes when it recreates it: what the old one had
        queued and not read is gone with it."""
        self.sub.close(linger=0)
        self.sub = self.context.socket(zmq.SUB)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.sub.connect(self.sub_endpoint)
        pongs = sum(1 for m in self.received if m.get("type") == "pong")
        with anyio.fail_after(20):  # joined once a pong reaches the new socket
            while sum(1 for m in self.received if m.get("type") == "pong") == pongs:
                await self.ping()
                with anyio.move_on_after(0.2):
                    await self.read_one()

    def close(self) -> None:
        self.push.close(linger=0)
        self.sub.close(linger=0)
        self.context.term()

    async def send_raw(self, *frames: bytes) -> None:
        await self.push.send_multipart(list(frames))

    async def ping(self) -> None:
        await self.send_raw(
            json.dumps({"type": "ping", "timestamp": int(time.time() * 1000)}).encode()
        )

    async def request(self, text: str, targets: list[str], **fields: Any) -> dict[str, Any]:
        """Ping, then the request, exactly as the gateway does; returns what was sent."""
        message = {
            "taskId": str(uuid.uuid4()),
            "messageId": f"msg-{uuid.uuid4().hex[:12]}",
            "text": text,
            "sourceLanguage": "en",
            "targetLanguages": targets,
            "conversationId": "conv-1",
            "modelType": "basic",
            "timestamp": int(time.time() * 1000),
            **fields,
        }
        await self.ping()
        await self.send_raw(json.dumps(message).encode())
        return message

    async def connected(self, timeout: float = 20) -> None:
        """Wait until PUB reaches us (a pong comes back): the slow-joiner problem of PUB/SUB."""
        with anyio.fail_after(timeout):
            while not any(m.get("type") == "pong" for m in self.received):
                await self.ping()
                with anyio.move_on_after(0.2):
                    await self.read_one()

    async def read_one(self) -> dict[str, Any]:
        frame = await self.sub.recv()
        self.raw.append(frame)
        message: dict[str, Any] = json.loads(frame)
        self.received.append(message)
        return message

    async def wait_for(
        self, predicate: Any, count: int = 1, timeout: float = 60
    ) -> list[dict[str, Any]]:
        with anyio.fail_after(timeout):
            while len([m for m in self.received if predicate(m)]) < count:
                await self.read_one()
        return [m for m in self.received if predicate(m)]

    async def results_for(
        self, sent: dict[str, Any], timeout: float = 60
    ) -> dict[str, dict[str, Any]]:
        """One message per target language of `sent`, matched on messageId + targetLanguage."""

        def ours(m: dict[str, Any]) -> bool:
            completed = (
                m.get("type") == "translation_completed"
                and m["result"]["messageId"] == sent["messageId"]
            )
            failed = (
                m.get("type") == "translation_error" and m.get("messageId") == sent["messageId"]
            )
            return completed or failed

        found = await self.wait_for(ours, len(sent["targetLanguages"]), timeout)
        return {m.get("targetLanguage", f"error-{i}"): m for i, m in enumerate(found)}


# -- the emulator against a real shim process --------------------------------------------------


@asynccontextmanager
async def shim(env: dict[str, str], log: Path) -> AsyncIterator[tuple[int, int]]:
    """A real shim process, its (pull, pub) ports once it is ready; stopped with SIGTERM, which
    must end it cleanly. Nothing here blocks the test's event loop."""
    offset = log_size(log)
    process = start_shim(env, log)
    try:
        yield await shim_ready(log, after=offset)
    except BaseException:
        print(log_since(log, offset))  # pytest shows it with the failure
        raise
    finally:
        with anyio.CancelScope(shield=True):
            code = await anyio.to_thread.run_sync(stop_process, process)
        assert code == 0, f"the shim exited with {code}:\n{log_since(log, offset)}"


def log_size(log: Path) -> int:
    return log.stat().st_size if log.exists() else 0


def log_since(log: Path, offset: int, limit: int = 20_000) -> str:
    """The log written since `offset` (its last `limit` characters)."""
    with log.open("rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")[-limit:]


@asynccontextmanager
async def gateway(ports: tuple[int, int]) -> AsyncIterator[Gateway]:
    gw = Gateway(*ports)
    try:
        await gw.connected()
        yield gw
    finally:
        gw.close()


async def stored_at_least(nc: Client, stream: str, count: int, timeout: float = 30) -> None:
    with anyio.fail_after(timeout):
        while (await nc.jetstream().stream_info(stream)).state.messages < count:  # noqa: ASYNC110
            await anyio.sleep(0.05)


RESULT_KEYS = [
    "messageId", "translatedText", "sourceLanguage", "targetLanguage", "confidenceScore",
    "processingTime", "modelType", "workerName", "translatorModel", "workerId", "poolType",
    "translationTime", "queueTime", "memoryUsage", "cpuUsage", "timestamp", "version",
    "modelName",  # added last: the model's name (PROTOCOL.md); translatorModel is the tier
]  # fmt: skip


METADATA_KEYS = [
    "translatorVersion", "modelVersion", "processingNode", "sessionId", "requestId", "protocol",
    "encoding",
]  # fmt: skip


FLOAT_KEYS = [
    "confidenceScore",
    "processingTime",
    "translationTime",
    "queueTime",
    "memoryUsage",
    "cpuUsage",
    "timestamp",
]
