"""Every target its own fate, language codes as the gateways write them, and the tier in
`translatorModel` (docs/GATEWAYS.md, docs/TRANSLATION.md "Language codes"): both gateway
generations against the real shim process, a real nats-server and a real worker with tiny
random-weight models (t5 basic: en -> de/fr/ro; NLLB medium: every FLORES-200 language; Marian
premium: en -> de). Basaa (`bas`) and Bafia (`ksf`), Cameroonian languages in Meeshy's own
list, are written by none of them; Nigerian Fulfulde (`fuv`) is written by NLLB."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from nats.aio.client import Client

from tests.current_gateway import CircuitBreaker, CurrentGateway
from tests.gateway import METADATA_KEYS, RESULT_KEYS, Gateway, shim
from tests.probes import scrape, value
from tests.support import (
    Models,
    free_port,
    running_worker,
    shim_env,
    shim_ready,
    start_shim,
    worker_env,
)
from translator.bus.embedded import EmbeddedNats
from translator.contracts.subjects import GATEWAY_RESULTS_STREAM, Pool

pytestmark = pytest.mark.anyio
ERROR_KEYS_049 = ["type", "taskId", "messageId", "error", "conversationId"]


def served_by(nats_url: str, models: Models, **overrides: object) -> dict[str, str]:
    """A shim configured with the worker's models: it knows what they write."""
    return shim_env(
        nats_url,
        BASIC_MODEL=models.t5,
        MEDIUM_MODEL=models.nllb,
        PREMIUM_MODEL=models.marian,
        MODELS_OFFLINE="true",
        **overrides,
    )


def fates_of(gw: Gateway, sent: dict[str, Any]) -> list[dict[str, Any]]:
    """The events for the request `sent`, in the order the gateway read them."""

    def ours(m: dict[str, Any]) -> bool:
        if m.get("type") == "translation_completed":
            return bool(m["result"]["messageId"] == sent["messageId"])
        return m.get("type") == "translation_error" and m.get("messageId") == sent["messageId"]

    return [m for m in gw.received if ours(m)]


async def all_fates(gw: Gateway, sent: list[dict[str, Any]], timeout: float = 90) -> None:
    """Read until every request has one event per target."""
    with anyio.fail_after(timeout):
        while any(len(fates_of(gw, s)) < len(s["targetLanguages"]) for s in sent):
            await gw.read_one()


