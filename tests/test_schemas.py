"""The NATS contract's generated documents (docs/MESSAGES.md, docs/schemas/) are current, every
field a client sees is described, and real messages validate against their schemas."""

from __future__ import annotations

import json

import jsonschema
import pytest

from tests.support import ROOT
from translator.commands import schema_commands
from translator.contracts import schemas
from translator.contracts.messages import DeadLetter, TranslationRequest, TranslationResult, encode


def test_the_published_documents_are_current() -> None:
    for path, text in schema_commands.documents(ROOT / "docs").items():
        assert path.is_file(), f"{path} missing: run `translator schemas`"
        assert path.read_text() == text, f"{path} is not current: run `translator schemas`"
    listed = {p.name for p in (ROOT / "docs" / "schemas").iterdir()}
    assert listed == {f"{item.name}.json" for item in schemas.PUBLISHED}


@pytest.mark.parametrize("item", schemas.PUBLISHED, ids=lambda item: item.name)
def test_every_field_a_client_sees_is_described(item: schemas.Published) -> None:
    document = schemas.schema(item)
    assert document.get("description"), item.name
    for nested in [document, *document.get("$defs", {}).values()]:
        for name, prop in nested["properties"].items():
            assert prop.get("description"), f"{item.name}: {name} has no description"
            assert name in schemas.markdown()


def _validator(name: str) -> jsonschema.Draft202012Validator:
    document = json.loads((ROOT / "docs" / "schemas" / f"{name}.json").read_text())
    return jsonschema.Draft202012Validator(document)


def test_what_is_sent_validates_and_what_is_wrong_does_not() -> None:
    result = TranslationResult(
        task_id="t", message_id="m", status="error", error="x", error_code="pool_full",
        source_language="en", target_language="fr", expected_results=1,
    )  # fmt: skip
    _validator("translation-result").validate(json.loads(encode(result)))
    letter = DeadLetter(pool="normal", reason="r", deliveries=1, request="{}")
    _validator("dead-letter").validate(json.loads(encode(letter)))
    request = TranslationRequest(message_id="m", text="hi", target_languages=("fr",))
    _validator("translation-request").validate(json.loads(encode(request)))
    bad = json.loads(encode(result))
    del bad["expectedResults"]  # every field of what a client reads is always there
    assert not _validator("translation-result").is_valid(bad)
    assert not _validator("translation-request").is_valid({"text": "hi"})
