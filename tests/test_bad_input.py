"""Bad input gets a clear error result or a dead letter, and the worker goes on."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import anyio
import nats.errors
import pytest
from nats.aio.client import Client

from tests.support import (
    Models,
    collect_results,
    publish_raw,
    publish_request,
    read_dead_letters,
    request,
    running_worker,
    stored_count,
    wait_for_heartbeat,
    worker_env,
)
from translator.bus.embedded import EmbeddedNats
from translator.contracts.messages import encode
from translator.contracts.subjects import (
    DLQ_STREAM,
    EVENTS_STREAM,
    GATEWAY_RESULTS_STREAM,
    HEADER_MSG_ID,
    HEADER_REPLY_TO,
    RESULTS_STREAM,
    Pool,
    gateway_request_subject,
)
from translator.inference import randomweights

pytestmark = pytest.mark.anyio
REPLY = "translate.result.bad"


async def test_bad_requests_get_clear_errors_and_dead_letters_and_the_worker_goes_on(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    """Every request that names its targets gets one error result per target, with an
    errorCode, beside its dead letter; one that names none gets the dead letter alone. A target
    that names no language is that target's error alone: the others are translated."""
    valid = {"messageId": "m", "text": "Hello", "sourceLanguage": "en", "targetLanguages": ["fr"]}
    addressed: dict[str, dict[str, object]] = {
        "no-text": {**valid, "messageId": "no-text", "text": None},
        "blank-text": {**valid, "messageId": "blank-text", "text": "  \n "},
        "bad-model": {**valid, "messageId": "bad-model", "modelType": "ultra"},
        "no-message-id": {k: v for k, v in valid.items() if k != "messageId"},
        "too-long": {**valid, "messageId": "too-long", "text": "a" * 101},
    }
    unaddressed: dict[str, bytes] = {
        "not-json": b"{this is not json",
        "no-targets": json.dumps(
            {**valid, "messageId": "no-targets", "targetLanguages": []}
        ).encode(),
    }
    for name, body in addressed.items():
        await publish_raw(nc, Pool.NORMAL, json.dumps(body).encode(), REPLY, msg_id=name)
    for name, data in unaddressed.items():
        await publish_raw(nc, Pool.NORMAL, data, REPLY, msg_id=name)
    unsupported = request(targets=("fr", "bas", "xx", "french", "pt-BR"), message_id="unsupported")
    good = request(targets=("de",), message_id="good-after-bad")
    await publish_request(nc, unsupported, REPLY)
    await publish_request(nc, good, REPLY)

    env = worker_env(nats_server.url, models, MAX_TEXT_LENGTH=100)
    async with running_worker(nc, env, Pool.NORMAL, tmp_path / "worker.log"):
        # 5 error results for the 5 addressed ones; unsupported: fr and pt-BR ok, bas, xx and
        # french errors; good: 1 ok; then nothing more
        results = await collect_results(nc, REPLY, 11)
        letters = await read_dead_letters(nc, 7)
        assert await stored_count(nc, RESULTS_STREAM, REPLY) == 11

    by_task = {(r.task_id, r.target_language): r for r in results}
    errors = {key: r for key, r in by_task.items() if key[0] in addressed}
    assert sorted(errors) == sorted((name, "fr") for name in addressed)
    for (name, _), result in errors.items():
        assert result.status == "error", name
        assert result.translated_text == ""
        assert result.error_code == ("text_too_long" if name == "too-long" else "invalid_request")
        assert result.expected_results == 1
    assert errors["no-text", "fr"].message_id == "no-text"
    assert errors["no-message-id", "fr"].message_id == ""
    assert "messageId" in (errors["no-message-id", "fr"].error or "")
    assert "text is blank" in (errors["blank-text", "fr"].error or "")
    assert errors["too-long", "fr"].error == "text too long: 101 characters, the maximum is 100"

    by_message = {(r.message_id, r.target_language): r for r in results}
    assert by_message["unsupported", "fr"].status == "ok"
    assert by_message["unsupported", "fr"].error_code is None
    assert by_message["unsupported", "fr"].expected_results == 5
    basaa = by_message["unsupported", "bas"]  # a language, which no configured model writes
    assert basaa.status == "error"
    assert basaa.translated_text == ""
    assert basaa.error_code == "unsupported_language"
    assert "unsupported language 'bas'" in (basaa.error or "")
    for word in ("xx", "french"):  # no language at all: its own error
        refused = by_message["unsupported", word]
        assert (refused.status, refused.error_code) == ("error", "invalid_request")
        assert refused.error == f"{word!r} is not a language code"
    brazil = by_message["unsupported", "pt-BR"]  # as the client wrote it; NLLB (medium) wrote it
    assert (brazil.status, brazil.translator_model) == ("ok", "medium")
    assert brazil.model_name == "nllb"
    assert by_message["good-after-bad", "de"].status == "ok"

    reasons = {letter.task_id or "": letter.reason for letter in letters}
    assert sorted(reasons) == sorted([*addressed, *unaddressed])
    assert (reasons["not-json"] or "").startswith("invalid request: not JSON")
    assert "text" in reasons["no-text"]
    assert "targetLanguages" in reasons["no-targets"]
    assert "modelType" in reasons["bad-model"]
    assert reasons["too-long"].startswith("text too long")
    assert all(letter.deliveries == 1 for letter in letters)
    assert all(letter.reply_to == REPLY for letter in letters)
    info = await nc.jetstream().stream_info(DLQ_STREAM)
    assert info.state.messages == 7


