"""Who may do what on NATS, defined once: the accounts, their users and each user's subjects.

deploy/nats/accounts.conf (included by nats.conf), the Helm values (deploy/k8s/nats-values.yaml)
and the embedded server of `translator up` are rendered from these (`translator nats-config`,
checked current by a test), so the shipped configuration and this list cannot drift apart.

Two accounts (docs/NATS.md, docs/SECURITY.md):
- MEESHY, the service: the streams, the buckets and every service, each its own user, each
  replying on its own inbox prefix (`Role.inbox_prefix`), which no other user may read. Nobody
  may delete or purge a stream; only the operator creates or updates one.
- APP, the NATS-native application: it sees nothing of MEESHY but what is exported to it (the
  request subjects and the micro service as services, its results and the events as streams) and
  keeps its own JetStream (its copy of TRANSLATE_RESULTS, its consumers), so a consumer it makes
  can deliver nowhere but into its own account. Another application gets an account of its own
  (docs/NATS.md, "Another application"), importing the request-reply service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from translator.contracts.subjects import (
    AUDIT_BUCKET,
    BUCKETS,
    CACHE_BUCKET,
    DETECT_SUBJECT,
    DLQ_STREAM,
    EVENTS_STREAM,
    EVENTS_SUBJECTS,
    GATEWAY_RESULTS_STREAM,
    HEARTBEAT_BUCKET,
    RESULTS_STREAM,
    RESULTS_SUBJECTS,
    RPC_SUBJECT,
    SCALERS_BUCKET,
    WORKERS_CONSUMER,
    Pool,
    Role,
    gateway_request_subject,
    max_deliveries_advisory,
    request_stream,
    request_subject,
)

SERVICE_ACCOUNT = "MEESHY"
APP_ACCOUNT = "APP"
SHIM_CONSUMER = "zmq_compat"  # ZMQ_SHIM_NAME's default: a shim named otherwise needs it here
RPC_RESPONSE_WINDOW = "10m"  # how long another account's translate.rpc may still get results


@dataclass(frozen=True)
class User:
    role: Role
    about: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    responses: int = 0  # replies it may send to the requests it receives (0: none beyond `publish`)

    @property
    def name(self) -> str:
        return self.role.value

    @property
    def password_variable(self) -> str:
        """The environment variable nats-server reads this user's password from."""
        return f"{self.name.upper()}_NATS_PASSWORD"


@dataclass(frozen=True)
class Export:
    kind: Literal["service", "stream"]
    subject: str
    to: tuple[str, ...] = ()  # the accounts that may import it (empty: any)
    streamed: bool = False  # a service answering with several messages (translate.rpc)


@dataclass(frozen=True)
class Import:
    kind: Literal["service", "stream"]
    account: str
    subject: str


@dataclass(frozen=True)
class Account:
    name: str
    about: str
    users: tuple[User, ...]
    exports: tuple[Export, ...] = ()
    imports: tuple[Import, ...] = ()


def _api(*verbs: str) -> tuple[str, ...]:
    return tuple(f"$JS.API.{verb}" for verb in verbs)


def _setup_of(*streams: str) -> tuple[str, ...]:
    return tuple(f"$JS.API.STREAM.{v}.{s}" for s in streams for v in ("CREATE", "UPDATE"))


def _kv_read(*buckets: str) -> tuple[str, ...]:
    return tuple(
        subject
        for b in buckets
        for subject in (f"$JS.API.STREAM.MSG.GET.KV_{b}", f"$JS.API.DIRECT.GET.KV_{b}.>")
    )


def _kv_write(*buckets: str) -> tuple[str, ...]:
    return tuple(f"$KV.{b}.>" for b in buckets)


def _pull(stream: str, consumer: str) -> tuple[str, ...]:
    return (
        f"$JS.API.CONSUMER.INFO.{stream}.{consumer}",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}",
        f"$JS.ACK.{stream}.{consumer}.>",
    )


