"""Logging, configured once per process in main(): text or JSON lines (LOG_JSON), each line
with the trace and span ids of the span it was written in, when there is one."""

from __future__ import annotations

import json
import logging
import sys

from opentelemetry import trace


class TraceContext(logging.Filter):
    """Adds `trace_id` and `span_id` (hex; empty outside a span) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        record.trace_id = f"{context.trace_id:032x}" if context.is_valid else ""
        record.span_id = f"{context.span_id:016x}" if context.is_valid else ""
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if trace_id := getattr(record, "trace_id", ""):
            payload["trace_id"] = trace_id
            payload["span_id"] = getattr(record, "span_id", "")
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        trace_id = getattr(record, "trace_id", "")
        span_id = getattr(record, "span_id", "")
        return f"{line} trace_id={trace_id} span_id={span_id}" if trace_id else line


def configure(level: str = "INFO", json_lines: bool = False, name: str = "") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TraceContext())
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        prefix = f"{name} " if name else ""
        pattern = f"%(asctime)s {prefix}%(levelname)s %(name)s: %(message)s"
        handler.setFormatter(TextFormatter(pattern))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    quiet_progress_bars()
    for noisy in ("transformers", "huggingface_hub", "urllib3", "httpx", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def quiet_progress_bars() -> None:
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - transformers is a dependency
        return
    hf_logging.disable_progress_bar()
