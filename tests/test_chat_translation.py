"""Chat-grade translation through the real worker (real nats-server, worker subprocesses, tiny
RANDOM-WEIGHT models): what reaches the model and what comes back is checked on structure."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from nats.aio.client import Client

from tests.support import MESSAGE, PROTECTED, Models, request, running_worker, worker_env
from translator.bus import heartbeat
from translator.bus.client import translate
from translator.bus.embedded import EmbeddedNats
from translator.contracts.messages import TranslationResult
from translator.contracts.settings import TranslatorSettings
from translator.contracts.subjects import Pool
from translator.contracts.telemetry import WorkerHeartbeat
from translator.inference import engine
from translator.inference.detection import detect_language
from translator.inference.models import load
from translator.text import plan

pytestmark = pytest.mark.anyio


async def settled_beat(nc: Client, pid: int, processed: int) -> WorkerHeartbeat:
    """The worker's heartbeat once it has published `processed` ok results."""
    with anyio.fail_after(30):
        while True:
            for beat in await heartbeat.read_all(nc.jetstream()):
                if beat.pid == pid and beat.processed >= processed:
                    return beat
            await anyio.sleep(0.1)


async def one(nc: Client, text: str, source: str = "en", target: str = "fr") -> TranslationResult:
    [result] = await translate(nc, request(text, (target,), source_language=source), timeout=60)
    assert result.status == "ok", result.error
    return result


