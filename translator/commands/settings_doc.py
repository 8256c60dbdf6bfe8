"""docs/SETTINGS.md: every setting of every service, generated from the settings classes (each
field's docstring is its documentation), by `translator schemas` with the NATS contract's
documents."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

from scaler.settings import ScalerSettings
from translator.api.settings import ApiSettings
from translator.contracts.settings import NatsSettings, TranslatorSettings
from zmq_compat.settings import ShimSettings

# each section lists the fields its class adds to the one before it
SECTIONS: tuple[tuple[str, type[BaseSettings], str], ...] = (
    ("Every service", NatsSettings, "NATS, logging, metrics and every HTTP server."),
    (
        "Workers, models and the topology",
        TranslatorSettings,
        "The workers (`translator worker`), the `translator` command, and the streams, buckets"
        " and consumers `translator setup` makes: every service reads these.",
    ),
    (
        "The HTTP API",
        ApiSettings,
        "Served by the shim's process (`zmq-compat`) on `ZMQ_HEALTH_PORT`.",
    ),
    ("The ZeroMQ shim", ShimSettings, "`zmq-compat`: the gateway's ZeroMQ protocol."),
    (
        "The scaler",
        ScalerSettings,
        "`scaler`: the pools' rules (0.4.9's as defaults), the host's cap.",
    ),
)


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        made = field.default_factory()  # type: ignore[call-arg]
        return "`{}`" if made == {} else "computed"
    value: Any = field.default
    if value is None:
        return "unset"
    if isinstance(value, Enum):
        value = value.value
    if isinstance(value, Path):
        return f"`{value}`"
    if isinstance(value, tuple):
        value = [str(v) for v in value]
    return f"`{json.dumps(value) if not isinstance(value, str) else value}`"


def _one_line(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def markdown() -> str:
    lines = [
        "# Settings",
        "",
        "Every setting of every service, read from the environment (the variable is the name in",
        "capitals; lists and maps are JSON). Generated from the settings classes by",
        "`translator schemas`; do not edit by hand (a test fails when this page is not current).",
        "The README's table groups the ones most deployments touch.",
    ]
    seen: set[str] = set()
    for title, settings, intro in SECTIONS:
        lines += [
            "",
            f"## {title}",
            "",
            intro,
            "",
            "| setting | default | meaning |",
            "|---|---|---|",
        ]
        for name, field in settings.model_fields.items():
            if name in seen:
                continue
            seen.add(name)
            meaning = _one_line(field.description or "")
            lines.append(f"| `{name.upper()}` | {_default(field)} | {meaning} |")
    return "\n".join(lines) + "\n"
