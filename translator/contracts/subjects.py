"""NATS names that are part of the public contract (PROTOCOL.md section 2, docs/NATS.md),
defined once, with the rule for where results may go (`reply_refusal`)."""

from __future__ import annotations

import re
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
# The gateway shim's own namespace, `translate.gateway.>`, which only the shim's NATS user may
# publish to (deploy/nats/nats.conf): its requests come in on `translate.gateway.request.<pool>`
# (stored in the pool's stream), and their results go to `translate.gateway.result.<name>`, in a
# stream of their own, so that no client permission on TRANSLATE_RESULTS can reach them. A
# worker publishes there only for a request that came in through the gateway intake.
GATEWAY_RESULTS_STREAM = "TRANSLATE_GATEWAY_RESULTS"
GATEWAY_RESULTS_PREFIX = "translate.gateway.result."
GATEWAY_RESULTS_SUBJECTS = "translate.gateway.result.>"
DLQ_STREAM = "TRANSLATE_DLQ"
DLQ_SUBJECTS = "translate.dead.>"
EVENTS_STREAM = "TRANSLATE_EVENTS"
EVENTS_SUBJECTS = "translate.event.>"
SCALING_EVENTS = "translate.event.scaling"
ALERT_EVENTS = "translate.event.alert"
HEARTBEAT_BUCKET = "TRANSLATOR_WORKERS"
# the scalers of every host: their announcements, the leader's lease, its per-pool plans
SCALERS_BUCKET = "TRANSLATOR_SCALERS"
# on disk, no TTL: what each request stream held at the last store audit (scaler/audit.py)
AUDIT_BUCKET = "TRANSLATOR_STORE_AUDIT"
# on disk: translations by piece (translator/worker/cache.py)
CACHE_BUCKET = "TRANSLATOR_CACHE"
BUCKETS = (HEARTBEAT_BUCKET, SCALERS_BUCKET, CACHE_BUCKET, AUDIT_BUCKET)
LEADER_KEY = "leader"
SCALER_HOST_PREFIX = "host."  # + the host's name: its ScalerAnnouncement

# request-reply (core NATS, no stream): the language of a text, answered by any worker
DETECT_SUBJECT = "translate.detect"
DETECT_QUEUE = "detectors"
# request-reply translation (core NATS): a request with a reply subject and no
# Translate-Reply-To; its results (one per target) come back on that reply subject
RPC_SUBJECT = "translate.rpc"
# the workers as a NATS micro service ($SRV.PING|INFO|STATS.translator)
SERVICE_NAME = "translator"

HEADER_MSG_ID = "Nats-Msg-Id"
HEADER_REPLY_TO = "Translate-Reply-To"
# the NATS micro convention's error headers (nats.micro): on error replies of translate.rpc and
# translate.detect, and on error results published to an _INBOX
SERVICE_ERROR = "Nats-Service-Error"
SERVICE_ERROR_CODE = "Nats-Service-Error-Code"


class Role(StrEnum):
    """Who connects to NATS, each as a user of its own (deploy/nats/accounts.conf, rendered
    from translator/contracts/permissions.py): the value is the user's name there."""

    OPERATOR = "operator"  # the set-up step (streams, consumers, buckets), status, dead letters
    WORKER = "translator"  # the worker processes
    SCALER = "scaler"  # the scaler (it hands its workers their own user)
    SHIM = "zmq_compat"  # the gateway shim and the HTTP API
    CLIENT = "client"  # a NATS-native application (account APP)

    @property
    def inbox_prefix(self) -> str:
        """Where this role's replies come (JetStream acks and API answers, pull deliveries):
        `_INBOX_<user>`, which no other user may subscribe to. An application keeps nats'
        own `_INBOX`, in an account of its own."""
        return "_INBOX" if self is Role.CLIENT else f"_INBOX_{self.value}"


def request_stream(pool: Pool) -> str:
    return f"TRANSLATE_{pool.value.upper()}"


def request_subject(pool: Pool) -> str:
    return f"translate.request.{pool.value}"


def gateway_request_subject(pool: Pool) -> str:
    """The shim's intake into the pool's stream: its requests may name the reserved results
    subject (GATEWAY_RESULTS_PREFIX)."""
    return f"translate.gateway.request.{pool.value}"


def is_gateway_intake(subject: str) -> bool:
    return subject in {gateway_request_subject(pool) for pool in Pool}


def gateway_results_subject(shim_name: str) -> str:
    return f"{GATEWAY_RESULTS_PREFIX}{shim_name}"


def dead_letter_subject(pool: Pool) -> str:
    return f"translate.dead.{pool.value}"


def max_deliveries_advisory(pool: Pool) -> str:
    """Where JetStream says it gave up on a request of the pool: delivered MAX_DELIVER times,
    and the last worker that held it never settled it (it died: worker/abandoned.py)."""
    return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{request_stream(pool)}.{WORKERS_CONSUMER}"


def result_msg_id(task_id: str, target_language: str) -> str:
    return f"{task_id}:{target_language}"


def is_persistent_reply(subject: str) -> bool:
    """Results to `translate.result.>` and the gateway's are stored in JetStream; anything else
    (an `_INBOX.`) is core NATS."""
    return subject.startswith(("translate.result.", GATEWAY_RESULTS_PREFIX))


MAX_REPLY_LENGTH = 256
_NAME = r"[A-Za-z0-9_-]+"
_STORED_REPLY = re.compile(rf"translate\.result\.{_NAME}")
_GATEWAY_REPLY = re.compile(rf"{re.escape(GATEWAY_RESULTS_PREFIX)}{_NAME}")
_TOKENS = r"(\.[!-)+-\-/-=?-~]+)+"  # printable tokens, no `*`, `>` or `.` in one, none empty
_INBOX_REPLY = re.compile(rf"_INBOX{_TOKENS}")
# a request-reply from another account (translate.rpc imported as a service): nats-server
# gives the exporting account a reply subject of its own, `_R_.<...>`, mapped back to the caller
_IMPORT_REPLY = re.compile(rf"_R_{_TOKENS}")
_SHIM_INBOX_REPLY = re.compile(rf"{Role.SHIM.inbox_prefix}{_TOKENS}")


def reply_refusal(subject: str, via_gateway: bool) -> str | None:
    """Why results may not be published to `subject` (None: they may). Allowed: a client's
    `translate.result.<name>` (stored), an `_INBOX.` subject or another account's `_R_.`
    reply (core NATS), and, only for a request that came in through the gateway intake
    (`via_gateway`), the reserved `translate.gateway.result.<name>` and the shim's own inbox
    (the HTTP API's answers). Nothing else: not events, not dead letters, not wildcards, not
    another service's inbox."""
    if len(subject) > MAX_REPLY_LENGTH:
        return f"reply subject longer than {MAX_REPLY_LENGTH} characters"
    if _GATEWAY_REPLY.fullmatch(subject) or _SHIM_INBOX_REPLY.fullmatch(subject):
        reserved = f"reply subject {subject[:80]!r} is reserved for the gateway"
        return None if via_gateway else reserved
    if any(p.fullmatch(subject) for p in (_STORED_REPLY, _INBOX_REPLY, _IMPORT_REPLY)):
        return None
    return f"reply subject {subject[:80]!r} is neither translate.result.<name> nor _INBOX.<...>"
