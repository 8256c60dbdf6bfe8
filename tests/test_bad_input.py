"""Bad input gets a clear error result or a dead letter, and the worker goes on."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from nats.aio.client import Client

from tests.support import (
    Models,
    collect_results,
    publish_raw,
    publish_request,
    request,
    running_worker,
    worker_env,
)
from translator.bus.embedded import EmbeddedNats
from translator.contracts.messages import DeadLetter
from translator.contracts.subjects import DLQ_STREAM, Pool, dead_letter_subject
from translator.inference import randomweights

pytestmark = pytest.mark.anyio
REPLY = "translate.result.bad"


async def read_dead_letters(nc: Client, count: int) -> list[DeadLetter]:
    sub = await nc.jetstream().subscribe(dead_letter_subject(Pool.NORMAL), ordered_consumer=True)
    letters: list[DeadLetter] = []
    with anyio.fail_after(30):
        while len(letters) < count:
            msg = await sub.next_msg(timeout=None)
            letters.append(DeadLetter.model_validate_json(msg.data))
    await sub.unsubscribe()
    return letters


async def test_bad_requests_get_clear_errors_and_dead_letters_and_the_worker_goes_on(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    valid = {"messageId": "m", "text": "Hello", "sourceLanguage": "en", "targetLanguages": ["fr"]}
    cases: dict[str, str | bytes] = {
        "not-json": b"{this is not json",
        "no-text": json.dumps({**valid, "messageId": "no-text", "text": None}).encode(),
        "no-targets": json.dumps({**valid, "messageId": "no-targets", "targetLanguages": []}),
        "bad-model": json.dumps({**valid, "messageId": "bad-model", "modelType": "ultra"}),
        "too-long": json.dumps({**valid, "messageId": "too-long", "text": "a" * 101}),
    }
    for name, body in cases.items():
        data = body if isinstance(body, bytes) else body.encode()
        await publish_raw(nc, Pool.NORMAL, data, REPLY, msg_id=name)
    unsupported = request(targets=("fr", "xx"), message_id="unsupported")
    good = request(targets=("de",), message_id="good-after-bad")
    await publish_request(nc, unsupported, REPLY)
    await publish_request(nc, good, REPLY)

    env = worker_env(nats_server.url, models, MAX_TEXT_LENGTH=100)
    async with running_worker(nc, env, Pool.NORMAL, tmp_path / "worker.log"):
        # too-long: 1 error; unsupported: fr ok + xx error; good: 1 ok
        results = await collect_results(nc, REPLY, 4)
        letters = await read_dead_letters(nc, 5)

    by_message = {(r.message_id, r.target_language): r for r in results}
    too_long = by_message["too-long", "fr"]
    assert too_long.status == "error"
    assert too_long.error == "text too long: 101 characters, the maximum is 100"
    assert by_message["unsupported", "fr"].status == "ok"
    xx = by_message["unsupported", "xx"]
    assert xx.status == "error"
    assert xx.translated_text == ""
    assert "unsupported language 'xx'" in (xx.error or "")
    assert by_message["good-after-bad", "de"].status == "ok"

    reasons = {letter.task_id: letter.reason for letter in letters}
    assert (reasons["not-json"] or "").startswith("invalid request: not JSON")
    assert "text" in reasons["no-text"]
    assert "targetLanguages" in reasons["no-targets"]
    assert "modelType" in reasons["bad-model"]
    assert reasons["too-long"].startswith("text too long")
    assert all(letter.deliveries == 1 for letter in letters)
    info = await nc.jetstream().stream_info(DLQ_STREAM)
    assert info.state.messages == 5


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
