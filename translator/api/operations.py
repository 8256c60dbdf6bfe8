"""What each HTTP endpoint does, over a Relay (NATS) and the settings: the 0.4.9 translator's
endpoints, LibreTranslate's, and its file translation. app.py maps requests and errors to and
from these; every failure here is an ApiError with its status (docs/API.md)."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import langcodes
from fastapi import Request
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from translator.api import codes, files, together
from translator.api.errors import RETRY_SOON, ApiError
from translator.api.files import FileStore
from translator.api.keys import Gate, Refused
from translator.api.relay import Relay, Unavailable
from translator.api.settings import ApiSettings
from translator.api.shapes import (
    BatchItemError,
    BatchResults,
    DetectedLanguage,
    FrontendSettings,
    LibreLanguage,
    LibreTranslate,
    LibreTranslated,
    Translate049,
    Translated049,
)
from translator.contracts.errors import (
    ERROR_STATUS,
    PoolFull,
    QueueUnavailable,
    TextTooLong,
    validation_summary,
)
from translator.contracts.messages import MODEL_TYPES, ModelType, TranslationResult
from translator.inference.catalog import Catalog

# what LibreTranslate answers for a text whose language nothing recognises (language.py)
UNDETECTED = DetectedLanguage(confidence=0.0, language="en")


def failure(result: TranslationResult) -> ApiError:
    """An error result as an HTTP error: its errorCode's status (ERROR_STATUS)."""
    status = ERROR_STATUS[result.error_code or "model_failure"]
    return ApiError(
        status, result.error or "translation failed", RETRY_SOON if status == 503 else None
    )


def known_languages(catalog: Catalog) -> frozenset[str]:
    """Every language some configured model (any tier, any pair model) reads or writes."""
    return frozenset(code for t in MODEL_TYPES for pair in catalog.pairs(t) for code in pair)


