"""Language detection on short chat lines: lingua (the service's detector, restricted to
DETECT_LANGUAGES) against langdetect (the one before it), on `bench/data/chat_lines.tsv`: 320
lines written for this benchmark, 40 in each of 8 languages, 1 to 9 words each.

    python -m bench.detection

Accuracy per language, the time per line, and the process's memory after each detector loaded."""

from __future__ import annotations

import csv
import json
import time
from collections import Counter, defaultdict
from pathlib import Path

import psutil

from bench.common import machine
from translator.contracts.settings import TranslatorSettings
from translator.inference.detection import detect_language

DATA = Path(__file__).parent / "data" / "chat_lines.tsv"


def lines() -> list[tuple[str, str]]:
    with DATA.open(encoding="utf-8") as f:
        return [(row["language"], row["line"]) for row in csv.DictReader(f, delimiter="\t")]


def langdetect_language(text: str) -> str:
    from langdetect import DetectorFactory, LangDetectException, detect

    DetectorFactory.seed = 0
    try:
        return str(detect(text)).split("-")[0]
    except LangDetectException:
        return "?"


def langdetect_among(languages: tuple[str, ...]) -> object:
    """langdetect's most probable answer among `languages` (it cannot be restricted itself)."""
    from langdetect import DetectorFactory, LangDetectException, detect_langs

    def detect(text: str) -> str:
        DetectorFactory.seed = 0
        try:
            ranked = detect_langs(text)
        except LangDetectException:
            return "?"
        allowed = [str(r.lang).split("-")[0] for r in ranked]
        return next((code for code in allowed if code in languages), "?")

    return detect


def run(name: str, detect: object, data: list[tuple[str, str]]) -> dict[str, object]:
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    confusions: dict[str, Counter[str]] = defaultdict(Counter)
    started = time.perf_counter()
    for language, line in data:
        try:
            found = detect(line)  # type: ignore[operator]
        except Exception:  # the service's detector refuses a line it cannot place
            found = "?"
        total[language] += 1
        if found == language:
            right[language] += 1
        else:
            confusions[language][found] += 1
    elapsed = time.perf_counter() - started
    return {
        "detector": name,
        "accuracy": round(sum(right.values()) / len(data), 3),
        "per_language": {lang: round(right[lang] / total[lang], 3) for lang in sorted(total)},
        "most_common_mistakes": {
            lang: confusions[lang].most_common(2) for lang in sorted(confusions)
        },
        "ms_per_line": round(elapsed * 1000 / len(data), 3),
        "rss_mb_after": round(psutil.Process().memory_info().rss / 2**20),
    }


def main() -> None:
    data = lines()
    languages = TranslatorSettings().detect_languages
    results = [
        run("langdetect (55 languages)", langdetect_language, data),
        run(
            f"langdetect, best answer among the {len(languages)} DETECT_LANGUAGES",
            langdetect_among(languages),
            data,
        ),
        run(
            f"lingua ({len(languages)} DETECT_LANGUAGES)",
            lambda text: detect_language(text, languages),
            data,
        ),
    ]
    print(json.dumps({"machine": machine(), "lines": len(data), "results": results}, indent=2))


if __name__ == "__main__":
    main()
