"""The request and response bodies of the HTTP API: the 0.4.9 translator's (snake_case) and
LibreTranslate's (`q`, `source`, `target`, `translatedText`)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from translator.contracts.messages import ModelType, not_blank

# Python's whitespace (str.isspace), as a character class: a text must hold something else
WHITESPACE = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_BLANK = f"[^{WHITESPACE}]"  # an unanchored JSON Schema pattern: not blank


class Translate049(BaseModel):
    """POST /translate (and each item of /translate/batch), as 0.4.9 took it."""

    model_config = ConfigDict(extra="ignore")
    text: str = Field(min_length=1)
    source_language: str = "auto"
    target_language: str
    model_type: ModelType = "basic"

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        return not_blank(value)


class Translated049(BaseModel):
    original_text: str
    translated_text: str
    source_language: str
    target_language: str
    model_used: str
    confidence_score: float
    processing_time_ms: int
    from_cache: bool


class BatchItemError(BaseModel):
    error: str
    original_text: str


class BatchResults(BaseModel):
    results: list[Translated049 | BatchItemError]


class LibreTranslate(BaseModel):
    """POST /translate in LibreTranslate's shape (JSON, or a form with the same fields)."""

    model_config = ConfigDict(extra="ignore")
    q: str | list[str]
    source: str = "auto"
    target: str
    format: Literal["text", "html"] = "text"
    api_key: str | None = None
    alternatives: int = Field(default=0, ge=0)

    @field_validator("alternatives", mode="before")
    @classmethod
    def _whole(cls, value: object) -> object:
        """JSON Schema's integers include `2.0`: a whole float is its integer."""
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    def texts(self) -> list[str]:
        return [self.q] if isinstance(self.q, str) else list(self.q)


class DetectedLanguage(BaseModel):
    confidence: float  # 0 to 100, as LibreTranslate gives it
    language: str


class LibreTranslated(BaseModel):
    translatedText: str | list[str]  # noqa: N815 (LibreTranslate's name)
    detectedLanguage: DetectedLanguage | list[DetectedLanguage] | None = None  # noqa: N815
    alternatives: list[str] | list[list[str]] | None = None


class LibreDetect(BaseModel):
    model_config = ConfigDict(extra="ignore")
    q: str
    api_key: str | None = None


class LibreLanguage(BaseModel):
    code: str
    name: str
    targets: list[str]


class LanguageName(BaseModel):
    code: str
    name: str


class FrontendSettings(BaseModel):
    """GET /frontend/settings, LibreTranslate's: what its web page and clients read."""

    charLimit: int  # noqa: N815 (LibreTranslate's names)
    frontendTimeout: int  # noqa: N815
    apiKeys: bool  # noqa: N815
    keyRequired: bool  # noqa: N815
    suggestions: bool
    filesTranslation: bool  # noqa: N815
    supportedFilesFormat: list[str]  # noqa: N815
    language: dict[Literal["source", "target"], LanguageName]


class TranslatedFile(BaseModel):
    translatedFileUrl: str  # noqa: N815


class ErrorBody(BaseModel):
    """Every error: LibreTranslate reads `error`, FastAPI clients `detail`."""

    error: str
    detail: str | list[dict[str, object]]