_POOLS = tuple(request_stream(p) for p in Pool)
_REQUESTS = tuple(request_subject(p) for p in Pool)
_STREAMS = (*_POOLS, RESULTS_STREAM, GATEWAY_RESULTS_STREAM, DLQ_STREAM, EVENTS_STREAM)
_KV_STREAMS = tuple(f"KV_{b}" for b in BUCKETS)
_READ_ONLY = _api("INFO", "STREAM.INFO.*")

OPERATOR = User(
    Role.OPERATOR,
    "the set-up step (`translator setup`: every stream, the workers' consumers, the buckets),"
    " `translator status`, and the dead letters (they hold every client's texts)",
    publish=(
        *_api("INFO", "STREAM.NAMES", "STREAM.LIST", "STREAM.INFO.*", "CONSUMER.NAMES.*"),
        *_api("CONSUMER.LIST.*", "CONSUMER.INFO.*.*", f"STREAM.MSG.GET.{EVENTS_STREAM}"),
        *_setup_of(*_STREAMS, *_KV_STREAMS),
        *(f"$JS.API.CONSUMER.DURABLE.CREATE.{s}.{WORKERS_CONSUMER}" for s in _POOLS),
        *(f"$JS.API.CONSUMER.CREATE.{s}.{WORKERS_CONSUMER}" for s in _POOLS),
        *_api(f"CONSUMER.CREATE.{DLQ_STREAM}", f"CONSUMER.CREATE.{DLQ_STREAM}.>"),
        *_api(f"CONSUMER.MSG.NEXT.{DLQ_STREAM}.*", f"CONSUMER.DELETE.{DLQ_STREAM}.*"),
        f"$JS.ACK.{DLQ_STREAM}.>",
        f"$JS.FC.{DLQ_STREAM}.>",
        *_kv_read(HEARTBEAT_BUCKET, SCALERS_BUCKET, AUDIT_BUCKET),
        "$SRV.>",
    ),
    subscribe=(f"{Role.OPERATOR.inbox_prefix}.>",),
)

WORKER = User(
    Role.WORKER,
    "the worker processes: pull and ack requests, publish results (only where reply_refusal"
    " allows), dead letters, heartbeats and the cache; serve the micro service `translator`"
    " (translate.rpc stores its requests in the pools' streams, translate.detect)",
    publish=(
        *_READ_ONLY,
        *(subject for s in _POOLS for subject in _pull(s, WORKERS_CONSUMER)),
        *_REQUESTS,
        "translate.result.*",
        "translate.gateway.result.*",
        "_INBOX.>",
        f"{Role.SHIM.inbox_prefix}.>",
        "_R_.>",
        "translate.dead.*",
        *_kv_write(HEARTBEAT_BUCKET, CACHE_BUCKET),
        *_kv_read(CACHE_BUCKET),
        # a request its workers died holding (worker/abandoned.py): read, then removed
        *_api(*(f"STREAM.MSG.{verb}.{s}" for s in _POOLS for verb in ("GET", "DELETE"))),
    ),
    subscribe=(
        f"{Role.WORKER.inbox_prefix}.>",
        RPC_SUBJECT,
        DETECT_SUBJECT,
        "$SRV.>",
        *(max_deliveries_advisory(pool) for pool in Pool),
    ),
    responses=64,  # micro PING/INFO/STATS and detections to any caller; rpc error results
)

SCALER = User(
    Role.SCALER,
    "the scaler: the pools' lag, the workers' heartbeats, its lease and plans, the store"
    " audit's watermarks; scaling events and alerts. It hands its workers the `translator` user"
    " (WORKER_NATS_USER), never its own",
    publish=(
        *_READ_ONLY,
        *(f"$JS.API.CONSUMER.INFO.{s}.{WORKERS_CONSUMER}" for s in _POOLS),
        *_kv_read(HEARTBEAT_BUCKET, SCALERS_BUCKET, AUDIT_BUCKET),
        *_kv_write(SCALERS_BUCKET, AUDIT_BUCKET),
        f"$JS.API.STREAM.MSG.GET.{EVENTS_STREAM}",
        "translate.event.scaling",
        "translate.event.alert",
    ),
    subscribe=(f"{Role.SCALER.inbox_prefix}.>",),
)

