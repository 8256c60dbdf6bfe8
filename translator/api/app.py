"""The HTTP API's FastAPI application: the 0.4.9 endpoints, LibreTranslate's, and the service's
health routes, with one error shape (`{"error": ..., "detail": ...}`) and LibreTranslate's
status codes (docs/API.md).

`POST /translate` serves both shapes: a body with `q` (JSON or a form) is LibreTranslate's, any
other JSON body is 0.4.9's. `GET /languages` answers LibreTranslate's list (its clients cannot
be told another path); `GET /languages?shape=meeshy` answers 0.4.9's object."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import langcodes
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.routing import BaseRoute

from translator import __version__
from translator.api import together
from translator.api.keys import Gate, Refused
from translator.api.markup import translate_html
from translator.api.relay import Relay, Unavailable
from translator.api.settings import ApiSettings
from translator.api.shapes import (
    BatchItemError,
    BatchResults,
    DetectedLanguage,
    ErrorBody,
    LibreDetect,
    LibreLanguage,
    LibreTranslate,
    LibreTranslated,
    Translate049,
    Translated049,
)
from translator.contracts.errors import ERROR_STATUS, PoolFull, TextTooLong
from translator.contracts.messages import MODEL_TYPES, ModelType, TranslationResult
from translator.inference.catalog import Catalog

log = logging.getLogger(__name__)
# the endpoints counted in translator_http_requests_total, every one from 0
RETRY_SOON = {"Retry-After": "1"}  # every 503: a pool full, NATS or a worker away
ENDPOINTS = ("translate", "translate_batch", "detect", "languages", "models", "health", "other")


class ApiError(Exception):
    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


def _error(status: int, reason: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": reason, "detail": reason}, status, headers=headers)


def language_code(value: object, what: str) -> str:
    """An ISO 639-1 code from what clients send (`fr`, `FR`, `pt-BR`, `zh-Hans`)."""
    text = str(value).strip().lower().replace("_", "-")
    code = text.split("-", 1)[0]
    if len(code) != 2 or not code.isalpha():
        raise ApiError(400, f"Invalid request: {what} {value!r} is not an ISO 639-1 code")
    return code


def _failure(result: TranslationResult) -> ApiError:
    """An error result as an HTTP error: its errorCode's status (ERROR_STATUS)."""
    status = ERROR_STATUS[result.error_code or "model_failure"]
    return ApiError(
        status, result.error or "translation failed", RETRY_SOON if status == 503 else None
    )


