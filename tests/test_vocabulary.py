"""VOCABULARY_LANGUAGES: the targets' scripts as a CTranslate2 vocabulary map, built from the
tokenizer; decoding into a listed target chooses only those pieces, with the same candidates for
every batch, and any other target decodes exactly as without the map."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import ctranslate2
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


def test_the_map_is_one_line_of_the_kept_pieces_and_the_targets_prefixes() -> None:
    lines = vocabulary.vmap_lines(PIECES, SPECIALS, ["ru"], ["rus_Cyrl", "fra_Latn", "rus_Cyrl"])
    assert lines == ["\t▁ ▁привет да ▁1984 ! ▁😀 rus_Cyrl fra_Latn"]
    # no source n-gram rules: the candidates may not change from batch to batch (the module's
    # docstring); a piece with a space in it ("а b") cannot be written in the map


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


def test_a_listed_target_decodes_into_its_scripts_only(models: Models, tmp_path: Path) -> None:
    budget = generation.Budget(2.0, 16, 64)
    whole = _load(models.nllb, tmp_path, ())
    mapped = _load(models.nllb, tmp_path, ("ru",))
    assert mapped.vmap_targets == {"ru"}
    assert mapped.vocabulary("ru") == mapped.model.path.name.rpartition("-vmap-")[2]
    assert mapped.vocabulary("fr") == "" == whole.vocabulary("ru")
    assert (mapped.model.path / "vmap.txt").is_file()
    assert not (whole.model.path / "vmap.txt").exists()
    assert mapped.model.path.parent == whole.model.path.parent
    # the tiny model's pieces are all Latin: into Russian, only pieces of no script may come
    # out; without the map its random weights choose others
    tokenizer = mapped.tokenizer
    pieces = list(tokenizer.get_vocab())
    allowed = {*vocabulary.always(pieces, tokenizer.all_special_tokens, ["ru"])}
    allowed |= {tokenizer.bos_token, tokenizer.eos_token, tokenizer.unk_token, "rus_Cyrl"}
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


LONG = " ".join(f"word{i} thing{i} other{i}" for i in range(12))


def _decode(loaded: LoadedModel, texts: list[str], prefix: str) -> list[ct2.Decoded]:
    tokenizer = loaded.tokenizer
    tokens = [tokenizer.convert_ids_to_tokens(row) for row in tokenizer(texts)["input_ids"]]
    how = ct2.Decoding([prefix], 8, 1, 0, 1, [], use_vmap=True)
    return ct2.decode(loaded.model, tokens, how, tokenizer)


def test_batches_of_other_sources_and_targets_decode_with_the_same_candidates(
    models: Models, tmp_path: Path
) -> None:
    mapped = _load(models.nllb, tmp_path, ("ru", "fr"))
    batches = [([LONG], "rus_Cyrl"), (["Hi"], "rus_Cyrl"), ([LONG, "Hi"], "fra_Latn"),
               (["Hi"], "rus_Cyrl"), ([LONG], "fra_Latn")]  # fmt: skip
    for texts, prefix in batches:  # ct2.decode checks each row's prefix came back as asked
        assert len(_decode(mapped, texts, prefix)) == len(texts)
    # CTranslate2 itself with candidates that follow the source (a rule per source piece, as
    # vmap.txt had before): its id map keeps a token's first position, so the next batch,
    # with more candidates, is forced another piece than the language token; decode says so
    whole = _load(models.nllb, tmp_path, ())
    tokenizer = whole.tokenizer
    pieces, specials = list(tokenizer.get_vocab()), set(tokenizer.all_special_tokens)
    line = vocabulary.vmap_lines(pieces, specials, ["ru"], ["rus_Cyrl"])[0]
    kept = set(line.split())
    rules = [f"{p}\t{p}" for p in pieces if p not in specials and p not in kept]
    path, _ = ct2.with_vocabulary(whole.model.path, [line, *rules])
    translator = ctranslate2.Translator(str(path), compute_type="float32")
    model = whole.model
    following = replace(whole, model=ct2.Ct2Model.open(
        translator, model.config, model.generation_config, path, "float32"
    ))  # fmt: skip
    _decode(following, ["Hi"], "rus_Cyrl")
    with pytest.raises(RuntimeError, match=r"decoded \['\S+'\] for the target prefix"):
        _decode(following, [LONG], "rus_Cyrl")


def test_a_production_sized_random_vocabulary_spreads_over_nllbs_scripts() -> None:
    # the benchmarks' NLLB-600M stand-in: filler pieces in the scripts of NLLB-200's 202
    # languages, in their proportions, so a target's map has something to leave out
    pieces = randomweights._spread(randomweights._pieces(20_000))
    fr = vocabulary.always(pieces, [], ["fr"])
    ru = vocabulary.always(pieces, [], ["ru"])
    assert 0.55 < len(fr) / len(pieces) < 0.7  # 126 of the 202 languages are Latin-script
    assert 0.04 < len(ru) / len(pieces) < 0.1  # 12 Cyrillic, and the pieces of no script
    assert not set(fr) & set(ru) - set(vocabulary.always(pieces, [], ["ar"]))