SHIM = User(
    Role.SHIM,
    "the gateway shim and the HTTP API: the gateway's requests and the API's on the gateway"
    " intake (only this user may publish there), detections; the gateway's results from its own"
    " durable consumer (the API's come back on its inbox)",
    publish=(
        *_READ_ONLY,
        *(f"$JS.API.CONSUMER.INFO.{s}.{WORKERS_CONSUMER}" for s in _POOLS),  # its check
        *_api(f"CONSUMER.CREATE.{GATEWAY_RESULTS_STREAM}.{SHIM_CONSUMER}"),
        *_api(f"CONSUMER.CREATE.{GATEWAY_RESULTS_STREAM}.{SHIM_CONSUMER}.>"),
        *_pull(GATEWAY_RESULTS_STREAM, SHIM_CONSUMER),
        # reading back at start what was sent within ZMQ_DUPLICATE_WINDOW (ordered consumer)
        *_api(f"CONSUMER.CREATE.{GATEWAY_RESULTS_STREAM}"),
        f"$JS.FC.{GATEWAY_RESULTS_STREAM}.>",
        *(gateway_request_subject(p) for p in Pool),
        DETECT_SUBJECT,
    ),
    subscribe=(f"{Role.SHIM.inbox_prefix}.>",),
)

CLIENT = User(
    Role.CLIENT,
    "a NATS-native application (`translator submit` too): requests, translate.rpc,"
    " translate.detect, the micro service's discovery; its results (on an _INBOX, or on"
    " translate.result.<name>, kept in its own TRANSLATE_RESULTS, which it sets up with"
    " `translator setup --app` and reads with consumers of its own) and the events",
    publish=(
        *_REQUESTS,
        RPC_SUBJECT,
        DETECT_SUBJECT,
        "$SRV.>",
        *_api("INFO", "STREAM.NAMES", f"STREAM.INFO.{RESULTS_STREAM}"),
        *_api(f"STREAM.MSG.GET.{RESULTS_STREAM}"),
        *_setup_of(RESULTS_STREAM),
        *_api(f"CONSUMER.CREATE.{RESULTS_STREAM}"),
        *_api(f"CONSUMER.CREATE.{RESULTS_STREAM}.*.translate.result.*"),
        *_api(f"CONSUMER.INFO.{RESULTS_STREAM}.*", f"CONSUMER.MSG.NEXT.{RESULTS_STREAM}.*"),
        *_api(f"CONSUMER.DELETE.{RESULTS_STREAM}.*"),
        f"$JS.ACK.{RESULTS_STREAM}.>",
        f"$JS.FC.{RESULTS_STREAM}.>",
    ),
    subscribe=("_INBOX.>", "translate.result.*", "translate.event.*"),
)

_TO_APP = (APP_ACCOUNT,)
SERVICE = Account(
    SERVICE_ACCOUNT,
    "the translator: streams, buckets, workers, scaler, shim",
    users=(OPERATOR, WORKER, SCALER, SHIM),
    exports=(
        *(Export("service", subject, _TO_APP) for subject in _REQUESTS),
        Export("service", RPC_SUBJECT, streamed=True),
        Export("service", DETECT_SUBJECT),
        Export("service", "$SRV.>", streamed=True),
        Export("stream", RESULTS_SUBJECTS, _TO_APP),
        Export("stream", "_INBOX.>", _TO_APP),  # only APP's answers: services use their own
        Export("stream", EVENTS_SUBJECTS, _TO_APP),
    ),
)

APP = Account(
    APP_ACCOUNT,
    "the NATS-native application: what MEESHY exports to it, and its own JetStream",
    users=(CLIENT,),
    imports=tuple(
        Import(export.kind, SERVICE_ACCOUNT, export.subject)
        for export in SERVICE.exports
        if not export.to or APP_ACCOUNT in export.to
    ),
)

ACCOUNTS = (SERVICE, APP)
USERS = {user.role: user for account in ACCOUNTS for user in account.users}
