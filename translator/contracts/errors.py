"""Errors of the translator package.

TranslatorError
├── BadRequest                 the request can never succeed: error result, dead letter, term
│   ├── InvalidRequest(reason)      not JSON, missing or ill-typed fields
│   └── TextTooLong(length, limit)
├── UnsupportedLanguage(code, model_id)   one target of a request; an error result for it
├── ModelUnavailable(model_id, hint)      not local and not downloadable
├── QuantizationUnsupported(level, device)
├── PoolFull(pool)                        the pool's stream is at capacity (discard=new)
└── QueueUnavailable(why, maybe_stored)   NATS did not take the request in time (bus.client.queue,
                                          the one intake of the shim, HTTP API and NATS service)

TopologyMissing(problem)   a stream, consumer or bucket is not as the operator's set-up makes it
                           (`translator setup`): a service refuses to start, never a request's
                           error

Every error result carries an `errorCode` (ERROR_CODES, a small documented set) beside its
`error` text: clients branch on the code, people read the text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar, Literal, get_args

# The `errorCode` of an error result (and of the Nats-Service-Error-Code header, as a status):
ErrorCode = Literal[
    "invalid_request",  # not JSON, a missing or ill-typed field: fix the request
    "text_too_long",  # over MAX_TEXT_LENGTH
    "unsupported_language",  # no configured model translates this pair
    "model_unavailable",  # the model cannot be had (not local, hub unreachable, a setting)
    "model_failure",  # the model failed on it, retries included
    "pool_full",  # the pool's queue is at capacity: try again later
    "unavailable",  # NATS or the workers cannot be reached: try again later
    "timeout",  # no result within the caller's deadline
]
ERROR_CODES: tuple[ErrorCode, ...] = get_args(ErrorCode)
# The HTTP status of each code: the HTTP API answers it, `translate.rpc` puts it in
# Nats-Service-Error-Code, results on an _INBOX carry it the same way.
ERROR_STATUS: dict[ErrorCode, int] = {
    "invalid_request": 400,
    "text_too_long": 400,
    "unsupported_language": 400,
    "model_unavailable": 503,
    "model_failure": 500,
    "pool_full": 503,
    "unavailable": 503,
    "timeout": 504,
}


class TranslatorError(Exception):
    """Base of every error this package raises on purpose; `kind` labels it in metrics."""

    kind: ClassVar[str] = "error"
    error_code: ClassVar[ErrorCode] = "model_failure"


def error_kind(exc: Exception) -> str:
    return exc.kind if isinstance(exc, TranslatorError) else "model_error"


def code_of_kind(kind: str) -> ErrorCode:
    """The public errorCode of a metrics `reason` (the kinds below, or model_error...)."""
    codes: dict[str, ErrorCode] = {
        InvalidRequest.kind: "invalid_request",
        TextTooLong.kind: "text_too_long",
        UnsupportedLanguage.kind: "unsupported_language",
        ModelUnavailable.kind: "model_unavailable",
        QuantizationUnsupported.kind: "model_unavailable",
        PoolFull.kind: "pool_full",
        QueueUnavailable.kind: "unavailable",
    }
    return codes.get(kind, "model_failure")


class BadRequest(TranslatorError):
    """A request that no retry can fix."""

    kind = "bad_request"
    error_code: ClassVar[ErrorCode] = "invalid_request"


class InvalidRequest(BadRequest):
    kind = "invalid_request"

    def __init__(self, reason: str) -> None:
        super().__init__(f"invalid request: {reason}")
        self.reason = reason


class TextTooLong(BadRequest):
    kind = "text_too_long"
    error_code: ClassVar[ErrorCode] = "text_too_long"

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(f"text too long: {length} characters, the maximum is {limit}")
        self.length = length
        self.limit = limit

    @classmethod
    def check(cls, text: str, limit: int) -> None:
        """MAX_TEXT_LENGTH, the same everywhere a text comes in: TextTooLong past `limit`."""
        if len(text) > limit:
            raise cls(len(text), limit)


class UnsupportedLanguage(TranslatorError):
    kind = "unsupported_language"
    error_code: ClassVar[ErrorCode] = "unsupported_language"

    def __init__(self, code: str, model_id: str, detail: str = "", name: str = "") -> None:
        extra = f" ({detail})" if detail else ""
        called = f" ({name})" if name else ""
        super().__init__(f"unsupported language {code!r}{called} for model {model_id}{extra}")
        self.code = code
        self.model_id = model_id


class ModelUnavailable(TranslatorError):
    kind = "model_unavailable"
    error_code: ClassVar[ErrorCode] = "model_unavailable"

    def __init__(self, model_id: str, hint: str) -> None:
        super().__init__(f"model {model_id!r} is not available: {hint}")
        self.model_id = model_id
        self.hint = hint


class QuantizationUnsupported(TranslatorError):
    kind = "quantization_unsupported"
    error_code: ClassVar[ErrorCode] = "model_unavailable"

    def __init__(self, level: str, device: str, hint: str) -> None:
        super().__init__(f"quantization {level!r} is not supported on {device}: {hint}")
        self.level = level
        self.device = device


class PoolFull(TranslatorError):
    kind = "pool_full"
    error_code: ClassVar[ErrorCode] = "pool_full"

    def __init__(self, pool: str) -> None:
        super().__init__("translation pool full")
        self.pool = pool


class QueueUnavailable(TranslatorError):
    kind = "unavailable"
    error_code: ClassVar[ErrorCode] = "unavailable"

    def __init__(self, why: str, maybe_stored: bool = False) -> None:
        super().__init__(f"translation service unavailable: NATS did not take the request ({why})")
        self.why = why
        self.maybe_stored = maybe_stored  # a try went out unconfirmed: it may yet be translated


class TopologyMissing(Exception):
    """A stream, consumer or bucket missing, or not as `translator setup` makes it."""

    def __init__(self, problem: str) -> None:
        super().__init__(
            f"{problem}: the NATS topology is set up by the operator with `translator setup`"
            ' (docs/DEPLOY.md, "Set-up"); the services only check it'
        )
        self.problem = problem


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
    PoolFull.kind,
    QueueUnavailable.kind,
    "reply_refused",  # a Translate-Reply-To that is not the requester's to use: no result sent
    "foreign_message",  # something on the pull inbox that is not the consumer's: dropped
)


def validation_summary(errors: Iterable[Mapping[str, Any]], whole: str = "request") -> str:
    """pydantic's errors in one line, `where: what; ...` (`whole` names an error of the whole
    input): the text of every InvalidRequest and of the HTTP API's 400s and 422s."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())) or whole}: {e.get('msg', '')}" for e in errors
    )
