"""The answer to a language-detection request on DETECT_SUBJECT (the `detect` endpoint of the
workers' micro service, `service.py`: one queue group for every worker of every pool, so that
any of them answers the HTTP API's `/detect` and its `source=auto`). Detection is lingua's
(inference/detection.py); the endpoint runs it in a thread, so the event loop keeps fetching and
heartbeating meanwhile."""

from __future__ import annotations

from pydantic import ValidationError

from translator.contracts.errors import InvalidRequest, TextTooLong, TranslatorError
from translator.contracts.messages import Detection, DetectRequest, DetectResult
from translator.inference.detection import detect_candidates


def answer(data: bytes, languages: tuple[str, ...], max_length: int) -> DetectResult:
    """The reply to one detection request; bad input is an error reply, never an exception."""
    try:
        request = DetectRequest.model_validate_json(data)
    except ValidationError as exc:
        return DetectResult(status="error", error=str(InvalidRequest(exc.errors()[0]["msg"])))
    if len(request.text) > max_length:
        return DetectResult(status="error", error=str(TextTooLong(len(request.text), max_length)))
    try:
        found = detect_candidates(request.text, languages)
    except (TranslatorError, ValueError) as exc:
        return DetectResult(status="error", error=str(exc))
    return DetectResult(
        status="ok", languages=tuple(Detection(language=c, confidence=v) for c, v in found)
    )
