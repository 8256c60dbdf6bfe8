"""A worker process of one pool: fetch a batch, admit each request, translate the batch group
by group, then carry out each message's fate (`fates.py`).

The stages live in their own modules: `translation.py` (generate() per group), `fates.py` (ack,
nak, term and dead letters), `spans.py` (tracing), `reporting.py` (heartbeats)."""

from __future__ import annotations

import logging
import os
import time

import anyio
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from translator.bus.fetching import fetch_batch, log_refusal
from translator.contracts.addressee import Addressee, read_addressee
from translator.contracts.errors import ModelUnavailable, TextTooLong, TranslatorError
from translator.contracts.messages import TranslationRequest, decode_request
from translator.contracts.settings import TranslatorSettings
from translator.contracts.subjects import (
    HEADER_MSG_ID,
    WORKERS_CONSUMER,
    Pool,
    is_gateway_intake,
    reply_refusal,
    request_stream,
)
from translator.inference.detection import detect_language
from translator.inference.languages import key_of
from translator.inference.models import ModelRegistry
from translator.text import plan
from translator.worker.abandoned import Abandoned
from translator.worker.cache import TranslationCache
from translator.worker.fates import Fates
from translator.worker.jobs import Job, source_key, targets_of
from translator.worker.reporting import Reporter, WorkerStatus
from translator.worker.results import WorkerIdentity, reply_subject
from translator.worker.spans import MessageSpans
from translator.worker.translation import BatchTranslator
from translator.worker.utilization import Utilization

log = logging.getLogger(__name__)


