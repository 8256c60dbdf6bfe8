"""A worker process of one pool: fetch a batch, translate it group by group, publish, ack.

Every message has one fate, decided in `_settle`: `ack` after its results are published,
`nak(delay)` when a retry can help, `term` plus a dead letter when it cannot."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable

import anyio
import psutil
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from translator import engine, heartbeat
from translator.batching import GroupKey, Job, chunks, fetch_batch, group_jobs
from translator.detection import detect_language
from translator.errors import TextTooLong, TranslatorError
from translator.messages import TranslationRequest, WorkerHeartbeat, WorkerState, decode_request
from translator.models import LoadedModel, ModelRegistry
from translator.results import (
    Usage,
    WorkerIdentity,
    build_results,
    error_results,
    publish_dead_letter,
    publish_results,
    reply_subject,
)
from translator.settings import TranslatorSettings
from translator.subjects import HEADER_MSG_ID, WORKERS_CONSUMER, Pool, request_stream
from translator.utilization import Counters, Utilization

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self, settings: TranslatorSettings, pool: Pool, nc: Client, models: ModelRegistry
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.models = models
        self.who = WorkerIdentity.current(pool, os.getpid())
        self.state: WorkerState = "loading"
        self.counters = Counters()
        self.utilization = Utilization(settings.utilization_window)
        self.in_flight = 0
        self._proc = psutil.Process()
        self._proc.cpu_percent(None)
        self._stopping = anyio.Event()
        self._batch_scope: anyio.CancelScope | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    async def load_models(self) -> None:
        for model_type in self.settings.preload_models:
            await anyio.to_thread.run_sync(self.models.get, model_type)

    def stop(self) -> None:
        """Stop fetching; give the batch in hand the grace period to finish."""
        self._stopping.set()
        self.state = "draining"
        if self._batch_scope is not None:
            self._batch_scope.deadline = anyio.current_time() + self.settings.shutdown_grace_period

    async def serve(self) -> None:
        sub = await self.js.pull_subscribe_bind(WORKERS_CONSUMER, request_stream(self.pool))
        self.state = "ready"
        log.info("worker %s serving pool %s", self.who.worker_id, self.pool.value)
        while not self._stopping.is_set():
            batch = await fetch_batch(
                sub,
                self.settings.batch_size,
                self.settings.batch_window,
                self.settings.fetch_timeout,
            )
            if batch:
                await self._run_batch(batch)
        await sub.unsubscribe()

    async def _run_batch(self, batch: list[Msg]) -> None:
        self.in_flight, self.state = len(batch), "busy"
        self.utilization.start()
        settled: set[int] = set()
        with anyio.CancelScope() as scope:
            self._batch_scope = scope
            if self._stopping.is_set():
                scope.deadline = anyio.current_time() + self.settings.shutdown_grace_period
            await self._process(batch, settled)
        self._batch_scope = None
        if scope.cancelled_caught:
            await self._nak_unsettled(batch, settled)
        self.utilization.stop()
        self.counters.batches += 1
        self.in_flight = 0
        self.state = "draining" if self._stopping.is_set() else "ready"

    async def _nak_unsettled(self, batch: list[Msg], settled: set[int]) -> None:
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            for msg in batch:
                if id(msg) not in settled:
                    await msg.nak()
        log.warning(
            "grace period over: %d messages returned to the queue", len(batch) - len(settled)
        )

    # -- one batch -------------------------------------------------------------------------------

    async def _process(self, batch: list[Msg], settled: set[int]) -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._keep_alive, batch, settled)
            jobs = [job for msg in batch if (job := await self._admit(msg, settled))]
            retry = await self._translate(jobs)
            async with anyio.create_task_group() as publishing:
                for job in jobs:
                    fate = self._deliver(job, job in retry)
                    publishing.start_soon(self._settle, job.msg, settled, fate)
            tg.cancel_scope.cancel()

    async def _keep_alive(self, batch: list[Msg], settled: set[int]) -> None:
        """`in_progress` for a long batch, so JetStream does not redeliver it meanwhile."""
        while True:
            await anyio.sleep(max(self.settings.ack_wait / 3, 0.5))
            for msg in batch:
                if id(msg) not in settled:
                    await msg.in_progress()

    async def _admit(self, msg: Msg, settled: set[int]) -> Job | None:
        """Decode and check a request; a bad one is settled here (error + dead letter)."""
        request: TranslationRequest | None = None
        try:
            request = decode_request(msg.data, self._fallback_task_id(msg))
            if len(request.text) > self.settings.max_text_length:
                raise TextTooLong(len(request.text), self.settings.max_text_length)
            source = request.source_language
            if source == "auto":
                source = await anyio.to_thread.run_sync(detect_language, request.text)
            return Job(msg=msg, request=request, source=source)
        except TranslatorError as error:
            await self._settle(msg, settled, self._dead_letter(msg, request, error))
            return None

    def _fallback_task_id(self, msg: Msg) -> str:
        header = (msg.headers or {}).get(HEADER_MSG_ID)
        sequence = msg.metadata.sequence.stream if msg.metadata.sequence else 0
        return header or f"{request_stream(self.pool)}-{sequence}"

    async def _translate(self, jobs: list[Job]) -> set[Job]:
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
                self._fail(members, key, str(exc))
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
        try:
            done = await anyio.to_thread.run_sync(self._generate_sync, loaded, key, texts)
        except (RuntimeError, ValueError, IndexError) as exc:
            log.exception("generate failed for %d texts (%s): %s", len(texts), key, exc)
            self._fail(jobs, key, f"model failure: {exc}")
            return False
        elapsed = time.perf_counter() - started
        for job, translation in zip(jobs, done, strict=True):
            job.translations[key.target] = translation
            job.translation_time += elapsed
            job.model_id = loaded.model_id
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
            job.model_id = job.model_id or self.settings.model_id(key.model_type)

    @staticmethod
    def _fail(jobs: list[Job], key: GroupKey, reason: str) -> None:
        for job in jobs:
            job.errors[key.target] = reason

    # -- fates -------------------------------------------------------------------------------

    def _deliver(self, job: Job, failed: bool) -> Callable[[], Awaitable[None]]:
        """The fate of a translated job: publish + ack, or nak for a retry, or give up."""
        deliveries = job.msg.metadata.num_delivered or 1
        if failed and deliveries < self.settings.max_deliver:

            async def retry() -> None:
                await job.msg.nak(delay=self.settings.retry_delay)
                log.warning("task %s: retry after a model failure", job.request.task_id)

            return retry

        async def publish() -> None:
            results = build_results(job, self.who, self._usage(), job.model_id)
            await publish_results(self.nc, reply_subject(job.msg), results)
            if failed:
                await publish_dead_letter(
                    self.nc, self.pool, job.msg, "retries exhausted", job.request
                )
                await job.msg.term()
            else:
                await job.msg.ack()
            for result in results:
                self.counters.record(result.status == "ok", result.processing_time)

        return publish

    def _dead_letter(
        self,
        msg: Msg,
        request: TranslationRequest | None,
        error: TranslatorError,
    ) -> Callable[[], Awaitable[None]]:
        async def bury() -> None:
            log.warning("rejected message %s: %s", _sequence(msg), error)
            if request is not None:
                results = error_results(request, request.source_language, str(error), self.who)
                await publish_results(self.nc, reply_subject(msg), results)
            await publish_dead_letter(self.nc, self.pool, msg, str(error), request)
            await msg.term()
            self.counters.failed += 1

        return bury

    async def _settle(
        self, msg: Msg, settled: set[int], fate: Callable[[], Awaitable[None]]
    ) -> None:
        """Carry out a message's fate; if publishing fails, hand it back for a retry."""
        try:
            await fate()
        except Exception:  # the one broad except: whatever broke, the message is not lost
            log.exception("message %s: could not settle, handing it back", _sequence(msg))
            with anyio.move_on_after(5):
                await msg.nak(delay=self.settings.retry_delay)
        settled.add(id(msg))

    # -- reporting ---------------------------------------------------------------------------

    def _usage(self) -> Usage:
        memory = self._proc.memory_info().rss / 2**20
        return Usage(round(memory, 1), round(self._proc.cpu_percent(None), 1))

    def heartbeat(self) -> WorkerHeartbeat:
        return WorkerHeartbeat(
            worker_id=self.who.worker_id,
            pool=self.pool.value,
            pid=os.getpid(),
            host=self.who.host,
            state=self.state,
            in_flight=self.in_flight,
            utilization=self.utilization.value(),
            processed=self.counters.processed,
            failed=self.counters.failed,
            batches=self.counters.batches,
            generate_calls=self.counters.generate_calls,
            avg_processing_time=self.counters.avg_processing_time,
            rss_mb=self._usage().memory_mb,
            models=self.models.loaded,
        )

    async def beat_forever(self, bucket: KeyValue) -> None:
        while True:
            await heartbeat.publish(bucket, self.heartbeat())
            await anyio.sleep(self.settings.heartbeat_interval)


def _sequence(msg: Msg) -> int:
    return msg.metadata.sequence.stream if msg.metadata.sequence else 0