class Api:
    """The endpoints' logic."""

    def __init__(self, settings: ApiSettings, relay: Relay, catalog: Catalog) -> None:
        self.settings = settings
        self.relay = relay
        self.catalog = catalog
        self.known = known_languages(catalog)
        self.gate = Gate(settings.api_keys, settings.api_rate_limit, settings.api_key_failures)
        self.files = FileStore(settings.api_file_ttl, settings.api_file_max_bytes)
        self.documents = files.Documents(settings.max_text_length)
        self.requests: Counter[tuple[str, str]] = Counter()

    # -- checks --------------------------------------------------------------------------------

    def admit(self, request: Request, fields: dict[str, Any] | None = None) -> None:
        """The API key (a field, the query string, or `Authorization: Bearer`) and rate limits."""
        key = (fields or {}).get("api_key") or request.query_params.get("api_key")
        auth = request.headers.get("authorization", "")
        if not key and auth.lower().startswith("bearer "):
            key = auth[7:].strip()
        address = request.client.host if request.client else ""
        try:
            self.gate.admit(str(key) if key else None, address)
        except Refused as refused:
            headers = {"Retry-After": f"{refused.retry_after:.0f}"} if refused.status == 429 else {}
            raise ApiError(refused.status, refused.reason, headers) from refused

    def code(self, value: object, what: str, auto: bool = False) -> str:
        return codes.code(value, what, self.known, auto)

    def check_texts(self, texts: list[str], documents: bool = False) -> None:
        """API_CHAR_LIMIT for the request's texts together, and MAX_TEXT_LENGTH for each, but
        for `documents` (HTML: its text travels in blocks of that size, files.py)."""
        limit, total = self.settings.max_text_length, sum(len(t) for t in texts)
        if total > self.settings.api_char_limit:
            raise ApiError(
                400,
                f"Invalid request: request ({total}) exceeds text limit"
                f" ({self.settings.api_char_limit})",
            )
        for text in [] if documents else texts:
            try:  # what the worker would answer, without the round trip
                TextTooLong.check(text, limit)
            except TextTooLong as long:
                raise ApiError(400, str(long)) from long

    # -- through NATS ----------------------------------------------------------------------------

    async def translate_one(
        self, text: str, source: str, target: str, model_type: ModelType
    ) -> TranslationResult:
        try:
            (result,) = await self.relay.translate(text, source, (target,), model_type)
        except PoolFull as full:
            raise ApiError(503, str(full), RETRY_SOON) from full
        except (QueueUnavailable, Unavailable) as exc:
            raise ApiError(503, str(exc), RETRY_SOON) from exc
        except TimeoutError as exc:
            raise ApiError(
                504, f"translation not done within {self.settings.api_timeout:g}s"
            ) from exc
        if result.status != "ok":
            raise failure(result)
        return result

    async def detect(self, text: str) -> DetectedLanguage:
        """The likeliest language, as LibreTranslate gives it (`en` at 0 when none is found)."""
        try:
            found = await self.relay.detect(text)
        except Unavailable as exc:
            raise ApiError(503, str(exc), RETRY_SOON) from exc
        if found.status != "ok":
            raise ApiError(400, found.error or "detection failed")
        if not found.languages:
            return UNDETECTED
        best = found.languages[0]
        return DetectedLanguage(confidence=round(best.confidence * 100, 1), language=best.language)

    # -- 0.4.9 -----------------------------------------------------------------------------------

    async def translate_049(self, body: Translate049) -> Translated049:
        started = time.perf_counter()
        source = self.code(body.source_language, "source_language", auto=True)
        target = self.code(body.target_language, "target_language")
        self.check_texts([body.text])
        result = await self.translate_one(body.text, source, target, body.model_type)
        return Translated049(
            original_text=body.text,
            translated_text=result.translated_text,
            source_language=result.source_language,
            target_language=target,
            model_used=result.model_name,
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

    def libre_request(self, fields: dict[str, Any], strict: bool) -> LibreTranslate:
        """LibreTranslate's fields, validated: strictly as typed for JSON, from text for a form or
        a query string (where every value is a string)."""
        try:
            body = LibreTranslate.model_validate(fields, strict=strict)
        except ValidationError as exc:
            raise ApiError(400, f"Invalid request: {summary(exc.errors())}") from exc
        texts = body.texts()
        if not texts or not all(t.strip() for t in texts):
            raise ApiError(400, "Invalid request: missing q parameter")
        if len(texts) > self.settings.api_max_batch:
            raise ApiError(
                400, f"Invalid request: at most {self.settings.api_max_batch} texts in q"
            )
        return body

    async def translate_libre(self, body: LibreTranslate) -> LibreTranslated:
        texts = body.texts()
        self.check_texts(texts, documents=body.format == "html")
        target = self.code(body.target, "target")
        fixed = self.code(body.source, "source", auto=True)
        auto = fixed == "auto"
        translated: list[str] = [""] * len(texts)
        detected = [DetectedLanguage(confidence=100.0, language=fixed)] * len(texts)

        async def one(index: int, text: str) -> None:
            if auto:
                detected[index] = await self.detect(text)

            async def piece(part: str) -> str:
                source = detected[index].language
                return (await self.translate_one(part, source, target, "basic")).translated_text

            if body.format == "html":
                translated[index] = await self.documents.html(text, piece)
            else:
                translated[index] = await piece(text)

        await together.each(texts, one)
        single = isinstance(body.q, str)
        alternatives: list[str] | list[list[str]] | None = None
        if body.alternatives:  # one translation each: no alternatives to give
            none_each: list[list[str]] = [[] for _ in texts]
            alternatives = [] if single else none_each
        return LibreTranslated(
            translatedText=translated[0] if single else translated,
            detectedLanguage=(detected[0] if single else detected) if auto else None,
            alternatives=alternatives,
        )

    async def translate_file(
        self, fields: dict[str, Any], upload: UploadFile | None
    ) -> tuple[str, str]:
        """A file's translation, kept for download: (its id, its name)."""
        if upload is None and not isinstance(fields.get("file"), str):
            raise ApiError(400, "Invalid request: missing file parameter")
        for name in ("source", "target"):
            if not isinstance(fields.get(name), str):
                raise ApiError(400, f"Invalid request: missing {name} parameter")
        filename = (upload.filename if upload else None) or "file.txt"
        suffix = files.extension(filename)
        raw = await upload.read() if upload else str(fields["file"]).encode()
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ApiError(400, "Invalid request: the file is not UTF-8 text") from exc
        if not text.strip():
            raise ApiError(400, "Invalid request: the file has no text")
        if len(text) > self.settings.api_char_limit:
            raise ApiError(
                400,
                f"Invalid request: request ({len(text)}) exceeds text limit"
                f" ({self.settings.api_char_limit})",
            )
        target = self.code(fields["target"], "target")
        source = self.code(fields["source"], "source", auto=True)
        if source == "auto":
            source = (await self.detect(text[: self.settings.max_text_length])).language

        async def piece(part: str) -> str:
            return (await self.translate_one(part, source, target, "basic")).translated_text

        done = await self.documents.file(text, suffix, piece)
        name = files.safe_name(filename, suffix)
        return self.files.put(name, done.encode(), files.FORMATS[suffix]), name

    # -- catalog ---------------------------------------------------------------------------------

    def languages_libre(self) -> list[LibreLanguage]:
        return [
            LibreLanguage(code=code, name=langcodes.Language.get(code).display_name(), targets=t)
            for code, t in self.catalog.targets("basic").items()
        ]

    def languages_049(self) -> dict[str, dict[str, str]]:
        keys = sorted({c for pair in self.catalog.pairs("basic") for c in pair})
        return {"supported_languages": {c: langcodes.Language.get(c).autonym() for c in keys}}

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

    def frontend_settings(self) -> FrontendSettings:
        """LibreTranslate's `/frontend/settings`, for its web page and the clients that read it."""
        source, target = "auto", "en" if "en" in self.known else min(self.known, default="en")
        return FrontendSettings(
            charLimit=self.settings.max_text_length,
            frontendTimeout=500,
            apiKeys=bool(self.settings.api_keys),
            keyRequired=bool(self.settings.api_keys),
            suggestions=False,
            filesTranslation=True,
            supportedFilesFormat=list(files.SUPPORTED),
            language={
                "source": {"code": source, "name": "Auto Detect"},
                "target": {"code": target, "name": langcodes.Language.get(target).display_name()},
            },
        )


def summary(errors: Any) -> str:
    """pydantic's errors in one line: `where: what; ...` (the whole input is the body)."""
    return validation_summary(errors, whole="body")
