"""Contracts: request validation, settings from the environment, subject names."""

from __future__ import annotations

import json

import pytest

from translator.contracts.addressee import Addressee, read_addressee
from translator.contracts.errors import InvalidRequest
from translator.contracts.messages import TranslationResult, decode_request, is_identifier
from translator.contracts.settings import TranslatorSettings
from translator.contracts.subjects import (
    Pool,
    reply_refusal,
    request_stream,
    request_subject,
    result_msg_id,
)

GATEWAY_REQUEST = (
    b'{"taskId":"0b9d6c1e-3f5a-4a8e-9f6f-1c2d3e4f5a6b","messageId":"cmeiu2x0f0003l1v8abcd1234",'
    b'"text":"Bonjour \xc3\xa0 tous","sourceLanguage":"fr","targetLanguages":["en","es"],'
    b'"conversationId":"cmeiu1q9z0001l1v8wxyz9876","modelType":"medium","timestamp":1755631701000,'
    b'"somethingNew":true}'
)


def test_request_decodes_the_gateway_example_and_ignores_unknown_keys() -> None:
    req = decode_request(GATEWAY_REQUEST)
    assert req.task_id == "0b9d6c1e-3f5a-4a8e-9f6f-1c2d3e4f5a6b"
    assert req.text == "Bonjour à tous"
    assert req.target_languages == ("en", "es")
    assert req.model_type == "medium"
    assert req.pool is Pool.NORMAL


def test_request_defaults_and_normalisation() -> None:
    req = decode_request(b'{"messageId":"m","text":"x","targetLanguages":["EN","en","pt-BR"]}')
    assert (req.source_language, req.model_type) == ("fr", "basic")
    assert req.target_languages == ("EN", "pt-BR")  # one per code whatever its case, as written
    assert len(req.task_id) == 36  # a UUID when the request carries none
    assert (
        decode_request(b'{"messageId":"m","text":"x","targetLanguages":["en"]}', "seq-9").task_id
        == "seq-9"
    )


def test_request_routes_the_any_conversation_to_the_any_pool() -> None:
    req = decode_request(
        b'{"messageId":"m","text":"x","targetLanguages":["en"],"conversationId":"any"}'
    )
    assert req.pool is Pool.ANY
    assert request_stream(req.pool) == "TRANSLATE_ANY"
    assert request_subject(req.pool) == "translate.request.any"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"text":"x","targetLanguages":["en"]}', "messageId"),
        (b'{"messageId":"m","text":"   ","targetLanguages":["en"]}', "text is blank"),
        (b'{"messageId":"m","text":"x","targetLanguages":[""]}', "not a language code"),
        (b'{"messageId":"m","text":"x","targetLanguages":["en\\u0000"]}', "not a language code"),
        (b'{"messageId":"m","text":"x","targetLanguages":"en"}', "targetLanguages"),
        (b'{"messageId":"m","text":"x","targetLanguages":["en"],"modelType":"x"}', "modelType"),
    ],
)
def test_request_rejects_bad_input_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason):
        decode_request(payload)


def test_an_invalid_request_that_names_its_targets_is_addressed_per_target() -> None:
    to = read_addressee(
        b'{"messageId":"m-1","text":"","targetLanguages":["French"," fr",7,"FR"],'
        b'"conversationId":"c","sourceLanguage":"en","modelType":"ultra"}',
        "fallback",
    )
    assert to == Addressee("fallback", "m-1", "c", "en", ("French", "fr"), "")  # as written
    no_id = read_addressee(b'{"taskId":"t","targetLanguages":["de"]}', "fallback")
    assert no_id == Addressee("t", "", "", "", ("de",), "basic")


@pytest.mark.parametrize(
    "payload",
    [b"garbage", b"[1]", b'{"messageId":"m"}', b'{"targetLanguages":"fr"}',
     b'{"targetLanguages":[1, null, ""]}', b'{"targetLanguages":["\\u0000x"]}'],
)  # fmt: skip
def test_a_request_without_readable_targets_has_no_addressee(payload: bytes) -> None:
    assert read_addressee(payload, "fallback") is None


