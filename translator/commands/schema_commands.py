"""`translator schemas`: write (or `--check`) the generated documents: the NATS contract's (a
JSON Schema per message under DIR/schemas/ and DIR/MESSAGES.md, from the message models) and
DIR/SETTINGS.md (every setting, from the settings classes)."""

from __future__ import annotations

from pathlib import Path

from translator.commands import generated, settings_doc
from translator.contracts import schemas


def documents(out: Path) -> dict[Path, str]:
    files = {out / "schemas" / name: text for name, text in schemas.schema_files().items()}
    return {
        **files,
        out / "MESSAGES.md": schemas.markdown(),
        out / "SETTINGS.md": settings_doc.markdown(),
    }


def run(out: Path, check: bool) -> int:
    return generated.write_or_check(documents(out), check, "translator schemas")
