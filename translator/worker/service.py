"""The workers as a NATS micro service named `translator`: `$SRV.PING|INFO|STATS` answer (every
worker is an instance, so `nats micro ls` finds them), with two endpoints:

- `detect` on `translate.detect` (queue group `detectors`): which language a text is in;
- `translate` on `translate.rpc`: request-reply translation for core-NATS clients. The request
  (the JSON of `translate.request.<pool>`) is stored in its pool's stream with the caller's
  reply subject as its Translate-Reply-To, so the results (one per target, each with its
  Nats-Msg-Id and `expectedResults`) come back on that reply subject from whichever worker
  translates it. What is known at once (an invalid request, a text too long, a pool full, NATS
  away) comes back the same way, as an error result per target with the Nats-Service-Error
  headers; a request that names no target gets one service error (400). A reply subject the
  caller may not use (reply_refusal) gets nothing, and is counted.

The endpoint only stores the request: its STATS count requests taken, and as errors those
answered with a service error."""

from __future__ import annotations

import logging

import anyio
import nats.errors
from nats.aio.client import Client
from nats.micro import add_service
from nats.micro.request import Request, ServiceError
from nats.micro.service import EndpointConfig, Service, ServiceConfig

from translator import __version__
from translator.bus.client import queue
from translator.contracts.addressee import Addressee, read_addressee
from translator.contracts.errors import (
    ERROR_STATUS,
    InvalidRequest,
    TextTooLong,
    TranslatorError,
)
from translator.contracts.messages import TranslationRequest, decode_request, encode, new_task_id
from translator.contracts.settings import TranslatorSettings
from translator.contracts.subjects import (
    DETECT_QUEUE,
    DETECT_SUBJECT,
    RPC_SUBJECT,
    SERVICE_ERROR,
    SERVICE_ERROR_CODE,
    SERVICE_NAME,
    reply_refusal,
)
from translator.worker.detecting import answer
from translator.worker.results import WorkerIdentity, error_results, publish_results
from translator.worker.utilization import Counters

log = logging.getLogger(__name__)
_SUBMIT_TIMEOUT = 5.0


class TranslatorService:
    def __init__(
        self, settings: TranslatorSettings, nc: Client, who: WorkerIdentity, counters: Counters
    ) -> None:
        self.settings = settings
        self.nc = nc
        self.who = who
        self.counters = counters
        self.service: Service | None = None

    async def start(self) -> None:
        config = ServiceConfig(
            name=SERVICE_NAME,
            version=__version__,
            description="Meeshy translator: translation and language detection",
            metadata={"pool": self.who.pool.value, "worker": self.who.worker_id},
        )
        self.service = await add_service(self.nc, config)
        await self.service.add_endpoint(
            EndpointConfig(name="translate", subject=RPC_SUBJECT, handler=self._translate)
        )
        await self.service.add_endpoint(
            EndpointConfig(
                name="detect",
                subject=DETECT_SUBJECT,
                queue_group=DETECT_QUEUE,
                handler=self._detect,
            )
        )

    async def stop(self) -> None:
        if self.service is not None:
            await self.service.stop()

    # -- translate ---------------------------------------------------------------------------

    async def _translate(self, request: Request) -> None:
        reply = _reply_of(request)
        refusal = "no reply subject" if not reply else reply_refusal(reply, via_gateway=False)
        if refusal is not None:  # nothing is sent there, not even an error
            log.warning("%s: refused a request: %s", RPC_SUBJECT, refusal)
            self.counters.unreadable("reply_refused")
            return
        try:
            asked = decode_request(request.data)
        except InvalidRequest as error:
            await self._refuse(reply, read_addressee(request.data, new_task_id()), error)
            return
        try:
            await self._queue(asked, reply)
        except TranslatorError as error:
            await self._refuse(reply, Addressee.of(asked), error)

    async def _queue(self, asked: TranslationRequest, reply: str) -> None:
        TextTooLong.check(asked.text, self.settings.max_text_length)
        await queue(self.nc, asked, reply, _SUBMIT_TIMEOUT)  # PoolFull, QueueUnavailable

    async def _refuse(self, reply: str, to: Addressee | None, error: TranslatorError) -> None:
        """An error result per target, as a worker would send; a service error without any."""
        if to is None:
            raise ServiceError(str(ERROR_STATUS[error.error_code]), str(error))
        results = error_results(to, str(error), error.error_code, self.who)
        await publish_results(self.nc, reply, results)
        for _ in results:
            self.counters.result(error.kind)

    # -- detect --------------------------------------------------------------------------------

    async def _detect(self, request: Request) -> None:
        settings = self.settings
        found = await anyio.to_thread.run_sync(
            answer, request.data, settings.detect_languages, settings.max_text_length
        )
        headers = None
        if found.status == "error":
            headers = {SERVICE_ERROR: found.error or "detection failed", SERVICE_ERROR_CODE: "400"}
        try:
            await request.respond(encode(found), headers=headers)
        except (nats.errors.Error, ValueError) as exc:  # NATS away, or no reply subject
            log.debug("detection reply not sent: %s", exc)


def _reply_of(request: Request) -> str:
    """The caller's reply subject (nats-py's Request has no public accessor for it)."""
    return str(request._msg.reply or "")
