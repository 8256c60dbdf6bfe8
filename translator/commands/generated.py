"""Files generated from code (`translator schemas`, `translator nats-config`): written where
they are stale, or, with `--check`, each stale one named and the exit code 1."""

from __future__ import annotations

from pathlib import Path


def write_or_check(wanted: dict[Path, str], check: bool, command: str) -> int:
    stale = sorted(p for p, text in wanted.items() if not p.is_file() or p.read_text() != text)
    if check:
        for path in stale:
            print(f"not current: {path} (run `{command}`)")
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted[path])
        print(f"wrote {path}")
    return 0
