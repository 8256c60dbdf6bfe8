"""Every setting a service reads from its environment is documented: its name appears in the
README's settings table or in docs/ (a setting nobody can find is one nobody can set)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings

from scaler.settings import ScalerSettings
from translator.api.settings import ApiSettings
from zmq_compat.settings import ShimSettings

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_named_in_the_readme_or_the_docs() -> None:
    documents = (ROOT / "README.md").read_text() + "".join(
        path.read_text() for path in sorted((ROOT / "docs").glob("*.md"))
    )
    services: list[type[BaseSettings]] = [ScalerSettings, ApiSettings, ShimSettings]
    names = {name.upper() for service in services for name in service.model_fields}
    assert len(names) > 60
    assert sorted(name for name in names if f"`{name}`" not in documents) == []


def test_every_setting_has_a_docstring_and_a_row_in_the_generated_page() -> None:
    """docs/SETTINGS.md is generated from the fields' docstrings (its currency is checked in
    tests/test_schemas.py): a field without one would be a row without a meaning."""
    services: list[type[BaseSettings]] = [ScalerSettings, ApiSettings, ShimSettings]
    page = (ROOT / "docs" / "SETTINGS.md").read_text()
    for service in services:
        for name, field in service.model_fields.items():
            assert field.description, f"{name.upper()} has no docstring"
            assert f"| `{name.upper()}` |" in page
