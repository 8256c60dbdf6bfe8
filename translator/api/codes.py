"""Language codes as HTTP clients send them, to the ISO 639-1 codes of the NATS contract.

Accepted, in any case: an ISO 639-1 code (`fr`, `FR`), `auto` where a source may be detected,
and LibreTranslate's spellings: `zh-Hans` (Simplified Chinese, `zh`), `pt-BR` and its legacy
code `pb` (Portuguese, `pt`: the models write one Portuguese). Traditional Chinese (`zh-Hant`,
LibreTranslate's legacy `zt`) is refused with its own reason: the models write Simplified
Chinese only, and a translation in the wrong script is never given. Anything else (`english`,
`en-US`) is refused, as LibreTranslate refuses it. `pattern` is the same rule as a regular
expression, for the OpenAPI document."""

from __future__ import annotations

from collections.abc import Iterable

from translator.api.errors import ApiError

# LibreTranslate's spellings (libretranslate/language.py: aliases), lower-cased
ALIASES = {"zh-hans": "zh", "pt-br": "pt", "pb": "pt"}
TRADITIONAL = ("zh-hant", "zt")


def iso_code(value: object, what: str, known: frozenset[str], auto: bool = False) -> str:
    """`value` as an ISO 639-1 code among `known` (or `auto`); ApiError(400) otherwise."""
    text = value.lower() if isinstance(value, str) else ""
    if auto and text == "auto":
        return "auto"
    if text in TRADITIONAL:
        raise ApiError(
            400, f"Invalid request: {what} {value!r} (Traditional Chinese) is not supported:"
            " the models write Simplified Chinese only (zh, zh-Hans)",
        )  # fmt: skip
    code = ALIASES.get(text, text)
    if code not in known:
        if len(code) == 2 and code.isalpha():
            raise ApiError(
                400, f"Invalid request: unsupported language {code!r} ({what}): no configured"
                " model reads or writes it",
            )  # fmt: skip
        raise ApiError(400, f"Invalid request: {what} {value!r} is not an ISO 639-1 code")
    return code


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


def pattern(known: Iterable[str], auto: bool = False) -> str:
    """What `iso_code` accepts, as an ECMA-262 regular expression (JSON Schema's)."""
    words = sorted({*known, *(alias for alias, code in ALIASES.items() if code in known)})
    if auto:
        words.append("auto")
    return "^(" + "|".join(_any_case(word) for word in words) + ")$"
