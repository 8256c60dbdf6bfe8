"""Numbers come back as they were written: a model may localise "42.50" as "42,50" or "1,000"
as "1.000"; a number of the translation whose digits are those of a number of its source is
written as the source wrote it. Numbers are not protected spans (cutting a sentence at each
number would cost the model its context); they are restored after translation, by their digits,
so a number the model moved within the sentence is still found."""

from __future__ import annotations

import re

# digits, with the separators numbers are written with (decimal, thousands, time, dates)
_NUMBER = re.compile(r"\d+(?:[.,:/]\d+)*")
_NOT_DIGIT = re.compile(r"\D")


def restore(source: str, translation: str) -> str:
    """`translation` with each number written as its source wrote the number with its digits
    (each source number used once, first come first served); other text untouched."""
    written: dict[str, list[str]] = {}
    for found in _NUMBER.finditer(source):
        written.setdefault(_NOT_DIGIT.sub("", found.group()), []).append(found.group())
    if not written:
        return translation

    def as_written(found: re.Match[str]) -> str:
        same = written.get(_NOT_DIGIT.sub("", found.group()))
        return same.pop(0) if same else found.group()

    return _NUMBER.sub(as_written, translation)
