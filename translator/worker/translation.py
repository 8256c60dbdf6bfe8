"""The translation stage of a batch: each (model, source, target) group through one
generate() per chunk of `BATCH_SIZE`, in a thread; outcomes land on the jobs."""

from __future__ import annotations

import logging
import time

import anyio

from translator.contracts.errors import TranslatorError, error_kind
from translator.contracts.settings import TranslatorSettings
from translator.inference import engine
from translator.inference.models import LoadedModel, ModelRegistry, model_name
from translator.worker.jobs import GroupKey, Job, chunks, group_jobs
from translator.worker.spans import MessageSpans, mark_failed
from translator.worker.utilization import Counters

log = logging.getLogger(__name__)


class BatchTranslator:
    def __init__(
        self,
        settings: TranslatorSettings,
        models: ModelRegistry,
        counters: Counters,
        spans: MessageSpans,
    ) -> None:
        self.settings = settings
        self.models = models
        self.counters = counters
        self.spans = spans

    async def load_models(self) -> None:
        """The preloaded models; cancelling abandons the thread inside `from_pretrained`."""
        for model_type in self.settings.preload_models:
            await anyio.to_thread.run_sync(self.models.get, model_type, abandon_on_cancel=True)

    async def translate(self, jobs: list[Job]) -> set[Job]:
        """Fill each job's outcomes; return the jobs hit by a failure a retry may fix."""
        retry: set[Job] = set()
        for key, members in group_jobs(jobs).items():
            if key.source == key.target:
                self._keep_as_is(members, key)
                continue
            try:
                loaded = await self._model(key)
                loaded.family.check_pair(key.source, key.target)
            except (TranslatorError, ValueError) as exc:
                _fail(members, key, str(exc), error_kind(exc))
                continue
            for chunk in chunks(members, self.settings.batch_size):
                if not await self._generate(loaded, key, chunk):
                    retry.update(chunk)
        return retry

    async def _model(self, key: GroupKey) -> LoadedModel:
        cached = self.models.cached(key.model_type)
        if cached is not None:
            return cached
        return await anyio.to_thread.run_sync(self.models.get, key.model_type)

    async def _generate(self, loaded: LoadedModel, key: GroupKey, jobs: list[Job]) -> bool:
        texts = [job.request.text for job in jobs]
        started = time.perf_counter()
        with self.spans.generate(loaded, key, jobs):
            try:
                done = await anyio.to_thread.run_sync(self._generate_sync, loaded, key, texts)
            except (RuntimeError, ValueError, IndexError) as exc:
                log.exception("generate failed for %d texts (%s): %s", len(texts), key, exc)
                mark_failed(str(exc), exc)
                _fail(jobs, key, f"model failure: {exc}", "model_failure")
                return False
        elapsed = time.perf_counter() - started
        for job, translation in zip(jobs, done, strict=True):
            job.translations[key.target] = translation
            job.translation_time += elapsed
            job.model_id = loaded.name
        return True

    def _generate_sync(
        self, loaded: LoadedModel, key: GroupKey, texts: list[str]
    ) -> list[engine.Translation]:
        self.counters.generate_calls += 1
        return engine.translate(
            loaded,
            texts,
            key.source,
            key.target,
            max_tokens=self.settings.max_new_tokens,
            num_beams=self.settings.num_beams,
        )

    def _keep_as_is(self, jobs: list[Job], key: GroupKey) -> None:
        """Source and target are the same language: the text is its own translation."""
        for job in jobs:
            job.translations[key.target] = engine.Translation(job.request.text, 1.0)
            job.model_id = job.model_id or model_name(self.settings.model_id(key.model_type))


def _fail(jobs: list[Job], key: GroupKey, reason: str, kind: str) -> None:
    for job in jobs:
        job.errors[key.target] = reason
        job.error_kinds[key.target] = kind
