"""Reading a model directory's JSON files (config.json, tokenizer_config.json, model_info.json):
a file that is missing, unreadable or not a JSON object reads as empty, and whoever asks decides
what a missing key means."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_json_object(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}
