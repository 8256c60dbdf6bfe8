"""The published documents of the NATS contract, generated from the message models: a JSON
Schema per message (docs/schemas/<name>.json) and one page of every field a client sees
(docs/MESSAGES.md). `translator schemas` writes them; `translator schemas --check` (and a test)
fails when they are not current."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from translator.contracts.messages import (
    Alert,
    DeadLetter,
    DetectRequest,
    DetectResult,
    ScalingEvent,
    TranslationRequest,
    TranslationResult,
)

Mode = Literal["validation", "serialization"]


@dataclass(frozen=True)
class Published:
    name: str  # the file's name, docs/schemas/<name>.json
    model: type[BaseModel]
    mode: Mode  # what a client sends is validated; what it reads is serialized
    where: str  # the subjects it travels on


PUBLISHED: tuple[Published, ...] = (
    Published(
        "translation-request", TranslationRequest, "validation",
        "sent on `translate.request.normal` / `translate.request.any` (JetStream) or "
        "`translate.rpc` (request-reply)",
    ),
    Published(
        "translation-result", TranslationResult, "serialization",
        "on the request's Translate-Reply-To (`translate.result.<name>`, stored in "
        "TRANSLATE_RESULTS, or an `_INBOX.`), or the reply subject of `translate.rpc`",
    ),
    Published(
        "dead-letter", DeadLetter, "serialization", "`translate.dead.<pool>` (TRANSLATE_DLQ)"
    ),
    Published("detect-request", DetectRequest, "validation", "sent on `translate.detect`"),
    Published("detect-result", DetectResult, "serialization", "the reply on `translate.detect`"),
    Published(
        "scaling-event", ScalingEvent, "serialization",
        "`translate.event.scaling` (TRANSLATE_EVENTS)",
    ),
    Published("alert", Alert, "serialization", "`translate.event.alert` (TRANSLATE_EVENTS)"),
)  # fmt: skip


def schema(item: Published) -> dict[str, Any]:
    """The message's JSON Schema, with the names on the wire (camelCase)."""
    document = item.model.model_json_schema(by_alias=True, mode=item.mode)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://meeshy.me/translator/schemas/{item.name}.json",
        **document,
    }


def schema_files() -> dict[str, str]:
    """docs/schemas/<name>.json -> its text."""
    return {
        f"{item.name}.json": json.dumps(schema(item), indent=2, ensure_ascii=False) + "\n"
        for item in PUBLISHED
    }


def _type(prop: dict[str, Any]) -> str:
    """A property's type in a few words: `string`, `integer or null`, `"ok" or "error"`..."""
    if "anyOf" in prop:
        return " or ".join(_type(p) for p in prop["anyOf"])
    if "enum" in prop:
        return " / ".join(f"`{json.dumps(v)}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{json.dumps(prop['const'])}`"
    if "$ref" in prop:
        return str(prop["$ref"]).rsplit("/", 1)[-1]
    kind = prop.get("type", "any")
    if kind == "array":
        return f"array of {_type(prop.get('items', {}))}"
    if kind == "object" and "additionalProperties" in prop:
        return f"object of {_type(prop['additionalProperties'])}"
    return str(kind)


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _table(document: dict[str, Any], mode: Mode) -> list[str]:
    """A field a row. What a client sends: whether required, its default. What it reads: every
    field is always there."""
    required = set(document.get("required", ()))
    sent = mode == "validation"
    rows = (
        ["| field | type | required | default | meaning |", "|---|---|---|---|---|"]
        if sent
        else ["| field | type | meaning |", "|---|---|---|"]
    )
    for name, prop in document.get("properties", {}).items():
        meaning = _one_line(prop.get("description", ""))
        if not sent:
            rows.append(f"| `{name}` | {_type(prop)} | {meaning} |")
            continue
        default = "" if "default" not in prop else f"`{json.dumps(prop['default'])}`"
        needed = "yes" if name in required else ""
        rows.append(f"| `{name}` | {_type(prop)} | {needed} | {default} | {meaning} |")
    return rows


def markdown() -> str:
    """docs/MESSAGES.md: every message a NATS client sends or reads, field by field."""
    lines = [
        "# NATS messages, field by field",
        "",
        "Generated from the message models (`translator/contracts/messages.py`) by",
        "`translator schemas`; do not edit by hand (a test fails when this page or",
        "`docs/schemas/` is not current). Subjects, headers, error codes and who may do what:",
        "[NATS.md](NATS.md). Every message is one UTF-8 JSON object; unknown keys in a request",
        "are ignored; clients should ignore keys they do not know in what they read.",
    ]
    for item in PUBLISHED:
        document = schema(item)
        lines += [
            "",
            f"## {document.get('title', item.name)}: `{item.name}`",
            "",
            _one_line(document.get("description", "")) + f" Where: {item.where}.",
            f"JSON Schema: [schemas/{item.name}.json](schemas/{item.name}.json).",
            "",
            *_table(document, item.mode),
        ]
        for name, nested in document.get("$defs", {}).items():
            lines += ["", f"`{name}`: {_one_line(nested.get('description', ''))}", ""]
            lines += _table(nested, item.mode)
    return "\n".join(lines) + "\n"
