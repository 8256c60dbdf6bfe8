"""Publishing results (one per target language) and dead letters.

Results to `translate.result.>` go through JetStream with `Nats-Msg-Id = taskId:lang`, so a
redelivered request cannot duplicate them; any other reply subject (an `_INBOX.`) is core NATS."""

from __future__ import annotations

import time
from dataclasses import dataclass

from nats.aio.client import Client
from nats.aio.msg import Msg

from translator.contracts.messages import (
    DeadLetter,
    TranslationRequest,
    TranslationResult,
    encode,
    peek_message_id,
)
from translator.contracts.subjects import (
    DEFAULT_REPLY_SUBJECT,
    HEADER_MSG_ID,
    HEADER_REPLY_TO,
    Pool,
    dead_letter_subject,
    is_persistent_reply,
    result_msg_id,
)
from translator.worker.jobs import Job, PieceCounts


@dataclass(frozen=True)
class WorkerIdentity:
    pool: Pool
    worker_id: str
    worker_name: str
    host: str

    @classmethod
    def current(cls, pool: Pool, pid: int, host: str) -> WorkerIdentity:
        return cls(pool, f"{host}-{pid}", f"{pool.value}_worker_{pid}", host)


def reply_subject(msg: Msg) -> str:
    return (msg.headers or {}).get(HEADER_REPLY_TO) or DEFAULT_REPLY_SUBJECT


def enqueued_at(msg: Msg) -> float:
    """When JetStream stored the request (seconds since epoch)."""
    stamp = msg.metadata.timestamp
    return stamp.timestamp() if stamp is not None else time.time()


@dataclass(frozen=True)
class Usage:
    memory_mb: float
    cpu_percent: float


def build_results(job: Job, who: WorkerIdentity, usage: Usage) -> list[TranslationResult]:
    now = time.time()
    common = {
        "task_id": job.request.task_id,
        "message_id": job.request.message_id,
        "conversation_id": job.request.conversation_id,
        "source_language": job.source,
        "processing_time": round(time.perf_counter() - job.received, 6),
        "model_type": job.request.model_type,
        "worker_name": who.worker_name,
        "worker_id": who.worker_id,
        "pool_type": who.pool.value,
        "translation_time": round(job.translation_time, 6),
        "queue_time": round(max(now - enqueued_at(job.msg), 0.0), 6),
        "memory_usage": usage.memory_mb,
        "cpu_usage": usage.cpu_percent,
        "processing_node": who.host,
    }
    results = []
    for target in job.request.target_languages:
        done = job.translations.get(target)
        model = job.models.get(target, "")
        if done is not None:
            pieces = job.pieces.get(target, PieceCounts())
            extra = {
                "translated_text": done.text, "confidence_score": done.confidence,
                "pieces": pieces.total, "pieces_cached": pieces.cached,
                "pieces_at_budget": pieces.at_budget, "fell_back_from": pieces.fell_back_from,
            }  # fmt: skip
            results.append(
                TranslationResult(
                    **common, status="ok", target_language=target, translator_model=model, **extra
                )
            )
        else:
            error = job.errors.get(target, "not translated")
            results.append(
                TranslationResult(
                    **common,
                    status="error",
                    error=error,
                    target_language=target,
                    translator_model=model,
                )
            )
    return results


def error_results(
    request: TranslationRequest, source: str, reason: str, who: WorkerIdentity
) -> list[TranslationResult]:
    """One error result per target language of a request that cannot be translated."""
    return [
        TranslationResult(
            task_id=request.task_id,
            message_id=request.message_id,
            conversation_id=request.conversation_id,
            status="error",
            error=reason,
            source_language=source,
            target_language=target,
            model_type=request.model_type,
            worker_name=who.worker_name,
            worker_id=who.worker_id,
            pool_type=who.pool.value,
            processing_node=who.host,
        )
        for target in request.target_languages
    ]


async def publish_results(
    nc: Client,
    subject: str,
    results: list[TranslationResult],
    timeout: float = 5.0,
    headers: dict[str, str] | None = None,
) -> None:
    """Publish every result; raise if JetStream did not store one of them."""
    if not is_persistent_reply(subject):
        for result in results:
            await nc.publish(subject, encode(result), headers=headers or None)
        await nc.flush(timeout=timeout)
        return
    js = nc.jetstream()
    for result in results:
        msg_id = result_msg_id(result.task_id, result.target_language)
        extra = {**(headers or {}), HEADER_MSG_ID: msg_id}
        await js.publish(subject, encode(result), timeout=timeout, headers=extra)


async def publish_dead_letter(
    nc: Client, pool: Pool, msg: Msg, reason: str, request: TranslationRequest | None
) -> None:
    """The request as received, why it failed and how often it was tried."""
    letter = DeadLetter(
        pool=pool.value,
        reason=reason,
        deliveries=msg.metadata.num_delivered or 1,
        request=msg.data.decode("utf-8", errors="replace"),
        task_id=request.task_id if request else (msg.headers or {}).get(HEADER_MSG_ID),
        message_id=request.message_id if request else peek_message_id(msg.data),
    )
    sequence = msg.metadata.sequence.stream if msg.metadata.sequence else 0
    await nc.jetstream().publish(
        dead_letter_subject(pool),
        encode(letter),
        headers={HEADER_MSG_ID: f"dead:{pool.value}:{sequence}"},
    )
