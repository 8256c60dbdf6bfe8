"""Settings of the HTTP API (the shim's process serves it; ShimSettings extends these)."""

from __future__ import annotations

from pydantic import Field

from translator.contracts.settings import TranslatorSettings


class ApiSettings(TranslatorSettings):
    http_api_enabled: bool = True  # false: port 8000 serves health and metrics only
    """`false`: port 8000 serves health and metrics only."""
    api_timeout: float = Field(default=30.0, gt=0)  # a translation not back by then: 504
    """Seconds an HTTP request waits for its translation: 504 past it."""
    api_max_batch: int = Field(default=10, ge=1)  # items of /translate/batch, and of a `q` list
    """Items of `/translate/batch`, and texts of a `q` list."""
    api_char_limit: int = Field(default=50_000, ge=1)  # characters of one HTTP request, in all
    """Characters of one HTTP request, all texts together (each text is bounded by `MAX_TEXT_LENGTH`
    too)."""
    # optional API keys (off when empty, as in LibreTranslate): key -> requests per minute
    # (0: no limit), e.g. API_KEYS='{"k3y": 120}'; with keys set, a request without one is 403
    api_keys: dict[str, int] = Field(default_factory=dict)
    """API keys (a JSON object of key to requests per minute, `0`: no limit); off when empty, as in
    LibreTranslate; with keys, a request without one gets 403."""
    # requests per minute of one client address when keys are off (0: no limit)
    api_rate_limit: int = Field(default=0, ge=0)
    """Without keys: requests per minute per client address (`0`: no limit)."""
    # with keys on: requests per minute with a missing or wrong key from one client address;
    # past it, every request from there gets 429 until the bucket refills (key guessing)
    api_key_failures: int = Field(default=10, ge=1)
    """With keys: requests a minute with a missing or wrong key from one client address; past it,
    429 until the bucket refills (key guessing)."""
    # /translate_file: how long a translated file waits for its download (LibreTranslate: 30
    # minutes), and how many bytes of them this process keeps at most (the oldest go first)
    api_file_ttl: float = Field(default=1800.0, gt=0)
    """Seconds a translated file waits for its download (`/translate_file`)."""
    api_file_max_bytes: int = Field(default=64 * 1024 * 1024, ge=1)
    """Bytes of translated files one API process keeps, the oldest dropped first."""
    # CORS: the origins whose browser pages may call the API (LibreTranslate allows any: "*");
    # empty: no CORS headers
    api_cors_origins: tuple[str, ...] = ("*",)
    """Origins whose browser pages may call the API (a JSON list; LibreTranslate allows any:
    `["*"]`); `[]`: no CORS headers."""
