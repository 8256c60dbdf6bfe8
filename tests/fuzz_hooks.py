"""Schemathesis hooks for tests/test_openapi_fuzz.py (loaded through SCHEMATHESIS_HOOKS).

One precondition of the API cannot be written in a JSON Schema: a 0.4.9 body with
`source_language: auto` needs a text the worker recognises a language in (else 400, as the
OpenAPI document's description says and tests/test_http_api.py checks). The positive cases
that break it are dropped here, with the worker's own code: its text plan, then its detector
over DETECT_LANGUAGES' default. Nothing else is filtered."""

from __future__ import annotations

from typing import Any

import schemathesis

from translator.contracts.errors import UnsupportedLanguage
from translator.contracts.settings import TranslatorSettings
from translator.inference.detection import detect_language
from translator.text import plan

LANGUAGES: tuple[str, ...] = TranslatorSettings.model_fields["detect_languages"].default


def recognised(text: str) -> bool:
    """What the worker does with `auto`: nothing to translate needs no language."""
    pieces = plan.build(text, "auto").pieces
    if not pieces:
        return True
    try:
        detect_language(" ".join(pieces), LANGUAGES)
    except UnsupportedLanguage:
        return False
    return True


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    body = case.body
    positive = case.meta is None or case.meta.generation.mode.is_positive
    if not positive or case.operation.path != "/translate" or not isinstance(body, dict):
        return True
    if "q" in body or not isinstance(body.get("text"), str):
        return True
    if str(body.get("source_language", "auto")).lower() != "auto":
        return True
    return recognised(body["text"])
