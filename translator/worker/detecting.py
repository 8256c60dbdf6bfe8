"""The workers' language-detection service: request-reply on DETECT_SUBJECT, one queue group
for every worker of every pool, so that any of them answers (the HTTP API's `/detect` and its
`source=auto`). Detection is lingua's (inference/detection.py), in a thread: the event loop keeps
fetching and heartbeating meanwhile."""

from __future__ import annotations

import logging

import anyio
import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from translator.contracts.errors import InvalidRequest, TextTooLong, TranslatorError
from translator.contracts.messages import Detection, DetectRequest, DetectResult, encode
from translator.contracts.subjects import DETECT_QUEUE, DETECT_SUBJECT
from translator.inference.detection import detect_candidates

log = logging.getLogger(__name__)


def answer(data: bytes, languages: tuple[str, ...], max_length: int) -> DetectResult:
    """The reply to one detection request; bad input is an error reply, never an exception."""
    try:
        request = DetectRequest.model_validate_json(data)
    except ValidationError as exc:
        return DetectResult(status="error", error=str(InvalidRequest(exc.errors()[0]["msg"])))
    if len(request.text) > max_length:
        return DetectResult(status="error", error=str(TextTooLong(len(request.text), max_length)))
    try:
        found = detect_candidates(request.text, languages)
    except (TranslatorError, ValueError) as exc:
        return DetectResult(status="error", error=str(exc))
    return DetectResult(
        status="ok", languages=tuple(Detection(language=c, confidence=v) for c, v in found)
    )


async def serve_detections(nc: Client, languages: tuple[str, ...], max_length: int) -> Subscription:
    """Subscribe to DETECT_SUBJECT; replies go out until the connection drains."""

    async def handle(msg: Msg) -> None:
        if not msg.reply:
            return
        reply = await anyio.to_thread.run_sync(answer, msg.data, languages, max_length)
        try:
            await msg.respond(encode(reply))
        except nats.errors.Error as exc:  # NATS away: the asker times out and says so
            log.debug("detection reply lost: %s", exc)

    return await nc.subscribe(DETECT_SUBJECT, queue=DETECT_QUEUE, cb=handle)
