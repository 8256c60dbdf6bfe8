"""The API's OpenAPI document, written out rather than inferred, so that it says what the
endpoints do: every status each can answer and its body, which bodies are required, and the
values accepted: the language codes of the configured models (codes.py), texts that are not
blank (Python's whitespace), at most MAX_TEXT_LENGTH characters, at most API_MAX_BATCH items.

What it cannot say in a schema is in the operations' descriptions: LibreTranslate's fields are
read from the query string too (fields.py); `source: auto` needs a text the detector recognises
a language in (0.4.9's shape answers 400 otherwise; LibreTranslate's takes `en`, as
LibreTranslate does); a request's texts together count against API_CHAR_LIMIT. A test runs
Schemathesis (`--checks all`) against a real server reading this document."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from translator import __version__
from translator.api.codes import pattern
from translator.api.settings import ApiSettings
from translator.api.shapes import (
    NOT_BLANK,
    BatchResults,
    DetectedLanguage,
    ErrorBody,
    FrontendSettings,
    LibreLanguage,
    LibreTranslated,
    Translated049,
    TranslatedFile,
)
from translator.contracts.messages import MODEL_TYPES

_COMPONENTS: list[type[BaseModel]] = [
    Translated049, BatchResults, LibreTranslated, DetectedLanguage, LibreLanguage,
    FrontendSettings, TranslatedFile, ErrorBody,
]  # fmt: skip
_WHY = {
    400: "Invalid request: a field, a language, a text too long, a file format",
    403: "API keys are on (API_KEYS) and the key is missing or unknown",
    404: "No such file (never translated here, or expired)",
    408: "The body did not arrive within HTTP_BODY_TIMEOUT",
    413: "The body is over HTTP_MAX_BODY_BYTES",
    415: "The body is neither JSON nor a form",
    422: "A 0.4.9 body that does not validate (FastAPI's detail list)",
    429: "Slowdown: over the key's or the address's requests per minute (Retry-After)",
    500: "The model failed on this text",
    503: "The pool is full, NATS is away or the model is unavailable (Retry-After: 1)",
    504: "No result within API_TIMEOUT",
}
KEY = {"type": ["string", "null"], "description": "Needed when API_KEYS is set"}
_SENDING = (400, 403, 408, 413, 415, 429)  # any endpoint that reads a body
_TRANSLATING = (*_SENDING, 500, 503, 504)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _responses(ok: dict[str, Any], statuses: tuple[int, ...]) -> dict[str, Any]:
    answers = {"200": {"description": "OK", **ok}}
    for status in sorted(statuses):
        answers[str(status)] = {"description": _WHY[status], **_json(_ref("ErrorBody"))}
    return answers


class _Fields:
    """The request fields' schemas, for the configured languages and limits."""

    def __init__(self, settings: ApiSettings, known: frozenset[str]) -> None:
        self.text = {
            "type": "string",
            "minLength": 1,
            "maxLength": settings.max_text_length,
            "pattern": NOT_BLANK,
        }
        # the language codes taken (codes.py), once each in the components: the set is large
        self.languages = {
            "TargetLanguage": {
                "type": "string",
                "description": "A language a configured model writes (docs/API.md).",
                "pattern": pattern(known) if known else "^[a-zA-Z]{2}$",
            },
            "SourceLanguage": {
                "type": "string",
                "description": "As TargetLanguage, or `auto` (detected).",
                "pattern": pattern(known, auto=True)
                if known
                else "^([a-zA-Z]{2}|[aA][uU][tT][oO])$",
            },
        }
        self.target = _ref("TargetLanguage")
        self.source = {"$ref": "#/components/schemas/SourceLanguage", "default": "auto"}
        self.batch = settings.api_max_batch
        self.file_chars = settings.api_char_limit

    def translate_049(self) -> dict[str, Any]:
        return {
            **self.batch_item(),
            "properties": {
                **self.batch_item()["properties"],
                "source_language": self.source,
                "target_language": self.target,
            },
            "title": "Translate049",
            "description": "0.4.9's body (JSON only). A body with `q` is LibreTranslate's.",
            "not": {"required": ["q"]},
        }

    def batch_item(self) -> dict[str, Any]:
        """An item of /translate/batch: a language it cannot translate is that item's error."""
        return {
            "type": "object",
            "title": "BatchItem",
            "required": ["text", "target_language"],
            "properties": {
                "text": self.text,
                "source_language": {"type": "string", "default": "auto"},
                "target_language": {"type": "string"},
                "model_type": {"type": "string", "enum": list(MODEL_TYPES), "default": "basic"},
            },
        }

    def libre_translate(self) -> dict[str, Any]:
        texts = {"type": "array", "items": self.text, "minItems": 1, "maxItems": self.batch}
        return {
            "type": "object",
            "title": "LibreTranslate",
            "required": ["q", "target"],
            "properties": {
                "q": {"oneOf": [self.text, texts]},
                "source": self.source,
                "target": self.target,
                "format": {"type": "string", "enum": ["text", "html"], "default": "text"},
                "api_key": KEY,
                "alternatives": {"type": "integer", "minimum": 0, "default": 0},
            },
        }

    def detect(self) -> dict[str, Any]:
        return {
            "type": "object",
            "required": ["q"],
            "properties": {"q": self.text, "api_key": KEY},
        }

    def translate_file(self) -> dict[str, Any]:
        file = {
            "type": "string",
            "minLength": 1,
            "maxLength": self.file_chars,
            "pattern": NOT_BLANK,
            "description": "The file (UTF-8 text): .txt, .html or .htm by its filename; a"
            " part without a filename is read as .txt",
        }
        return {
            "type": "object",
            "required": ["file", "source", "target"],
            "properties": {
                "file": file,
                "source": self.source,
                "target": self.target,
                "api_key": KEY,
            },
        }


