"""Nothing lost between the shim and the gateway: a slow gateway is waited for (XPUB_NODROP and
backpressure), a NATS outage gives every request exactly one fate, pongs can be thinned."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest
import zmq
from nats.aio.client import Client
from pydantic import ValidationError

from tests.gateway import Gateway, gateway, shim
from tests.probes import health_port, wait_metric
from tests.support import Models, running_worker, shim_env, worker_env
from translator.bus.connection import connect
from translator.bus.embedded import EmbeddedNats
from translator.contracts.messages import TranslationResult, encode
from translator.contracts.settings import TranslatorSettings
from translator.contracts.subjects import Pool
from zmq_compat.settings import ShimSettings

pytestmark = pytest.mark.anyio


def big_result(n: int) -> bytes:
    return encode(
        TranslationResult(
            task_id=f"t-{n}",
            message_id=f"m-{n}",
            status="ok",
            translated_text=f"{n} " + "x" * 16_000,
            source_language="en",
            target_language="fr",
        )
    )


async def test_a_slow_gateway_gets_every_result_that_was_acked(
    nc: Client, nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    """2,000 results of 16 kB (32 MB, past every queue and kernel buffer on the way) while the
    gateway reads nothing: the shim must find its queue full and wait (PUB would drop). Then
    the gateway reads, slowly: each result arrives once, and every result acked was sent."""
    count = 2_000
    log = tmp_path / "log"
    env = shim_env(nats_server.url, ZMQ_SEND_HWM=10, ZMQ_RESULTS_BATCH=64)
    async with shim(env, log) as ports:
        gw = Gateway(*ports)
        gw.sub.setsockopt(zmq.RCVHWM, 10)
        try:
            await gw.connected()
            js = nc.jetstream()
            for n in range(count):
                await js.publish("translate.gateway.result.zmq_compat", big_result(n))
            http = await health_port(log)
            await wait_metric(http, "zmq_compat_requests_total", 1, outcome="send_blocked")
            seen: list[str] = []
            with anyio.fail_after(300):
                while len(seen) < count:
                    with anyio.move_on_after(15) as quiet:  # none for 15 s: the rest is lost
                        message = await gw.read_one()
                    if quiet.cancelled_caught:
                        break
                    if message.get("type") == "translation_completed":
                        seen.append(message["result"]["messageId"])
                    await anyio.sleep(0.001)
        finally:
            gw.close()
    info = await js.consumer_info("TRANSLATE_GATEWAY_RESULTS", "zmq_compat")
    assert sorted(seen) == sorted(f"m-{n}" for n in range(count))  # each once, none missing
    assert info.num_pending == 0
    assert info.num_ack_pending == 0  # every one acked, and each acked one was received above


def fate_of(gw: Gateway, sent: dict[str, Any]) -> list[str]:
    fates = []
    for m in gw.received:
        if (
            m.get("type") == "translation_completed"
            and m["result"]["messageId"] == sent["messageId"]
        ):
            fates.append("completed")
        elif m.get("type") == "translation_error" and m.get("messageId") == sent["messageId"]:
            fates.append("error")
    return fates


async def test_a_nats_restart_under_load_gives_each_request_exactly_one_fate(
    nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    """nats-server killed for 3 s while requests arrive at 50/s: the requests of the outage are
    held and published again once it is back; every request gets one fate, none gets two."""
    log = tmp_path / "log"
    port = nats_server.port or 0
    env = shim_env(nats_server.url, ZMQ_HOLD_TIMEOUT=20)
    nc = await connect(TranslatorSettings(nats_url=nats_server.url), "test")
    sent: list[dict[str, Any]] = []
    server = nats_server
    try:
        async with shim(env, log) as ports:
            async with (
                running_worker(nc, worker_env(nats_server.url, models), Pool.NORMAL, log),
                gateway(ports) as gw,
            ):

                async def send(seconds: float) -> None:
                    started = time.monotonic()
                    while time.monotonic() - started < seconds:
                        sent.append(await gw.request(f"load {len(sent)}", ["fr"]))
                        await anyio.sleep(0.02)

                async def read_all() -> None:
                    while True:
                        await gw.read_one()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(read_all)
                    await send(2)
                    server.kill()  # SIGKILL: no goodbye to the clients
                    await send(3)
                    server = EmbeddedNats(nats_server.store_dir, port=port).start()
                    await send(2)
                    with anyio.fail_after(120):
                        while any(not fate_of(gw, s) for s in sent):  # noqa: ASYNC110
                            await anyio.sleep(0.1)
                    await anyio.sleep(2)  # a second fate would come within this
                    tg.cancel_scope.cancel()
            await nc.close()
    finally:
        server.stop()
    fates = [fate_of(gw, s) for s in sent]
    assert len(sent) >= 100
    assert all(len(f) == 1 for f in fates), [f for f in fates if len(f) != 1]
    # held through the outage, not refused: the hold outlasts it
    assert sum(f == ["completed"] for f in fates) == len(sent), fates


async def test_a_request_held_past_the_hold_timeout_gets_its_error_and_only_that(
    nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    """NATS down longer than ZMQ_HOLD_TIMEOUT: the held requests are answered with an error, and
    whatever reaches JetStream later is never sent as a second fate."""
    log = tmp_path / "log"
    port = nats_server.port or 0
    env = shim_env(nats_server.url, ZMQ_HOLD_TIMEOUT=1, ZMQ_PUBLISH_TIMEOUT=0.5)
    server = nats_server
    try:
        async with shim(env, log) as ports, gateway(ports) as gw:
            server.kill()
            sent = [await gw.request(f"outage {i}", ["fr"]) for i in range(20)]
            with anyio.fail_after(30):
                while any(not fate_of(gw, s) for s in sent):
                    await gw.read_one()
            server = EmbeddedNats(nats_server.store_dir, port=port).start()
            nc = await connect(TranslatorSettings(nats_url=server.url), "test")
            async with running_worker(nc, worker_env(server.url, models), Pool.NORMAL, log):
                after = await gw.request("after the outage", ["fr"])
                with anyio.fail_after(60):
                    while not fate_of(gw, after):
                        await gw.read_one()
                with anyio.move_on_after(3):  # a late second fate would come now
                    while True:
                        await gw.read_one()
            await nc.close()
    finally:
        server.stop()
    assert [fate_of(gw, s) for s in sent] == [["error"]] * 20
    assert fate_of(gw, after) == ["completed"]


async def test_one_pong_per_interval_when_configured(
    nc: Client, nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    env = shim_env(nats_server.url, ZMQ_PONG_INTERVAL=30)
    async with shim(env, tmp_path / "log") as ports:
        gw = Gateway(*ports)
        try:
            # subscribed for sure: the shim forwards results only to a subscribed gateway
            await nc.jetstream().publish("translate.gateway.result.zmq_compat", big_result(0))
            await gw.wait_for(lambda m: m.get("type") == "translation_completed", timeout=30)
            for _ in range(20):
                await gw.ping()
            await gw.send_raw(b'{"taskId": "t-bad", "messageId": "m-bad", "text": 5}')
            await gw.wait_for(lambda m: m.get("messageId") == "m-bad", timeout=30)
        finally:
            gw.close()
    assert [m["type"] for m in gw.received].count("pong") == 1


def test_the_hold_must_end_within_the_dedup_window() -> None:
    with pytest.raises(ValidationError, match="shorter than REQUEST_DUPLICATE_WINDOW"):
        ShimSettings(zmq_hold_timeout=200, request_duplicate_window=120)
