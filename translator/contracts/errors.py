"""Errors of the translator package.

TranslatorError
├── BadRequest                 the request can never succeed: error result, dead letter, term
│   ├── InvalidRequest(reason)      not JSON, missing or ill-typed fields
│   └── TextTooLong(length, limit)
├── UnsupportedLanguage(code, model_id)   one target of a request; an error result for it
├── ModelUnavailable(model_id, hint)      not local and not downloadable
├── QuantizationUnsupported(level, device)
└── PoolFull(pool)                        the pool's stream is at capacity (discard=new)
"""

from __future__ import annotations

from typing import ClassVar


class TranslatorError(Exception):
    """Base of every error this package raises on purpose; `kind` labels it in metrics."""

    kind: ClassVar[str] = "error"


def error_kind(exc: Exception) -> str:
    return exc.kind if isinstance(exc, TranslatorError) else "model_error"


class BadRequest(TranslatorError):
    """A request that no retry can fix."""

    kind = "bad_request"


class InvalidRequest(BadRequest):
    kind = "invalid_request"

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid request: {reason}")
        self.reason = reason


class TextTooLong(BadRequest):
    kind = "text_too_long"

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"text too long: {length} characters, the maximum is {limit}")
        self.length = length
        self.limit = limit


class UnsupportedLanguage(TranslatorError):
    kind = "unsupported_language"

    def __init__(self, code: str, model_id: str, detail: str = "") -> None:
        extra = f" ({detail})" if detail else ""
        super().__init__(f"unsupported language {code!r} for model {model_id}{extra}")
        self.code = code
        self.model_id = model_id


class ModelUnavailable(TranslatorError):
    kind = "model_unavailable"

    def __init__(self, model_id: str, hint: str) -> None:
        super().__init__(f"model {model_id!r} is not available: {hint}")
        self.model_id = model_id
        self.hint = hint


class QuantizationUnsupported(TranslatorError):
    kind = "quantization_unsupported"

    def __init__(self, level: str, device: str, hint: str) -> None:
        super().__init__(f"quantization {level!r} is not supported on {device}: {hint}")
        self.level = level
        self.device = device


class PoolFull(TranslatorError):
    kind = "pool_full"

    def __init__(self, pool: str) -> None:
        super().__init__("translation pool full")
        self.pool = pool


def kind_of_message(error: str) -> str:
    """The kind of error a result's `error` text reports (results carry the text, which the
    classes above write): the HTTP API chooses its status code by it."""
    prefixes = {
        "invalid request:": InvalidRequest.kind,
        "text too long:": TextTooLong.kind,
        "unsupported language": UnsupportedLanguage.kind,
        "translation pool full": PoolFull.kind,
        "quantization ": QuantizationUnsupported.kind,
    }
    for prefix, kind in prefixes.items():
        if error.startswith(prefix):
            return kind
    if error.startswith("model ") and "is not available" in error:
        return ModelUnavailable.kind
    return "model_error"


# Every `reason` label of the error counters, known in advance so that each series is exported
# at 0 from the start (an `increase()` needs the 0 to see the first error). Besides the kinds
# above: a generate() that failed, an exception that is not ours, a target left untranslated.
ERROR_REASONS: tuple[str, ...] = (
    InvalidRequest.kind,
    TextTooLong.kind,
    UnsupportedLanguage.kind,
    ModelUnavailable.kind,
    QuantizationUnsupported.kind,
    "model_failure",
    "model_error",
    "not_translated",
)
