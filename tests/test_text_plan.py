"""Text plans: what reaches a model and what comes back verbatim, measured on structure (a
translation is replaced by garbage here: whatever the model does, the rest must survive)."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from tests.support import MESSAGE, PROTECTED, Models
from translator.inference import generation
from translator.text import plan, spans


def garbled(p: plan.Plan) -> str:
    """Every piece replaced by what a random model might answer."""
    return p.assemble([f"<{i}>" for i in range(len(p.pieces))])


def test_protected_spans_come_back_verbatim_once_and_in_order() -> None:
    p = plan.build(MESSAGE, "fr")
    out = garbled(p)
    positions = [out.find(span) for span in PROTECTED]
    assert all(position >= 0 for position in positions), out
    assert positions == sorted(positions)
    assert all(out.count(span) == 1 for span in PROTECTED)
    assert not any(span in piece for piece in p.pieces for span in PROTECTED)  # none reached it


def test_line_and_paragraph_breaks_come_back_where_they_were() -> None:
    p = plan.build(MESSAGE, "fr")
    assert p.original == MESSAGE
    out = garbled(p)
    assert out.count("\n\n") == MESSAGE.count("\n\n")
    assert out.count("\n") == MESSAGE.count("\n")
    assert out.split("\n\n")[0].endswith("<2>")  # ", merci." was piece 2, before the break


def test_sentences_are_pieces_of_their_own() -> None:
    p = plan.build("Bonjour à tous ! Comment ça va ? Très bien.", "fr")
    assert p.pieces == ["Bonjour à tous !", "Comment ça va ?", "Très bien."]
    assert garbled(p) == "<0> <1> <2>"


@pytest.mark.parametrize("text", ["😂😂😂", "👍🏽 🇫🇷", "12:30 !!!", "https://meeshy.me", "  \n "])
def test_a_message_with_nothing_to_translate_has_no_piece(text: str) -> None:
    p = plan.build(text, "auto")
    assert p.pieces == []
    assert p.assemble([]) == text


def test_a_url_keeps_its_closing_bracket_but_not_the_sentence_punctuation() -> None:
    text = "see (https://en.wikipedia.org/wiki/Rust_(language)). and https://x.io/a."
    found = [text[a:b] for a, b in spans.find(text)]
    assert found == ["https://en.wikipedia.org/wiki/Rust_(language)", "https://x.io/a"]


def test_a_long_sentence_is_cut_at_words_so_every_token_reaches_the_model(models: Models) -> None:
    tokenizer = AutoTokenizer.from_pretrained(models.t5)

    def count(text: str) -> int:
        return len(tokenizer(text)["input_ids"])

    sentence = " ".join(f"word{i} and more" for i in range(200))  # one sentence, ~800 tokens
    fitted = plan.build(sentence, "en").fitted(count, 32)
    assert len(fitted.pieces) > 10
    assert all(count(piece) <= 32 for piece in fitted.pieces)
    assert fitted.original == sentence  # nothing dropped, nothing added
    assert " ".join(fitted.pieces) == sentence  # cut at the spaces


def test_a_word_longer_than_the_limit_is_cut_between_characters() -> None:
    text = "今日は" * 40  # no space anywhere
    fitted = plan.build(text, "ja").fitted(len, 10)
    assert all(len(piece) <= 10 for piece in fitted.pieces)
    assert "".join(fitted.pieces) == text


def test_the_budget_follows_the_source_length_between_floor_and_ceiling() -> None:
    budget = generation.Budget(ratio=2.0, floor=16, ceiling=100)
    assert budget.tokens(1) == 16
    assert budget.tokens(20) == 48
    assert budget.tokens(30) == 68
    assert budget.tokens(500) == 100


def test_a_looping_tail_is_found_and_collapsed_to_one_copy() -> None:
    assert generation.loop_length([5, 6, 7] + [9] * 10, repeats=4) == 9
    assert generation.collapse([5, 6] + [1, 2, 3] * 5 + [0, 0], 4, pad=0) == ([5, 6, 1, 2, 3], True)
    assert generation.collapse([5, 6, 7, 8], 4, pad=0) == ([5, 6, 7, 8], False)
    assert generation.loop_length([1, 2, 1, 2, 1, 2], repeats=4) == 0  # 3 copies: not a loop
    assert generation.loop_length([4] * 5, repeats=4) == 0  # 5 tokens: too short to call it
