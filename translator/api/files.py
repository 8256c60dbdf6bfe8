"""LibreTranslate's file translation: `POST /translate_file` (multipart: `file`, `source`,
`target`, `api_key`) answers `{"translatedFileUrl": ".../download_file/<id>.<name>"}`, and
`GET /download_file/<id>.<name>` serves the translated file.

Formats: `.txt` (UTF-8 text: cut into blocks of at most MAX_TEXT_LENGTH characters at line
breaks, each block a translation request, its layout kept) and `.html` / `.htm` (the text nodes
translated and the markup kept, as `format=html`: their text in the same blocks, markup.py).
Either way a file is a bounded number of requests: its characters (at most API_CHAR_LIMIT) over
MAX_TEXT_LENGTH, never one per line or node. LibreTranslate's other formats (.docx,
.pptx, .odt, .epub, .srt, .pdf) need a reader and a writer each, which this service does not
carry: they are refused with a clear reason. A file's text counts against API_CHAR_LIMIT.

Translated files are kept in this process's memory for API_FILE_TTL seconds (LibreTranslate
keeps them on its disk for 30 minutes), at most API_FILE_MAX_BYTES together, the oldest going
first: with several API processes behind one address, a download must reach the one that
translated, as with LibreTranslate."""

from __future__ import annotations

import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import PurePosixPath

import anyio

from translator.api import markup, together
from translator.api.errors import ApiError

FORMATS = {".txt": "text/plain; charset=utf-8", ".html": "text/html; charset=utf-8"}
FORMATS[".htm"] = FORMATS[".html"]
SUPPORTED = (".txt", ".html")  # as /frontend/settings lists them
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
Translate = Callable[[str], Awaitable[str]]


def extension(filename: str) -> str:
    """The format of an upload by its name; `.txt` for a name without one (a plain text part).
    ApiError(400) for a format this service cannot write back."""
    suffix = PurePosixPath(filename).suffix.lower()
    if not suffix:
        return ".txt"
    if suffix not in FORMATS:
        raise ApiError(
            400, f"Invalid request: file format not supported ({suffix}; supported: .txt, .html)"
        )
    return suffix


def safe_name(filename: str, suffix: str) -> str:
    stem = _UNSAFE.sub("_", PurePosixPath(filename or "file").stem).strip("._")[:80] or "file"
    return f"{stem}{suffix}"


def blocks(text: str, limit: int) -> list[str]:
    """`text` cut into pieces of at most `limit` characters, at line breaks where it can be (a
    longer line at its last space, else anywhere); joined, they are `text` again."""
    pieces: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line) > limit:
            cut = line.rfind(" ", 1, limit) + 1 or limit
            pieces += [current] if current else []
            pieces.append(line[:cut])
            current, line = "", line[cut:]
        if len(current) + len(line) > limit:
            pieces.append(current)
            current = ""
        current += line
    return [*pieces, current] if current else pieces


async def translate_text(text: str, limit: int, translate: Translate) -> str:
    """Each block's text translated, its surrounding whitespace kept; blank blocks as they are."""
    parts = blocks(text, limit)
    done = list(parts)

    async def one(index: int, part: str) -> None:
        if part.strip():
            lead, tail = part[: len(part) - len(part.lstrip())], part[len(part.rstrip()) :]
            done[index] = lead + await translate(part.strip()) + tail

    await together.each(parts, one)
    return "".join(done)


class Documents:
    """Documents translated in blocks of at most `limit` characters. An HTML document's parsing
    and rebuilding (markup.py) run in a worker process, one document at a time: in a thread of
    this process they would compete with the event loop for the interpreter, and their trees'
    garbage collection would stall it (measured: 100-250 ms under the worst documents)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._cpu = anyio.CapacityLimiter(1)

    async def html(self, html: str, translate: Translate) -> str:
        text = await anyio.to_process.run_sync(markup.text_of, html, limiter=self._cpu)
        translated = await translate_text(text, self.limit, translate)
        return await anyio.to_process.run_sync(
            markup.rebuild_html, html, translated, limiter=self._cpu
        )

    async def file(self, text: str, suffix: str, translate: Translate) -> str:
        if suffix == ".txt":
            return await translate_text(text, self.limit, translate)
        return await self.html(text, translate)


@dataclass(frozen=True)
class StoredFile:
    name: str  # what the client downloads it as
    data: bytes
    media_type: str
    expires: float


class FileStore:
    """Translated files by id, for `ttl` seconds, at most `max_bytes` together."""

    def __init__(self, ttl: float, max_bytes: int) -> None:
        self.ttl = ttl
        self.max_bytes = max_bytes
        self._files: OrderedDict[str, StoredFile] = OrderedDict()
        self._bytes = 0

    def put(self, name: str, data: bytes, media_type: str) -> str:
        """Keep a file; its id (`<hex>.<name>`, as LibreTranslate's `<uuid>.<name>`)."""
        self._expire()
        if len(data) > self.max_bytes:
            raise ApiError(400, "Invalid request: the translated file is too large to keep")
        while self._files and self._bytes + len(data) > self.max_bytes:
            self._drop(next(iter(self._files)))
        key = f"{uuid.uuid4().hex}.{name}"
        self._files[key] = StoredFile(name, data, media_type, time.monotonic() + self.ttl)
        self._bytes += len(data)
        return key

    def get(self, key: str) -> StoredFile | None:
        self._expire()
        return self._files.get(key)

    def _expire(self) -> None:
        now = time.monotonic()
        while self._files and next(iter(self._files.values())).expires <= now:
            self._drop(next(iter(self._files)))

    def _drop(self, key: str) -> None:
        self._bytes -= len(self._files.pop(key).data)
