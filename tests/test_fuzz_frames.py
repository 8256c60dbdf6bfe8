"""Crafted and random frames against the real shim: random bytes, mutated and truncated JSON,
wrong types, multipart, unicode edge cases and absurd values (JSON nested thousands deep, a
number of thousands of digits, ids close to the frame limit). The shim stays up, answers every
ping and every valid request, and exits cleanly."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from nats.aio.client import Client

from tests.gateway import Gateway, gateway, shim
from tests.support import Models, running_worker, shim_env, worker_env
from translator.bus.embedded import EmbeddedNats
from translator.contracts.subjects import Pool

pytestmark = pytest.mark.anyio
SEED = 20261126
FRAMES = 3_000


def valid(rng: random.Random) -> dict[str, Any]:
    return {
        "taskId": str(uuid.UUID(int=rng.getrandbits(128))),
        "messageId": f"fuzz-{rng.getrandbits(48):x}",
        "text": "Hello everyone",
        "sourceLanguage": "en",
        "targetLanguages": ["fr"],
        "conversationId": "conv-fuzz",
        "modelType": "basic",
        "timestamp": 1_755_631_701_000,
    }


ODD_VALUES: list[Any] = [
    None, True, 0, -1, 1e308, [], {}, [[["x"]]], {"a": {"b": 1}}, "", " ", "\u0000", "a\r\nb: c",
    "\ud800", "\u202e\u200b", "😂" * 1000, "x" * 100_000, ["fr"] * 500, ["xx", 1, None],
]  # fmt: skip


def random_bytes(rng: random.Random) -> list[bytes]:
    return [rng.randbytes(rng.randrange(0, 300))]


def mutated(rng: random.Random) -> list[bytes]:
    frame = bytearray(json.dumps(valid(rng)).encode())
    for _ in range(rng.randrange(1, 8)):
        frame[rng.randrange(len(frame))] = rng.randrange(256)
    return [bytes(frame)]


def truncated(rng: random.Random) -> list[bytes]:
    frame = json.dumps(valid(rng)).encode()
    return [frame[: rng.randrange(len(frame))]]


def wrong_type(rng: random.Random) -> list[bytes]:
    message = valid(rng)
    message[rng.choice([*message, "type"])] = rng.choice(ODD_VALUES)
    return [json.dumps(message).encode()]


def multipart(rng: random.Random) -> list[bytes]:
    return [json.dumps(valid(rng)).encode(), *random_bytes(rng), b""]


def unicode_edges(rng: random.Random) -> list[bytes]:
    message = valid(rng)
    key = rng.choice(["taskId", "messageId", "conversationId", "text", "sourceLanguage"])
    message[key] = rng.choice(
        ["\ud800", "\udfff\ud800", "a\u0000b", "\u202e", "t\r\nX: y", "😂🏽‍🚀"]
    )
    return [json.dumps(message).encode()]


def absurd(rng: random.Random) -> list[bytes]:
    choice = rng.randrange(6)
    if choice == 0:
        depth = rng.choice([1_000, 5_000, 50_000])
        return [b'{"messageId": "deep", "x": ' + b"[" * depth + b"]" * depth + b"}"]
    if choice == 1:
        return [
            b'{"messageId": "digits", "timestamp": ' + b"9" * rng.choice([4_400, 20_000]) + b"}"
        ]
    if choice == 2:  # an id close to the frame limit: it would become a NATS header
        message = {**valid(rng), "taskId": "t" * 900_000}
        return [json.dumps(message).encode()]
    if choice == 3:
        return [json.dumps({**valid(rng), "targetLanguages": ["fr"] * 100_000}).encode()]
    if choice == 4:
        return [json.dumps({**valid(rng), "timestamp": 1e308, "modelType": "x" * 10_000}).encode()]
    return [b'{"type": "ping", "timestamp": ' + b"1" * 10_000 + b"}"]


KINDS: list[Callable[[random.Random], list[bytes]]] = [
    random_bytes, mutated, truncated, wrong_type, multipart, unicode_edges, absurd,
]  # fmt: skip


async def test_fuzzed_frames_never_stop_the_shim(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    log = tmp_path / "log"
    pings = 0
    good: list[dict[str, Any]] = []
    async with (
        running_worker(nc, worker_env(nats_server.url, models), Pool.NORMAL, log),
        shim(shim_env(nats_server.url), tmp_path / "shim.log") as ports,
        gateway(ports) as gw,
        anyio.create_task_group() as reading,
    ):
        reading.start_soon(read_forever, gw)
        pongs_before = count_pongs(gw)
        for i in range(FRAMES):
            await gw.send_raw(*rng.choice(KINDS)(rng))
            if i % 50 == 0:
                await gw.ping()
                pings += 1
            if i % 150 == 0:
                good.append(await gw.request("Hello everyone", ["fr"]))
                pings += 1  # the gateway pings before every request
        with anyio.fail_after(120):
            while count_pongs(gw) - pongs_before < pings:  # noqa: ASYNC110
                await anyio.sleep(0.1)
            for message in good:
                while not completed(gw, message):  # noqa: ASYNC110
                    await anyio.sleep(0.1)
        reading.cancel_scope.cancel()
    # the shim exited 0 when stopped (`shim` asserts it): it never died nor wedged
    text = (tmp_path / "shim.log").read_text()
    assert "Traceback" not in text
    assert text.count("refused a frame") > FRAMES // 2
    assert len(good) == FRAMES // 150


async def read_forever(gw: Gateway) -> None:
    """Read everything PUB sends while the frames go out: the queue never fills."""
    while True:
        await gw.read_one()


def count_pongs(gw: Gateway) -> int:
    return sum(1 for m in gw.received if m.get("type") == "pong")


def completed(gw: Gateway, sent: dict[str, Any]) -> bool:
    return any(
        m.get("type") == "translation_completed" and m["result"]["messageId"] == sent["messageId"]
        for m in gw.received
    )
