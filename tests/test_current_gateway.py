"""The current Meeshy gateway (docs/GATEWAYS.md): its frames, ported from its client
(tests/current_gateway.py), against the real shim process, a real nats-server and a real worker.
The 0.4.9 gateway's frames stay as they were (tests/test_zmq_compat.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import pytest
from nats.aio.client import Client

from tests.current_gateway import CurrentGateway, stringify
from tests.gateway import METADATA_KEYS, RESULT_KEYS, shim, stored_at_least
from tests.probes import Samples, scrape, value, wait_metric
from tests.support import (
    Models,
    free_port,
    running_worker,
    settings_of,
    shim_env,
    worker_env,
)
from translator.bus.connection import connect
from translator.bus.embedded import EmbeddedNats
from translator.bus.topology import setup_topology
from translator.contracts.messages import TranslationResult
from translator.contracts.subjects import Pool
from zmq_compat import protocol
from zmq_compat.envelopes import NOT_SERVED, Unsupported
from zmq_compat.errors import TooLong
from zmq_compat.stories import Stories, StoryRequest, story_of, story_task_id

pytestmark = pytest.mark.anyio
NOT_SERVED_TEXT = "is not served here: this translator translates text only"


async def connected(ports: tuple[int, int]) -> CurrentGateway:
    gw = CurrentGateway(*ports)
    await gw.connected()
    return gw


def completed_for(gw: CurrentGateway, task_id: str) -> list[bytes]:
    """Every translation_completed frame PUB sent for `task_id`, duplicates included."""
    return [
        frame
        for frame, m in zip(gw.raw, gw.received, strict=True)
        if m.get("type") == "translation_completed" and m["taskId"] == task_id
    ]


async def quiet(gw: CurrentGateway) -> None:
    """Everything the shim queued before now has arrived (PUB keeps its order)."""
    pongs = sum(1 for m in gw.received if m.get("type") == "pong")
    await gw.send_ping()
    await gw.wait_for(lambda m: m.get("type") == "pong", pongs + 1)


def of_type(gw: CurrentGateway, kind: str) -> list[dict[str, Any]]:
    return [m for m in gw.received if m.get("type") == kind]


async def last_request_seq(nc: Client) -> int:
    return int((await nc.jetstream().stream_info("TRANSLATE_NORMAL")).state.last_seq or 0)


@dataclass
class Scenario:
    """What the current gateway sent and got in one run against the real stack (`scenario`),
    each behaviour then checked by its own test."""

    gw: CurrentGateway
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)
    first_fr: bytes = b""
    samples: Samples = field(default_factory=dict)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"  # module-scoped here, for the module-scoped scenario


@pytest.fixture(scope="module")
async def scenario(models: Models, tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    """One run: the types not served, a text too long, a request pushed again while queued, a
    lost result pushed again, a multipart request, story text objects."""
    root = tmp_path_factory.mktemp("current")
    log, http = root / "log", free_port()
    with EmbeddedNats(root / "nats") as nats_server:
        env = shim_env(nats_server.url, ZMQ_HEALTH_PORT=http, MAX_TEXT_LENGTH=100)
        settings = settings_of(env)
        nc = await connect(settings, "tests")
        await setup_topology(nc.jetstream(), settings)
        try:
            async with shim(env, log) as ports:
                run = Scenario(await connected(ports))
                try:
                    await _run(run, nc, nats_server, models, http, log)
                finally:
                    run.gw.close()
        finally:
            await nc.close()
    return run


async def _run(
    run: Scenario, nc: Client, nats_server: EmbeddedNats, models: Models, http: int, log: Path
) -> None:
    gw, sent = run.gw, run.sent
    # no worker yet: what is not served is answered at once, never through a pool
    sent["audio"] = await gw.audio_process(b"\x1aE\xdf\xa3 webm bytes", embedding=b"\x00" * 64)
    sent["transcription"] = await gw.transcription_only(b"RIFF wav bytes")
    sent["voice"] = await gw.voice_api("voice_translate_async")
    sent["profile"] = await gw.voice_profile("voice_profile_analyze")
    sent["too_long"] = await gw.translate("a" * 101, ["fr"])
    await gw.wait_for(lambda m: m.get("type") == "translation_error", timeout=30)
    await gw.wait_for(lambda m: m.get("type") == "voice_profile_error", timeout=30)

    # a request still queued, pushed again twice (two 30 s timeouts): queued once
    several = sent["several"] = await gw.translate("Hello everyone", ["FR", "de", "fr"])
    await stored_at_least(nc, "TRANSLATE_NORMAL", 1)
    await gw.retry(several, ["fr", "de"])
    await gw.retry(several, ["de"])
    await wait_metric(http, "zmq_compat_requests_total", 3, outcome="repush_in_flight")
    assert await last_request_seq(nc) == 1

    async with running_worker(nc, worker_env(nats_server.url, models), Pool.NORMAL, log):
        await gw.wait_for(
            lambda m: m.get("type") == "translation_completed" and m["taskId"] == several["taskId"],
            2,
        )
        run.first_fr = next(
            f for f in completed_for(gw, several["taskId"]) if b'"targetLanguage": "fr"' in f
        )
        # the gateway lost the fr result (its SUB socket was recreated): pushed again, it gets
        # the same frame, and nothing is translated again
        await gw.resubscribe()
        await gw.retry(several, ["fr"])
        attachment = b"\x00\x01 a binary part the text translation never reads"
        multipart = await gw.translate("Good morning", ["de"], attachments=(attachment,))
        sent["story"] = await gw.story_text_object("post-1", 2, "Hello", "en", ["fr", "en", "de"])
        sent["only_source"] = await gw.story_text_object("post-1", 3, "Hello", "en", ["en"])
        await gw.wait_for(lambda m: m.get("type") == "story_text_object_translation_completed", 2)
        await gw.wait_for(
            lambda m: (
                m.get("type") == "translation_completed" and m["taskId"] == multipart["taskId"]
            )
        )
        await quiet(gw)
        assert await last_request_seq(nc) == 3  # several, multipart, story: once each
    run.samples = scrape(http)


async def test_the_types_not_served_get_the_event_each_pipelines_caller_listens_for(
    scenario: Scenario,
) -> None:
    gw, sent = scenario.gw, scenario.sent
    (audio_error,) = of_type(gw, "audio_process_error")
    assert audio_error["messageId"] == sent["audio"]["messageId"]
    assert audio_error["attachmentId"] == sent["audio"]["attachmentId"]
    assert audio_error["errorCode"] == "pipeline_unavailable"
    assert audio_error["error"] == f"audio_process {NOT_SERVED_TEXT}"
    (transcription_error,) = of_type(gw, "transcription_error")
    assert transcription_error["taskId"] == sent["transcription"]["taskId"]
    assert transcription_error["attachmentId"] == sent["transcription"]["attachmentId"]
    (voice_error,) = of_type(gw, "voice_api_error")
    voice = sent["voice"]
    assert (voice_error["taskId"], voice_error["requestType"]) == (voice["taskId"], voice["type"])
    assert voice_error["errorCode"] == "SERVICE_UNAVAILABLE"
    (profile_error,) = of_type(gw, "voice_profile_error")
    assert profile_error["request_id"] == sent["profile"]["request_id"]
    assert profile_error["success"] is False
    for kind in ("audio_process", "transcription_only", "voice_translate_async"):
        assert value(scenario.samples, "zmq_compat_unsupported_requests_total", type=kind) == 1
    health = value(scenario.samples, "zmq_compat_unsupported_requests_total", type="voice_health")
    assert health == 0


async def test_a_text_too_long_gets_translation_skipped_then_its_error(scenario: Scenario) -> None:
    gw, too_long = scenario.gw, scenario.sent["too_long"]
    (skipped,) = of_type(gw, "translation_skipped")
    assert skipped == {
        "type": "translation_skipped",
        "messageId": too_long["messageId"],
        "reason": "message_too_long",
        "length": 101,
        "max_length": 100,
        "conversationId": "conv-1",
    }
    errors = [
        m for m in of_type(gw, "translation_error") if m["messageId"] == too_long["messageId"]
    ]
    assert [e["taskId"] for e in errors] == [too_long["taskId"]]
    assert gw.received.index(skipped) < gw.received.index(errors[0])
    assert value(scenario.samples, "zmq_compat_requests_total", outcome="skipped") == 1


async def test_a_request_pushed_three_times_gets_one_result_per_target_and_a_lost_one_again(
    scenario: Scenario,
) -> None:
    several = scenario.sent["several"]
    frames = completed_for(scenario.gw, several["taskId"])
    by_target = {json.loads(f)["targetLanguage"]: f for f in frames}
    assert sorted(by_target) == ["de", "fr"]
    assert sorted(json.loads(f)["targetLanguage"] for f in frames) == ["de", "fr", "fr"]
    assert frames.count(scenario.first_fr) == 2  # the same bytes, as the gateway first got them
    assert value(scenario.samples, "zmq_compat_requests_total", outcome="repush_resent") == 1


async def test_a_result_frame_has_the_current_gateways_fields_in_order(scenario: Scenario) -> None:
    several = scenario.sent["several"]
    frames = completed_for(scenario.gw, several["taskId"])
    message = json.loads(next(f for f in frames if b'"targetLanguage": "de"' in f))
    assert list(message) == ["type", "taskId", "result", "targetLanguage", "timestamp", "metadata"]
    assert list(message["result"]) == RESULT_KEYS
    assert list(message["metadata"]) == METADATA_KEYS
    assert message["result"]["messageId"] == several["messageId"]


async def test_a_story_text_object_gets_one_event_with_every_target_but_the_source(
    scenario: Scenario,
) -> None:
    stories = of_type(scenario.gw, "story_text_object_translation_completed")
    answered = {m["textObjectIndex"]: m for m in stories}
    story, only_source = scenario.sent["story"], scenario.sent["only_source"]
    assert sorted(answered) == [story["textObjectIndex"], only_source["textObjectIndex"]]
    assert answered[2]["postId"] == "post-1"
    assert sorted(answered[2]["translations"]) == ["de", "fr"]
    assert all(answered[2]["translations"].values())
    assert answered[3]["translations"] == {}
    assert isinstance(answered[2]["timestamp"], int)
    assert value(scenario.samples, "zmq_compat_requests_total", outcome="story_completed") == 1
    assert value(scenario.samples, "zmq_compat_requests_total", outcome="story_empty") == 1


async def test_a_push_repeated_after_the_shim_restarted_is_translated_once(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    """The shim forgot the task (it restarted): the push goes to JetStream again with the same
    Nats-Msg-Id, which JetStream stores once."""
    log = tmp_path / "log"
    pull, pub = free_port(), free_port()
    env = shim_env(nats_server.url, TRANSLATOR_ZMQ_PULL_PORT=pull, TRANSLATOR_ZMQ_PUB_PORT=pub)
    gw = CurrentGateway(pull, pub)
    try:
        async with shim(env, log):
            await gw.connected()
            sent = await gw.translate("Hello again", ["fr", "de"])
            await stored_at_least(nc, "TRANSLATE_NORMAL", 1)
        async with shim(env, log):
            await gw.retry(sent, ["fr", "de"])
            async with running_worker(nc, worker_env(nats_server.url, models), Pool.NORMAL, log):
                with anyio.fail_after(60):
                    while len(completed_for(gw, sent["taskId"])) < 2:
                        await gw.read_one()
                await quiet(gw)
        assert await last_request_seq(nc) == 1
    finally:
        gw.close()
    frames = completed_for(gw, sent["taskId"])
    assert sorted(json.loads(f)["targetLanguage"] for f in frames) == ["de", "fr"]


# -- the frames alone -------------------------------------------------------------------------


def parse(payload: dict[str, Any], max_text_length: int = 100) -> protocol.Parsed:
    return protocol.parse(stringify(payload), 1_000_000, max_text_length)


def test_every_type_the_current_gateway_sends_is_parsed_as_what_it_is() -> None:
    for kind in NOT_SERVED:
        refusal = parse({"type": kind, "taskId": "t", "request_id": "r", "messageId": "m"})
        assert isinstance(refusal, Unsupported)
        assert refusal.kind == kind
        event = json.loads(refusal.frame)
        assert event["error"] == f"{kind} {NOT_SERVED_TEXT}"
    fields = {"taskId": "t", "messageId": "m", "text": "hi", "targetLanguages": ["fr"]}
    typed, legacy = parse({"type": "translation", **fields}), parse(fields)
    assert isinstance(typed, protocol.TextRequest)
    assert isinstance(legacy, protocol.TextRequest)
    assert (typed.typed, legacy.typed) == (True, False)  # the envelope's: the current gateway's
    assert typed.request == legacy.request  # the request is the same
    with pytest.raises(TooLong) as typed_long:
        parse(
            {"type": "translation", "messageId": "m", "text": "a" * 101, "targetLanguages": ["fr"]}
        )
    with pytest.raises(TooLong) as legacy_long:
        parse({"messageId": "m", "text": "a" * 101, "targetLanguages": ["fr"]})
    assert (typed_long.value.typed, legacy_long.value.typed) == (True, False)


def test_a_story_request_becomes_one_translation_request_that_says_where_it_belongs() -> None:
    story = parse(
        {
            "type": "story_text_object_translation",
            "postId": "665f1c2e9b1e8a0012345678",
            "textObjectIndex": 4,
            "text": "Bonjour",
            "sourceLanguage": "fr",
            "targetLanguages": ["en", "fr", "de"],
        }
    )
    assert isinstance(story, StoryRequest)
    assert story.request is not None
    assert story.request.target_languages == ("en", "de")
    assert story_of(story.request.task_id) == ("665f1c2e9b1e8a0012345678", 4)
    nothing = parse({"type": "story_text_object_translation", "postId": "p", "textObjectIndex": 0})
    assert isinstance(nothing, StoryRequest)
    assert nothing.request is None
    assert nothing.reason.startswith("invalid request")
    assert story_of("0b9d6c1e-3f5a-4a8e-9f6f-1c2d3e4f5a6b") is None


def test_a_story_is_answered_once_with_its_last_result_a_redelivered_one_counted_once() -> None:
    task_id = story_task_id("post:with:colons", 1)
    assert story_of(task_id) == ("post:with:colons", 1)

    def result(language: str, status: str = "ok") -> TranslationResult:
        return TranslationResult(
            task_id=task_id,
            message_id="story:post",
            status=status,
            translated_text="x" if status == "ok" else "",
            source_language="en",
            target_language=language,
            expected_results=3,
        )

    stories: Stories[str] = Stories()
    assert stories.add(result("fr"), "fr#1") is None
    assert stories.add(result("fr"), "fr#2") is None  # redelivered: replaces the first
    assert stories.add(result("de", "error"), "de#1") is None
    done = stories.add(result("ro"), "ro#1")
    assert done is not None
    assert len(stories) == 0
    frame, held = done
    assert held == {"fr": "fr#2", "de": "de#1", "ro": "ro#1"}
    event = json.loads(frame)
    assert (event["postId"], event["textObjectIndex"]) == ("post:with:colons", 1)
    assert event["translations"] == {"fr": "x", "ro": "x"}  # the failed target is left out
