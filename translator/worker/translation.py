"""The translation stage of a batch. For each (model, source, target) group: the model is
routed (a tier that cannot do the pair falls back to the next one), every message's plan is
fitted to the model's input, the pieces of all the group's messages are looked up in the cache,
the rest are deduplicated, sorted by length and translated in one generate() per chunk of
BATCH_SIZE pieces (in a thread), then each message is put back together."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace

import anyio

from translator.contracts.errors import TranslatorError, error_kind
from translator.contracts.settings import TranslatorSettings
from translator.inference import engine, generation
from translator.inference.models import LoadedModel, ModelRegistry, model_name
from translator.inference.routing import Route, route
from translator.text import numbers
from translator.text.plan import Plan, whole
from translator.worker.cache import Scope, TranslationCache
from translator.worker.jobs import GroupKey, Job, PieceCounts, chunks, group_jobs
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
        cache: TranslationCache,
    ) -> None:
        self.settings = settings
        self.models = models
        self.counters = counters
        self.spans = spans
        self.cache = cache
        self._apart = False

    async def load_models(self) -> None:
        """The preloaded models; cancelling abandons the thread inside `from_pretrained`."""
        for model_type in self.settings.preload_models:
            await anyio.to_thread.run_sync(self.models.get, model_type, abandon_on_cancel=True)

    async def translate(self, jobs: list[Job], apart: bool = False) -> set[Job]:
        """Fill each job's outcomes; return the jobs hit by a failure a retry may fix.
        `apart`: a native engine runs in a child process (a redelivered request, which may be
        the one that aborted a worker: worker.py)."""
        self._apart = apart
        retry: set[Job] = set()
        for job in jobs:
            if not job.plan.pieces:  # emoji, numbers, a URL: nothing for a model
                self._keep_as_is(job, job.pending_targets)
        for key, members in group_jobs(jobs).items():
            if key.source == key.target:
                for job in members:
                    self._keep_as_is(job, [key.target])
                continue
            try:
                routed = await self._route(key)
            except (TranslatorError, ValueError) as exc:
                _fail(members, key, str(exc), error_kind(exc))
                continue
            if routed.fell_back_from:
                self.counters.fallback(routed.fell_back_from, routed.tier, key.source, key.target)
            if not await self._translate_group(routed, key, members):
                retry.update(members)
        return retry

    def _keep_as_is(self, job: Job, targets: Sequence[str]) -> None:
        """The text is its own translation: same language, or nothing in it to translate; the
        result names the tier's model, as 0.4.9's did."""
        tier = job.request.model_type
        tier_model = model_name(self.settings.model_id(tier))
        for target in targets:
            job.translations[target] = engine.Translation(job.request.text, 1.0)
            job.pieces[target] = PieceCounts(total=len(job.plan.pieces))
            job.models[target] = tier_model
            job.tiers[target] = tier

    async def _route(self, key: GroupKey) -> Route:
        return await anyio.to_thread.run_sync(
            route, self.models, self.settings, key.model_type, key.source, key.target
        )

    async def _translate_group(self, routed: Route, key: GroupKey, jobs: list[Job]) -> bool:
        loaded = routed.loaded
        first = replace(key, target=routed.target or key.target)  # English, through English
        started = time.perf_counter()
        try:
            plans, lengths = await anyio.to_thread.run_sync(self._fit, loaded, first, jobs)
            stage = await self._stage(loaded, first, jobs, lengths)
            if stage is not None and routed.then is not None:
                onward = await self._onward(routed.then, replace(key, source=first.target), jobs,
                                            stage[0])  # fmt: skip
                stage = None if onward is None else (onward, stage[1])
        except ValueError as exc:  # MAX_INPUT_TOKENS leaves no room beside the model's prompt
            _fail(jobs, key, str(exc), error_kind(exc))
            return True  # settled: an error result, which no retry would change
        if stage is None:
            return False
        done, cached = stage
        elapsed = time.perf_counter() - started
        name = loaded.name if routed.then is None else f"{loaded.name} > {routed.then.loaded.name}"
        for job, plan in zip(jobs, plans, strict=True):
            pieces = [done[text] for text in plan.pieces]
            job.translations[key.target] = _assembled(plan, pieces)
            job.pieces[key.target] = PieceCounts(
                total=len(pieces),
                cached=sum(1 for text in plan.pieces if text in cached),
                at_budget=sum(1 for piece in pieces if piece.at_budget),
                fell_back_from=routed.fell_back_from or "",
                pivot=routed.target or "",
            )
            job.models[key.target] = name
            # the tier that translated (a pair model serves the tier asked for)
            job.tiers[key.target] = key.model_type if routed.tier == "pair" else routed.tier
            job.translation_time += elapsed
        return True

    async def _stage(
        self, loaded: LoadedModel, key: GroupKey, jobs: list[Job], lengths: dict[str, int]
    ) -> tuple[dict[str, engine.Translation], set[str]] | None:
        """Every distinct piece translated (the cache first, the rest by length in chunks of
        BATCH_SIZE), and the pieces the cache answered; None when the model failed."""
        texts = list(lengths)
        scope = Scope(loaded, key.source, key.target, self.settings.num_beams)
        with self.counters.stage("cache_lookup"):
            done = await self.cache.lookup(scope, texts)
        cached = set(done)
        misses = sorted((t for t in texts if t not in done), key=lambda t: lengths[t])
        for chunk in chunks(misses, self.settings.batch_size):
            translated = await self._generate(loaded, key, jobs, chunk)
            if translated is None:
                return None
            for text, out in zip(chunk, translated, strict=True):
                done[text] = replace(out, text=numbers.restore(text, out.text))
        with self.counters.stage("cache_store"):
            await self.cache.store(scope, {text: done[text] for text in misses})
        return done, cached

    async def _onward(
        self,
        routed: Route,
        key: GroupKey,
        jobs: list[Job],
        english: dict[str, engine.Translation],
    ) -> dict[str, engine.Translation] | None:
        """The second half through English: each English piece fitted to the second model,
        translated, put back together; None when the model failed."""
        count, limit = await anyio.to_thread.run_sync(
            engine.piece_limit, routed.loaded, key.source, key.target,
            self.settings.max_input_tokens,
        )  # fmt: skip
        plans = {text: whole(done.text).fitted(count, limit) for text, done in english.items()}
        lengths = {piece: count(piece) for plan in plans.values() for piece in plan.pieces}
        stage = await self._stage(routed.loaded, key, jobs, lengths)
        if stage is None:
            return None
        onward = {}
        for text, plan in plans.items():
            second = _assembled(plan, [stage[0][piece] for piece in plan.pieces])
            first = english[text]
            onward[text] = engine.Translation(
                second.text,
                min(first.confidence, second.confidence),
                first.at_budget or second.at_budget,
                first.looped or second.looped,
            )
        return onward

    def _fit(
        self, loaded: LoadedModel, key: GroupKey, jobs: list[Job]
    ) -> tuple[list[Plan], dict[str, int]]:
        """Each job's plan cut to the model's input, and every distinct piece's token count."""
        count, limit = engine.piece_limit(
            loaded, key.source, key.target, self.settings.max_input_tokens
        )
        plans = [job.plan.fitted(count, limit) for job in jobs]
        lengths: dict[str, int] = {}
        for plan in plans:
            for text in plan.pieces:
                if text not in lengths:
                    lengths[text] = count(text)
        return plans, lengths

    async def _generate(
        self, loaded: LoadedModel, key: GroupKey, jobs: list[Job], texts: list[str]
    ) -> list[engine.Translation] | None:
        with self.spans.generate(loaded, key, jobs), self.counters.stage("generate"):
            try:
                return await anyio.to_thread.run_sync(self._generate_sync, loaded, key, texts)
            except (RuntimeError, ValueError, IndexError) as exc:
                log.exception("generate failed for %d pieces (%s): %s", len(texts), key, exc)
                mark_failed(str(exc), exc)
                _fail(jobs, key, f"model failure: {exc}", "model_failure")
                return None

    def _generate_sync(
        self, loaded: LoadedModel, key: GroupKey, texts: list[str]
    ) -> list[engine.Translation]:
        self.counters.generate_calls += 1
        s = self.settings
        ceiling = engine.ceiling(loaded, s.max_new_tokens)
        budget = generation.Budget(s.generation_ratio, min(s.generation_floor, ceiling), ceiling)
        return engine.translate(
            loaded,
            texts,
            key.source,
            key.target,
            budget=budget,
            repetition_limit=self.settings.repetition_limit,
            num_beams=self.settings.num_beams,
            apart=self._apart,
        )


def _assembled(plan: Plan, pieces: Sequence[engine.Translation]) -> engine.Translation:
    """The message put back together; its confidence the pieces', weighted by their length."""
    text = plan.assemble([piece.text for piece in pieces])
    weights = [len(source) for source in plan.pieces]
    total = sum(weights)
    confidence = (
        round(sum(p.confidence * w for p, w in zip(pieces, weights, strict=True)) / total, 4)
        if total
        else 1.0
    )
    return engine.Translation(
        text,
        confidence,
        at_budget=any(p.at_budget for p in pieces),
        looped=any(p.looped for p in pieces),
    )


def _fail(jobs: list[Job], key: GroupKey, reason: str, kind: str) -> None:
    for job in jobs:
        job.errors[key.target] = reason
        job.error_kinds[key.target] = kind
