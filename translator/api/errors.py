"""The HTTP API's one error: a status, a reason, and headers; every error body is
`{"error": reason, "detail": ...}` (LibreTranslate's clients read `error`, FastAPI's `detail`),
written in ASCII JSON so that whatever a reason quotes of a request can be sent."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import JSONResponse

RETRY_SOON = {"Retry-After": "1"}  # every 503: a pool full, NATS or a worker away


class ErrorResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode()


def error_response(
    status: int, reason: str, detail: object = None, headers: dict[str, str] | None = None
) -> ErrorResponse:
    body = {"error": reason, "detail": reason if detail is None else detail}
    return ErrorResponse(body, status, headers=headers)


class ApiError(Exception):
    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}

    def response(self) -> ErrorResponse:
        return error_response(self.status, self.reason, headers=self.headers)
