"""The API's side of NATS: each translation is a request in its pool's stream, like any other
client's, with its results coming back on this process's own inbox (core NATS: an HTTP client
that is gone has no use for a stored result); a detection is a request-reply to the workers."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import anyio
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from translator.bus.client import queue, why
from translator.contracts.messages import (
    DetectRequest,
    DetectResult,
    ModelType,
    TranslationRequest,
    TranslationResult,
    encode,
    new_task_id,
)
from translator.contracts.subjects import DETECT_SUBJECT

log = logging.getLogger(__name__)


class Unavailable(Exception):
    """Not connected to NATS yet, or no worker answers a detection: 503 (a request NATS does
    not take is QueueUnavailable, as for every intake)."""


@dataclass
class _Waiting:
    targets: tuple[str, ...]
    results: dict[str, TranslationResult] = field(default_factory=dict)
    done: anyio.Event = field(default_factory=anyio.Event)


class Relay:
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._nc: Client | None = None
        self.inbox = ""
        self._waiting: dict[str, _Waiting] = {}
        self._sub: Subscription | None = None
        self.refused = 0  # messages on the inbox that are not results of ours: dropped

    async def start(self, nc: Client) -> None:
        """Once connected (the HTTP server starts first: until then, 503)."""
        self.inbox = nc.new_inbox()
        self._sub = await nc.subscribe(self.inbox, cb=self._on_result)
        self._nc = nc

    @property
    def nc(self) -> Client:
        if self._nc is None:
            raise Unavailable("not connected to NATS yet")
        return self._nc

    async def _on_result(self, msg: Msg) -> None:
        try:
            result = TranslationResult.model_validate_json(msg.data)
        except ValidationError:
            self.refused += 1
            log.warning("a result on the API's inbox that is not one: %r", msg.data[:200])
            return
        waiting = self._waiting.get(result.task_id)
        if waiting is None:  # its HTTP request timed out, or a redelivery's second result
            return
        waiting.results.setdefault(result.target_language, result)
        if len(waiting.results) == len(waiting.targets):
            waiting.done.set()

    async def translate(
        self,
        text: str,
        source: str,
        targets: tuple[str, ...],
        model_type: ModelType,
        conversation_id: str = "",
    ) -> list[TranslationResult]:
        """One result per target, in order. PoolFull when the pool is at capacity,
        QueueUnavailable when NATS does not take the request, TimeoutError past API_TIMEOUT
        (the request stays queued and is translated, its result then dropped)."""
        task_id = new_task_id()
        request = TranslationRequest(
            task_id=task_id,
            message_id=f"http-{task_id}",
            text=text,
            source_language=source,
            target_languages=targets,
            conversation_id=conversation_id,
            model_type=model_type,
        )
        waiting = self._waiting[task_id] = _Waiting(request.target_languages)
        try:
            with anyio.fail_after(self.timeout):
                # the gateway intake: only its NATS user may publish there, and only such a
                # request may name this process's inbox as its Translate-Reply-To
                await queue(self.nc, request, self.inbox, self.timeout, via_gateway=True)
                await waiting.done.wait()
        finally:
            del self._waiting[task_id]
        return [waiting.results[target] for target in request.target_languages]

    async def detect(self, text: str) -> DetectResult:
        """The workers' answer; Unavailable when none answers in time."""
        try:
            reply = await self.nc.request(
                DETECT_SUBJECT, encode(DetectRequest(text=text)), timeout=self.timeout
            )
        except nats.errors.NoRespondersError as exc:
            raise Unavailable("no worker is running to detect the language") from exc
        except (nats.errors.Error, OSError) as exc:
            raise Unavailable(f"language detection did not answer ({why(exc)})") from exc
        return DetectResult.model_validate_json(reply.data)