async def test_the_current_gateway_gets_a_fate_per_target_and_its_breaker_stays_closed(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    log, http = tmp_path / "log", free_port()
    env = served_by(nats_server.url, models, ZMQ_HEALTH_PORT=http)
    async with shim(env, log) as ports:
        gw = CurrentGateway(*ports)
        await gw.connected()
        try:
            async with running_worker(
                nc, worker_env(nats_server.url, models), Pool.NORMAL, tmp_path / "worker.log"
            ):
                # a conversation with a Basaa speaker: twenty messages in a row
                mixed = [await gw.translate(f"Bonjour {i}", ["en", "bas"], "fr") for i in range(20)]
                await all_fates(gw, mixed)
                # region, ISO 639-3 and script spellings beside one no model writes
                phase = len(gw.received)
                spelled = await gw.translate(
                    "Good evening", ["pt-BR", "fuv", "zh-Hant", "zh-TW", "sr-Latn", "ksf"]
                )
                ordinary = await gw.translate("Good morning", ["fr"])
                await all_fates(gw, [spelled, ordinary])
            samples = scrape(http)
        finally:
            gw.close()

    for sent in mixed:  # en translated first, then bas's own error, which names it
        completed, error = fates_of(gw, sent)
        assert completed["type"] == "translation_completed"
        assert completed["targetLanguage"] == completed["result"]["targetLanguage"] == "en"
        assert completed["result"]["translatedText"]
        assert error == {
            "type": "translation_error",
            "taskId": sent["taskId"],
            "messageId": sent["messageId"],
            "error": "unsupported language 'bas' (Basaa): no configured model writes it",
            "conversationId": "conv-1",
            "targetLanguage": "bas",
        }
    assert CircuitBreaker().read(gw.received[:phase]).worst == 1
    assert not CircuitBreaker().read(gw.received).opened

    by_target = {m["targetLanguage"]: m for m in fates_of(gw, spelled)}
    assert sorted(by_target) == ["fuv", "ksf", "pt-br", "sr-latn", "zh-hant", "zh-tw"]  # as sent
    for target in ("pt-br", "fuv", "zh-hant", "zh-tw"):
        result = by_target[target]["result"]
        assert by_target[target]["type"] == "translation_completed", target
        assert result["targetLanguage"] == target
        # asked for basic (t5 writes none of them): NLLB wrote it, and the tier says so
        assert result["translatorModel"] == "medium"
        assert by_target[target]["metadata"]["modelVersion"] == "medium"
        assert result["modelName"] == "nllb"
    # NLLB writes Serbian in Cyrillic only; nothing writes Bafia
    assert by_target["sr-latn"]["error"] == (
        "unsupported language 'sr-latn' (Serbian (Latin)): no configured model writes it"
    )
    assert by_target["ksf"]["error"] == (
        "unsupported language 'ksf' (Bafia): no configured model writes it"
    )

    (done,) = fates_of(gw, ordinary)  # translated: no breaker in the way
    assert done["type"] == "translation_completed"
    assert list(done["result"]) == RESULT_KEYS  # modelName last
    assert list(done["metadata"]) == METADATA_KEYS
    assert done["result"]["translatorModel"] == done["metadata"]["modelVersion"] == "basic"
    assert done["result"]["modelName"] == "t5"
    assert value(samples, "zmq_compat_requests_total", outcome="unsupported_target") == 22


async def test_the_049_gateway_gets_its_other_targets_and_codes_as_it_sent_them(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    """0.4.9's translation_error has no targetLanguage: the unsupported target's error comes
    in 0.4.9's exact shape, its reason naming the language, after the other targets' results."""
    env = served_by(nats_server.url, models)
    async with shim(env, tmp_path / "log") as ports:
        gw = Gateway(*ports)
        await gw.connected()
        try:
            async with running_worker(
                nc, worker_env(nats_server.url, models), Pool.NORMAL, tmp_path / "worker.log"
            ):
                mixed = await gw.request("Hello everyone", ["fr", "bas", "pt-BR", "fuv", "de"])
                premium = await gw.request("Hello", ["de", "pt-BR"], modelType="premium")
                nothing = await gw.request("Hello", ["bas"])
                await all_fates(gw, [mixed, premium, nothing])
        finally:
            gw.close()

    *translated, last = fates_of(gw, mixed)
    by_target = {m["targetLanguage"]: m for m in translated}  # the code as 0.4.9 sent it
    assert sorted(by_target) == ["de", "fr", "fuv", "pt-BR"]
    assert {m["type"] for m in translated} == {"translation_completed"}
    assert list(last) == ERROR_KEYS_049
    assert last["taskId"] == mixed["taskId"]
    assert last["error"] == "unsupported language 'bas' (Basaa): no configured model writes it"
    tiers = {t: m["result"]["translatorModel"] for t, m in by_target.items()}
    assert tiers == {"fr": "basic", "de": "basic", "pt-BR": "medium", "fuv": "medium"}
    assert by_target["pt-BR"]["metadata"]["modelVersion"] == "medium"
    assert by_target["pt-BR"]["result"]["targetLanguage"] == "pt-BR"

    answers = fates_of(gw, premium)
    by_target = {m["targetLanguage"]: m["result"] for m in answers if "result" in m}
    assert by_target["de"]["translatorModel"] == "premium"  # Marian, the premium tier
    assert by_target["de"]["modelName"] == "marian"
    # premium, falling back to nothing better: no model of premium or above writes Portuguese
    assert "pt-BR" not in by_target
    (refused,) = [m for m in answers if m["type"] == "translation_error"]
    assert refused["error"] == (
        "unsupported language 'pt-BR' (Portuguese (Brazil)): no configured model writes it"
    )
    (only,) = fates_of(gw, nothing)  # nothing left to translate: the error at once
    assert list(only) == ERROR_KEYS_049


async def test_a_burst_the_gateway_reads_slowly_is_never_sent_twice(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    """The gateway reads slowly: all 200 results are sent before it has read 50, and its
    timeouts then push the unread requests again. The results were sent while it was subscribed,
    so it will read them: each retry is counted (`repush_unread`), and no frame goes twice."""
    http = free_port()
    env = served_by(nats_server.url, models, ZMQ_HEALTH_PORT=http)
    async with shim(env, tmp_path / "log") as ports:
        gw = CurrentGateway(*ports)
        await gw.connected()
        try:
            async with running_worker(
                nc, worker_env(nats_server.url, models), Pool.NORMAL, tmp_path / "worker.log"
            ):
                burst = [await gw.translate(f"Message {i}", ["fr"]) for i in range(200)]
                await wait_for_sent(http, 200)  # every result is on its way, few read
                retried: list[dict[str, Any]] = []
                with anyio.fail_after(120):
                    while len(completed_tasks(gw)) < 200:  # 50 frames/s, behind the sends
                        await gw.read_one()
                        await anyio.sleep(0.02)
                        if len(gw.received) >= 50 and not retried:  # its timeouts fire
                            answered = completed_tasks(gw)
                            retried = [s for s in burst if s["taskId"] not in answered]
                            for sent in retried:
                                await gw.retry(sent, ["fr"])
                await settle(gw)
            samples = scrape(http)
        finally:
            gw.close()

    completed = [m["taskId"] for m in gw.received if m.get("type") == "translation_completed"]
    assert sorted(completed) == sorted(s["taskId"] for s in burst)  # each once
    assert {m["type"] for m in gw.received} == {"translation_completed", "pong"}
    assert len(retried) > 100
    assert value(samples, "zmq_compat_requests_total", outcome="repush_unread") == len(retried)
    assert value(samples, "zmq_compat_requests_total", outcome="repush_resent") == 0


def completed_tasks(gw: CurrentGateway) -> set[str]:
    return {m["taskId"] for m in gw.received if m.get("type") == "translation_completed"}


async def wait_for_sent(port: int, count: int) -> None:
    with anyio.fail_after(90):
        while value(scrape(port), "zmq_compat_requests_total", outcome="result_ok") < count:  # noqa: ASYNC110
            await anyio.sleep(0.2)


async def settle(gw: CurrentGateway) -> None:
    """Every frame the shim queued so far has been read: a ping's pong comes after them."""
    pongs = sum(1 for m in gw.received if m.get("type") == "pong")
    await gw.send_ping()
    await gw.wait_for(lambda m: m.get("type") == "pong", pongs + 1)


async def test_a_retry_after_a_shim_crash_is_answered_from_the_results_stream(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    """The results were sent and acked, the gateway recreated its SUB socket before reading
    them (what it had queued went with it), and the shim was SIGKILLed: the next shim reads
    what was sent back from the results stream, and the gateway's retry (the same taskId, which
    JetStream de-duplicates) is answered."""
    log, http = tmp_path / "log", free_port()
    pull, pub = free_port(), free_port()
    env = served_by(
        nats_server.url,
        models,
        TRANSLATOR_ZMQ_PULL_PORT=pull,
        TRANSLATOR_ZMQ_PUB_PORT=pub,
        ZMQ_HEALTH_PORT=http,
    )
    gw = CurrentGateway(pull, pub)
    try:
        async with running_worker(
            nc, worker_env(nats_server.url, models), Pool.NORMAL, tmp_path / "worker.log"
        ):
            first = start_shim(env, log)
            try:
                await shim_ready(log)
                await gw.connected()
                sent = await gw.translate("Hello again", ["fr", "de"])
                await results_acked(nc, 2)
                gw.sub.close(linger=0)  # unread, and gone with the socket
            finally:
                first.kill()
                first.wait(30)
            async with shim(env, log):
                await gw.resubscribe()
                await gw.retry(sent, ["fr", "de"])
                await all_fates(gw, [sent])
                samples = scrape(http)
                info = await nc.jetstream().stream_info("TRANSLATE_NORMAL")
    finally:
        gw.close()

    by_target = {m["targetLanguage"]: m for m in fates_of(gw, sent)}
    assert sorted(by_target) == ["de", "fr"]
    for message in by_target.values():
        assert message["type"] == "translation_completed"
        assert message["taskId"] == sent["taskId"]
        assert message["result"]["translatedText"]
    assert value(samples, "zmq_compat_requests_total", outcome="repush_resent") == 2
    assert info.state.last_seq == 1  # translated once


async def results_acked(nc: Client, count: int) -> None:
    """The shim has sent and acked `count` results."""
    js = nc.jetstream()
    with anyio.fail_after(60):
        while True:
            (consumer,) = await js.consumers_info(GATEWAY_RESULTS_STREAM)
            if consumer.ack_floor and (consumer.ack_floor.stream_seq or 0) >= count:
                return
            await anyio.sleep(0.1)