class Worker:
    def __init__(
        self, settings: TranslatorSettings, pool: Pool, nc: Client, models: ModelRegistry
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.js: JetStreamContext = nc.jetstream()
        self.who = WorkerIdentity.current(pool, os.getpid(), settings.host_name)
        self.status = WorkerStatus(Utilization(settings.utilization_window))
        self.reporter = Reporter(self.who, self.status, models, settings.heartbeat_interval)
        self.spans = MessageSpans(pool, self.who.worker_id)
        counters = self.status.counters
        cache = TranslationCache(settings, self.js, counters.cache)
        self.translator = BatchTranslator(settings, models, counters, self.spans, cache)
        self.fates = Fates(settings, nc, self.who, counters, self.spans, self.reporter.usage)
        self.abandoned = Abandoned(settings, nc, self.who, counters)
        self._stopping = anyio.Event()
        self._batch_scope: anyio.CancelScope | None = None
        self._load_scope: anyio.CancelScope | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    async def load_models(self) -> bool:
        """Load the preloaded models; False when stopped first. A model that cannot be had
        (ModelUnavailable) puts the worker in state `unavailable` and is tried again, with a
        delay that doubles up to MODEL_RETRY_MAX, unless the pair table names models (the
        bundled Firefox Translations ones: a fresh offline machine serves en<->pt); a stop ends
        the wait, or the load, at once (a load's thread is abandoned: see
        `signals.exit_without_threads`)."""
        delay = self.settings.model_retry_initial
        with anyio.CancelScope() as self._load_scope:
            while not self._stopping.is_set():
                try:
                    await self.translator.load_models()
                except ModelUnavailable as exc:
                    if self.settings.pair_table():  # the pair table's models still translate
                        log.error(
                            "%s; serving the pair table's models (%s), other pairs get an error "
                            "result", exc, ", ".join(sorted(self.settings.pair_table())),
                        )  # fmt: skip
                        return True
                    self.status.state, self.status.unavailable = "unavailable", str(exc)
                    log.error("%s (next try in %.0fs)", exc, delay)
                    await anyio.sleep(delay)
                    delay = min(delay * 2, self.settings.model_retry_max)
                    continue
                self.status.unavailable = ""
                return True
        return False

    def stop(self) -> None:
        """Stop fetching; give the batch in hand the grace period to finish; end a model load
        or the wait before its next try at once."""
        self._stopping.set()
        self.status.state = "draining"
        if self._load_scope is not None:
            self._load_scope.cancel()
        if self._batch_scope is not None:
            self._batch_scope.deadline = anyio.current_time() + self.settings.shutdown_grace_period

    async def serve(self) -> None:
        sub = await self.js.pull_subscribe_bind(WORKERS_CONSUMER, request_stream(self.pool))
        advisories = await self.abandoned.listen()
        self.status.state = "ready"
        log.info("worker %s serving pool %s", self.who.worker_id, self.pool.value)
        counters = self.status.counters
        while not self._stopping.is_set():
            started = time.perf_counter()
            batch = await fetch_batch(
                sub,
                self.settings.batch_size,
                self.settings.batch_window,
                self.settings.fetch_timeout,
                self._foreign,
            )
            if batch:  # an empty fetch is idle time, not a stage of a batch
                counters.add_stage("fetch", time.perf_counter() - started)
                await self._run_batch(batch)
        await advisories.unsubscribe()
        await sub.unsubscribe()

    def _foreign(self, msg: Msg, why: str) -> None:
        """Not a request of this pool's consumer: counted, logged, dropped (docs/SECURITY.md)."""
        self.status.counters.unreadable("foreign_message")
        log_refusal(msg, why)

    async def _run_batch(self, batch: list[Msg]) -> None:
        status = self.status
        status.in_flight, status.state = len(batch), "busy"
        status.utilization.start()
        settled: set[int] = set()
        with anyio.CancelScope() as scope:
            self._batch_scope = scope
            if self._stopping.is_set():
                scope.deadline = anyio.current_time() + self.settings.shutdown_grace_period
            for part in _isolated(batch):
                await self._process(part, batch, settled)
        self._batch_scope = None
        if scope.cancelled_caught:
            await self.fates.hand_back(batch, settled)
        status.utilization.stop()
        status.counters.batches += 1
        status.in_flight = 0
        status.state = "draining" if self._stopping.is_set() else "ready"

    # -- one batch -------------------------------------------------------------------------------

    async def _process(self, batch: list[Msg], held: list[Msg], settled: set[int]) -> None:
        """One part of the fetched messages (`held`, all kept in progress meanwhile)."""
        for msg in batch:
            self.spans.open(msg)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._keep_alive, held, settled)
            counters = self.status.counters
            with counters.stage("admit"):
                jobs = [job for msg in batch if (job := await self._admit(msg, settled))]
            redelivered = any((msg.metadata.num_delivered or 1) > 1 for msg in batch)
            retry = await self.translator.translate(jobs, apart=redelivered)
            with counters.stage("settle"):
                await self._settle(jobs, retry, settled)
            tg.cancel_scope.cancel()

    async def _settle(self, jobs: list[Job], retry: set[Job], settled: set[int]) -> None:
        async with anyio.create_task_group() as publishing:
            for job in jobs:
                fate = self.fates.deliver(job, job in retry)
                publishing.start_soon(self.fates.settle, job.msg, settled, fate)

    async def _keep_alive(self, batch: list[Msg], settled: set[int]) -> None:
        """`in_progress` for a long batch, so JetStream does not redeliver it meanwhile."""
        while True:
            await anyio.sleep(max(self.settings.ack_wait / 3, 0.5))
            for msg in batch:
                if id(msg) not in settled:
                    await msg.in_progress()

    async def _admit(self, msg: Msg, settled: set[int]) -> Job | None:
        """Check where its results go, decode and check a request; a bad one is settled here
        (error results when it names targets, a dead letter)."""
        request: TranslationRequest | None = None
        refusal = reply_refusal(reply_subject(msg), via_gateway=is_gateway_intake(msg.subject))
        if refusal is not None:
            await self.fates.settle(msg, settled, self.fates.refuse(msg, refusal, self._to(msg)))
            return None
        try:
            request = decode_request(msg.data, self._fallback_task_id(msg))
            self.spans.describe(msg, request)
            TextTooLong.check(request.text, self.settings.max_text_length)
            source = source_key(request.source_language)
            text_plan = await anyio.to_thread.run_sync(self._plan, request.text, source)
            if source == "auto" and text_plan.pieces:  # nothing to translate: nothing to detect
                found = await anyio.to_thread.run_sync(
                    detect_language, " ".join(text_plan.pieces), self.settings.detect_languages
                )
                source = key_of(found)
                text_plan = await anyio.to_thread.run_sync(self._plan, request.text, source)
            return targets_of(Job(msg=msg, request=request, source=source, plan=text_plan))
        except TranslatorError as error:
            to = Addressee.of(request) if request else self._to(msg)
            await self.fates.settle(msg, settled, self.fates.reject(msg, to, error))
            return None

    def _to(self, msg: Msg) -> Addressee | None:
        """Who an invalid request's error results go to, if it says."""
        return read_addressee(msg.data, self._fallback_task_id(msg))

    def _plan(self, text: str, source: str) -> plan.Plan:
        """The text's plan; its sentences cut by the rules of the source's base language."""
        base = source.split("-")[0]
        return plan.build(text, base) if self.settings.text_plan else plan.whole(text)

    def _fallback_task_id(self, msg: Msg) -> str:
        header = (msg.headers or {}).get(HEADER_MSG_ID)
        sequence = msg.metadata.sequence.stream if msg.metadata.sequence else 0
        return header or f"{request_stream(self.pool)}-{sequence}"


def _isolated(batch: list[Msg]) -> list[list[Msg]]:
    """The first deliveries together, then each redelivered request alone: a request whose
    worker died holding it (abandoned.py) may be the one that kills workers, and must not take
    a whole batch down with it again (a native engine translates it in a child process)."""
    fresh = [msg for msg in batch if (msg.metadata.num_delivered or 1) <= 1]
    again = [[msg] for msg in batch if (msg.metadata.num_delivered or 1) > 1]
    return [fresh, *again] if fresh else again
