"""The CTranslate2 engine: each family's tiny random-weight model converted at test time, the
same translations as the transformers engine (same pieces, prompts and language tokens), the
quantization mapping and its refusals, the conversion kept and reused."""

from __future__ import annotations

import logging
from pathlib import Path

import ctranslate2
import pytest

from tests.support import Models
from translator.contracts.errors import (
    ModelUnavailable,
    QuantizationUnsupported,
    UnsupportedLanguage,
)
from translator.contracts.settings import TranslatorSettings
from translator.inference import ct2, engine, generation
from translator.inference.models import LoadedModel, load

PAIRS = {"t5": ("en", "de"), "nllb": ("en", "fr"), "m2m100": ("en", "de"), "marian": ("en", "de")}
TEXTS = ["Hello world", "A longer sentence, with a comma.", "Hi"]


def _load(model: Path, store: Path, engine_name: str, level: str = "float32") -> LoadedModel:
    settings = TranslatorSettings(
        models_path=store,
        models_offline=True,
        quantization_level=level,
        inference_engine=engine_name,
    )
    return load(str(model), settings)


@pytest.mark.parametrize("family", sorted(PAIRS))
def test_each_family_translates_as_with_transformers(
    family: str, models: Models, tmp_path: Path
) -> None:
    model = getattr(models, family)
    source, target = PAIRS[family]
    budget = generation.Budget(2.0, 16, 64)
    outputs = {}
    for name in ("transformers", "ctranslate2"):
        loaded = _load(model, tmp_path, name)
        assert loaded.engine == name
        loaded.family.check_pair(source, target)
        outputs[name] = engine.translate(
            loaded, TEXTS, source, target, budget=budget, repetition_limit=4
        )
    torch_out, ct2_out = outputs["transformers"], outputs["ctranslate2"]
    # the same tokens in, the same language token first: the same greedy output (float32)
    assert [t.text for t in ct2_out] == [t.text for t in torch_out]
    assert [t.looped for t in ct2_out] == [t.looped for t in torch_out]
    for mine, theirs in zip(ct2_out, torch_out, strict=True):
        assert 0.0 < mine.confidence <= 1.0
        assert mine.confidence == pytest.approx(theirs.confidence, rel=0.3)


def test_families_refuse_what_they_cannot_translate(models: Models, tmp_path: Path) -> None:
    t5 = _load(models.t5, tmp_path, "ctranslate2")
    with pytest.raises(UnsupportedLanguage):
        t5.family.check_pair("de", "en")  # T5 translates from English only
    marian = _load(models.marian, tmp_path, "ctranslate2")
    with pytest.raises(UnsupportedLanguage):
        marian.family.check_pair("en", "fr")


def test_quantization_levels_map_to_compute_types_or_are_refused() -> None:
    assert ct2.compute_type("float32", "cpu") == "float32"
    assert ct2.compute_type("int8", "cpu") == "int8_float32"
    for level in ("float16", "int4"):
        with pytest.raises(QuantizationUnsupported, match="CTranslate2 has no"):
            ct2.compute_type(level, "cpu")
    if "bfloat16" in ctranslate2.get_supported_compute_types("cpu"):
        assert ct2.compute_type("bfloat16", "cpu") == "bfloat16"
    else:  # this CPU has no bfloat16 kernels: said, with what it can do
        with pytest.raises(QuantizationUnsupported, match=r"it can: .*float32"):
            ct2.compute_type("bfloat16", "cpu")
    assert ct2.device_of("cuda:1") == ("cuda", 1)


def test_the_conversion_is_kept_per_model_and_quantization_and_reused(
    models: Models, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="translator.inference.ct2"):
        first = _load(models.nllb, tmp_path, "ctranslate2", "int8")
        stamp = (first.model.path / "model.bin").stat().st_mtime_ns
        again = _load(models.nllb, tmp_path, "ctranslate2", "int8")
        other = _load(models.nllb, tmp_path, "ctranslate2", "float32")
    assert again.model.path == first.model.path
    assert (again.model.path / "model.bin").stat().st_mtime_ns == stamp
    assert other.model.path != first.model.path
    assert first.model.path.parent == tmp_path / "ctranslate2"
    assert first.model.path.name.endswith("-int8_float32")
    assert other.model.path.name.endswith("-float32")
    converting = [r for r in caplog.records if "converting" in r.getMessage()]
    assert len(converting) == 2  # once per quantization, not per load
    assert sorted(p.name for p in (tmp_path / "ctranslate2").iterdir()) == sorted(
        [first.model.path.name, other.model.path.name]
    )  # no half-written scratch directory left
    translated = engine.translate(first, ["Hello"], "en", "fr")
    assert len(translated) == 1
    assert translated[0].text


def test_a_budget_stops_ctranslate2_too(models: Models, tmp_path: Path) -> None:
    t5 = _load(models.t5, tmp_path, "ctranslate2")  # random weights: it never ends by itself
    budget = generation.Budget(1.0, 4, 6)
    (out,) = engine.translate(t5, ["Hello"], "en", "de", budget=budget, repetition_limit=0)
    assert out.at_budget
    assert not out.looped
    assert len(t5.tokenizer(out.text, add_special_tokens=False)["input_ids"]) <= 6


def test_auto_prefers_ctranslate2_on_a_cpu_that_runs_the_level(
    models: Models, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ct2.preferred("int8", "cpu") == "ctranslate2"
    assert ct2.preferred("float32", "cpu") == "ctranslate2"
    assert ct2.preferred("int4", "cpu") == "transformers"  # CTranslate2 has none: no say
    assert ct2.preferred("float16", "cuda") == "transformers"  # not measured here: not chosen
    monkeypatch.delenv("INFERENCE_ENGINE")
    assert TranslatorSettings().inference_engine == "auto"
    assert _load(models.t5, tmp_path, "auto", "int8").engine == "ctranslate2"


def test_auto_falls_back_to_transformers_where_it_cannot_write_the_conversion(
    models: Models, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "ctranslate2").write_text("not a directory")  # no conversion can go there
    with caplog.at_level(logging.WARNING, logger="translator.inference.models"):
        loaded = _load(models.t5, store, "auto", "int8")
    assert loaded.engine == "transformers"
    assert "CTranslate2 unusable" in caplog.text
    assert engine.translate(loaded, ["Hello"], "en", "de")[0].text
    with pytest.raises(ModelUnavailable, match="CTranslate2 conversion"):
        _load(models.t5, store, "ctranslate2", "int8")  # asked for by name: said, not replaced
