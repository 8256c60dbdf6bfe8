"""Sentences and separators: a region of text cut at line breaks, then into sentences by
`sentencex` (Wikimedia's segmenter, as MinT uses: rules for about 300 languages, no model to
load, no network). Every character of the input lands in exactly one part."""

from __future__ import annotations

import re
from collections.abc import Iterator

import sentencex

_LINE_BREAKS = re.compile(r"[ \t]*(?:\r\n|\r|\n)[\s]*")
_EDGES = re.compile(r"^(\s*)(.*?)(\s*)$", re.DOTALL)


def sentences(text: str, language: str) -> Iterator[tuple[str, bool]]:
    """`text` as consecutive (part, is_sentence) pairs: sentences without their surrounding
    whitespace, and the whitespace and line breaks between them, in order."""
    position = 0
    for match in _LINE_BREAKS.finditer(text):
        yield from _line(text[position : match.start()], language)
        yield match.group(), False
        position = match.end()
    yield from _line(text[position:], language)


def _line(line: str, language: str) -> Iterator[tuple[str, bool]]:
    if not line:
        return
    for segment in sentencex.segment(_segmenter_language(language), line):
        yield from _edges(segment)


def _edges(segment: str) -> Iterator[tuple[str, bool]]:
    lead, core, trail = _EDGES.fullmatch(segment).groups()  # type: ignore[union-attr]
    if lead:
        yield lead, False
    if core:
        yield core, True
    if trail:
        yield trail, False


def _segmenter_language(language: str) -> str:
    """sentencex takes ISO 639 codes and falls back by itself; `auto` or an unknown code gets
    its generic rules."""
    return language if re.fullmatch(r"[a-z]{2,3}", language or "") else "en"
