"""A worker process of one pool: fetch a batch, translate it group by group, publish, ack.

Every message has one fate, decided in `_settle`: `ack` after its results are published,
`nak(delay)` when a retry can help, `term` plus a dead letter when it cannot."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager

import anyio
import psutil
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.kv import KeyValue
from opentelemetry import trace

from translator import engine, heartbeat, tracing
from translator.batching import GroupKey, Job, chunks, fetch_batch, group_jobs
from translator.detection import detect_language
from translator.errors import TextTooLong, TranslatorError, error_kind
from translator.messages import (
    TranslationRequest,
    TranslationResult,
    WorkerHeartbeat,
    WorkerState,
    decode_request,
)
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
        self._spans: dict[int, tracing.Span] = {}  # id(msg) -> its CONSUMER span

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
        for msg in batch:
            if (span := self._spans.pop(id(msg), None)) is not None:
                tracing.end(span, "grace period over: returned to the queue")
        log.warning(
            "grace period over: %d messages returned to the queue", len(batch) - len(settled)
        )

    # -- one batch -------------------------------------------------------------------------------

    async def _process(self, batch: list[Msg], settled: set[int]) -> None:
        for msg in batch:
            self._spans[id(msg)] = self._consumer_span(msg)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._keep_alive, batch, settled)
            jobs = [job for msg in batch if (job := await self._admit(msg, settled))]
            retry = await self._translate(jobs)
            async with anyio.create_task_group() as publishing:
                for job in jobs:
                    fate = self._deliver(job, job in retry)
                    publishing.start_soon(self._settle, job.msg, settled, fate)
            tg.cancel_scope.cancel()

    def _consumer_span(self, msg: Msg) -> tracing.Span:
        """The request's `process` span, child of the PRODUCER span whose context it carries."""
        headers = msg.headers or {}
        attributes = tracing.messaging("nats", "process", msg.subject, headers.get(HEADER_MSG_ID))
        attributes["messaging.consumer.group.name"] = WORKERS_CONSUMER
        attributes["meeshy.pool"] = self.pool.value
        attributes["meeshy.worker_id"] = self.who.worker_id
        return tracing.tracer().start_span(
            f"process {msg.subject}",
            context=tracing.extract(headers),
            kind=tracing.SpanKind.CONSUMER,
            attributes=attributes,
        )

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
            span = self._spans[id(msg)]
            span.set_attribute("messaging.message.id", request.task_id)
            span.set_attribute("messaging.message.conversation_id", request.conversation_id)
            span.set_attribute("meeshy.message_id", request.message_id)
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
                self._fail(members, key, str(exc), error_kind(exc))
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
        with self._generate_span(loaded, key, jobs):
            try:
                done = await anyio.to_thread.run_sync(self._generate_sync, loaded, key, texts)
            except (RuntimeError, ValueError, IndexError) as exc:
                log.exception("generate failed for %d texts (%s): %s", len(texts), key, exc)
                trace.get_current_span().record_exception(exc)
                trace.get_current_span().set_status(trace.StatusCode.ERROR, str(exc))
                self._fail(jobs, key, f"model failure: {exc}", "model_failure")
                return False
        elapsed = time.perf_counter() - started
        for job, translation in zip(jobs, done, strict=True):
            job.translations[key.target] = translation
            job.translation_time += elapsed
            job.model_id = loaded.model_id
        return True

    def _generate_span(
        self, loaded: LoadedModel, key: GroupKey, jobs: list[Job]
    ) -> AbstractContextManager[trace.Span]:
        """One span per generate() call, linked to the `process` span of every request it
        serves (and the child of that span when it serves one request)."""
        spans = [self._spans[id(job.msg)] for job in jobs if id(job.msg) in self._spans]
        parent = trace.set_span_in_context(spans[0]) if len(spans) == 1 else None
        attributes: dict[str, str | int | bool] = {
            "meeshy.model": loaded.model_id,
            "meeshy.model_family": loaded.family.name,
            "meeshy.quantization": loaded.quantization,
            "meeshy.device": loaded.device,
            "meeshy.random_weights": loaded.random_weights,
            "meeshy.source_language": key.source,
            "meeshy.target_language": key.target,
            "messaging.batch.message_count": len(jobs),
        }
        return tracing.tracer().start_as_current_span(
            f"generate {loaded.model_id}",
            context=parent,
            links=[tracing.Link(span.get_span_context()) for span in spans],
            attributes=attributes,
        )

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
    def _fail(jobs: list[Job], key: GroupKey, reason: str, kind: str) -> None:
        for job in jobs:
            job.errors[key.target] = reason
            job.error_kinds[key.target] = kind

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
            await self._publish_results(reply_subject(job.msg), results)
            if failed:
                await publish_dead_letter(
                    self.nc, self.pool, job.msg, "retries exhausted", job.request
                )
                self.counters.dead_letter()
                await job.msg.term()
            else:
                await job.msg.ack()
            for result in results:
                kind = job.error_kinds.get(result.target_language, "not_translated")
                self.counters.result(kind if result.error else None, result.processing_time)
            self.counters.request(results[0].processing_time, results[0].queue_time)
            errors = sorted({r.error or "" for r in results if r.status == "error"})
            if errors:
                trace.get_current_span().set_status(trace.StatusCode.ERROR, "; ".join(errors))

        return publish

    async def _publish_results(self, subject: str, results: list[TranslationResult]) -> None:
        """A PRODUCER span per request's results; its context travels in their headers."""
        first = results[0]
        attributes: dict[str, str | int] = {
            **tracing.messaging("nats", "send", subject, first.task_id, first.conversation_id),
            "messaging.batch.message_count": len(results),
        }
        with tracing.tracer().start_as_current_span(
            f"send {subject}", kind=tracing.SpanKind.PRODUCER, attributes=attributes
        ):
            await publish_results(self.nc, subject, results, headers=tracing.inject({}))

    def _dead_letter(
        self,
        msg: Msg,
        request: TranslationRequest | None,
        error: TranslatorError,
    ) -> Callable[[], Awaitable[None]]:
        async def bury() -> None:
            log.warning("rejected message %s: %s", _sequence(msg), error)
            trace.get_current_span().set_status(trace.StatusCode.ERROR, str(error))
            trace.get_current_span().set_attribute("error.type", error.kind)
            if request is not None:
                results = error_results(request, request.source_language, str(error), self.who)
                await self._publish_results(reply_subject(msg), results)
                for _ in results:
                    self.counters.result(error.kind)
            else:
                self.counters.unreadable(error.kind)
            await publish_dead_letter(self.nc, self.pool, msg, str(error), request)
            self.counters.dead_letter()
            await msg.term()

        return bury

    async def _settle(
        self, msg: Msg, settled: set[int], fate: Callable[[], Awaitable[None]]
    ) -> None:
        """Carry out a message's fate; if publishing fails, hand it back for a retry."""
        span = self._spans.pop(id(msg), None) or trace.INVALID_SPAN
        with trace.use_span(span, end_on_exit=True):
            try:
                await fate()
            except Exception as exc:  # the one broad except: whatever broke, nothing is lost
                log.exception("message %s: could not settle, handing it back", _sequence(msg))
                span.set_status(trace.StatusCode.ERROR, f"handed back: {exc!r}")
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
            stats=self.counters.stats(self.models.load_seconds),
        )

    async def beat_forever(self, bucket: KeyValue) -> None:
        while True:
            await heartbeat.publish(bucket, self.heartbeat())
            await anyio.sleep(self.settings.heartbeat_interval)


def _sequence(msg: Msg) -> int:
    return msg.metadata.sequence.stream if msg.metadata.sequence else 0
