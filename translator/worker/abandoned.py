"""Requests whose workers died holding them. A native engine may abort its process instead of
raising (inference/firefox.py), and a worker may be killed (out of memory): the request it held
is delivered again, at most MAX_DELIVER times. When the last worker that held it died too,
JetStream gives up and says so on the consumer's MAX_DELIVERIES advisory. The pool's workers
listen in one queue group, and one of them gives the request its fate: an error result per
target (`model_failure`, "workers stopped ... translating it"), a dead letter, and the request
removed from its stream. A redelivered request is translated alone (worker.py), so a request
that crashes workers costs its own deliveries, not its batch's."""

from __future__ import annotations

import json
import logging

import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from translator.contracts.addressee import read_addressee
from translator.contracts.errors import code_of_kind
from translator.contracts.settings import TranslatorSettings
from translator.contracts.subjects import (
    DEFAULT_REPLY_SUBJECT,
    HEADER_MSG_ID,
    HEADER_REPLY_TO,
    WORKERS_CONSUMER,
    is_gateway_intake,
    max_deliveries_advisory,
    reply_refusal,
    request_stream,
)
from translator.worker.results import WorkerIdentity, error_results, publish_letter, publish_results
from translator.worker.utilization import Counters

log = logging.getLogger(__name__)


class Abandoned:
    """The pool's MAX_DELIVERIES advisories, answered (one worker of the pool each)."""

    def __init__(
        self, settings: TranslatorSettings, nc: Client, who: WorkerIdentity, counters: Counters
    ) -> None:
        self.settings = settings
        self.nc = nc
        self.who = who
        self.counters = counters

    async def listen(self) -> Subscription:
        subject = max_deliveries_advisory(self.who.pool)
        return await self.nc.subscribe(subject, queue=WORKERS_CONSUMER, cb=self._on_advisory)

    async def _on_advisory(self, msg: Msg) -> None:
        try:
            advisory = json.loads(msg.data)
            sequence = int(advisory["stream_seq"])
            deliveries = int(advisory.get("deliveries") or self.settings.max_deliver)
        except (ValueError, KeyError, TypeError):
            log.warning("unreadable MAX_DELIVERIES advisory: %r", msg.data[:200])
            return
        try:
            await self.bury(sequence, deliveries)
        except (nats.errors.Error, TimeoutError) as exc:  # the next advisory tries again
            log.warning("abandoned request %d: not settled yet (%s)", sequence, exc)

    async def bury(self, sequence: int, deliveries: int) -> None:
        """Error results, a dead letter, and the request at `sequence` deleted; nothing when it
        was settled meanwhile (acked: no longer stored)."""
        stream = request_stream(self.who.pool)
        js = self.nc.jetstream()
        try:
            stored = await js.get_msg(stream, sequence)
        except nats.js.errors.NotFoundError:
            return
        data, headers = stored.data or b"", dict(stored.headers or {})
        to = read_addressee(data, headers.get(HEADER_MSG_ID) or f"{stream}-{sequence}")
        reason = (
            f"the workers translating it stopped {deliveries} times (MAX_DELIVER) without an "
            "answer: a crash (a native engine abort, the memory limit)"
        )
        reply = headers.get(HEADER_REPLY_TO) or DEFAULT_REPLY_SUBJECT
        refused = reply_refusal(reply, via_gateway=is_gateway_intake(stored.subject or ""))
        if to is not None and refused is None:
            results = error_results(to, reason, code_of_kind("model_failure"), self.who)
            await publish_results(self.nc, reply, results)
            for _ in results:
                self.counters.result("model_failure")
        await publish_letter(
            self.nc, self.who.pool, data, headers, sequence, deliveries, reason, to
        )
        self.counters.dead_letter()
        await js.delete_msg(stream, sequence)
        log.error("request %d of %s: %s; dead-lettered", sequence, stream, reason)