async def test_a_reply_subject_that_is_not_the_requesters_gets_nothing_published_there(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    """Translate-Reply-To may name only translate.result.<name> or an _INBOX: a request that
    names the alerts subject, the gateway's reserved subject or a wildcard is refused (a dead
    letter with the reason, counted), and no result is published there."""
    events, gateway = "translate.event.alert", "translate.gateway.result.zmq_compat"
    watched = await nc.subscribe("translate.>")
    refused = {"to-events": events, "to-gateway": gateway, "to-wildcard": "translate.result.*"}
    for name, subject in refused.items():
        await publish_request(nc, request(message_id=name, task_id=name), subject)
    via_gateway = request(message_id="via-gateway", task_id="via-gateway")
    await nc.jetstream().publish(
        gateway_request_subject(Pool.NORMAL),
        encode(via_gateway),
        headers={HEADER_REPLY_TO: gateway, HEADER_MSG_ID: via_gateway.task_id},
    )
    env = worker_env(nats_server.url, models)
    async with running_worker(nc, env, Pool.NORMAL, tmp_path / "worker.log") as worker:
        letters = await read_dead_letters(nc, 3)
        (allowed,) = await collect_results(nc, gateway, 1)
        beat = await wait_for_heartbeat(nc, worker.pid, timeout=30)
        with anyio.fail_after(30):
            while beat.stats.errors.get("reply_refused", 0) < 3:
                beat = await wait_for_heartbeat(nc, worker.pid, timeout=30)

    assert {letter.task_id: letter.reply_to for letter in letters} == refused
    for letter in letters:
        assert "reply subject" in letter.reason
    assert "reserved for the gateway" in {le.task_id: le.reason for le in letters}["to-gateway"]
    assert allowed.task_id == "via-gateway"  # the gateway's intake may use its subject
    assert await stored_count(nc, EVENTS_STREAM) == 0
    assert await stored_count(nc, RESULTS_STREAM) == 0  # the gateway's are in a stream of their own
    assert await stored_count(nc, GATEWAY_RESULTS_STREAM) == 1
    seen: list[str] = []
    with contextlib.suppress(nats.errors.TimeoutError):
        while True:
            seen.append((await watched.next_msg(timeout=0.5)).subject)
    assert events not in seen
    assert seen.count(gateway) == 1


async def test_a_model_that_keeps_failing_is_retried_then_dead_lettered(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    broken = randomweights.build("marian", tmp_path / "broken", pair=("en", "de"))
    config = json.loads((broken / "config.json").read_text())
    config["max_position_embeddings"] = 4  # longer inputs fail inside generate()
    (broken / "config.json").write_text(json.dumps(config))
    doomed = request(
        text="A sentence far longer than four positions", targets=("de",), model_type="premium"
    )
    fine = request(targets=("fr",), message_id="still-served")
    await publish_request(nc, doomed, REPLY)
    await publish_request(nc, fine, REPLY)

    env = worker_env(nats_server.url, models, PREMIUM_MODEL=broken, MAX_DELIVER=2, RETRY_DELAY=0.1)
    async with running_worker(nc, env, Pool.NORMAL, tmp_path / "worker.log"):
        results = await collect_results(nc, REPLY, 2)
        (letter,) = await read_dead_letters(nc, 1)

    by_message = {r.message_id: r for r in results}
    failed = by_message[doomed.message_id]
    assert failed.status == "error"
    assert (failed.error or "").startswith("model failure:")
    assert by_message["still-served"].status == "ok"
    assert letter.reason == "retries exhausted"
    assert letter.deliveries == 2
    assert letter.task_id == doomed.task_id
    assert "retry after a model failure" in (tmp_path / "worker.log").read_text()
