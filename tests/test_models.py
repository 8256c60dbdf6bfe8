"""Models: families, language codes, quantization, loading errors; tiny real models."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers.models.nllb.tokenization_nllb import FAIRSEQ_LANGUAGE_CODES

from tests.support import Models
from translator.contracts.errors import (
    ModelUnavailable,
    QuantizationUnsupported,
    UnsupportedLanguage,
)
from translator.contracts.settings import TranslatorSettings
from translator.inference import engine, quantization, randomweights
from translator.inference.languages import (
    NLLB_CODES,
    display_name,
    language,
    nllb_code,
    nllb_keys,
)
from translator.inference.models import ECHO_MODEL_ID, LoadedModel, is_present, load


def settings_for(path: Path, **extra: object) -> TranslatorSettings:
    return TranslatorSettings(basic_model=str(path), models_offline=True, **extra)  # type: ignore[arg-type]


def test_every_iso_code_maps_to_a_real_nllb_language_token() -> None:
    assert len(NLLB_CODES) > 130
    assert set(NLLB_CODES.values()) <= set(FAIRSEQ_LANGUAGE_CODES)
    assert (NLLB_CODES["fr"], NLLB_CODES["zh"], NLLB_CODES["en"]) == (
        "fra_Latn",
        "zho_Hans",
        "eng_Latn",
    )


@pytest.mark.parametrize(
    ("written", "key", "flores"),
    [
        ("pt-BR", "pt", "por_Latn"), ("pt-br", "pt", "por_Latn"), ("pt_BR", "pt", "por_Latn"),
        ("pb", "pt", "por_Latn"), ("POR", "pt", "por_Latn"), ("en-US", "en", "eng_Latn"),
        ("zh-Hant", "zh-Hant", "zho_Hant"), ("zh-TW", "zh-Hant", "zho_Hant"),
        ("zh-CN", "zh", "zho_Hans"), ("zt", "zh-Hant", "zho_Hant"),
        ("sr-Latn", "sr-Latn", None), ("sr", "sr", "srp_Cyrl"), ("tl", "fil", "tgl_Latn"),
        ("fuv", "fuv", "fuv_Latn"), ("bas", "bas", None), ("ksf", "ksf", None),
        ("ewo", "ewo", None), ("wo", "wo", "wol_Latn"), ("ln", "ln", "lin_Latn"),
    ],
)  # fmt: skip
def test_the_language_table_reads_codes_as_people_write_them(
    written: str, key: str, flores: str | None
) -> None:
    read = language(written)
    assert read is not None
    assert read.key == key
    assert nllb_code(read.key) == flores


@pytest.mark.parametrize("nonsense", ["french", "xx", "en-ZZ", "pt-JP", "e", "auto", "en-Xxxx"])
def test_what_names_no_language_is_none(nonsense: str) -> None:
    assert language(nonsense) is None


def test_every_nllb_language_can_be_asked_for() -> None:
    keys = nllb_keys()
    assert {nllb_code(key) for key in keys} == set(FAIRSEQ_LANGUAGE_CODES) - {"prs_Arab"}
    assert display_name("bas") == "Basaa"


@pytest.mark.parametrize("arch", ["t5", "nllb", "m2m100", "marian"])
def test_each_family_translates_a_batch_in_one_generate(models: Models, arch: str) -> None:
    path = {"t5": models.t5, "nllb": models.nllb, "m2m100": models.m2m100, "marian": models.marian}[
        arch
    ]
    loaded = models_load(path)
    target = "de" if arch == "marian" else "fr"
    loaded.family.check_pair("en", target)
    out = engine.translate(loaded, ["Hello", "Good morning everyone", "Hi"], "en", target)
    assert len(out) == 3
    assert all(t.text and 0.0 < t.confidence <= 1.0 for t in out)
    assert loaded.random_weights


def models_load(path: Path) -> LoadedModel:
    return load(str(path), settings_for(path))


def test_t5_prefix_names_the_pair_and_refuses_other_directions(models: Models) -> None:
    family = models_load(models.t5).family
    assert family.prepare(["Hi"], "en", "fr") == ["translate English to French: Hi"]
    with pytest.raises(UnsupportedLanguage, match="'es'"):
        family.check_pair("en", "es")
    with pytest.raises(UnsupportedLanguage, match="not fr->en"):
        family.check_pair("fr", "en")


def test_nllb_uses_flores_codes_for_source_and_target(models: Models) -> None:
    loaded = models_load(models.nllb)
    loaded.family.prepare(["Bonjour"], "fr", "de")
    ids = loaded.tokenizer("Bonjour").input_ids
    assert loaded.tokenizer.convert_ids_to_tokens(ids[0]) == "fra_Latn"
    forced = loaded.family.generate_kwargs("de")["forced_bos_token_id"]
    assert loaded.tokenizer.convert_ids_to_tokens(forced) == "deu_Latn"
    with pytest.raises(UnsupportedLanguage):
        loaded.family.check_pair("fr", "xx")


def test_marian_translates_only_its_own_pair(models: Models) -> None:
    family = models_load(models.marian).family
    family.check_pair("en", "de")
    with pytest.raises(UnsupportedLanguage, match="into de"):
        family.check_pair("en", "fr")


def test_int8_on_cpu_quantizes_linear_layers_and_still_translates(models: Models) -> None:
    loaded = load(str(models.t5), settings_for(models.t5, quantization_level="int8"))
    quantized = [m for m in loaded.model.modules() if "quantized" in type(m).__module__]
    assert quantized, "no dynamically quantized layer"
    assert engine.translate(loaded, ["Hello"], "en", "fr")[0].text


@pytest.mark.parametrize("level", ["float16", "int4"])
def test_cpu_refuses_levels_it_cannot_run_with_a_clear_message(level: str) -> None:
    with pytest.raises(QuantizationUnsupported, match=f"'{level}' is not supported on cpu"):
        quantization.plan(level, "cpu")


def test_cuda_levels_use_bitsandbytes_or_half_precision() -> None:
    # Plans only: no GPU here. The GPU path itself is checked on a device machine.
    assert "quantization_config" in quantization.plan("int8", "cuda").load_kwargs
    assert "quantization_config" in quantization.plan("int4", "cuda").load_kwargs
    assert str(quantization.plan("float16", "cuda").load_kwargs["dtype"]) == "torch.float16"


def test_a_missing_model_fails_with_its_name_and_how_to_provide_it(tmp_path: Path) -> None:
    settings = TranslatorSettings(models_path=tmp_path, models_offline=True)
    with pytest.raises(ModelUnavailable) as caught:
        load("facebook/nllb-200-distilled-600M", settings)
    message = str(caught.value)
    assert "facebook/nllb-200-distilled-600M" in message
    assert "translator models download" in message
    assert str(tmp_path) in message


def test_models_under_models_path_are_found_by_id(tmp_path: Path) -> None:
    randomweights.build("t5", tmp_path / "acme" / "t5-mini")
    settings = TranslatorSettings(models_path=tmp_path, models_offline=True)
    assert is_present("acme/t5-mini", tmp_path)
    assert load("acme/t5-mini", settings).family.name == "t5"


def test_random_model_generates_the_fixed_number_of_tokens(tmp_path: Path) -> None:
    path = randomweights.build("t5", tmp_path / "fixed", output_tokens=12, fixed_length=True)
    loaded = models_load(path)
    inputs = loaded.tokenizer(["translate English to French: Hi"], return_tensors="pt")
    out = loaded.model.generate(**inputs)
    assert out.shape[1] == 12 + 1  # decoder start token + 12 generated


def test_the_benchmark_echo_backend_is_explicit_and_translates_nothing() -> None:
    loaded = load(ECHO_MODEL_ID, TranslatorSettings(models_offline=True))
    assert loaded.echo
    assert loaded.family.name == "echo"
    assert engine.translate(loaded, ["Bonjour", "Salut"], "fr", "en") == [
        engine.Translation("Bonjour", 1.0),
        engine.Translation("Salut", 1.0),
    ]


def test_nllb_language_codes_are_looked_up_once_not_per_batch(
    models: Models, monkeypatch: pytest.MonkeyPatch
) -> None:
    """get_vocab() builds a dict of NLLB's 256k tokens (0.2 s): per generate() it cut an H100's
    batched throughput 4.6 times (docs/BENCHMARKS.md 1c)."""
    loaded = models_load(models.nllb)

    def no_scan() -> None:
        raise AssertionError("get_vocab() called while translating")

    monkeypatch.setattr(loaded.tokenizer, "get_vocab", no_scan)
    loaded.family.check_pair("en", "fr")
    assert len(engine.translate(loaded, ["Hello", "Good morning"], "en", "fr")) == 2
    with pytest.raises(UnsupportedLanguage):
        loaded.family.check_pair("en", "xx")
