"""The output vocabulary of the languages a deployment translates into, from the tokenizer alone,
as a CTranslate2 vocabulary map (`vmap.txt`, `use_vmap`; VOCABULARY_LANGUAGES).

A multilingual model projects every decoding step onto its whole vocabulary (NLLB-200: 256,206
tokens), most of it in scripts the target is never written in. The map is one line, its
always-candidates (the empty key): the pieces written in the targets' scripts (the script is the
one FLORES-200 names in the NLLB code: fra_Latn -> Latin, rus_Cyrl -> Cyrillic, jpn_Jpan -> Han,
Hiragana and Katakana), the pieces of no script (digits, punctuation, symbols, emoji, the word
boundary) and the listed targets' language tokens (the target prefix); CTranslate2 adds its end,
start and unknown tokens.

CTranslate2 keys its map by source n-grams only, one map per model directory (vocabulary_map.cc:
the candidates are the empty key's, the source n-grams' and the target prefix's), so it cannot
hold one vocabulary per target in one loaded model: the map is the union of the listed targets'
scripts, and a target outside them decodes with the whole vocabulary
(`LoadedModel.vocabulary`).

The map has no source n-gram rules, and every listed target's prefix is in its one line, so each
batch decodes with the same candidates: CTranslate2 (4.8, layers/decoder.cc
`update_output_layer`) never clears its original-to-output id map between batches (`emplace`
keeps the first batch's position of an id), so when the candidates change from one batch to the
next, the target prefix is read at a stale position: the language token forced is another piece,
or the position is past the new output size (`IndexError: vector::_M_range_check`). The cost: a
piece of another script the source holds (a name) cannot be copied through."""

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
    left out: CTranslate2 adds its own end, start and unknown tokens; `vmap_lines` the targets'
    prefixes)."""
    written = _written_in(scripts(languages))
    skip = set(specials)
    return [p for p in pieces if p not in skip and _plain(p) and written.fullmatch(p)]


def vmap_lines(
    pieces: Sequence[str],
    specials: Iterable[str],
    languages: Iterable[str],
    prefixes: Iterable[str],
) -> list[str]:
    """vmap.txt: the empty key with `always` and the targets' prefix tokens, and nothing else
    (the same candidates for every batch; see the module's docstring)."""
    kept = always(pieces, specials, languages)
    chosen = set(kept)
    return ["\t" + " ".join([*kept, *(p for p in dict.fromkeys(prefixes) if p not in chosen)])]


def _plain(piece: str) -> bool:
    """A piece the map's format can hold (its fields are split at spaces and tabs)."""
    return bool(piece) and not any(c.isspace() for c in piece)