class Api:
    """The endpoints' logic, over a Relay (NATS) and the settings."""

    def __init__(self, settings: ApiSettings, relay: Relay, catalog: Catalog) -> None:
        self.settings = settings
        self.relay = relay
        self.catalog = catalog
        self.gate = Gate(settings.api_keys, settings.api_rate_limit)
        self.requests: Counter[tuple[str, str]] = Counter()

    # -- checks --------------------------------------------------------------------------------

    def admit(self, request: Request, body_key: object = None) -> None:
        key = body_key or request.query_params.get("api_key")
        auth = request.headers.get("authorization", "")
        if not key and auth.lower().startswith("bearer "):
            key = auth[7:].strip()
        address = request.client.host if request.client else ""
        try:
            self.gate.admit(str(key) if key else None, address)
        except Refused as refused:
            headers = {"Retry-After": f"{refused.retry_after:.0f}"} if refused.status == 429 else {}
            raise ApiError(refused.status, refused.reason, headers) from refused

    def check_texts(self, texts: list[str]) -> None:
        limit, total = self.settings.max_text_length, sum(len(t) for t in texts)
        if total > self.settings.api_char_limit:
            raise ApiError(
                400,
                f"Invalid request: request ({total}) exceeds text limit"
                f" ({self.settings.api_char_limit})",
            )
        for text in texts:
            if len(text) > limit:  # what the worker would answer, without the round trip
                raise ApiError(400, str(TextTooLong(len(text), limit)))

    # -- through NATS ----------------------------------------------------------------------------

    async def translate_one(
        self, text: str, source: str, target: str, model_type: ModelType
    ) -> TranslationResult:
        try:
            (result,) = await self.relay.translate(text, source, (target,), model_type)
        except PoolFull as full:
            raise ApiError(503, str(full), RETRY_SOON) from full
        except Unavailable as exc:
            raise ApiError(503, str(exc), RETRY_SOON) from exc
        except TimeoutError as exc:
            raise ApiError(
                504, f"translation not done within {self.settings.api_timeout:g}s"
            ) from exc
        if result.status != "ok":
            raise _failure(result)
        return result

    async def detect(self, text: str) -> DetectedLanguage:
        try:
            found = await self.relay.detect(text)
        except Unavailable as exc:
            raise ApiError(503, str(exc), RETRY_SOON) from exc
        if found.status != "ok":
            raise ApiError(400, found.error or "detection failed")
        if not found.languages:
            return DetectedLanguage(confidence=0.0, language="auto")
        best = found.languages[0]
        return DetectedLanguage(confidence=round(best.confidence * 100, 1), language=best.language)

    # -- 0.4.9 -----------------------------------------------------------------------------------

    async def translate_049(self, body: Translate049) -> Translated049:
        started = time.perf_counter()
        source = body.source_language.strip().lower()
        source = "auto" if source == "auto" else language_code(source, "source_language")
        target = language_code(body.target_language, "target_language")
        self.check_texts([body.text])
        result = await self.translate_one(body.text, source, target, body.model_type)
        return Translated049(
            original_text=body.text,
            translated_text=result.translated_text,
            source_language=result.source_language,
            target_language=target,
            model_used=result.translator_model,
            confidence_score=result.confidence_score,
            processing_time_ms=round((time.perf_counter() - started) * 1000),
            from_cache=result.pieces > 0 and result.pieces_cached == result.pieces,
        )

    async def batch_049(self, items: list[Translate049]) -> BatchResults:
        limit = self.settings.api_max_batch
        if len(items) > limit:
            raise ApiError(400, f"Maximum {limit} requests per batch")
        self.check_texts([item.text for item in items])
        results: list[Translated049 | BatchItemError] = [
            BatchItemError(error="not done", original_text=i.text) for i in items
        ]

        async def one(index: int, item: Translate049) -> None:
            try:
                results[index] = await self.translate_049(item)
            except ApiError as exc:
                results[index] = BatchItemError(error=exc.reason, original_text=item.text)

        await together.each(items, one)  # `one` answers its own failures
        return BatchResults(results=results)

    # -- LibreTranslate --------------------------------------------------------------------------

    async def translate_libre(self, body: LibreTranslate) -> LibreTranslated:
        texts = [body.q] if isinstance(body.q, str) else list(body.q)
        if len(texts) > self.settings.api_max_batch:
            raise ApiError(
                400, f"Invalid request: at most {self.settings.api_max_batch} texts in q"
            )
        if not texts or not all(t.strip() for t in texts):
            raise ApiError(400, "Invalid request: missing q parameter")
        self.check_texts(texts)
        target = language_code(body.target, "target")
        auto = body.source.strip().lower() == "auto"
        fixed = "auto" if auto else language_code(body.source, "source")
        translated: list[str] = [""] * len(texts)
        detected: list[DetectedLanguage] = [DetectedLanguage(confidence=100.0, language=fixed)]
        detected *= len(texts)

        async def one(index: int, text: str) -> None:
            source = fixed
            if auto:
                detected[index] = await self.detect(text)
                source = detected[index].language

            async def piece(part: str) -> str:
                return (await self.translate_one(part, source, target, "basic")).translated_text

            if body.format == "html":
                translated[index] = await translate_html(text, piece)
            else:
                translated[index] = await piece(text)

        await together.each(texts, one)
        single = isinstance(body.q, str)
        alternatives: list[str] | list[list[str]] | None = None
        if body.alternatives:  # one translation each: no alternatives to give
            no_alternatives: list[list[str]] = [[] for _ in texts]
            alternatives = [] if single else no_alternatives
        return LibreTranslated(
            translatedText=translated[0] if single else translated,
            detectedLanguage=(detected[0] if single else detected) if auto else None,
            alternatives=alternatives,
        )

    # -- catalog ---------------------------------------------------------------------------------

    def languages_libre(self) -> list[LibreLanguage]:
        return [
            LibreLanguage(code=code, name=langcodes.Language.get(code).display_name(), targets=t)
            for code, t in self.catalog.targets("basic").items()
        ]

    def languages_049(self) -> dict[str, dict[str, str]]:
        codes = sorted({c for pair in self.catalog.pairs("basic") for c in pair})
        return {"supported_languages": {c: langcodes.Language.get(c).autonym() for c in codes}}

    def models_049(self) -> dict[str, dict[str, dict[str, Any]]]:
        models: dict[str, dict[str, Any]] = {}
        for tier in MODEL_TYPES:
            entry = self.catalog.tiers[tier]
            models[tier] = {
                "name": entry.name,
                "model_id": entry.model_id,
                "family": entry.family,
                "languages": entry.languages,
                "pairs": len(entry.pairs),
            }
        return {"available_models": models}


def _endpoint(path: str) -> str:
    names = {
        "/translate": "translate", "/translate/batch": "translate_batch", "/detect": "detect",
        "/languages": "languages", "/models": "models", "/health": "health", "/ready": "health",
        "/live": "health", "/metrics": "health",
    }  # fmt: skip
    return names.get(path, "other")


async def _body(request: Request) -> dict[str, Any] | list[Any]:
    """JSON, or a form (urlencoded or multipart, a repeated `q` becoming a list)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form()
        data: dict[str, Any] = {}
        for key in form:
            values = [v for v in form.getlist(key) if isinstance(v, str)]
            data[key] = values if key == "q" and len(values) > 1 else (values or [""])[0]
        return data
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        loaded = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ApiError(400, "Invalid request: the body is neither JSON nor a form") from exc
    if not isinstance(loaded, dict | list):
        raise ApiError(400, "Invalid request: the body must be a JSON object")
    return loaded


def _summary(errors: Sequence[Any]) -> str:
    """pydantic's errors in one line: `where: what; ...`."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())) or 'body'}: {e.get('msg', '')}"
        for e in errors
    )


