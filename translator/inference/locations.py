"""Where a model is, and the name results give it; no torch, so that the HTTP API can say what
the configured models are without loading one."""

from __future__ import annotations

from pathlib import Path

from translator.inference import firefox


def model_name(model_id: str) -> str:
    """The name results carry (`modelName`): a hub id as it is, a local directory by its
    last part (`/models/t5-small` -> `t5-small`), never a path of this machine."""
    if firefox.is_bundled(model_id):
        return firefox.name_of(model_id)
    path = Path(model_id).expanduser()
    return path.name if path.is_dir() else model_id


def local_path(model_id: str, models_path: Path) -> Path | None:
    """A directory holding the model: the id itself, or MODELS_PATH/<id>."""
    for candidate in (Path(model_id).expanduser(), models_path / model_id):
        if (candidate / "config.json").is_file():
            return candidate
    return None


def is_present(model_id: str, models_path: Path) -> bool:
    return (
        local_path(model_id, models_path) is not None
        or firefox.directory(model_id, models_path) is not None
    )
