"""Language codes as HTTP clients send them, read with the service's one language table
(translator/inference/languages.py) into the keys the models are asked in.

The API takes, in any case and with `-` or `_`: each language a configured model writes by
its key (`pt`, `zh-Hant`, `fuv`), with its script made explicit (`pt-Latn`), with a region
where it is spoken (`pt-BR`, `zh-TW`: a region whose usual script is another one names that
one, `zh-TW` is `zh-Hant`; and `zh-Hant-TW`), or by its ISO 639-3 code (`por`); and
LibreTranslate's `pb`, `zt` and `zh-Hans`. `auto` where a source may be detected. That set is
finite and known from the configured models: `pattern` writes it as the regular expression of
the OpenAPI document, so that the document says exactly what is accepted. A code of another
shape, or a language no model writes, gets a 400 that says which."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from functools import cache

import langcodes
from language_data.population_data import LANGUAGE_SPEAKING_POPULATION

from translator.api.errors import ApiError
from translator.inference.languages import ALIASES, language, named, usual_script


def code(value: object, what: str, served: frozenset[str], auto: bool = False) -> str:
    """`value` as the key of a language some configured model writes (or `auto`);
    ApiError(400) otherwise."""
    text = value if isinstance(value, str) else ""
    if auto and text.lower() == "auto":
        return "auto"
    key = spellings(served).get(text.lower().replace("_", "-"))
    if key is not None:
        return key
    read = language(text) if text else None
    if read is not None and read.key not in served:
        raise ApiError(
            400, f"Invalid request: unsupported language {named(text)} ({what}): no configured"
            " model writes it",
        )  # fmt: skip
    raise ApiError(
        400, f"Invalid request: {what} {text[:40]!r} is not a language code this API takes"
        " (a code /languages lists, with a region or script, or its ISO 639-3 code)",
    )  # fmt: skip


@cache
def spellings(served: frozenset[str]) -> dict[str, str]:
    """Every spelling taken for the `served` keys, lower-cased with `-`, -> its key."""
    found: dict[str, str] = {}
    for key in served:
        found.update(_spellings_of(key, served))
    for alias in ALIASES:
        read = language(alias)
        if read is not None and read.key in served:
            found[alias] = read.key
    return found


def _spellings_of(key: str, served: frozenset[str]) -> dict[str, str]:
    read = language(key)
    if read is None:
        return {}
    base, script = read.base, read.script.lower()
    found = {key.lower(): key, f"{base}-{script}": key}
    alpha3 = langcodes.Language.get(base).to_alpha3()
    if alpha3 != base and script == usual_script(base).lower():
        found[alpha3] = key
    usual = script == usual_script(base).lower()
    for region in _regions(base):
        regional = language(f"{base}-{region}")
        if regional is not None and regional.key in served:
            found[f"{base}-{region.lower()}"] = regional.key
        if not usual:  # `zh-Hant-TW`; `pt-Latn-BR` says no more than `pt-BR`
            found[f"{base}-{script}-{region.lower()}"] = key
    return {spelling: k for spelling, k in found.items() if _reads_as(spelling, k)}


def _reads_as(spelling: str, key: str) -> bool:
    """The table reads `spelling` as `key`: the set holds nothing the table would not."""
    read = language(spelling)
    return read is not None and read.key == key


@cache
def _regions(base: str) -> tuple[str, ...]:
    """The regions where CLDR says `base` is spoken."""
    prefix = f"{base}-"
    return tuple(
        tag[len(prefix) :]
        for tag in LANGUAGE_SPEAKING_POPULATION
        if tag.startswith(prefix) and tag.count("-") == 1
    )


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


def _alternatives(words: Iterable[str]) -> str:
    return "|".join(_any_case(word).replace("-", "[-_]") for word in sorted(words))


def pattern(served: Iterable[str], auto: bool = False) -> str:
    """What `code` takes, as an ECMA-262 regular expression (JSON Schema's): each first subtag,
    then what may follow it."""
    tails: dict[str, set[str]] = defaultdict(set)
    for spelling in spellings(frozenset(served)):
        head, _, tail = spelling.partition("-")
        tails[head].add(tail)
    parts = []
    for head, rest in sorted(tails.items()):
        optional = "" in rest
        after = _alternatives(t for t in rest if t)
        tail = f"(?:[-_](?:{after})){'?' if optional else ''}" if after else ""
        parts.append(_any_case(head) + tail)
    if auto:
        parts.append(_any_case("auto"))
    return "^(?:" + "|".join(parts) + ")$"
