"""`translator schemas`: write (or `--check`) the generated documents: the NATS contract's (a
JSON Schema per message under DIR/schemas/ and DIR/MESSAGES.md, from the message models) and
DIR/SETTINGS.md (every setting, from the settings classes)."""

from __future__ import annotations

from pathlib import Path

from translator.commands import settings_doc
from translator.contracts import schemas


def documents(out: Path) -> dict[Path, str]:
    files = {out / "schemas" / name: text for name, text in schemas.schema_files().items()}
    return {
        **files,
        out / "MESSAGES.md": schemas.markdown(),
        out / "SETTINGS.md": settings_doc.markdown(),
    }


def run(out: Path, check: bool) -> int:
    wanted = documents(out)
    stale = sorted(p for p, text in wanted.items() if not p.is_file() or p.read_text() != text)
    if check:
        for path in stale:
            print(f"not current: {path} (run `translator schemas`)")
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted[path])
        print(f"wrote {path}")
    return 0