def document(settings: ApiSettings, known: frozenset[str]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API served with `settings` over `known` languages."""
    _, defs = models_json_schema(
        [(model, "serialization") for model in _COMPONENTS],
        ref_template="#/components/schemas/{model}",
    )
    fields = _Fields(settings, known)
    form = "application/x-www-form-urlencoded"
    libre = fields.libre_translate()
    either = {"oneOf": [_ref("Translated049"), _ref("LibreTranslated")]}
    libre_languages = {"type": "array", "items": _ref("LibreLanguage")}
    meeshy_languages = {
        "type": "object",
        "required": ["supported_languages"],
        "properties": {
            "supported_languages": {"type": "object", "additionalProperties": {"type": "string"}}
        },
    }
    paths: dict[str, Any] = {
        "/translate": {
            "post": {
                "operationId": "translate",
                "summary": "Translate a text: 0.4.9's shape or LibreTranslate's",
                "description": (
                    "0.4.9's `{text, source_language, target_language, model_type}` (JSON), or"
                    " LibreTranslate's `{q, source, target, format, alternatives, api_key}` as"
                    " JSON, a form, or the query string (`POST /translate?q=...&target=...`"
                    " with no body; with a form the query string's fields come first, as in"
                    " LibreTranslate). `source: auto` detects the language: 0.4.9's shape"
                    " answers 400 when no language is recognised, LibreTranslate's translates"
                    " from `en` (detectedLanguage confidence 0), as LibreTranslate does. The"
                    " texts of one request count against API_CHAR_LIMIT together."
                ),
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"oneOf": [fields.translate_049(), libre]}},
                        form: {"schema": libre},
                    },
                },
                "responses": _responses(_json(either), (*_TRANSLATING, 422)),
            }
        },
        "/translate/batch": {
            "post": {
                "operationId": "translateBatch",
                "summary": "0.4.9's batch: up to API_MAX_BATCH bodies, answered item by item",
                "description": "A failed item is `{error, original_text}` in its place.",
                "requestBody": {
                    "required": True,
                    **_json(
                        {"type": "array", "items": fields.batch_item(), "maxItems": fields.batch}
                    ),
                },
                "responses": _responses(_json(_ref("BatchResults")), (*_SENDING, 422)),
            }
        },
        "/detect": {
            "post": {
                "operationId": "detect",
                "summary": "LibreTranslate's detection: the likeliest language, confidence 0-100",
                "description": "`q` from JSON, a form or the query string; no language"
                " recognised: `en` at confidence 0, as LibreTranslate answers.",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": fields.detect()},
                        form: {"schema": fields.detect()},
                    },
                },
                "responses": _responses(
                    _json({"type": "array", "items": _ref("DetectedLanguage")}),
                    (*_SENDING, 503),
                ),
            }
        },
        "/languages": {
            "get": {
                "operationId": "languages",
                "summary": "The configured models' languages",
                "description": "LibreTranslate's `[{code, name, targets}]`; `shape=meeshy`:"
                " 0.4.9's `{supported_languages: {code: name}}`.",
                "parameters": [
                    {
                        "name": "shape",
                        "in": "query",
                        "required": False,
                        "schema": {
                            "type": "string",
                            "enum": ["libretranslate", "meeshy"],
                            "default": "libretranslate",
                        },
                    }
                ],
                "responses": _responses(
                    _json({"oneOf": [libre_languages, meeshy_languages]}), (400,)
                ),
            }
        },
        "/models": {
            "get": {
                "operationId": "models",
                "summary": "0.4.9's `{available_models: {tier: {...}}}` of the configured models",
                "responses": _responses(
                    _json(
                        {
                            "type": "object",
                            "required": ["available_models"],
                            "properties": {
                                "available_models": {
                                    "type": "object",
                                    "additionalProperties": {"type": "object"},
                                }
                            },
                        }
                    ),
                    (),
                ),
            }
        },
        "/frontend/settings": {
            "get": {
                "operationId": "frontendSettings",
                "summary": "LibreTranslate's settings for its web page and clients",
                "responses": _responses(_json(_ref("FrontendSettings")), ()),
            }
        },
        "/translate_file": {
            "post": {
                "operationId": "translateFile",
                "summary": "LibreTranslate's file translation: .txt and .html",
                "description": "Answers the URL to download the translated file from, kept"
                " API_FILE_TTL seconds by the process that translated it.",
                "requestBody": {
                    "required": True,
                    "content": {"multipart/form-data": {"schema": fields.translate_file()}},
                },
                "responses": _responses(_json(_ref("TranslatedFile")), _TRANSLATING),
            }
        },
        "/download_file/{filename}": {
            "get": {
                "operationId": "downloadFile",
                "summary": "A file translated by /translate_file",
                "parameters": [
                    {
                        "name": "filename",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": _responses(
                    {
                        "content": {
                            "text/plain": {"schema": {"type": "string"}},
                            "text/html": {"schema": {"type": "string"}},
                        }
                    },
                    (404,),
                ),
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Meeshy translator",
            "version": __version__,
            "description": "The 0.4.9 translator's REST API and LibreTranslate's, over NATS"
            " JetStream (docs/API.md).",
        },
        "paths": paths,
        "components": {"schemas": {**defs["$defs"], **fields.languages}},
    }
