"""Cutting a sentence longer than a model's input into chunks that fit, at word boundaries,
counted in the model's own tokens: every token of the sentence reaches the model, none is
truncated. A single word longer than the limit (a run of CJK text has no spaces) is cut between
characters."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

TokenCounter = Callable[[str], int]
_WORDS = re.compile(r"(\s+)")


def fit(text: str, count: TokenCounter, limit: int) -> Iterator[tuple[str, bool]]:
    """`text` as consecutive (part, is_chunk) pairs: chunks of at most `limit` tokens and the
    whitespace between them; `text` itself when it fits."""
    if limit < 1:
        raise ValueError(f"a chunk holds at least one token, not {limit}")
    if count(text) <= limit:
        yield text, True
        return
    words = _WORDS.split(text)  # word, space, word, ..., word
    chunk: list[str] = []
    used = 0
    for i in range(0, len(words), 2):
        word = words[i]
        size = count(word) if word else 0
        if chunk and used + size > limit:
            yield from _checked("".join(chunk[:-1]), count, limit)
            yield chunk[-1], False  # the space before this word
            chunk, used = [], 0
        if size > limit:
            yield from _characters(word, count, limit)
            chunk, used = [], 0
        elif word:
            chunk.append(word)
            used += size
        if i + 1 < len(words):
            chunk.append(words[i + 1])
    if chunk:
        body = "".join(chunk)
        stripped = body.rstrip()
        if stripped:
            yield from _checked(stripped, count, limit)
        if len(stripped) < len(body):
            yield body[len(stripped) :], False
        elif not stripped and body:
            yield body, False


def _checked(text: str, count: TokenCounter, limit: int) -> Iterator[tuple[str, bool]]:
    """Words counted one by one can add up to fewer tokens than the chunk they make: a chunk
    over the limit is cut again, with a smaller limit for its words."""
    if not text:
        return
    if count(text) <= limit or limit == 1:
        yield text, True
        return
    words = _WORDS.split(text)
    if len(words) == 1:
        yield from _characters(text, count, limit)
        return
    middle = len(words) // 2 - (len(words) // 2) % 2  # a word index: cut before its space
    yield from _checked("".join(words[: middle + 1]), count, limit)
    yield words[middle + 1], False
    yield from _checked("".join(words[middle + 2 :]), count, limit)


def _characters(word: str, count: TokenCounter, limit: int) -> Iterator[tuple[str, bool]]:
    """A word longer than the limit, in the longest runs of characters that fit (no space is
    invented: the runs follow each other directly)."""
    while word:
        low, high = 1, len(word)
        while low < high:  # the longest prefix that fits
            middle = (low + high + 1) // 2
            if count(word[:middle]) <= limit:
                low = middle
            else:
                high = middle - 1
        yield word[:low], True
        word = word[low:]
