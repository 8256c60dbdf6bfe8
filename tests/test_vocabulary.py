"""VOCABULARY_LANGUAGES: the targets' scripts as a CTranslate2 vocabulary map, built from the
tokenizer; decoding into a listed target chooses only those pieces (and what the source holds),
any other target decodes exactly as without the map."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import Models
from translator.contracts.settings import TranslatorSettings
from translator.inference import ct2, engine, generation, randomweights, vocabulary
from translator.inference.models import LoadedModel, load
from translator.worker.cache import Scope

PIECES = [
    "<s>", "</s>", "<unk>", "fra_Latn", "▁", "▁bonjour", "é", "▁привет", "да", "こんにちは",
    "世界", "▁カタカナ", "안녕", "مرحبا", "▁1984", "!", "▁😀", "▁mix╳ед", "а b", "cafe\u0301",
]  # fmt: skip
SPECIALS = ["<s>", "</s>", "<unk>", "fra_Latn"]
TEXTS = ["Hello world", "A longer sentence, with a comma.", "Hi"]


def test_the_pieces_kept_are_the_targets_scripts_and_those_of_no_script() -> None:
    neutral = ["▁", "▁1984", "!", "▁😀"]
    assert vocabulary.always(PIECES, SPECIALS, ["fr"]) == [
        "▁",
        "▁bonjour",
        "é",
        "▁1984",
        "!",
        "▁😀",
        "cafe\u0301",
    ]  # fmt: skip  (a combining mark is of no script of its own)
    assert vocabulary.always(PIECES, SPECIALS, ["ru"]) == [
        "▁", "▁привет", "да", "▁1984", "!", "▁😀",
    ]  # fmt: skip
    assert vocabulary.always(PIECES, SPECIALS, ["ja"]) == [
        "▁", "こんにちは", "世界", "▁カタカナ", "▁1984", "!", "▁😀",
    ]  # fmt: skip
    assert set(vocabulary.always(PIECES, SPECIALS, ["ko"])) == {*neutral, "안녕"}
    assert set(vocabulary.always(PIECES, SPECIALS, ["zh", "ar"])) == {*neutral, "世界", "مرحبا"}
    assert vocabulary.scripts(["fr", "ru", "ja"]) == ("Cyrl", "Hani", "Hira", "Kana", "Latn")
    with pytest.raises(ValueError, match="no script known for 'xx'"):
        vocabulary.scripts(["xx"])


def test_the_map_keeps_the_rest_as_copies_and_leaves_what_it_cannot_hold() -> None:
    lines = vocabulary.vmap_lines(PIECES, SPECIALS, ["ru"])
    assert lines[0] == "\t▁ ▁привет да ▁1984 ! ▁😀"
    rules = dict(line.split("\t") for line in lines[1:])
    assert all(key == value for key, value in rules.items())  # a source piece maps to itself
    assert set(rules) == {"▁bonjour", "é", "こんにちは", "世界", "▁カタカナ", "안녕", "مرحبا",
                          "▁mix╳ед", "cafe\u0301"}  # fmt: skip
    # special tokens are CTranslate2's own (or the target prefix); "а b" has a space in it


def _load(model: Path, store: Path, languages: tuple[str, ...]) -> LoadedModel:
    settings = TranslatorSettings(
        models_path=store, models_offline=True, quantization_level="float32",
        inference_engine="ctranslate2", vocabulary_languages=languages,
    )  # fmt: skip
    return load(str(model), settings)


def _generated(loaded: LoadedModel, use_vmap: bool) -> set[str]:
    """The pieces CTranslate2 chose for TEXTS into Russian, as the engine asks it."""
    tokenizer = loaded.tokenizer
    ids = tokenizer(TEXTS)["input_ids"]
    tokens = [tokenizer.convert_ids_to_tokens(row) for row in ids]
    how = ct2.Decoding(["rus_Cyrl"], 64, 1, 0, 1, [], use_vmap=use_vmap)
    rows = ct2.decode(loaded.model, tokens, how, tokenizer)
    return {piece for row in rows for piece in tokenizer.convert_ids_to_tokens(row.ids)}


def test_a_listed_target_decodes_into_its_scripts_and_the_source_only(
    models: Models, tmp_path: Path
) -> None:
    budget = generation.Budget(2.0, 16, 64)
    whole = _load(models.nllb, tmp_path, ())
    mapped = _load(models.nllb, tmp_path, ("ru",))
    assert mapped.vmap_targets == {"ru"}
    assert mapped.vocabulary("ru") == mapped.model.path.name.rpartition("-vmap-")[2]
    assert mapped.vocabulary("fr") == "" == whole.vocabulary("ru")
    assert (mapped.model.path / "vmap.txt").is_file()
    assert not (whole.model.path / "vmap.txt").exists()
    assert mapped.model.path.parent == whole.model.path.parent
    # the tiny model's pieces are all Latin: into Russian, only pieces of no script, or the
    # source's own, may come out; without the map its random weights choose others
    tokenizer = mapped.tokenizer
    pieces = list(tokenizer.get_vocab())
    source = {
        p for row in tokenizer(TEXTS)["input_ids"] for p in tokenizer.convert_ids_to_tokens(row)
    }
    allowed = {*vocabulary.always(pieces, tokenizer.all_special_tokens, ["ru"]), *source}
    allowed |= {tokenizer.eos_token, tokenizer.unk_token}
    assert _generated(mapped, use_vmap=True) <= allowed
    assert not _generated(mapped, use_vmap=False) <= allowed
    # the engine asks for the map for a listed target...
    cut = engine.translate(mapped, TEXTS, "en", "ru", budget=budget, repetition_limit=4)
    full = engine.translate(whole, TEXTS, "en", "ru", budget=budget, repetition_limit=4)
    assert [t.text for t in cut] != [t.text for t in full]
    # ...and not for another: the whole vocabulary, as without the map
    other = engine.translate(mapped, TEXTS, "en", "fr", budget=budget, repetition_limit=4)
    plain = engine.translate(whole, TEXTS, "en", "fr", budget=budget, repetition_limit=4)
    assert [t.text for t in other] == [t.text for t in plain]
    assert [t.confidence for t in other] == [t.confidence for t in plain]
    # the cache tells them apart where the map decides, and only there
    assert Scope(mapped, "en", "ru", 1).key("Hi") != Scope(whole, "en", "ru", 1).key("Hi")
    assert Scope(mapped, "en", "fr", 1).key("Hi") == Scope(whole, "en", "fr", 1).key("Hi")
    # the map is written once and found again
    again = _load(models.nllb, tmp_path, ("ru",))
    assert again.model.path == mapped.model.path
    assert len(list(tmp_path.joinpath("ctranslate2").iterdir())) == 2


def test_a_production_sized_random_vocabulary_spreads_over_nllbs_scripts() -> None:
    # the benchmarks' NLLB-600M stand-in: filler pieces in the scripts of NLLB-200's 202
    # languages, in their proportions, so a target's map has something to leave out
    pieces = randomweights._spread(randomweights._pieces(20_000))
    fr = vocabulary.always(pieces, [], ["fr"])
    ru = vocabulary.always(pieces, [], ["ru"])
    assert 0.55 < len(fr) / len(pieces) < 0.7  # 126 of the 202 languages are Latin-script
    assert 0.04 < len(ru) / len(pieces) < 0.1  # 12 Cyrillic, and the pieces of no script
    assert not set(fr) & set(ru) - set(vocabulary.always(pieces, [], ["ar"]))
