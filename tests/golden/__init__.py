"""The golden chat sets (REAL weights: the Firefox Translations en<->pt models) and how they are
scored; tests/test_golden.py holds the floors, bench/golden.py prints the scores."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import sacrebleu

from translator.inference.detection import detect_candidates
from translator.inference.generation import loop_length
from translator.text import spans

HERE = Path(__file__).resolve().parent
_NUMBER = re.compile(r"\d+(?:[.,:/]\d+)*")
_LETTERS = re.compile(r"[^\W\d_]{2,}")
# the languages lingua is asked among when it checks an output's language
DETECT = ("en", "pt", "es", "fr", "it", "de", "nl", "ro", "ca")


@dataclass(frozen=True)
class Line:
    category: str
    source: str
    reference: str  # "" where the set has none


def read(language: str) -> list[Line]:
    """tests/golden/chat_<language>.tsv: category, source, reference; `\\n` is a line break."""
    lines = []
    for row in (HERE / f"chat_{language}.tsv").read_text().splitlines():
        if not row.strip() or row.startswith("#"):
            continue
        category, source, *rest = row.split("\t")
        reference = rest[0] if rest else ""
        lines.append(Line(category, _unescape(source), _unescape(reference)))
    return lines


def _unescape(text: str) -> str:
    return text.replace("\\n", "\n")


def protected(text: str) -> list[str]:
    """What must come back verbatim: the protected spans and the numbers."""
    return [text[a:b] for a, b in spans.find(text)] + _NUMBER.findall(text)


def lost(source: str, output: str) -> list[str]:
    """The protected parts of `source` that `output` lacks (as many times as the source has)."""
    return [part for part in set(protected(source)) if output.count(part) < source.count(part)]


def words(text: str) -> int:
    stripped = text
    for a, b in reversed(spans.find(text)):
        stripped = stripped[:a] + " " + stripped[b:]
    return len(_LETTERS.findall(stripped))


def wrong_language(output: str, target: str, source: str) -> str | None:
    """lingua's likeliest languages for an output of at least 4 words (its protected spans
    left out), unless `target` is one of the three likeliest and likelier than `source` (not
    left untranslated): lingua is not sure of a short line (a typo makes "O que é a pasword
    para o wifi?" Dutch first, Italian second)."""
    if words(output) < 4:
        return None
    stripped = output
    for a, b in reversed(spans.find(output)):
        stripped = stripped[:a] + " " + stripped[b:]
    found = detect_candidates(stripped, DETECT, len(DETECT))
    likely = dict(found)
    top = [code for code, _ in found[:3]]
    fine = target in top and likely.get(target, 0.0) > likely.get(source, 0.0)
    return None if fine else repr(found[:3])


def looping(output: str) -> bool:
    """A block of words repeated 4 times or more at the end of the output (or of a line)."""
    for line in output.splitlines():
        ids: dict[str, int] = {}
        if loop_length([ids.setdefault(word, len(ids)) for word in line.split()], 4):
            return True
    return False


def ratio(source: str, output: str) -> float:
    return len(output) / max(len(source), 1)


def chrf(outputs: list[str], references: list[str]) -> float:
    return round(float(sacrebleu.corpus_chrf(outputs, [references]).score), 1)
