"""Every message has one fate, decided here: `ack` after its results are published,
`nak(delay)` when a retry can help, `term` plus a dead letter when it cannot (with error results
when it names its targets; none when its reply subject is refused). `settle` carries a fate
out, and is the one place with a broad `except`: a fate that fails hands the message back, so
nothing is lost."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

import anyio
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from opentelemetry import trace

from translator.contracts.addressee import Addressee
from translator.contracts.errors import TranslatorError
from translator.contracts.messages import TranslationResult
from translator.contracts.settings import TranslatorSettings
from translator.runtime import tracing
from translator.worker import spans
from translator.worker.jobs import Job
from translator.worker.results import (
    Usage,
    WorkerIdentity,
    build_results,
    error_results,
    publish_dead_letter,
    publish_results,
    reply_subject,
)
from translator.worker.utilization import Counters

log = logging.getLogger(__name__)
# seconds a fate is tried again while NATS is away before the message is handed back (an
# election of a stream leader takes a few seconds; a reconnect, up to a few more)
SETTLE_PATIENCE = 30.0
Fate = Callable[[], Awaitable[None]]


class Fates:
    def __init__(
        self,
        settings: TranslatorSettings,
        nc: Client,
        who: WorkerIdentity,
        counters: Counters,
        message_spans: spans.MessageSpans,
        usage: Callable[[], Usage],
    ) -> None:
        self.settings = settings
        self.nc = nc
        self.who = who
        self.counters = counters
        self.spans = message_spans
        self.usage = usage
        self._outage_ends: float | None = None  # when NATS has been away SETTLE_PATIENCE

    def deliver(self, job: Job, failed: bool) -> Fate:
        """The fate of a translated job: publish + ack, or nak for a retry, or give up."""
        deliveries = job.msg.metadata.num_delivered or 1
        if failed and deliveries < self.settings.max_deliver:

            async def retry() -> None:
                await job.msg.nak(delay=self.settings.retry_delay)
                log.warning("task %s: retry after a model failure", job.request.task_id)

            return retry

        async def publish() -> None:
            results = build_results(job, self.who, self.usage())
            await self._publish(reply_subject(job.msg), results)
            if failed:
                await self._bury(job.msg, "retries exhausted", Addressee.of(job.request))
            else:
                await job.msg.ack()
            for result in results:
                kind = job.error_kinds.get(result.target_language, "not_translated")
                self.counters.result(kind if result.error else None, result.processing_time)
            self.counters.request(results[0].processing_time, results[0].queue_time)
            errors = sorted({r.error or "" for r in results if r.status == "error"})
            if errors:
                spans.mark_failed("; ".join(errors))

        return publish

    def reject(self, msg: Msg, to: Addressee | None, error: TranslatorError) -> Fate:
        """A request that cannot be translated: an error result per target (when it names
        targets, even if it failed validation), a dead letter and `term`."""

        async def reject() -> None:
            log.warning("rejected message %s: %s", _sequence(msg), error)
            spans.mark_failed(str(error))
            trace.get_current_span().set_attribute("error.type", error.kind)
            if to is not None:
                results = error_results(to, str(error), error.error_code, self.who)
                await self._publish(reply_subject(msg), results)
                for _ in results:
                    self.counters.result(error.kind)
            else:
                self.counters.unreadable(error.kind)
            await self._bury(msg, str(error), to)

        return reject

    def refuse(self, msg: Msg, reason: str, to: Addressee | None) -> Fate:
        """A request whose Translate-Reply-To is not the requester's to use: nothing is
        published there; a dead letter with the reason, counted, and `term`."""

        async def refuse() -> None:
            log.warning("refused message %s: %s", _sequence(msg), reason)
            spans.mark_failed(reason)
            trace.get_current_span().set_attribute("error.type", "reply_refused")
            self.counters.unreadable("reply_refused")
            await self._bury(msg, reason, to)

        return refuse

    async def settle(self, msg: Msg, settled: set[int], fate: Fate) -> None:
        """Carry out a message's fate; if publishing fails, hand it back for a retry."""
        span = self.spans.close(msg)
        with trace.use_span(span, end_on_exit=True):
            try:
                await self._patiently(msg, fate)
            except Exception as exc:  # the one broad except: whatever broke, nothing is lost
                if isinstance(exc, nats.errors.Error | TimeoutError):  # NATS away (an election)
                    log.warning(
                        "message %s: could not settle (%s: %s), handing it back",
                        _sequence(msg), type(exc).__name__, exc,
                    )  # fmt: skip
                else:
                    log.exception("message %s: could not settle, handing it back", _sequence(msg))
                span.set_status(trace.StatusCode.ERROR, f"handed back: {exc!r}")
                with anyio.move_on_after(5):
                    await msg.nak(delay=self.settings.retry_delay)
        settled.add(id(msg))

    async def _patiently(self, msg: Msg, fate: Fate) -> None:
        """`fate()`, tried again while NATS is away (an election, a reconnect), the message kept
        in progress, until SETTLE_PATIENCE seconds after the first failure of this outage (one
        budget for every message: a long outage hands the rest back at once). Handing a message
        back at its first failure would spend one of its MAX_DELIVER deliveries per try: an
        election of the results stream's leader could spend them all, leaving a translated
        request neither answered nor dead-lettered. Trying again is safe: results carry
        Nats-Msg-Id, so a second publish of a stored one is de-duplicated."""
        delay = 0.2
        while True:
            try:
                await fate()
                self._outage_ends = None
                return
            except (nats.errors.Error, TimeoutError) as exc:
                now = anyio.current_time()
                if self._outage_ends is None:
                    self._outage_ends = now + SETTLE_PATIENCE
                if now + delay > self._outage_ends:
                    raise
                log.info(
                    "message %s: could not settle yet (%s), trying again in %.1fs",
                    _sequence(msg), type(exc).__name__, delay,
                )  # fmt: skip
            with contextlib.suppress(Exception):  # reaches the server only once it is back
                await msg.in_progress()
            await anyio.sleep(delay)
            delay = min(delay * 2, 3.0)

    async def hand_back(self, batch: list[Msg], settled: set[int]) -> None:
        """The grace period is over: what is not settled goes back to the queue."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(5):
            for msg in batch:
                if id(msg) not in settled:
                    await msg.nak()
        self.spans.end(batch, "grace period over: returned to the queue")
        log.warning(
            "grace period over: %d messages returned to the queue", len(batch) - len(settled)
        )

    async def _publish(self, subject: str, results: list[TranslationResult]) -> None:
        with spans.send(subject, results):
            await publish_results(self.nc, subject, results, headers=tracing.inject({}))

    async def _bury(self, msg: Msg, reason: str, to: Addressee | None) -> None:
        await publish_dead_letter(self.nc, self.who.pool, msg, reason, to)
        self.counters.dead_letter()
        await msg.term()


def _sequence(msg: Msg) -> int:
    return msg.metadata.sequence.stream if msg.metadata.sequence else 0
