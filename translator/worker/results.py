"""Publishing results (one per target language) and dead letters.

Every result carries `Nats-Msg-Id = taskId:lang`. Results to `translate.result.>` go through
JetStream, which de-duplicates on it, so a redelivered request cannot duplicate them; an
`_INBOX.` reply is core NATS, and its error results carry the NATS micro convention's
`Nats-Service-Error` / `Nats-Service-Error-Code` headers too."""

from __future__ import annotations

import time
from dataclasses import dataclass

from nats.aio.client import Client
from nats.aio.msg import Msg

from translator.contracts.addressee import Addressee
from translator.contracts.errors import ERROR_STATUS, ErrorCode, code_of_kind
from translator.contracts.messages import DeadLetter, TranslationResult, encode
from translator.contracts.subjects import (
    DEFAULT_REPLY_SUBJECT,
    HEADER_MSG_ID,
    HEADER_REPLY_TO,
    SERVICE_ERROR,
    SERVICE_ERROR_CODE,
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
        # as the request wrote it; the detected one for `auto`
        "source_language": job.request.source_language
        if job.request.source_language != "auto"
        else job.source,
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
        "expected_results": len(job.request.target_languages),
    }
    results = []
    for target in job.request.target_languages:
        key = job.outcome_key(target)
        done = job.translations.get(key)
        if done is not None:
            pieces = job.pieces.get(key, PieceCounts())
            extra = {
                "translated_text": done.text, "confidence_score": done.confidence,
                "pieces": pieces.total, "pieces_cached": pieces.cached,
                "pieces_at_budget": pieces.at_budget, "fell_back_from": pieces.fell_back_from,
                "pivot_language": pieces.pivot,
                "translator_model": job.tiers.get(key, ""), "model_name": job.models.get(key, ""),
            }  # fmt: skip
            results.append(
                TranslationResult(**common, status="ok", target_language=target, **extra)
            )
        else:
            failed = {
                "error": job.errors.get(key, "not translated"),
                "error_code": code_of_kind(job.error_kinds.get(key, "not_translated")),
                "model_name": job.models.get(key, ""),
            }
            results.append(
                TranslationResult(**common, status="error", target_language=target, **failed)
            )
    return results


def error_results(
    to: Addressee, reason: str, code: ErrorCode, who: WorkerIdentity
) -> list[TranslationResult]:
    """One error result per target language of a request that cannot be translated."""
    return [
        TranslationResult(
            task_id=to.task_id,
            message_id=to.message_id,
            conversation_id=to.conversation_id,
            status="error",
            error=reason,
            error_code=code,
            expected_results=len(to.targets),
            source_language=to.source_language,
            target_language=target,
            model_type=to.model_type,
            worker_name=who.worker_name,
            worker_id=who.worker_id,
            pool_type=who.pool.value,
            processing_node=who.host,
        )
        for target in to.targets
    ]


def result_headers(result: TranslationResult, persistent: bool) -> dict[str, str]:
    """A result's own headers: its Nats-Msg-Id; on core NATS, a service error's headers."""
    headers = {HEADER_MSG_ID: result_msg_id(result.task_id, result.target_language)}
    if not persistent and result.status == "error":
        headers[SERVICE_ERROR] = (result.error or "translation failed").splitlines()[0][:1024]
        headers[SERVICE_ERROR_CODE] = str(ERROR_STATUS[result.error_code or "model_failure"])
    return headers


async def publish_results(
    nc: Client,
    subject: str,
    results: list[TranslationResult],
    timeout: float = 5.0,
    headers: dict[str, str] | None = None,
) -> None:
    """Publish every result; raise if JetStream did not store one of them."""
    persistent = is_persistent_reply(subject)
    js = nc.jetstream()
    for result in results:
        extra = {**(headers or {}), **result_headers(result, persistent)}
        if persistent:
            await js.publish(subject, encode(result), timeout=timeout, headers=extra)
        else:
            await nc.publish(subject, encode(result), headers=extra)
    if not persistent:
        await nc.flush(timeout=timeout)


async def publish_dead_letter(
    nc: Client, pool: Pool, msg: Msg, reason: str, to: Addressee | None
) -> None:
    """The request as received, why it failed and how often it was tried."""
    sequence = msg.metadata.sequence.stream if msg.metadata.sequence else 0
    deliveries = msg.metadata.num_delivered or 1
    await publish_letter(nc, pool, msg.data, msg.headers or {}, sequence, deliveries, reason, to)


async def publish_letter(
    nc: Client,
    pool: Pool,
    data: bytes,
    headers: dict[str, str],
    sequence: int,
    deliveries: int,
    reason: str,
    to: Addressee | None,
) -> None:
    """A dead letter of the request stored at `sequence` of the pool's stream."""
    letter = DeadLetter(
        pool=pool.value,
        reason=reason,
        deliveries=deliveries,
        request=data.decode("utf-8", errors="replace"),
        task_id=to.task_id if to else headers.get(HEADER_MSG_ID),
        message_id=(to.message_id or None) if to else None,
        reply_to=headers.get(HEADER_REPLY_TO, ""),
    )
    await nc.jetstream().publish(
        dead_letter_subject(pool),
        encode(letter),
        headers={HEADER_MSG_ID: f"dead:{pool.value}:{sequence}"},
    )
