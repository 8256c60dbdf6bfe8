"""Source-language detection for requests that say `auto`, made for short chat lines.

`lingua-language-detector` (rule-based filters by script plus n-gram models up to five
characters, in Rust) is built for short and mixed text, where langdetect (made for documents,
and random unless seeded) guesses on a line of two words. It is deterministic, and restricted to
DETECT_LANGUAGES: it can only answer a language the service was configured for. Its models load
on first use (about 15-20 MB per language); `bench/detection.py` compares the two."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from translator.contracts.errors import UnsupportedLanguage

_lock = threading.Lock()


@lru_cache(maxsize=4)
def _detector(languages: tuple[str, ...]) -> Any:
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    codes = []
    for code in languages:
        try:
            codes.append(IsoCode639_1.from_str(code))
        except ValueError as exc:
            raise UnsupportedLanguage(
                code, "language detection", "lingua does not know it"
            ) from exc
    if len(codes) < 2:
        raise ValueError("DETECT_LANGUAGES needs at least two languages")
    return LanguageDetectorBuilder.from_iso_codes_639_1(*codes).build()


def detect_language(text: str, languages: Sequence[str]) -> str:
    """The ISO 639-1 code of `text`'s language, among `languages`."""
    with _lock:
        found = _detector(tuple(sorted(set(languages)))).detect_language_of(text)
    if found is None:
        raise UnsupportedLanguage("auto", "language detection", "no language recognised")
    return str(found.iso_code_639_1.name).lower()


def detect_candidates(
    text: str, languages: Sequence[str], count: int = 3
) -> list[tuple[str, float]]:
    """The `count` likeliest languages of `text` with lingua's confidence (0 to 1), likeliest
    first; empty when no language is recognised."""
    with _lock:
        values = _detector(tuple(sorted(set(languages)))).compute_language_confidence_values(text)
    found = [(str(v.language.iso_code_639_1.name).lower(), float(v.value)) for v in values]
    return [(code, value) for code, value in found if value > 0][:count]
