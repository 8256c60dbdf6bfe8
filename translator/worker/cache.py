"""The translation cache: one entry per sentence piece in a NATS KV bucket (no new
infrastructure), keyed by everything that decides the output: model, its revision, engine,
quantization, beams, source, target, the vocabulary map it decoded with (if any) and the
piece's text. An entry made by another model, revision, quantization or vocabulary can never
answer. Best effort: NATS slow or down is a miss, never a failed translation. Pieces that hit
their token budget are not stored (they are incomplete)."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from dataclasses import dataclass

import anyio
import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from translator.bus.buckets import open_bucket
from translator.contracts.settings import TranslatorSettings
from translator.contracts.subjects import CACHE_BUCKET
from translator.inference.engine import Translation
from translator.inference.models import LoadedModel

log = logging.getLogger(__name__)
BUCKET = CACHE_BUCKET
_TIMEOUT = 1.0  # a lookup slower than this is a miss
_OPEN_TIMEOUT = 5.0
_FAILURES = (TimeoutError, nats.errors.Error, nats.js.errors.Error, OSError)


@dataclass(frozen=True)
class Scope:
    """What besides the text decides a translation."""

    model: LoadedModel
    source: str
    target: str
    num_beams: int

    def key(self, text: str) -> str:
        parts: tuple[str, ...] = (
            self.model.model_id, self.model.revision, self.model.engine, self.model.quantization,
            f"beams={self.num_beams}", self.source, self.target, text,
        )  # fmt: skip
        vocabulary = self.model.vocabulary(self.target)
        if vocabulary:  # decoded into a cut vocabulary (the keys of the whole one unchanged)
            parts = (*parts, f"vocabulary={vocabulary}")
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


class TranslationCache:
    def __init__(
        self, settings: TranslatorSettings, js: JetStreamContext, counts: Counter[str]
    ) -> None:
        self.settings = settings
        self.js = js
        self.enabled = settings.cache_enabled
        self.counts = counts  # hits, misses, bytes_written, errors: the worker's counters
        self.counts.update(dict.fromkeys(("hits", "misses", "bytes_written", "errors"), 0))
        self._kv: KeyValue | None = None

    async def _bucket(self) -> KeyValue:
        """The bucket, opened once; within a few seconds, or the caller counts a miss (a batch
        in hand never waits on an unreachable NATS for the cache's sake)."""
        if self._kv is None:
            with anyio.fail_after(_OPEN_TIMEOUT):
                self._kv = await open_bucket(self.js, BUCKET)
        return self._kv

    async def lookup(self, scope: Scope, texts: list[str]) -> dict[str, Translation]:
        """The cached translations among `texts` (distinct), by text."""
        if not self.enabled or scope.model.echo or not texts:
            return {}
        found: dict[str, Translation] = {}
        try:
            kv = await self._bucket()
        except _FAILURES as exc:
            self._failed("open", exc, len(texts))
            self.counts["misses"] += len(texts)
            return {}

        async def one(text: str) -> None:
            try:
                with anyio.fail_after(_TIMEOUT):
                    entry = await kv.get(scope.key(text))
            except nats.js.errors.KeyNotFoundError:
                return
            except _FAILURES as exc:
                self._failed("get", exc)
                return
            try:
                stored = json.loads(entry.value or b"")
                found[text] = Translation(str(stored["t"]), float(stored["c"]))
            except (ValueError, KeyError, TypeError) as exc:  # not an entry of ours: a miss
                self._failed("read", exc)

        async with anyio.create_task_group() as tg:
            for text in texts:
                tg.start_soon(one, text)
        self.counts["hits"] += len(found)
        self.counts["misses"] += len(texts) - len(found)
        return found

    async def store(self, scope: Scope, done: dict[str, Translation]) -> None:
        """Keep the complete translations of `done` (by source text)."""
        if not self.enabled or scope.model.echo:
            return
        try:
            kv = await self._bucket()
        except _FAILURES as exc:
            self._failed("open", exc)
            return

        async def one(text: str, translation: Translation) -> None:
            value = json.dumps({"t": translation.text, "c": translation.confidence}).encode()
            try:
                with anyio.fail_after(_TIMEOUT):
                    await kv.put(scope.key(text), value)
            except _FAILURES as exc:
                self._failed("put", exc)
                return
            self.counts["bytes_written"] += len(value)

        async with anyio.create_task_group() as tg:
            for text, translation in done.items():
                if not translation.at_budget:
                    tg.start_soon(one, text, translation)

    def _failed(self, what: str, exc: BaseException, n: int = 1) -> None:
        self.counts["errors"] += n
        log.debug("translation cache %s failed: %r", what, exc)