@pytest.mark.parametrize(
    ("subject", "via_gateway", "allowed"),
    [
        ("translate.result.default", False, True),
        ("translate.result.my-app_1", False, True),
        ("_INBOX.abc.def", False, True),
        ("translate.gateway.result.zmq_compat", True, True),
        ("translate.gateway.result.zmq_compat", False, False),  # reserved for the shim
        ("translate.event.alert", False, False),
        ("translate.event.alert", True, False),
        ("translate.dead.normal", False, False),
        ("translate.request.normal", False, False),
        ("translate.result.>", False, False),
        ("translate.result.*", False, False),
        ("translate.result.a.b", False, False),
        ("_INBOX.>", False, False),
        ("_INBOX.", False, False),
        ("_INBOX.a b", False, False),
        ("_INBOX.a..b", False, False),  # an empty token
        ("$JS.API.STREAM.DELETE.TRANSLATE_NORMAL", False, False),
        ("_INBOX." + "x" * 300, False, False),
    ],
)
def test_results_go_only_to_a_subject_the_requester_may_use(
    subject: str, via_gateway: bool, allowed: bool
) -> None:
    assert (reply_refusal(subject, via_gateway) is None) is allowed


def test_result_serialises_with_the_camel_case_names_of_the_contract() -> None:
    result = TranslationResult(
        task_id="t", message_id="m", status="ok", source_language="fr", target_language="en"
    )
    wire = result.model_dump(by_alias=True)
    assert wire["taskId"] == "t"
    assert wire["targetLanguage"] == "en"
    assert wire["version"] == "1.0.0"
    assert result_msg_id("t", "en") == "t:en"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "NATS_URL": "nats://example:4222",
        "NORMAL_WORKERS": "4",
        "ANY_WORKERS": "2",
        "MAX_NORMAL_WORKERS": "12",
        "TRANSLATION_WORKERS": "10",
        "QUANTIZATION_LEVEL": "int8",
        "BASIC_MODEL": "/models/t5",
        "MODELS_PATH": "/srv/models",
        "NORMAL_POOL_SIZE": "500",
        "MAX_TEXT_LENGTH": "1000",
        "ENABLE_DYNAMIC_SCALING": "false",
        "SCALING_CHECK_INTERVAL": "5",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = TranslatorSettings()
    assert settings.nats_url == "nats://example:4222"
    assert (settings.normal_workers, settings.any_workers) == (4, 2)
    assert settings.quantization_level == "int8"
    assert settings.model_id("basic") == "/models/t5"
    assert str(settings.models_path) == "/srv/models"
    assert settings.pool_size(Pool.NORMAL) == 500
    assert settings.max_text_length == 1000


def test_settings_reject_an_unknown_quantization_level(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QUANTIZATION_LEVEL", "int3")
    with pytest.raises(ValueError, match="quantization_level"):
        TranslatorSettings()


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"[" * 50_000 + b"]" * 50_000, "not JSON"),  # nested too deep for the parser
        (b'{"messageId": "m", "timestamp": ' + b"9" * 5_000 + b"}", "not JSON"),  # 5,000 digits
        (
            b'{"messageId": "m", "taskId": "' + b"t" * 257 + b'", "text": "x", '
            b'"targetLanguages": ["fr"]}',
            "taskId",
        ),
        (b'{"messageId": "a\\r\\nX: y", "text": "x", "targetLanguages": ["fr"]}', "messageId"),
        (b'{"messageId": "m", "text": "\\ud800", "targetLanguages": ["fr"]}', "lone surrogate"),
        (
            json.dumps({"messageId": "m", "text": "x", "targetLanguages": ["fr"] * 65}).encode(),
            "targetLanguages",
        ),
    ],
)
def test_request_bounds_refuse_crafted_frames_with_a_reason(frame: bytes, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=reason):
        decode_request(frame)


def test_request_ids_that_travel_are_bounded_and_printable() -> None:
    assert is_identifier("0b9d6c1e-3f5a-4a8e-9f6f-1c2d3e4f5a6b")
    assert is_identifier("émoji 😂 ok")
    assert not is_identifier("x" * 257)
    assert not is_identifier("a\nb")
    assert not is_identifier("")
    assert not is_identifier(None)
    long_id = read_addressee(
        b'{"messageId": "' + b"m" * 300 + b'", "targetLanguages": ["fr"]}', "t"
    )
    assert long_id is not None
    assert long_id.message_id == ""
