"""NATS names that are part of the public contract (PROTOCOL.md section 2), defined once."""

from __future__ import annotations

from enum import StrEnum


class Pool(StrEnum):
    """A worker pool; `any` serves the global public conversation."""

    NORMAL = "normal"
    ANY = "any"

    @classmethod
    def for_conversation(cls, conversation_id: str) -> Pool:
        return cls.ANY if conversation_id == "any" else cls.NORMAL


WORKERS_CONSUMER = "workers"
RESULTS_STREAM = "TRANSLATE_RESULTS"
RESULTS_SUBJECTS = "translate.result.>"
DEFAULT_REPLY_SUBJECT = "translate.result.default"
DLQ_STREAM = "TRANSLATE_DLQ"
DLQ_SUBJECTS = "translate.dead.>"
EVENTS_STREAM = "TRANSLATE_EVENTS"
EVENTS_SUBJECTS = "translate.event.>"
SCALING_EVENTS = "translate.event.scaling"
ALERT_EVENTS = "translate.event.alert"
HEARTBEAT_BUCKET = "TRANSLATOR_WORKERS"
# the scalers of every host: their announcements, the leader's lease, its per-pool plans
SCALERS_BUCKET = "TRANSLATOR_SCALERS"
LEADER_KEY = "leader"
SCALER_HOST_PREFIX = "host."  # + the host's name: its ScalerAnnouncement

# request-reply (core NATS, no stream): the language of a text, answered by any worker
DETECT_SUBJECT = "translate.detect"
DETECT_QUEUE = "detectors"

HEADER_MSG_ID = "Nats-Msg-Id"
HEADER_REPLY_TO = "Translate-Reply-To"


def request_stream(pool: Pool) -> str:
    return f"TRANSLATE_{pool.value.upper()}"


def request_subject(pool: Pool) -> str:
    return f"translate.request.{pool.value}"


def dead_letter_subject(pool: Pool) -> str:
    return f"translate.dead.{pool.value}"


def result_msg_id(task_id: str, target_language: str) -> str:
    return f"{task_id}:{target_language}"


def is_persistent_reply(subject: str) -> bool:
    """Results to `translate.result.>` are stored in JetStream; anything else is core NATS."""
    return subject.startswith("translate.result.")
