"""The HTTP API through real HTTP: a real nats-server, a real worker process (a tiny t5 model
with RANDOM WEIGHTS, so texts are meaningless: these tests check shapes, codes and what passes
through), and the shim's process serving the API, driven with httpx, raw sockets and PyPI's
`libretranslatepy` client."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from deep_translator import LibreTranslator
from deep_translator.exceptions import AuthorizationException
from libretranslatepy import LibreTranslateAPI

from tests.http_service import Api, is_ready, models_env, start_api, translates
from tests.support import (
    Models,
    start_worker,
    stop_process,
    worker_env,
)
from translator.api import codes
from translator.api.errors import ApiError
from translator.api.files import Documents
from translator.api.keys import Gate, Refused
from translator.api.operations import failure
from translator.api.shapes import NOT_BLANK
from translator.bus.embedded import EmbeddedNats
from translator.contracts.errors import ErrorCode
from translator.contracts.messages import TranslationResult
from translator.contracts.subjects import Pool
from translator.inference.catalog import describe
from translator.inference.languages import T5_PAIRS

HELLO = "Hello everyone, how are you today?"
GEORGIAN = "ქართული ენა"  # a script no language of DETECT_LANGUAGES writes: nothing recognised
FRENCH = "Bonjour à tous, comment allez-vous aujourd'hui ?"


@dataclass
class Service:
    api: Api
    strict: Api  # keys, rate limits, small limits


@pytest.fixture(scope="module")
def service(models: Models, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("http_api")
    with EmbeddedNats(root / "nats") as nats:
        env = worker_env(
            nats.url, models, PAIR_MODELS=json.dumps({"en-ro": str(root / "no-such-model")})
        )
        worker = start_worker(env, Pool.NORMAL, root / "worker.log")
        started: list[Api] = []
        try:
            started.append(start_api(nats.url, root / "api.log", translates, **models_env(models)))
            strict = start_api(
                nats.url,
                root / "strict.log",
                is_ready,
                **models_env(models),
                ZMQ_SHIM_NAME="strict",
                API_KEYS=json.dumps({"good": 3, "free": 0}),
                API_CHAR_LIMIT=300,
                HTTP_MAX_BODY_BYTES=4096,
                HTTP_HEADER_TIMEOUT=2,
                HTTP_BODY_TIMEOUT=2,
            )
            started.append(strict)
            yield Service(*started)
        finally:
            for api in started:
                stop_process(api.process)
            stop_process(worker)


# -- 0.4.9 --------------------------------------------------------------------------------------


def test_0_4_9_translate_has_its_shape(service: Service) -> None:
    with service.api.client() as client:
        reply = client.post(
            "/translate", json={"text": HELLO, "source_language": "en", "target_language": "fr"}
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert list(body) == [
            "original_text", "translated_text", "source_language", "target_language",
            "model_used", "confidence_score", "processing_time_ms", "from_cache",
        ]  # fmt: skip
        assert body["original_text"] == HELLO
        assert body["translated_text"]
        assert body["translated_text"] != HELLO
        assert (body["source_language"], body["target_language"]) == ("en", "fr")
        assert body["model_used"] == "t5"  # the tiny model's directory name
        assert isinstance(body["processing_time_ms"], int)
        assert body["processing_time_ms"] > 0
        assert isinstance(body["from_cache"], bool)

        auto = client.post("/translate", json={"text": HELLO, "target_language": "de"})
        assert auto.status_code == 200, auto.text
        assert auto.json()["source_language"] == "en"  # detected by the worker


def test_0_4_9_batch_answers_each_item_and_refuses_more_than_ten(service: Service) -> None:
    items = [
        {"text": HELLO, "source_language": "en", "target_language": "de"},
        {"text": "Good night", "source_language": "en", "target_language": "fr"},
        {"text": "Good night", "source_language": "en", "target_language": "bas"},
    ]
    with service.api.client() as client:
        reply = client.post("/translate/batch", json=items)
        assert reply.status_code == 200, reply.text
        results = reply.json()["results"]
        assert [r.get("target_language") for r in results[:2]] == ["de", "fr"]
        assert all(r["translated_text"] for r in results[:2])
        assert set(results[2]) == {"error", "original_text"}
        assert "unsupported language 'bas' (Basaa)" in results[2]["error"]
        assert results[2]["original_text"] == "Good night"

        too_many = client.post("/translate/batch", json=[items[0]] * 11)
        assert too_many.status_code == 400
        assert too_many.json()["detail"] == "Maximum 10 requests per batch"

        invalid = client.post("/translate/batch", json=[{"text": "x"}])  # no target_language
        assert invalid.status_code == 422
        assert "target_language" in invalid.json()["error"]


def test_0_4_9_languages_and_models_come_from_the_configured_models(service: Service) -> None:
    with service.api.client() as client:
        languages = client.get("/languages", params={"shape": "meeshy"}).json()
        supported = languages["supported_languages"]
        assert supported["fr"] == "français"
        assert supported["en"] == "English"
        assert "sw" in supported  # NLLB's, through the tier fallback
        models = client.get("/models").json()["available_models"]
        assert models["basic"]["family"] == "t5"
        assert models["basic"]["languages"] == ["de", "en", "fr", "ro"]
        assert models["medium"]["family"] == "nllb"
        assert "sw" in models["medium"]["languages"]
        assert models["premium"]["family"] == "marian"
        assert models["premium"]["languages"] == ["de", "en"]


# -- LibreTranslate -----------------------------------------------------------------------------


def test_libretranslate_json_form_lists_auto_and_html(service: Service) -> None:
    with service.api.client() as client:
        one = client.post("/translate", json={"q": HELLO, "source": "en", "target": "de"})
        assert one.status_code == 200, one.text
        assert set(one.json()) == {"translatedText"}
        assert isinstance(one.json()["translatedText"], str)
        assert one.json()["translatedText"]

        form = client.post("/translate", data={"q": HELLO, "source": "en", "target": "fr"})
        assert form.status_code == 200, form.text
        assert isinstance(form.json()["translatedText"], str)

        listed = client.post(
            "/translate", json={"q": [HELLO, "Good night"], "source": "en", "target": "de"}
        )
        assert listed.status_code == 200, listed.text
        assert len(listed.json()["translatedText"]) == 2

        auto = client.post("/translate", json={"q": FRENCH, "source": "auto", "target": "en"})
        # the tiny models translate fr->en only through NLLB (the fallback); random weights
        assert auto.status_code == 200, auto.text
        detected = auto.json()["detectedLanguage"]
        assert detected["language"] == "fr"
        assert 0 < detected["confidence"] <= 100

        html = "<p>Hello <b>everyone</b>, <code>x = 1</code></p><!-- note -->"
        marked = client.post(
            "/translate", json={"q": html, "source": "en", "target": "de", "format": "html"}
        )
        assert marked.status_code == 200, marked.text
        text = marked.json()["translatedText"]
        assert text.startswith("<p>")
        assert text.endswith("</p><!-- note -->")
        assert "<b>" in text
        assert "</b>" in text
        assert "<code>x = 1</code>" in text
        assert "Hello" not in text  # the text nodes went through the model


def test_libretranslate_detect_and_languages(service: Service) -> None:
    with service.api.client() as client:
        found = client.post("/detect", data={"q": FRENCH})
        assert found.status_code == 200, found.text
        (best,) = found.json()
        assert best["language"] == "fr"
        assert best["confidence"] > 50
        languages = client.get("/languages").json()
        by_code = {entry["code"]: entry for entry in languages}
        assert by_code["en"]["name"] == "English"
        assert {"de", "fr", "ro", "sw"} <= set(by_code["en"]["targets"])
        assert "en" not in by_code["en"]["targets"]


def test_the_libretranslatepy_client_works_unchanged(service: Service) -> None:
    client = LibreTranslateAPI(service.api.url)
    translated = client.translate(HELLO, "en", "fr")
    assert isinstance(translated, str)
    assert translated
    assert any(entry["code"] == "en" for entry in client.languages())
    assert client.detect(FRENCH)[0]["language"] == "fr"

    keyed = LibreTranslateAPI(service.strict.url, api_key="free")
    assert isinstance(keyed.translate("Good night", "en", "de"), str)
    with pytest.raises(Exception, match="403"):
        LibreTranslateAPI(service.strict.url, api_key="wrong").translate("Hi", "en", "de")


def test_deep_translator_sends_query_parameters_and_is_served(service: Service) -> None:
    """deep-translator posts `?q=...&source=...&target=...&api_key=...` with no body."""
    open_api = LibreTranslator(
        source="en", target="fr", custom_url=f"{service.api.url}/", api_key="ignored"
    )
    translated = open_api.translate(HELLO)
    assert isinstance(translated, str)
    assert translated
    assert translated != HELLO
    assert len(open_api.translate_batch([HELLO, "Good night"])) == 2
    keyed = LibreTranslator(
        source="en", target="de", custom_url=f"{service.strict.url}/", api_key="free"
    )
    assert isinstance(keyed.translate("Good night"), str)
    wrong = LibreTranslator(
        source="en", target="de", custom_url=f"{service.strict.url}/", api_key="wrong"
    )
    with pytest.raises(AuthorizationException):
        wrong.translate("Good night")


def test_fields_come_from_json_a_form_or_the_query_string(service: Service) -> None:
    with service.api.client() as client:
        query = client.post("/translate", params={"q": HELLO, "source": "en", "target": "de"})
        assert query.status_code == 200, query.text
        assert isinstance(query.json()["translatedText"], str)
        # a form and the query string together: the query string's fields come first
        both = client.post(
            "/translate", params={"target": "bas"}, data={"q": HELLO, "target": "de"}
        )
        assert both.status_code == 400
        assert "unsupported language 'bas'" in both.json()["error"]
        detect = client.post("/detect", params={"q": FRENCH})
        assert detect.status_code == 200
        assert detect.json()[0]["language"] == "fr"
        typed = client.post("/translate", json={"q": "Hi", "target": "de", "alternatives": "2"})
        assert typed.status_code == 400  # JSON is typed: "2" is not an integer
        texty = client.post("/translate", data={"q": "Hi", "target": "de", "alternatives": "2"})
        assert texty.status_code == 200  # a form's values are text
        other = client.post("/translate", content=b"q=Hi", headers={"content-type": "text/csv"})
        assert other.status_code == 415


def test_libretranslate_spellings_of_languages(service: Service) -> None:
    with service.api.client() as client:
        spellings = ("pt-BR", "pt_br", "pb", "PT", "por", "zh-Hans", "zh", "zh-Hant", "zt", "zh-TW")
        for spelled in spellings:
            reply = client.post("/translate", json={"q": HELLO, "source": "en", "target": spelled})
            assert reply.status_code == 200, (spelled, reply.text)
        # NLLB (the medium tier here) writes Serbian in Cyrillic only
        latin = client.post("/translate", json={"q": HELLO, "source": "en", "target": "sr-Latn"})
        assert latin.status_code == 400
        assert latin.json()["error"] == (
            "Invalid request: unsupported language 'sr-Latn' (Serbian (Latin)) (target): no"
            " configured model writes it"
        )


def test_a_list_of_texts_gets_a_detection_and_alternatives_each(service: Service) -> None:
    with service.api.client() as client:
        reply = client.post(
            "/translate",
            json={"q": [FRENCH, HELLO], "source": "auto", "target": "de", "alternatives": 2},
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert len(body["translatedText"]) == 2
        assert [d["language"] for d in body["detectedLanguage"]] == ["fr", "en"]
        assert body["alternatives"] == [[], []]  # one translation each, none other to offer
        one = client.post(
            "/translate", json={"q": HELLO, "source": "en", "target": "de", "alternatives": 1}
        )
        assert one.json()["alternatives"] == []


def test_nothing_recognised_is_en_for_libretranslate_and_400_for_0_4_9(service: Service) -> None:
    with service.api.client() as client:
        detected = client.post("/detect", json={"q": GEORGIAN})
        assert detected.json() == [{"confidence": 0.0, "language": "en"}]  # LibreTranslate's
        libre = client.post("/translate", json={"q": GEORGIAN, "source": "auto", "target": "de"})
        assert libre.status_code == 200, libre.text
        assert libre.json()["detectedLanguage"] == {"confidence": 0.0, "language": "en"}
        old = client.post("/translate", json={"text": GEORGIAN, "target_language": "de"})
        assert old.status_code == 400
        assert "no language recognised" in old.json()["error"]


def test_frontend_settings_and_cors(service: Service) -> None:
    with service.api.client() as client:
        settings = client.get("/frontend/settings").json()
        assert settings["charLimit"] == 5000
        assert (settings["apiKeys"], settings["keyRequired"]) == (False, False)
        assert settings["filesTranslation"] is True
        assert settings["supportedFilesFormat"] == [".txt", ".html"]
        assert settings["language"]["source"] == {"code": "auto", "name": "Auto Detect"}
        assert settings["language"]["target"] == {"code": "en", "name": "English"}
        origin = {"Origin": "https://chat.example"}
        preflight = client.options(
            "/translate", headers={**origin, "Access-Control-Request-Method": "POST"}
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "*"
        simple = client.post("/detect", json={"q": FRENCH}, headers=origin)
        assert simple.headers["access-control-allow-origin"] == "*"
    with service.strict.client() as client:
        strict = client.get("/frontend/settings").json()
        assert (strict["apiKeys"], strict["keyRequired"], strict["charLimit"]) == (True, True, 5000)


def test_files_are_translated_kept_and_downloaded(service: Service) -> None:
    text = "Hello everyone.\n\nGood night, see you tomorrow.\n"
    with service.api.client() as client:
        sent = client.post(
            "/translate_file",
            data={"source": "en", "target": "de"},
            files={"file": ("notes.txt", text.encode(), "text/plain")},
        )
        assert sent.status_code == 200, sent.text
        url = sent.json()["translatedFileUrl"]
        assert url.startswith(f"{service.api.url}/download_file/")
        assert url.endswith(".notes.txt")
        got = client.get(url)
        assert got.status_code == 200
        assert got.headers["content-type"].startswith("text/plain")
        assert 'filename="notes.txt"' in got.headers["content-disposition"]
        lines = got.text.split("\n")
        assert len(lines) == len(text.split("\n"))  # the layout kept
        assert lines[1] == ""
        assert all(lines[i] for i in (0, 2))
        assert got.text != text

        page = "<html><body><p>Hello <b>everyone</b></p><pre>x = 1</pre></body></html>"
        html = client.post(
            "/translate_file",
            data={"source": "auto", "target": "fr"},
            files={"file": ("page.html", page.encode(), "text/html")},
        )
        assert html.status_code == 200, html.text
        done = client.get(html.json()["translatedFileUrl"])
        assert done.headers["content-type"].startswith("text/html")
        assert done.text.startswith("<html><body><p>")
        assert "<pre>x = 1</pre>" in done.text
        assert "Hello" not in done.text

        docx = client.post(
            "/translate_file",
            data={"source": "en", "target": "de"},
            files={"file": ("report.docx", b"PK\x03\x04", "application/octet-stream")},
        )
        assert docx.status_code == 400
        assert "file format not supported (.docx" in docx.json()["error"]
        missing = client.get("/download_file/0123.nothing.txt")
        assert missing.status_code == 404
        assert set(missing.json()) == {"error", "detail"}


# -- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"source": "en", "target": "de", "q": ""}, 400, "missing q"),
        ({"q": "Hi", "source": "en"}, 400, "target"),
        ({"q": "Hi", "source": "en", "target": "english"}, 400, "is not a language code"),
        ({"q": "Hi", "source": "en", "target": "zz"}, 400, "is not a language code"),
        ({"q": "Hi", "source": "en", "target": "bas"}, 400, "unsupported language 'bas'"),
        ({"q": "Hi", "source": "en", "target": "de", "format": "pdf"}, 400, "format"),
        ({"q": "x" * 5001, "source": "en", "target": "de"}, 400, "text too long"),
        ({"q": "Hi", "source": "en", "target": "ro"}, 503, "is not available"),
        ({"text": "Hi", "target_language": "de", "model_type": "huge"}, 422, "model_type"),
    ],
)
def test_errors_have_libretranslate_codes_and_one_shape(
    service: Service, body: dict[str, object], status: int, words: str
) -> None:
    with service.api.client() as client:
        reply = client.post("/translate", json=body)
        assert reply.status_code == status, reply.text
        assert words in reply.json()["error"]
        assert "detail" in reply.json()


def test_requests_that_are_not_requests(service: Service) -> None:
    with service.api.client() as client:
        broken = client.post(
            "/translate", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert broken.status_code == 400
        assert "neither JSON" in broken.json()["error"]
        assert client.get("/translate").status_code == 405
        assert client.get("/nowhere").status_code == 404
        assert client.post("/detect", json={}).status_code == 400
    with _connect(service.api.url) as garbage:  # not HTTP at all: uvicorn's 400, then closed
        garbage.sendall(b"HELLO THERE\r\n\r\n")
        assert garbage.recv(65536).startswith(b"HTTP/1.1 400")
    with service.api.client() as client:  # and the server carries on
        assert client.get("/health").status_code == 200


def test_limits_keys_and_rate_limits(service: Service) -> None:
    with service.strict.client() as client:
        assert client.post("/detect", data={"q": FRENCH}).status_code == 403
        wrong = client.post("/detect", data={"q": FRENCH, "api_key": "nope"})
        assert wrong.status_code == 403
        assert wrong.json()["error"] == "Invalid API key"
        assert client.get("/languages").status_code == 200  # no key needed to list
        codes = [
            client.post("/detect", data={"q": FRENCH, "api_key": "good"}).status_code
            for _ in range(4)
        ]
        assert codes[:3] == [200, 200, 200]  # 3 a minute; the bucket refills 1 per 20 s
        assert codes[3] == 429
        limited = client.post(
            "/detect", json={"q": FRENCH}, headers={"Authorization": "Bearer good"}
        )
        assert limited.status_code == 429
        assert limited.json()["error"].startswith("Slowdown:")
        assert int(limited.headers["retry-after"]) >= 1
        free = [
            client.post("/detect", data={"q": FRENCH, "api_key": "free"}).status_code
            for _ in range(5)
        ]
        assert free == [200] * 5  # 0: no limit

        long = client.post("/detect", data={"q": "word " * 80, "api_key": "free"})
        assert long.status_code == 400
        assert "exceeds text limit (300)" in long.json()["error"]
        big = client.post("/translate", content=b"q=" + b"a" * 5000, params={"api_key": "free"})
        assert big.status_code == 413
        assert "4096" in big.json()["error"]


def test_health_and_metrics_are_unchanged_beside_the_api(service: Service) -> None:
    with service.api.client() as client:
        live = client.get("/live")
        assert (live.status_code, live.text) == (200, '{"status": "alive"}')
        health = client.get("/health")
        assert health.status_code == 200
        assert health.json() == {"status": "ready", "nats": True, "zmq": True}
        assert client.head("/health").status_code == 200
        assert client.get("/ready").json() == health.json()
        metrics = client.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert 'zmq_compat_requests_total{outcome="accepted"}' in metrics.text
        served = re.search(
            r'translator_http_requests_total\{code="200",endpoint="translate"\} (\d+)',
            metrics.text,
        )
        assert served
        assert int(served.group(1)) >= 1
        assert client.get("/docs").status_code == 200
        spec = client.get("/openapi.json").json()
        assert {"/translate", "/translate/batch", "/detect", "/languages", "/models"} <= set(
            spec["paths"]
        )


# -- slow and malformed clients -----------------------------------------------------------------


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=120)


def response_head(sock: socket.socket) -> bytes:
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(65536)
        assert chunk, f"closed without a complete answer: {head!r}"
        head += chunk
    return head


def test_a_client_sending_byte_by_byte_does_not_block_others(service: Service) -> None:
    body = json.dumps({"q": "Good night", "source": "en", "target": "de"}).encode()
    request = (
        b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    others_done = threading.Event()
    sent = threading.Event()
    slow = _connect(service.api.url)

    def trickle() -> None:  # one byte at a time, the last ones only once the others are served
        for index, byte in enumerate(request):
            if index == len(request) - 5:
                others_done.wait(300)
            slow.sendall(bytes([byte]))
            time.sleep(0.01)
        sent.set()

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        with service.api.client() as client:
            for _ in range(3):
                assert client.get("/health").status_code == 200
            reply = client.post("/translate", json={"q": HELLO, "source": "en", "target": "de"})
            assert reply.status_code == 200
            assert not sent.is_set()  # served while the slow request was still coming in
        others_done.set()
        sender.join(300)
        assert response_head(slow).startswith(b"HTTP/1.1 200")
    finally:
        others_done.set()
        slow.close()


def test_stalled_headers_are_cut_and_a_stalled_body_gets_408(service: Service) -> None:
    with _connect(service.strict.url) as stalled:
        stalled.sendall(b"POST /translate HTTP/1.1\r\nHost: x\r\n")  # and nothing more
        started = time.monotonic()
        assert stalled.recv(65536) == b""  # closed by the server (HTTP_HEADER_TIMEOUT=2)
        assert time.monotonic() - started >= 1.5

    with _connect(service.strict.url) as body_stalled:
        body_stalled.sendall(
            b"POST /detect?api_key=free HTTP/1.1\r\nHost: x\r\n"
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"q": '
        )
        assert response_head(body_stalled).startswith(b"HTTP/1.1 408")
    with service.strict.client() as client:  # and the server carries on
        assert client.get("/health").status_code == 200


# -- without a worker ---------------------------------------------------------------------------


def test_no_worker_gives_504_then_pool_full_and_detection_503(
    nats_server: EmbeddedNats, tmp_path: Path
) -> None:
    api = start_api(
        nats_server.url, tmp_path / "api.log", is_ready, API_TIMEOUT=1, NORMAL_POOL_SIZE=1
    )
    try:
        with api.client() as client:
            ask = {"q": "Hi", "source": "en", "target": "de"}
            late = client.post("/translate", json=ask)
            assert late.status_code == 504
            assert "within 1s" in late.json()["error"]
            full = client.post("/translate", json=ask)  # the first one still waits in the pool
            assert full.status_code == 503
            assert full.json()["error"] == "translation pool full"
            assert full.headers["retry-after"] == "1"
            nobody = client.post("/detect", json={"q": "Hi"})
            assert nobody.status_code == 503
            assert "no worker" in nobody.json()["error"]
    finally:
        stop_process(api.process)


# -- the pieces, in process ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("unsupported_language", 400),
        ("text_too_long", 400),
        ("invalid_request", 400),
        ("model_unavailable", 503),
        ("pool_full", 503),
        ("unavailable", 503),
        ("model_failure", 500),
        (None, 500),  # an error result without a code (an older worker's)
    ],
)
def test_a_failed_result_maps_to_the_status_of_its_error_code(
    code: ErrorCode | None, status: int
) -> None:
    result = TranslationResult(
        task_id="t", message_id="m", status="error", error="why", error_code=code,
        source_language="en", target_language="de",
    )  # fmt: skip
    refused = failure(result)
    assert (refused.status, refused.reason) == (status, "why")
    assert ("Retry-After" in refused.headers) is (status == 503)


def test_keys_refill_at_their_rate() -> None:
    gate = Gate({"k": 60}, 0)
    for _ in range(60):
        gate.admit("k", "a")
    with pytest.raises(Refused) as refused:
        gate.admit("k", "a")
    assert refused.value.status == 429
    assert 0 < refused.value.retry_after <= 1.0
    time.sleep(1.1)  # 60 a minute: one more a second
    gate.admit("k", "a")
    anonymous = Gate({}, 2)
    anonymous.admit(None, "1.2.3.4")
    anonymous.admit(None, "1.2.3.4")
    with pytest.raises(Refused):
        anonymous.admit(None, "1.2.3.4")
    anonymous.admit(None, "5.6.7.8")  # per address


def test_language_codes_clients_send() -> None:
    """Codes as people write them, read with the language table into the keys models are asked
    in; the OpenAPI document's pattern takes exactly the same ones."""
    known = frozenset({"en", "fr", "pt", "zh", "zh-Hant", "fuv"})
    sent = {
        "fr": "fr", "FR": "fr", "pt-BR": "pt", "pt_br": "pt", "PB": "pt", "por": "pt",
        "zh-Hans": "zh", "ZH-HANS": "zh", "zh-TW": "zh-Hant", "zh-Hant": "zh-Hant",
        "zt": "zh-Hant", "zh-Hant-TW": "zh-Hant", "en-US": "en", "en-GB": "en", "fuv": "fuv",
        "auto": "auto",
    }  # fmt: skip
    assert {c: codes.code(c, "target", known, auto=True) for c in sent} == sent
    refused = {
        "french": "not a language code", " fr": "not a language code",
        "pt-XY": "not a language code", "de": "unsupported", "bas": "unsupported",
        "sr-Latn": "unsupported", "auto": "not a language code",
    }  # fmt: skip
    for code, why in refused.items():
        with pytest.raises(ApiError, match=why) as error:
            codes.code(code, "target", known)
        assert error.value.status == 400
    rule = re.compile(codes.pattern(known, auto=True))  # the OpenAPI document's, the same rule
    assert all(rule.fullmatch(code) for code in sent)
    assert not any(rule.fullmatch(code) for code in refused if code != "auto")
    for spelling in codes.spellings(known):  # and nothing the table would read otherwise
        assert rule.fullmatch(spelling)


