"""The gateway's ZeroMQ protocol, unchanged: a gateway emulator against the real shim process,
a real nats-server and real workers."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from nats.aio.client import Client

from tests.gateway import (
    FLOAT_KEYS,
    METADATA_KEYS,
    RESULT_KEYS,
    Gateway,
    gateway,
    shim,
    stored_at_least,
)
from tests.support import (
    Models,
    free_port,
    running_worker,
    shim_env,
    shim_ready,
    start_shim,
    start_worker,
    stop_process,
    wait_for_heartbeat,
    worker_env,
)
from translator.bus.embedded import EmbeddedNats
from translator.contracts.subjects import Pool

pytestmark = pytest.mark.anyio


def is_error(message: dict[str, Any]) -> bool:
    return message.get("type") == "translation_error"


async def test_round_trip_with_several_languages_from_both_pools(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    env = worker_env(nats_server.url, models)
    log = tmp_path / "log"
    async with (
        running_worker(nc, env, Pool.NORMAL, log),
        running_worker(nc, env, Pool.ANY, log),
        shim(shim_env(nats_server.url), log) as ports,
        gateway(ports) as gw,
    ):
        private = await gw.request("Hello everyone", ["fr", "de", "ro"])
        public = await gw.request("Hello world", ["fr", "de"], conversationId="any")
        private_results = await gw.results_for(private)
        public_results = await gw.results_for(public)

    assert sorted(private_results) == ["de", "fr", "ro"]
    assert sorted(public_results) == ["de", "fr"]
    for sent, results, pool in (
        (private, private_results, "normal"),
        (public, public_results, "any"),
    ):
        for language, message in results.items():
            assert message["type"] == "translation_completed"
            assert message["taskId"] == sent["taskId"]
            assert message["metadata"]["requestId"] == sent["taskId"]
            assert message["result"]["targetLanguage"] == language
            assert message["result"]["poolType"] == pool
            assert message["result"]["translatedText"]


async def test_translation_completed_matches_the_0_4_9_format_byte_for_byte(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    text = "Héllo à tous — ça va ? 你好"
    log = tmp_path / "log"
    async with (
        running_worker(nc, worker_env(nats_server.url, models), Pool.NORMAL, log),
        shim(shim_env(nats_server.url), log) as ports,
        gateway(ports) as gw,
    ):
        sent = await gw.request(text, ["en", "fr"])
        results = await gw.results_for(sent)
        raw = {json.loads(frame).get("targetLanguage"): frame for frame in gw.raw}

    same = results["en"]  # source == target: the text itself, so non-ASCII is on the wire
    assert list(same) == ["type", "taskId", "result", "targetLanguage", "timestamp", "metadata"]
    assert list(same["result"]) == RESULT_KEYS
    assert list(same["metadata"]) == METADATA_KEYS
    assert same["result"]["translatedText"] == text
    assert raw["en"] == json.dumps(same).encode()  # ", " / ": " separators, \\uXXXX escapes
    assert b"\\u00e9" in raw["en"]
    assert b"\\u4f60" in raw["en"]
    assert raw["en"].isascii()
    for message in results.values():
        assert all(isinstance(message["result"][key], float) for key in FLOAT_KEYS)
        assert isinstance(message["timestamp"], float)
        assert message["result"]["version"] == "1.0.0"
        assert message["result"]["modelType"] == "basic"
        assert message["result"]["sourceLanguage"] == "en"
        assert message["metadata"]["protocol"] == "ZMQ_PUB_SUB"
        assert message["metadata"]["encoding"] == "UTF-8"
        assert message["metadata"]["translatorVersion"] == "1.0.0"
        # the tier that produced the text, as both Meeshy translators send it (the gateway
        # ranks a message's translations by it); the model's name beside it, never a path
        assert message["metadata"]["modelVersion"] == message["result"]["translatorModel"]
        assert message["result"]["translatorModel"] == "basic"
        assert message["result"]["modelName"] == models.t5.name
    assert results["fr"]["metadata"]["sessionId"] == same["metadata"]["sessionId"]


async def test_pong_comes_at_once_while_a_slow_batch_is_running(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    env = worker_env(nats_server.url, models, BASIC_MODEL=models.slow_t5, BATCH_SIZE=8)
    worker = start_worker(env, Pool.NORMAL, log)
    try:
        async with shim(shim_env(nats_server.url), log) as ports, gateway(ports) as gw:
            for i in range(16):
                await gw.request(f"Keep the worker busy {i}", ["fr"])
            await wait_for_heartbeat(nc, worker.pid, state="busy")
            gw.received.clear()
            started = time.perf_counter()
            await gw.ping()
            pong = (await gw.wait_for(lambda m: m.get("type") == "pong", timeout=5))[0]
            elapsed = time.perf_counter() - started
    finally:
        stop_process(worker, signal.SIGKILL)

    assert elapsed < 1.0, f"pong took {elapsed:.3f}s behind a busy worker"
    assert list(pong) == [
        "type",
        "timestamp",
        "translator_status",
        "translator_port_pub",
        "translator_port_pull",
    ]
    assert pong["translator_status"] == "alive"
    assert (pong["translator_port_pull"], pong["translator_port_pub"]) == ports
    assert isinstance(pong["timestamp"], float)


async def test_a_full_pool_answers_translation_pool_full(
    nc: Client, nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    async with (
        shim(shim_env(nats_server.url, NORMAL_POOL_SIZE=2), tmp_path / "log") as ports,
        gateway(ports) as gw,
    ):
        accepted = [await gw.request(f"queued {i}", ["fr"]) for i in range(2)]
        refused = await gw.request("one too many", ["fr", "de"])
        error = (await gw.results_for({**refused, "targetLanguages": ["fr"]}))["error-0"]

    assert error == {
        "type": "translation_error",
        "taskId": refused["taskId"],
        "messageId": refused["messageId"],
        "error": "translation pool full",
        "conversationId": "conv-1",
    }
    info = await nc.jetstream().stream_info("TRANSLATE_NORMAL")
    assert info.state.messages == len(accepted)


async def test_bad_frames_are_answered_when_possible_and_the_shim_carries_on(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    env = shim_env(nats_server.url, ZMQ_MAX_FRAME_BYTES=2048, MAX_TEXT_LENGTH=100)
    async with (
        running_worker(nc, worker_env(nats_server.url, models), Pool.NORMAL, log),
        shim(env, log) as ports,
        gateway(ports) as gw,
    ):
        await gw.send_raw(b"\xff\xfe not json at all")
        await gw.send_raw(b'{"messageId": "no-text", "targetLanguages": ["fr"]}')
        await gw.send_raw(b'{"messageId": "bad-targets", "text": "hi", "targetLanguages": "fr"}')
        await gw.send_raw(b'{"messageId": "no-targets", "text": "hi", "targetLanguages": []}')
        await gw.send_raw(
            b'{"messageId": "too-long", "text": "' + b"a" * 101 + b'", "targetLanguages": ["fr"]}'
        )
        await gw.send_raw(
            b'{"messageId": "huge", "text": "' + b"a" * 4000 + b'", "targetLanguages": ["fr"]}'
        )
        await gw.send_raw(b'{"type": "shutdown", "messageId": "odd-type"}')
        good = await gw.request("Hello", ["fr"])
        await gw.send_raw(
            json.dumps({**good, "messageId": "with-attachment", "taskId": "t-2"}).encode(),
            b"\x00\x01binary",
        )
        errors = await gw.wait_for(is_error, 6)
        await gw.results_for(good)
        await gw.wait_for(lambda m: m.get("result", {}).get("messageId") == "with-attachment")
        await gw.ping()
        await gw.wait_for(lambda m: m.get("type") == "pong", 2)

    reasons = {e["messageId"]: e["error"] for e in errors}
    assert set(reasons) == {"no-text", "bad-targets", "no-targets", "too-long", "huge", "odd-type"}
    assert "text" in reasons["no-text"]
    assert "targetLanguages" in reasons["bad-targets"]
    assert reasons["too-long"] == "text too long: 101 characters, the maximum is 100"
    assert reasons["huge"].startswith("frame too large")
    assert reasons["odd-type"] == "unknown message type 'shutdown'"
    assert "refused a frame: invalid request: not JSON" in log.read_text()


async def test_two_gateways_at_once_each_get_their_results(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    async with (
        running_worker(nc, worker_env(nats_server.url, models), Pool.NORMAL, log),
        shim(shim_env(nats_server.url), log) as ports,
        gateway(ports) as first,
        gateway(ports) as second,
    ):
        sent_first = [await first.request(f"first {i}", ["fr", "de"]) for i in range(3)]
        sent_second = [await second.request(f"second {i}", ["ro"]) for i in range(3)]
        for sent in sent_first:
            assert sorted(await first.results_for(sent)) == ["de", "fr"]
        for sent in sent_second:
            assert sorted(await second.results_for(sent)) == ["ro"]
            assert sorted(await first.results_for(sent)) == ["ro"]  # PUB reaches every SUB


async def test_results_produced_while_the_shim_restarts_arrive_afterwards(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    pull, pub = free_port(), free_port()
    env = shim_env(nats_server.url, TRANSLATOR_ZMQ_PULL_PORT=pull, TRANSLATOR_ZMQ_PUB_PORT=pub)
    gw = Gateway(pull, pub)
    try:
        async with shim(env, log):
            await gw.connected()
            sent = [await gw.request(f"pending {i}", ["fr", "de"]) for i in range(5)]
            await stored_at_least(nc, "TRANSLATE_NORMAL", 5)
        async with running_worker(nc, worker_env(nats_server.url, models), Pool.NORMAL, log):
            await stored_at_least(nc, "TRANSLATE_GATEWAY_RESULTS", 10)
        async with shim(env, log):  # same ports: the gateway's sockets reconnect by themselves
            for request in sent:
                assert sorted(await gw.results_for(request)) == ["de", "fr"]
    finally:
        gw.close()


async def test_requests_are_refused_while_nats_is_down_and_served_when_it_is_back(
    nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    port = nats_server.port
    async with shim(shim_env(nats_server.url), log) as ports, gateway(ports) as gw:
        nats_server.stop()
        down = await gw.request("while NATS is down", ["fr"])
        error = (await gw.results_for(down, timeout=15))["error-0"]
        await gw.ping()
        await gw.wait_for(lambda m: m.get("type") == "pong", 2)

        restarted = EmbeddedNats(nats_server.store_dir, port=port or -1).start()
        try:
            from translator.bus.connection import connect
            from translator.contracts.settings import TranslatorSettings

            nc = await connect(TranslatorSettings(nats_url=restarted.url), "test")
            async with running_worker(nc, worker_env(restarted.url, models), Pool.NORMAL, log):
                with anyio.fail_after(90):
                    while True:  # the shim reconnects on its own
                        again = await gw.request("after NATS came back", ["fr"])
                        # a fate each: an error comes within ZMQ_HOLD_TIMEOUT (8 s) and a
                        # publish try (2 s) while JetStream is not back yet
                        answer = await gw.results_for(again, timeout=30)
                        if "fr" in answer:
                            break
            await nc.close()
        finally:
            restarted.stop()

    assert error["error"].startswith("translation service unavailable")
    assert error["messageId"] == down["messageId"]
    assert answer["fr"]["type"] == "translation_completed"


def test_a_frame_too_large_is_refused_with_the_ids_the_gateway_matches_on() -> None:
    """The gateway's REST path matches errors on taskId: read it from the frame's bytes."""
    from zmq_compat import protocol
    from zmq_compat.errors import BadFrame

    frame = json.dumps(
        {"taskId": "t-1", "messageId": "m-1", "text": "a" * 5_000, "conversationId": "c-1"}
    ).encode()
    with pytest.raises(BadFrame) as refused:
        protocol.parse(frame, max_bytes=1_000, max_text_length=10_000)
    bad = refused.value
    assert (bad.task_id, bad.message_id, bad.conversation_id) == ("t-1", "m-1", "c-1")
    assert bad.reason.startswith("frame too large")


def count_pongs(gw: Gateway) -> int:
    return sum(1 for m in gw.received if m.get("type") == "pong")


def fate_of(gw: Gateway, sent: dict[str, Any]) -> str | None:
    """`completed` or `error` for a request of one target, as the gateway would see it."""
    for m in gw.received:
        if (
            m.get("type") == "translation_completed"
            and m["result"]["messageId"] == sent["messageId"]
        ):
            return "completed"
        if m.get("type") == "translation_error" and m.get("messageId") == sent["messageId"]:
            return "error"
    return None


async def test_a_shim_stopped_right_after_a_burst_gives_every_request_a_fate(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    """SIGTERM while a burst of 40 requests arrives: every request the shim took off PULL is
    queued before it exits (none lost silently), and the results reach the gateway through the
    next shim. Frames still in the network when PULL closes never reached the shim: the 0.4.9
    protocol has no acknowledgement (docs/ARCHITECTURE.md, "Stopping")."""
    log = tmp_path / "log"
    pull, pub = free_port(), free_port()
    env = shim_env(nats_server.url, TRANSLATOR_ZMQ_PULL_PORT=pull, TRANSLATOR_ZMQ_PUB_PORT=pub)
    gw = Gateway(pull, pub)
    try:
        first = start_shim(env, log)
        try:
            await shim_ready(log)
            await gw.connected()
            pongs = count_pongs(gw)
            sent = [await gw.request(f"burst {i}", ["fr"]) for i in range(40)]
            with anyio.fail_after(30):  # the shim is reading the burst: stop it now
                while count_pongs(gw) < pongs + 5:
                    await gw.read_one()
            first.send_signal(signal.SIGTERM)
            assert first.wait(30) == 0
        finally:
            stop_process(first)
        summary = re.search(
            r"zmq_compat stopped: (\d+) frames taken from PULL while stopping; (.*)",
            log.read_text(),
        )
        assert summary is not None
        counted = re.search(r"'accepted': (\d+)", summary.group(2))
        assert counted is not None
        accepted = int(counted.group(1))
        async with (
            running_worker(nc, worker_env(nats_server.url, models), Pool.NORMAL, log),
            shim(env, log),  # same ports: the gateway's sockets reconnect by themselves
        ):
            with anyio.fail_after(60):
                while sum(fate_of(gw, s) == "completed" for s in sent) < accepted:
                    await gw.read_one()
    finally:
        gw.close()
    fates = [fate_of(gw, s) for s in sent]
    assert accepted >= 4  # requests were in hand: the 4 before the 5th ping answered, at least
    assert fates.count("completed") == accepted  # every request taken has its result
    assert "error" not in fates  # NATS was up: nothing had to be refused


async def test_a_shim_stopped_while_nats_is_down_answers_what_it_holds(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    env = shim_env(nats_server.url, ZMQ_PUBLISH_TIMEOUT=1, ZMQ_DRAIN_TIMEOUT=5)
    process = start_shim(env, log)
    try:
        gw = Gateway(*await shim_ready(log))
        try:
            await gw.connected()
            nats_server.stop()
            sent = [await gw.request(f"held {i}", ["fr"]) for i in range(100)]
            process.send_signal(signal.SIGTERM)
            with anyio.fail_after(60):
                while any(fate_of(gw, s) is None for s in sent):
                    await gw.read_one()
        finally:
            gw.close()
        assert process.wait(30) == 0
    finally:
        stop_process(process)
    assert [fate_of(gw, s) for s in sent] == ["error"] * 100
    text = log.read_text()
    assert "zmq_compat stopped" in text
    assert "Traceback" not in text


async def test_a_result_redelivered_after_a_lost_ack_reaches_the_gateway_once(
    nc: Client, nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    """The same (taskId, targetLanguage) stored twice, as after a NATS restart that lost the
    shim's ack: the gateway gets it once; another language of the same task still goes out."""
    from translator.contracts.messages import TranslationResult, encode

    def result(lang: str) -> bytes:
        return encode(
            TranslationResult(
                task_id="t-dup",
                message_id="m-dup",
                status="ok",
                translated_text="x",
                source_language="en",
                target_language=lang,
            )
        )

    async with shim(shim_env(nats_server.url), tmp_path / "log") as ports, gateway(ports) as gw:
        js = nc.jetstream()
        for n, lang in enumerate(["fr", "fr", "de", "fr"]):
            await js.publish(
                "translate.gateway.result.zmq_compat",
                result(lang),
                headers={"Nats-Msg-Id": f"r{n}"},
            )
        await gw.wait_for(lambda m: m.get("type") == "translation_completed", 2)
        await gw.ping()
        await gw.wait_for(lambda m: m.get("type") == "pong", 2)
    completed = [m for m in gw.received if m.get("type") == "translation_completed"]
    assert sorted(m["targetLanguage"] for m in completed) == ["de", "fr"]
