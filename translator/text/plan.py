"""A message's text plan: the parts that go to a model (pieces) and the parts kept verbatim,
in order, so that the translation comes back with the message's shape.

    plan = build(text, "fr")            # sentences, separators, protected spans
    plan = plan.fitted(count, limit)    # long sentences cut into chunks that fit the model
    plan.pieces                         # what the model translates
    plan.assemble(translations)         # the message again, pieces replaced
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from translator.text import chunks, segments, spans

_LETTER = re.compile(r"[^\W\d_]")  # a letter of any script: something to translate


@dataclass(frozen=True)
class Part:
    text: str
    translate: bool  # False: kept verbatim (whitespace, a protected span, nothing to translate)


@dataclass(frozen=True)
class Plan:
    parts: tuple[Part, ...]

    @property
    def pieces(self) -> list[str]:
        """The texts a model translates, in order."""
        return [part.text for part in self.parts if part.translate]

    @property
    def original(self) -> str:
        return "".join(part.text for part in self.parts)

    def fitted(self, count: chunks.TokenCounter, limit: int) -> Plan:
        """Every piece of more than `limit` tokens cut into chunks of at most `limit`."""
        parts: list[Part] = []
        for part in self.parts:
            if not part.translate:
                parts.append(part)
                continue
            for text, is_chunk in chunks.fit(part.text, count, limit):
                parts.append(Part(text, is_chunk))
        return Plan(tuple(parts))

    def assemble(self, translations: Sequence[str]) -> str:
        """The message with each piece replaced by its translation, everything else as it was."""
        if len(translations) != len(self.pieces):
            raise ValueError(f"{len(translations)} translations for {len(self.pieces)} pieces")
        out: list[str] = []
        given = iter(translations)
        for part in self.parts:
            out.append(next(given) if part.translate else part.text)
        return "".join(out)


def build(text: str, language: str) -> Plan:
    """The plan of `text`, written in `language` (ISO 639-1; `auto` uses generic rules)."""
    parts: list[Part] = []
    for region, protected in spans.split(text):
        if protected:
            parts.append(Part(region, False))
            continue
        for piece, is_sentence in segments.sentences(region, language):
            parts.append(Part(piece, is_sentence and _LETTER.search(piece) is not None))
    return Plan(tuple(parts))


def whole(text: str) -> Plan:
    """The message as one piece, as before plans (TEXT_PLAN=false: for comparison); still cut
    into chunks by `fitted` when longer than the model's input, never truncated."""
    return Plan((Part(text, _LETTER.search(text) is not None),))