async def test_protected_spans_and_line_breaks_come_back_verbatim_through_the_worker(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    env = worker_env(nats_server.url, models)
    async with running_worker(nc, env, Pool.NORMAL, tmp_path / "log"):
        result = await one(nc, MESSAGE)
    out = result.translated_text
    positions = [out.find(span) for span in PROTECTED]
    assert all(p >= 0 for p in positions), out
    assert positions == sorted(positions)
    assert all(out.count(span) == 1 for span in PROTECTED)
    assert out.count("\n") == MESSAGE.count("\n")
    assert out.count("\n\n") == MESSAGE.count("\n\n")
    assert result.pieces == len(plan.build(MESSAGE, "en").pieces) > 3


async def test_a_message_many_times_the_input_limit_is_translated_whole_in_one_generate(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    long_text = " ".join(f"word{i} goes here" for i in range(150)) + "."  # one sentence
    loaded = load(str(models.t5), TranslatorSettings(basic_model=str(models.t5)))
    count, limit = engine.piece_limit(loaded, "en", "fr", 64)  # its prompt takes some of 64
    assert count(long_text) > 5 * limit
    expected = plan.build(long_text, "en").fitted(count, limit).pieces
    env = worker_env(nats_server.url, models, MAX_INPUT_TOKENS=64, BATCH_SIZE=64)
    log = tmp_path / "log"
    async with running_worker(nc, env, Pool.NORMAL, log) as worker:
        result = await one(nc, long_text)
        beat = await settled_beat(nc, worker.pid, 1)
    assert result.pieces == len(expected) > 5  # every chunk went to the model
    assert len(result.translated_text.split(" ")) >= len(expected)  # each came back
    assert beat.generate_calls == 1  # all the chunks in one generate()
    assert "longer than the specified maximum sequence length" not in log.read_text()


async def test_a_pair_the_basic_tier_cannot_do_falls_back_to_medium_and_says_so(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    """basic is a t5 (en->de/fr/ro only) as in 0.4.9, and the gateway's default source is fr."""
    env = worker_env(nats_server.url, models)
    async with running_worker(nc, env, Pool.NORMAL, tmp_path / "log") as worker:
        result = await one(nc, "Bonjour à tous, comment ça va ?", source="fr", target="en")
        refused = await translate(nc, request("Bonjour", ("kl",), source_language="fr"))
        beat = await settled_beat(nc, worker.pid, 1)
    assert (result.translator_model, result.model_name) == ("medium", models.nllb.name)
    assert result.fell_back_from == "basic"
    assert beat.stats.fallbacks == {"basic>medium:fr-en": 1}
    assert refused[0].status == "error"  # no tier translates into Greenlandic: never a guess
    assert "unsupported language" in (refused[0].error or "")


async def test_an_emoji_only_message_with_auto_comes_back_unchanged_without_a_model(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    env = worker_env(nats_server.url, models)
    async with running_worker(nc, env, Pool.NORMAL, tmp_path / "log") as worker:
        result = await one(nc, "😂👍🏽 🇫🇷", source="auto")
        beat = await settled_beat(nc, worker.pid, 1)
    assert result.translated_text == "😂👍🏽 🇫🇷"
    assert result.pieces == 0
    assert beat.generate_calls == 0


@pytest.mark.parametrize(
    ("line", "language"),
    [
        ("Bonjour tout le monde, comment allez-vous ?", "fr"),
        ("Wie geht es dir heute?", "de"),
        ("¿Dónde está la estación de tren?", "es"),
        ("Grazie mille per tutto!", "it"),
        ("Obrigado pela ajuda de ontem", "pt"),
        ("Спасибо большое, друзья", "ru"),
        ("ありがとうございます", "ja"),
        ("Thanks a lot for your help", "en"),
    ],
)
def test_the_detector_picks_the_language_of_a_short_line(line: str, language: str) -> None:
    assert detect_language(line, TranslatorSettings().detect_languages) == language


async def test_the_cache_answers_repeats_without_the_model_per_model_and_quantization(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    text = "Hello everyone. See you tomorrow at noon!"
    log = tmp_path / "log"
    # room for the random model's loop to be stopped: a piece cut by its budget is not stored
    env = worker_env(nats_server.url, models, MAX_NEW_TOKENS=64)
    async with running_worker(nc, env, Pool.NORMAL, log) as worker:
        first = await one(nc, text)
        second = await one(nc, text)
        beat = await settled_beat(nc, worker.pid, 2)
    assert (first.pieces, first.pieces_cached, first.pieces_at_budget) == (2, 0, 0)
    assert (second.pieces, second.pieces_cached) == (2, 2)
    assert second.translated_text == first.translated_text
    assert beat.generate_calls == 1  # the second request made no generate() call
    assert beat.stats.cache["hits"] == 2

    async with running_worker(nc, env, Pool.NORMAL, log) as again:
        after_restart = await one(nc, text)  # the bucket outlives the worker
        beat = await settled_beat(nc, again.pid, 1)
    assert after_restart.pieces_cached == 2
    assert beat.generate_calls == 0

    int8 = {**env, "QUANTIZATION_LEVEL": "int8"}
    async with running_worker(nc, int8, Pool.NORMAL, log):
        quantized = await one(nc, text)
    assert quantized.pieces_cached == 0  # another quantization never answers from float32's

    other_t5 = {**env, "BASIC_MODEL": str(models.slow_t5)}
    async with running_worker(nc, other_t5, Pool.NORMAL, log):
        other = await one(nc, text)
    assert other.pieces_cached == 0  # nor another model


async def test_the_cache_can_be_switched_off(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    env = worker_env(nats_server.url, models, CACHE_ENABLED="false", MAX_NEW_TOKENS=64)
    async with running_worker(nc, env, Pool.NORMAL, tmp_path / "log") as worker:
        await one(nc, "Good morning")
        again = await one(nc, "Good morning")
        beat = await settled_beat(nc, worker.pid, 2)
    assert again.pieces_cached == 0
    assert beat.generate_calls == 2


async def test_a_pair_table_names_a_dedicated_model_for_its_pair(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    """As MinT uses OPUS-MT where one exists: en->de goes to the Marian model, not the tier's."""
    pairs = json.dumps({"en-de": str(models.marian)})
    env = worker_env(nats_server.url, models, PAIR_MODELS=pairs)
    async with running_worker(nc, env, Pool.NORMAL, tmp_path / "log"):
        dedicated = await one(nc, "Good morning", target="de")
        tier = await one(nc, "Good morning", target="fr")
    assert dedicated.model_name == models.marian.name
    assert dedicated.translator_model == "basic"  # the tier asked: a pair model has none
    assert (tier.translator_model, tier.model_name) == ("basic", models.t5.name)


def test_a_worker_keeps_at_most_max_loaded_models(models: Models) -> None:
    from translator.inference.models import ModelRegistry

    settings = TranslatorSettings(
        basic_model=str(models.t5), medium_model=str(models.nllb), models_offline=True,
        max_loaded_models=1,
    )  # fmt: skip
    registry = ModelRegistry(settings)
    registry.get("basic")
    registry.get("medium")
    assert registry.loaded == (str(models.nllb),)
    assert registry.evicted == 1
    registry.get("basic")  # loaded again when needed
    assert registry.loaded == (str(models.t5),)


async def test_the_cache_in_process_hits_misses_and_an_entry_that_is_not_ours(
    nc: Client, models: Models
) -> None:
    from collections import Counter

    from translator.inference.engine import Translation
    from translator.worker.cache import BUCKET, Scope, TranslationCache

    settings = TranslatorSettings(basic_model=str(models.t5), models_offline=True)
    loaded = load(str(models.t5), settings)
    counts: Counter[str] = Counter()
    cache = TranslationCache(settings, nc.jetstream(), counts)
    scope = Scope(loaded, "en", "fr", 1)
    await cache.store(scope, {"Hello": Translation("Bonjour", 0.9)})
    kv = await nc.jetstream().key_value(BUCKET)
    await kv.put(scope.key("Broken"), b"not json")
    found = await cache.lookup(scope, ["Hello", "Broken", "Absent"])
    assert found == {"Hello": Translation("Bonjour", 0.9)}
    assert (counts["hits"], counts["misses"], counts["errors"]) == (1, 2, 1)
    assert await cache.lookup(Scope(loaded, "en", "de", 1), ["Hello"]) == {}  # another pair
    assert await cache.lookup(Scope(loaded, "en", "fr", 4), ["Hello"]) == {}  # other beams