def test_not_blank_is_pythons_whitespace_as_a_pattern() -> None:
    """The OpenAPI document's `pattern` refuses exactly the texts the worker calls blank."""
    rule = re.compile(NOT_BLANK)
    for point in range(0x110000):
        char = chr(point)
        assert (rule.search(char) is None) is char.isspace(), hex(point)


def test_the_catalog_knows_hub_ids_without_their_files(tmp_path: Path) -> None:
    assert describe("t5-small", tmp_path).pairs == T5_PAIRS
    assert describe("facebook/nllb-200-distilled-600M", tmp_path).family == "nllb"
    opus = describe("Helsinki-NLP/opus-mt-fr-en", tmp_path)
    assert (opus.family, opus.languages) == ("marian", ["en", "fr"])
    assert describe("acme/mystery", tmp_path).pairs == frozenset()


@pytest.mark.anyio
async def test_html_keeps_markup_entities_and_code() -> None:
    async def shout(text: str) -> str:
        return text.upper()

    html = (
        '<p class="a">Tom &amp; Jerry <b>run</b>\n<code>x &lt; 1</code></p><script>var s;</script>'
    )
    done = await Documents(5000).html(html, shout)
    assert done == (
        '<p class="a">TOM &amp; JERRY <b>RUN</b>\n<code>x &lt; 1</code></p><script>var s;</script>'
    )


def test_the_openapi_document_lists_exactly_the_routes_served() -> None:
    """The document is written out (openapi.py) beside the routes (app.py): a route added
    without its document, or a document entry with no route, fails here. Each operationId is
    the route's name (its metrics label) in camelCase."""
    from fastapi.routing import APIRoute
    from pydantic.alias_generators import to_camel

    from translator.api.app import build_app
    from translator.api.operations import Api as Operations
    from translator.api.relay import Relay
    from translator.inference.catalog import Catalog
    from zmq_compat.settings import ShimSettings

    settings = ShimSettings()
    app = build_app(Operations(settings, Relay(1.0), Catalog.of(settings)), [])
    served = {
        (method.lower(), route.path, to_camel(route.name))
        for route in app.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    documented = {
        (method, path, operation["operationId"])
        for path, operations in app.openapi()["paths"].items()
        for method, operation in operations.items()
    }
    assert documented == served
