"""A request's fields, read as LibreTranslate reads them: a JSON body alone, or else the query
string and the form body together (Flask's `request.values`, the query string first), so that
`POST /translate?q=...&source=...&target=...` with no body works as it does there (clients such
as deep-translator send that). A repeated `q` becomes a list."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from translator.api.errors import ApiError

_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def is_json(request: Request) -> bool:
    kind = media_type(request)
    return kind == "application/json" or kind.endswith("+json")


async def read(request: Request) -> tuple[dict[str, Any] | list[Any], bool]:
    """The fields of `request` (a list only for a JSON list body), and whether they came from
    JSON (typed) rather than a form or the query string (text)."""
    kind = media_type(request)
    if kind in _FORMS:
        form = await _form(request)
        pairs = [*request.query_params.multi_items(), *form.multi_items()]
        return _fields([(k, v) for k, v in pairs if isinstance(v, str)]), False
    raw = await request.body()
    if not raw.strip() and not is_json(request):
        return _fields(request.query_params.multi_items()), False
    if kind and not is_json(request):
        raise ApiError(415, f"Unsupported Media Type: {kind}; send JSON or a form")
    try:
        loaded = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ApiError(400, "Invalid request: the body is neither JSON nor a form") from exc
    if not isinstance(loaded, dict | list):
        raise ApiError(400, "Invalid request: the body must be a JSON object")
    return loaded, True


async def upload(request: Request) -> tuple[dict[str, Any], UploadFile | None]:
    """A multipart form's fields (with the query string's) and its `file` part, if any."""
    if media_type(request) != "multipart/form-data":
        raise ApiError(400, "Invalid request: a multipart/form-data body with a file is expected")
    form = await _form(request)
    part = form.get("file")
    pairs = [*request.query_params.multi_items(), *form.multi_items()]
    values = _fields([(k, v) for k, v in pairs if isinstance(v, str)])
    if isinstance(part, str):  # the file's text sent as a plain field
        values["file"] = part
    return values, part if isinstance(part, UploadFile) else None


async def _form(request: Request) -> FormData:
    try:
        return await request.form()
    except HTTPException:  # Starlette's own 400s (too many fields or files)
        raise
    except Exception as exc:  # a multipart body without its boundary, or cut short
        raise ApiError(400, f"Invalid request: the form cannot be read ({exc})") from exc


def _fields(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """The first value of each field (as Flask's `values.get`), every value of `q`."""
    fields: dict[str, Any] = {}
    texts = [value for key, value in pairs if key == "q"]
    for key, value in pairs:
        fields.setdefault(key, value)
    if len(texts) > 1:
        fields["q"] = texts
    return fields
