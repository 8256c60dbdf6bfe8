"""The HTTP API's FastAPI application: the 0.4.9 endpoints, LibreTranslate's, and the service's
health routes, with one error shape (`{"error": ..., "detail": ...}`, errors.py) and
LibreTranslate's status codes (docs/API.md). The endpoints read their own fields (fields.py:
JSON, a form or the query string, as LibreTranslate does), and the OpenAPI document is written
out in openapi.py rather than inferred from these signatures.

`POST /translate` serves both shapes: fields with `q` are LibreTranslate's, any others 0.4.9's.
`GET /languages` answers LibreTranslate's list (its clients cannot be told another path);
`GET /languages?shape=meeshy` answers 0.4.9's object."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute

from translator import __version__
from translator.api import fields, openapi
from translator.api.errors import ApiError, error_response
from translator.api.operations import Api, summary
from translator.api.shapes import LibreDetect, Translate049

_BATCH = TypeAdapter(list[Translate049])
SHAPES = ("libretranslate", "meeshy")
# the `endpoint` label of translator_http_requests_total: an API route's name (its function's),
# "health" for the service's health routes, "other" for anything else (404s, /docs)
HEALTH, OTHER = "health", "other"


def endpoints(app: FastAPI) -> tuple[str, ...]:
    """Every `endpoint` label of `app`, exported from 0 before any request."""
    names = [route.name for route in app.routes if isinstance(route, APIRoute)]
    return (*names, HEALTH, OTHER)


def _endpoint(route: BaseRoute | None, health: list[BaseRoute]) -> str:
    """The label of a request's route (set by the router, a 405's too)."""
    if isinstance(route, APIRoute):
        return route.name
    return HEALTH if any(route is r for r in health) else OTHER


def _invalid(exc: ValidationError) -> Response:
    """A 0.4.9 body that does not validate: 422 with FastAPI's detail list, as 0.4.9 answered."""
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    return error_response(422, f"Invalid request: {summary(errors)}", list(errors))


def _object(data: dict[str, Any] | list[Any]) -> dict[str, Any]:
    if isinstance(data, list):
        raise ApiError(400, "Invalid request: a JSON object or a form is expected")
    return data


def build_app(api: Api | None, extra_routes: list[BaseRoute]) -> FastAPI:
    """The application: health routes (`extra_routes`), and the API unless `api` is None
    (HTTP_API_ENABLED=false)."""
    app = FastAPI(
        title="Meeshy translator",
        version=__version__,
        docs_url="/docs" if api else None,
        openapi_url="/openapi.json" if api else None,
        redoc_url=None,
    )
    app.router.routes.extend(extra_routes)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return exc.response()

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        """Starlette's own (404, 405 with its Allow header, a form's limits) in our shape."""
        return error_response(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))

    if api is None:
        return app
    document = openapi.document(api.settings, api.known)
    app.openapi = lambda: document  # type: ignore[method-assign]
    counts = api.requests

    @app.middleware("http")
    async def count(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        endpoint = _endpoint(request.scope.get("route"), extra_routes)
        counts[(endpoint, str(response.status_code))] += 1
        return response

    if api.settings.api_cors_origins:  # LibreTranslate's CORS(app): any origin by default
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(api.settings.api_cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
        )

    @app.post("/translate")
    async def translate(request: Request) -> Response:
        body, typed = await fields.read(request)
        if isinstance(body, list):
            raise ApiError(400, "Invalid request: a list is for /translate/batch")
        api.admit(request, body)
        if "q" in body:
            reply = await api.translate_libre(api.libre_request(body, strict=typed))
            return JSONResponse(reply.model_dump(exclude_none=True))
        try:
            old = Translate049.model_validate(body, strict=typed)
        except ValidationError as exc:
            return _invalid(exc)
        return JSONResponse((await api.translate_049(old)).model_dump())

    @app.post("/translate/batch")
    async def translate_batch(request: Request) -> Response:
        data, typed = await fields.read(request)
        api.admit(request, data if isinstance(data, dict) else None)
        try:
            items = _BATCH.validate_python(data, strict=typed)
        except ValidationError as exc:
            return _invalid(exc)
        return JSONResponse((await api.batch_049(items)).model_dump())

    @app.post("/detect")
    async def detect(request: Request) -> Response:
        data, typed = await fields.read(request)
        body = _object(data)
        api.admit(request, body)
        try:
            asked = LibreDetect.model_validate(body, strict=typed)
        except ValidationError as exc:
            missing = "q" not in body
            why = "missing q parameter" if missing else summary(exc.errors())
            raise ApiError(400, f"Invalid request: {why}") from exc
        if not asked.q.strip():
            raise ApiError(400, "Invalid request: missing q parameter")
        api.check_texts([asked.q])
        return JSONResponse([(await api.detect(asked.q)).model_dump()])

    @app.get("/languages")
    async def languages(request: Request) -> Response:
        shape = request.query_params.get("shape", SHAPES[0])
        if shape not in SHAPES:
            raise ApiError(400, f"Invalid request: shape must be one of {', '.join(SHAPES)}")
        if shape == "meeshy":
            return JSONResponse(api.languages_049())
        return JSONResponse([lang.model_dump() for lang in api.languages_libre()])

    @app.get("/models")
    async def models() -> Response:
        return JSONResponse(api.models_049())

    @app.get("/frontend/settings")
    async def frontend_settings() -> Response:
        return JSONResponse(api.frontend_settings().model_dump())

    @app.post("/translate_file")
    async def translate_file(request: Request) -> Response:
        values, part = await fields.upload(request)
        api.admit(request, values)
        key, _ = await api.translate_file(values, part)
        url = str(request.url_for("download_file", filename=key))
        return JSONResponse({"translatedFileUrl": url})

    @app.get("/download_file/{filename}")
    async def download_file(filename: str) -> Response:
        stored = api.files.get(filename)
        if stored is None:
            raise ApiError(404, "Not found: no such file (never translated here, or expired)")
        disposition = f'attachment; filename="{stored.name}"'
        headers = {"Content-Disposition": disposition}
        return Response(stored.data, media_type=stored.media_type, headers=headers)

    return app