def _validation(exc: ValidationError, status: int) -> JSONResponse:
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    summary = _summary(errors)
    detail: str | list[dict[str, Any]] = summary if status == 400 else list(errors)  # type: ignore[arg-type]
    return JSONResponse({"error": f"Invalid request: {summary}", "detail": detail}, status)


def _schema(model: type[Any]) -> dict[str, Any]:
    """A body's JSON schema for the OpenAPI document; what it refers to (DetectedLanguage) is
    among the document's components through the endpoints that return it."""
    schema = dict(model.model_json_schema(ref_template="#/components/schemas/{model}"))
    schema.pop("$defs", None)
    return schema


_TRANSLATE_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"oneOf": [_schema(Translate049), _schema(LibreTranslate)]}
            },
            "application/x-www-form-urlencoded": {"schema": _schema(LibreTranslate)},
        },
    }
}
_EITHER_REPLY = {"oneOf": [_schema(Translated049), _schema(LibreTranslated)]}
_TRANSLATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/json": {"schema": _EITHER_REPLY}}},
    400: {"model": ErrorBody}, 403: {"model": ErrorBody}, 429: {"model": ErrorBody},
    500: {"model": ErrorBody}, 503: {"model": ErrorBody}, 504: {"model": ErrorBody},
}  # fmt: skip


def build_app(api: Api | None, extra_routes: list[BaseRoute]) -> FastAPI:
    """The application: health routes (`extra_routes`), and the API unless `api` is None
    (HTTP_API_ENABLED=false)."""
    app = FastAPI(
        title="Meeshy translator",
        version=__version__,
        description="The 0.4.9 translator's REST API and LibreTranslate's, over NATS JetStream.",
        docs_url="/docs" if api else None,
        openapi_url="/openapi.json" if api else None,
        redoc_url=None,
    )
    app.router.routes.extend(extra_routes)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return _error(exc.status, exc.reason, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        return JSONResponse(
            {"error": f"Invalid request: {_summary(errors)}", "detail": errors}, 422
        )

    if api is None:
        return app
    counts = api.requests

    @app.middleware("http")
    async def count(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        counts[(_endpoint(request.url.path), str(response.status_code))] += 1
        return response

    @app.post("/translate", openapi_extra=_TRANSLATE_DOC, responses=_TRANSLATE_RESPONSES)
    async def translate(request: Request) -> Response:
        """0.4.9's `{text, source_language, target_language, model_type}` or LibreTranslate's
        `{q, source, target, format, api_key}` (JSON or a form)."""
        body = await _body(request)
        if isinstance(body, list):
            raise ApiError(400, "Invalid request: a list is for /translate/batch")
        api.admit(request, body.get("api_key"))
        if "q" in body:
            try:
                libre = LibreTranslate.model_validate(body)
            except ValidationError as exc:
                return _validation(exc, 400)
            reply = await api.translate_libre(libre)
            return JSONResponse(reply.model_dump(exclude_none=True))
        try:
            old = Translate049.model_validate(body)
        except ValidationError as exc:
            return _validation(exc, 422)
        return JSONResponse((await api.translate_049(old)).model_dump())

    @app.post("/translate/batch", response_model=BatchResults, responses=_TRANSLATE_RESPONSES)
    async def translate_batch(request: Request, items: list[Translate049]) -> BatchResults:
        """Up to API_MAX_BATCH 0.4.9 requests; a failed item is `{error, original_text}`."""
        api.admit(request)
        return await api.batch_049(items)

    @app.post("/detect", response_model=list[DetectedLanguage], responses=_TRANSLATE_RESPONSES)
    async def detect(request: Request) -> list[DetectedLanguage]:
        """LibreTranslate's detection: the likeliest language, confidence 0-100."""
        body = await _body(request)
        if isinstance(body, list):
            raise ApiError(400, "Invalid request: a JSON object or a form is expected")
        api.admit(request, body.get("api_key"))
        try:
            asked = LibreDetect.model_validate(body)
        except ValidationError as exc:
            raise ApiError(400, "Invalid request: missing q parameter") from exc
        if not asked.q.strip():
            raise ApiError(400, "Invalid request: missing q parameter")
        api.check_texts([asked.q])
        return [await api.detect(asked.q)]

    @app.get("/languages", response_model=None)
    async def languages(shape: str = "libretranslate") -> Any:
        """LibreTranslate's `[{code, name, targets}]`; `?shape=meeshy`: 0.4.9's
        `{"supported_languages": {code: name}}`."""
        if shape == "meeshy":
            return api.languages_049()
        return [lang.model_dump() for lang in api.languages_libre()]

    @app.get("/models")
    async def models() -> dict[str, dict[str, dict[str, Any]]]:
        """0.4.9's `{"available_models": {tier: {name, languages, ...}}}`, from the configured
        models (their family read from their config on disk, else from their hub id)."""
        return api.models_049()

    return app
