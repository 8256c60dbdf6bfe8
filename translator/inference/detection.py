"""Source-language detection for requests that say `auto`."""

from __future__ import annotations

import threading

from langdetect import DetectorFactory, LangDetectException, detect

from translator.contracts.errors import UnsupportedLanguage

_lock = threading.Lock()
DetectorFactory.seed = 0  # deterministic answers for the same text


def detect_language(text: str) -> str:
    """The ISO 639-1 code of `text`'s language (langdetect's `zh-cn` becomes `zh`)."""
    try:
        with _lock:
            code: str = detect(text)
    except LangDetectException as exc:
        raise UnsupportedLanguage("auto", "language detection", str(exc)) from exc
    return code.split("-")[0].lower()
