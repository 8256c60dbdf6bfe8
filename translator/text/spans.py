"""Protected spans: the parts of a message a model must never see, kept verbatim in place.

URLs, emails, @mentions and inline code are found with patterns; emoji (ZWJ sequences, skin
tones, flags, keycaps) with the `emoji` package's Unicode data, which follows each Unicode
release: a hand-written emoji range goes stale."""

from __future__ import annotations

import re
from collections.abc import Iterator

import emoji

_CODE = re.compile(r"```.*?```|`[^`\n]+`", re.DOTALL)
_URL = re.compile(r"(?:\b[a-z][a-z0-9+.-]*://|\bwww\.)[^\s<>\"'`]+", re.IGNORECASE)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_MENTION = re.compile(r"(?<![\w@])@\w(?:[\w.-]*\w)?")
_URL_TAIL = ".,;:!?'\")]}"


def find(text: str) -> list[tuple[int, int]]:
    """The protected spans of `text` as sorted, disjoint (start, end) ranges; where two kinds
    overlap, the one that starts first wins (code first: a URL inside code stays code)."""
    found: list[tuple[int, int]] = []
    for start, end in _candidates(text):
        if found and start < found[-1][1]:
            continue
        found.append((start, end))
    return found


def _candidates(text: str) -> list[tuple[int, int]]:
    spans = [m.span() for m in _CODE.finditer(text)]
    spans += [_trim_url(text, *m.span()) for m in _URL.finditer(text)]
    spans += [m.span() for m in _EMAIL.finditer(text)]
    spans += [m.span() for m in _MENTION.finditer(text)]
    spans += [(e["match_start"], e["match_end"]) for e in emoji.emoji_list(text)]
    return sorted(spans, key=lambda span: (span[0], -span[1]))


def _trim_url(text: str, start: int, end: int) -> tuple[int, int]:
    """A URL without the sentence's punctuation after it; a closing bracket stays when the URL
    opened one (`https://en.wikipedia.org/wiki/Rust_(language)`)."""
    while end > start and text[end - 1] in _URL_TAIL:
        closing = text[end - 1]
        opening = {")": "(", "]": "[", "}": "{"}.get(closing)
        if opening and text.count(opening, start, end) >= text.count(closing, start, end):
            break
        end -= 1
    return start, end


def split(text: str) -> Iterator[tuple[str, bool]]:
    """`text` as consecutive (part, protected) pairs whose concatenation is `text`."""
    position = 0
    for start, end in find(text):
        if start > position:
            yield text[position:start], False
        yield text[start:end], True
        position = end
    if position < len(text):
        yield text[position:], False
