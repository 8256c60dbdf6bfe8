"""The output vocabulary of the languages a deployment translates into, from the tokenizer alone,
as a CTranslate2 vocabulary map (`vmap.txt`, `use_vmap`; VOCABULARY_LANGUAGES).

A multilingual model projects every decoding step onto its whole vocabulary (NLLB-200: 256,206
tokens), most of it in scripts the target is never written in. The map's always-candidates (its
line with an empty key) are the pieces written in the targets' scripts (the script is the one
FLORES-200 names in the NLLB code: fra_Latn -> Latin, rus_Cyrl -> Cyrillic, jpn_Jpan -> Han,
Hiragana and Katakana), the pieces of no script (digits, punctuation, symbols, emoji, the word
boundary) and the end, start and unknown tokens; and every other piece maps to itself, so a
piece the source holds (a name in another script) can still be copied through. CTranslate2 adds
the target prefix (the language token) itself.

CTranslate2 keys its map by source n-grams only, one map per model directory (vocabulary_map.cc:
the candidates are the empty key's, the source n-grams' and the target prefix's), so it cannot
hold one vocabulary per target in one loaded model: the map is the union of the listed targets'
scripts, and a target outside them decodes with the whole vocabulary
(`LoadedModel.vocabulary`)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import regex

from translator.inference.languages import NLLB_CODES

# ISO 15924 codes in NLLB names that are no Unicode script: the scripts they are written in
_COMPOSITE: dict[str, tuple[str, ...]] = {
    "Jpan": ("Hani", "Hira", "Kana"),
    "Hans": ("Hani",),
    "Hant": ("Hani",),
    "Kore": ("Hang", "Hani"),
}


def unicode_scripts(code: str) -> tuple[str, ...]:
    """The Unicode scripts (ISO 15924) of an NLLB-200 code's script: fra_Latn -> Latn."""
    script = code.rpartition("_")[2]
    return _COMPOSITE.get(script, (script,))


def scripts(languages: Iterable[str]) -> tuple[str, ...]:
    """The Unicode scripts (ISO 15924) the languages (ISO 639-1) are written in, sorted."""
    found: set[str] = set()
    for language in languages:
        code = NLLB_CODES.get(language)
        if code is None:
            raise ValueError(f"VOCABULARY_LANGUAGES: no script known for {language!r}")
        found.update(unicode_scripts(code))
    return tuple(sorted(found))


def _written_in(names: Sequence[str]) -> regex.Pattern[str]:
    """A piece whose letters and marks are all of these scripts, Common or Inherited."""
    allowed = "".join(rf"\p{{sc={name}}}" for name in (*names, "Zyyy", "Zinh"))
    return regex.compile(rf"(?:[^\p{{L}}\p{{M}}]|[{allowed}])*")


def always(pieces: Iterable[str], specials: Iterable[str], languages: Iterable[str]) -> list[str]:
    """The pieces every decoding step for these target languages may choose (the special tokens
    left out: CTranslate2 adds its own end, start and unknown tokens, and the target prefix)."""
    written = _written_in(scripts(languages))
    skip = set(specials)
    return [p for p in pieces if p not in skip and _plain(p) and written.fullmatch(p)]


def vmap_lines(
    pieces: Sequence[str], specials: Iterable[str], languages: Iterable[str]
) -> list[str]:
    """vmap.txt: the empty key with `always`, then each other piece mapped to itself."""
    skip = set(specials)
    kept = always(pieces, skip, languages)
    chosen = set(kept)
    lines = ["\t" + " ".join(kept)]
    lines.extend(f"{p}\t{p}" for p in pieces if p not in chosen and p not in skip and _plain(p))
    return lines


def _plain(piece: str) -> bool:
    """A piece the map's format can hold (its fields are split at spaces and tabs)."""
    return bool(piece) and not any(c.isspace() for c in piece)
