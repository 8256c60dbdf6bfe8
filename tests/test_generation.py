"""Bounded generation on a real tiny model with RANDOM WEIGHTS: such a model never ends a
sentence by itself, so it runs to its budget (unless its loop is stopped): the budget, the loop
stop and the collapse can be asserted in tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from translator.contracts.settings import TranslatorSettings
from translator.inference import engine, generation, randomweights
from translator.inference.models import LoadedModel, load


@pytest.fixture(scope="module")
def free_running(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    """A t5 without a fixed output length (it loops on one token, as random models do)."""
    path = randomweights.build("t5", tmp_path_factory.mktemp("free") / "t5", output_tokens=400)
    return load(str(path), TranslatorSettings(basic_model=str(path), models_offline=True))


def spy(loaded: LoadedModel, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What each generate() call was asked for and gave back."""
    calls: list[dict[str, Any]] = []
    real = loaded.model.generate

    def generate(**kwargs: Any) -> Any:
        output = real(**kwargs)
        calls.append({"max_new_tokens": kwargs["max_new_tokens"], "out": output.sequences})
        return output

    monkeypatch.setattr(loaded.model, "generate", generate)
    return calls


def test_the_budget_follows_the_longest_source_of_the_call(
    free_running: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = spy(free_running, monkeypatch)
    budget = generation.Budget(ratio=1.0, floor=4, ceiling=300)

    def count(text: str) -> int:  # as generate() sees it: prefix and end token included
        prepared = free_running.family.prepare([text], "en", "fr")[0]
        return len(free_running.tokenizer(prepared)["input_ids"])

    short, long = "Hello there", "Hello there, " * 12 + "how are you all?"
    for texts in (["Hi", short], [short, long]):
        done = engine.translate(free_running, texts, "en", "fr", budget=budget)
        assert all(t.at_budget and not t.looped for t in done)
    expected = [budget.tokens(count(short)), budget.tokens(count(long))]
    assert [c["max_new_tokens"] for c in calls] == expected
    assert expected[1] > 2 * expected[0]
    # every row ran to its budget: the decoder start token plus max_new_tokens
    assert [c["out"].shape[1] - 1 for c in calls] == expected


def test_a_looping_row_is_stopped_early_and_collapsed(
    free_running: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = spy(free_running, monkeypatch)
    budget = generation.Budget(ratio=1.0, floor=200, ceiling=300)
    [looping] = engine.translate(
        free_running, ["Hello there"], "en", "fr", budget=budget, repetition_limit=4
    )
    [unbounded] = engine.translate(free_running, ["Hello there"], "en", "fr", budget=budget)
    assert looping.looped
    assert not looping.at_budget
    assert calls[0]["out"].shape[1] - 1 < 40  # stopped long before its 200-token budget
    assert calls[1]["out"].shape[1] - 1 == 200
    tokens = free_running.tokenizer(looping.text, add_special_tokens=False)["input_ids"]
    assert generation.loop_length(tokens, 4) == 0  # one copy of the block is left
    assert len(looping.text) < len(unbounded.text) / 5


def test_a_declared_minimum_output_length_is_kept(tmp_path: Path) -> None:
    """A model whose config fixes its output length (min_new_tokens) gets it: the benchmarks'
    fixed-length models keep their declared cost."""
    path = randomweights.build("t5", tmp_path / "fixed", output_tokens=30, fixed_length=True)
    loaded = load(str(path), TranslatorSettings(basic_model=str(path), models_offline=True))
    budget = generation.Budget(ratio=1.0, floor=4, ceiling=30)
    [done] = engine.translate(loaded, ["Hi"], "en", "fr", budget=budget, repetition_limit=4)
    tokens = loaded.tokenizer(done.text, add_special_tokens=False)["input_ids"]
    assert not done.looped
    assert len(tokens) >= 25  # not stopped nor collapsed before its 30 tokens


def test_an_input_limit_smaller_than_the_prompt_is_refused_clearly(
    free_running: LoadedModel,
) -> None:
    count, limit = engine.piece_limit(free_running, "en", "fr", 400)
    prompt = 400 - limit  # T5's task prefix and end token (and a margin of 2)
    assert count("Hello there") < count("Hello there, " * 12)
    with pytest.raises(ValueError, match="leaves no room for text"):
        engine.piece_limit(free_running, "en", "fr", prompt)
