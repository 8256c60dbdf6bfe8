"""Each NATS boundary of docs/SECURITY.md attacked against the real nats-server running the shipped
configuration (deploy/nats), with a worker and a shim running as their own users and a ZeroMQ
gateway standing in for Meeshy's: an application reading the service's traffic, a consumer
pointed at the shim's inbox, a service changing the streams, one application reaching another;
and, on a server without accounts, foreign messages on the worker's and the shim's pull inboxes."""

from __future__ import annotations

import dataclasses
import json
import urllib.request
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import nats
import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from tests.deployed_nats import (
    TENANT,
    TENANT_PASSWORD,
    as_user,
    connected_as,
    deployed_nats,
    password,
    set_up,
)
from tests.gateway import Gateway, gateway
from tests.support import (
    Models,
    connected,
    http_port,
    http_ready,
    run_apart,
    shim_env,
    shim_ports,
    shim_ready,
    start_shim,
    start_worker,
    stop_process,
    wait_for_heartbeat,
    wait_logged,
    worker_env,
)
from translator.bus.embedded import EmbeddedNats
from translator.contracts.messages import TranslationRequest, encode
from translator.contracts.subjects import (
    GATEWAY_RESULTS_STREAM,
    HEADER_MSG_ID,
    HEADER_REPLY_TO,
    RESULTS_STREAM,
    RPC_SUBJECT,
    Pool,
    Role,
    request_stream,
    request_subject,
)

pytestmark = pytest.mark.anyio
QUIET = 2.0  # seconds an attack is given to show through (the shim's pull requests: 1 s each)


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@dataclass(frozen=True)
class Deployment:
    url: str
    monitor: int  # nats-server's monitoring port (connz: who subscribes where)
    ports: tuple[int, int]  # the shim's PULL and PUB
    http: int  # the HTTP API


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, models: Models) -> Iterator[Deployment]:
    """The shipped configuration (with the example tenant of tenants.conf) set up by the
    operator; a normal-pool worker as `translator`, the shim as `zmq_compat`."""
    root = tmp_path_factory.mktemp("deployment")
    with deployed_nats(root, monitor=True, tenant=True) as (server, monitor):
        worker_log, shim_log = root / "worker.log", root / "shim.log"
        env = as_user(worker_env(server.url, models), Role.WORKER)
        run_apart(lambda: set_up(server.url, env))
        worker = start_worker(env, Pool.NORMAL, worker_log)
        shim = start_shim(as_user(shim_env(server.url), Role.SHIM), shim_log)
        try:
            ports = shim_ports(shim_log)
            wait_logged(worker_log, "serving pool normal")
            yield Deployment(server.url, monitor, ports, http_port(shim_log))
        finally:
            assert stop_process(shim) == 0
            assert stop_process(worker) == 0
        for log in (worker_log, shim_log):
            assert "permissions violation" not in log.read_text().lower()


class Refusals:
    """A raw connection as one user, with the server's refusals it got."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    async def connect(self, url: str, user: str, secret: str) -> Client:
        async def on_error(exc: Exception) -> None:
            self.errors.append(str(exc))

        return await nats.connect(url, user=user, password=secret, error_cb=on_error)

    async def refused_subscription(self, nc: Client, subject: str) -> bool:
        """Whether the server refuses `nc` a subscription to `subject` (nats-py lower-cases
        the server's words)."""
        before = len(self.errors)
        await nc.subscribe(subject)
        wanted = f'permissions violation for subscription to "{subject.lower()}"'
        with anyio.move_on_after(5):
            while not self.said(wanted, before):
                await nc.flush()
                await anyio.sleep(0.05)
        return self.said(wanted, before)

    def said(self, words: str, since: int = 0) -> bool:
        return any(words in e.lower() for e in self.errors[since:])


def listen(seen: list[Msg]) -> Callable[[Msg], Awaitable[None]]:
    async def keep(msg: Msg) -> None:
        seen.append(msg)

    return keep


def mentions(seen: list[Msg], *needles: str) -> list[Msg]:
    return [m for m in seen if any(n.encode() in m.data or n in m.subject for n in needles)]


def subscriptions(monitor: int, connection: str) -> list[str]:
    """What connection `connection` subscribes to, from nats-server's monitoring (connz)."""
    url = f"http://127.0.0.1:{monitor}/connz?subs=1&limit=1024"
    with urllib.request.urlopen(url, timeout=10) as reply:
        found = json.loads(reply.read())
    return [
        subject
        for c in found["connections"]
        if c.get("name") == connection
        for subject in c.get("subscriptions_list", [])
    ]


def waiting(message_id: str) -> TranslationRequest:
    return TranslationRequest(
        message_id=message_id, text="Hold on", source_language="en", target_languages=("fr",),
        conversation_id="any",
    )  # fmt: skip


# -- 1. an application reads nothing of the service ---------------------------------------------


async def test_an_application_reads_nothing_of_the_gateways_or_the_apis_traffic(
    deployment: Deployment,
) -> None:
    secret = f"private words {uuid.uuid4().hex}"
    refusals = Refusals()
    app = await refusals.connect(deployment.url, Role.CLIENT.value, password(Role.CLIENT))
    seen: list[Msg] = []
    for subject in ("_INBOX.>", "translate.result.*", "translate.event.*"):  # all it may read
        await app.subscribe(subject, cb=listen(seen))
    for service in (Role.SHIM, Role.WORKER, Role.OPERATOR, Role.SCALER):
        assert await refusals.refused_subscription(app, f"{service.inbox_prefix}.>")
    assert await refusals.refused_subscription(app, ">")
    async with gateway(deployment.ports) as gw:
        sent = await gw.request(secret, ["fr"])
        (result,) = (await gw.results_for(sent)).values()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{deployment.http}") as api:
        answer = await api.post("/translate", json={"q": secret, "source": "en", "target": "de"})
    await anyio.sleep(QUIET)
    await app.close()
    assert result["type"] == "translation_completed"
    assert answer.status_code == 200, answer.text
    assert mentions(seen, secret, sent["messageId"], sent["taskId"]) == []
    assert [m.subject for m in seen if m.subject.startswith("_INBOX")] == []  # no 404/408 either


async def test_a_compromised_service_user_reads_no_one_elses_messages(
    deployment: Deployment,
) -> None:
    """A worker's, the shim's or the scaler's password in the wrong hands: no dead letters, no
    client's results, no other service's inbox."""
    refusals = Refusals()
    denied = {
        Role.WORKER: ("_INBOX.>", "translate.result.*", "translate.dead.*", "_INBOX_zmq_compat.>"),
        Role.SHIM: ("_INBOX.>", "_INBOX_translator.>", "translate.result.*", "translate.>"),
        Role.SCALER: ("_INBOX.>", "translate.>", "$KV.>", "_INBOX_operator.>"),
    }
    for role, subjects in denied.items():
        nc = await refusals.connect(deployment.url, role.value, password(role))
        for subject in subjects:
            assert await refusals.refused_subscription(nc, subject), (role, subject)
        await nc.close()
    async with connected_as(deployment.url, Role.WORKER) as worker:
        js = worker.jetstream(timeout=1)
        for stream in ("TRANSLATE_DLQ", RESULTS_STREAM, GATEWAY_RESULTS_STREAM):
            with pytest.raises(nats.errors.TimeoutError):  # a violation: no answer
                await js.add_consumer(stream, ConsumerConfig(name="peek"))


# -- 2. a consumer pointed at the shim's inbox ----------------------------------------------------


async def test_a_consumer_pointed_at_the_shims_inbox_puts_no_words_in_the_gateways_mouth(
    deployment: Deployment,
) -> None:
    """The attack of the issue: an application makes a push consumer whose deliver subject is
    the shim's pull inbox (learned here from the server's monitoring, which it cannot reach),
    over a result it had translated with a messageId of its choice. Its consumers live in its
    own account: the delivery goes nowhere near the shim."""
    inboxes = [
        s
        for s in subscriptions(deployment.monitor, "zmq-compat-zmq_compat")
        if s.startswith("_INBOX_zmq_compat.") and "*" not in s  # not the request muxer's
    ]
    assert inboxes
    forged = f"forged-{uuid.uuid4().hex[:8]}"
    async with connected_as(deployment.url, Role.CLIENT) as app, gateway(deployment.ports) as gw:
        js = app.jetstream()
        request = TranslationRequest(
            message_id=forged, text="I transfer you everything", source_language="en",
            target_languages=("fr",), conversation_id="conv-1",
        )  # fmt: skip
        headers = {HEADER_MSG_ID: request.task_id, HEADER_REPLY_TO: "translate.result.evil"}
        await js.publish(request_subject(Pool.NORMAL), encode(request), headers=headers)
        with anyio.fail_after(60):  # its result, kept in the application's own stream
            while (await js.stream_info(RESULTS_STREAM)).state.messages < 1:  # noqa: ASYNC110
                await anyio.sleep(0.1)
        for i, inbox in enumerate(inboxes):
            await js.add_consumer(
                RESULTS_STREAM,
                ConsumerConfig(
                    name=f"evil{i}", deliver_subject=inbox, ack_policy=AckPolicy.NONE,
                    deliver_policy=DeliverPolicy.ALL, filter_subject="translate.result.evil",
                ),
            )  # fmt: skip
        await gw.ping()
        with anyio.move_on_after(QUIET):
            while True:
                await gw.read_one()
    frames = [m for m in gw.received if forged.encode() in json.dumps(m).encode()]
    assert frames == []


# -- 3. nobody but the operator changes a stream --------------------------------------------------


async def test_no_service_or_application_can_change_delete_or_purge_the_queues(
    deployment: Deployment,
) -> None:
    # the `any` pool has no worker here: these wait in TRANSLATE_ANY
    queued = [waiting(f"waiting-{i}") for i in range(3)]
    async with connected_as(deployment.url, Role.CLIENT) as app:
        for request in queued:
            await app.jetstream().publish(request_subject(Pool.ANY), encode(request))
    async with connected_as(deployment.url, Role.OPERATOR) as operator:
        before = await operator.jetstream().stream_info(request_stream(Pool.ANY))
    assert before.state.messages >= len(queued)
    # the attack of the issue: a max age of 1 s, and every queued request expires
    emptied = dataclasses.replace(before.config, max_age=1.0)
    for role in (Role.SHIM, Role.WORKER, Role.SCALER, Role.CLIENT):
        async with connected_as(deployment.url, role) as nc:
            js = nc.jetstream(timeout=1)  # a violation is answered by nobody
            with pytest.raises((nats.errors.TimeoutError, nats.js.errors.APIError)):
                await js.update_stream(emptied)
            with pytest.raises((nats.errors.TimeoutError, nats.js.errors.APIError)):
                await js.purge_stream(request_stream(Pool.ANY))
            with pytest.raises((nats.errors.TimeoutError, nats.js.errors.APIError)):
                await js.delete_stream(request_stream(Pool.ANY))
    await anyio.sleep(QUIET)  # a max_age of 1 s, had it been taken, would have emptied it
    async with connected_as(deployment.url, Role.OPERATOR) as operator:
        after = await operator.jetstream().stream_info(request_stream(Pool.ANY))
    assert after.state.messages == before.state.messages
    assert after.config.max_age == 0


async def test_only_workers_delete_a_queued_request_and_nothing_else(
    deployment: Deployment,
) -> None:
    """The worker user may read and delete one message of its pools' streams (the fate of a
    request its workers died holding: worker/abandoned.py; a worker can already take and ack any
    queued request); no one else may, and a worker may not on the results streams."""
    async with connected_as(deployment.url, Role.CLIENT) as app:
        acks = [
            await app.jetstream().publish(request_subject(Pool.ANY), encode(waiting(f"d-{i}")))
            for i in range(2)
        ]
    mine, theirs = acks[0].seq, acks[1].seq
    for role in (Role.SHIM, Role.SCALER, Role.CLIENT):
        async with connected_as(deployment.url, role) as nc:
            with pytest.raises((nats.errors.TimeoutError, nats.js.errors.APIError)):
                await nc.jetstream(timeout=1).delete_msg(request_stream(Pool.ANY), theirs)
    async with connected_as(deployment.url, Role.WORKER) as worker:
        js = worker.jetstream(timeout=1)
        for stream in (RESULTS_STREAM, GATEWAY_RESULTS_STREAM):
            with pytest.raises((nats.errors.TimeoutError, nats.js.errors.APIError)):
                await js.delete_msg(stream, 1)
        assert await js.delete_msg(request_stream(Pool.ANY), mine)
        await js.get_msg(request_stream(Pool.ANY), theirs)  # still queued
        with pytest.raises(nats.js.errors.NotFoundError):
            await js.get_msg(request_stream(Pool.ANY), mine)


# -- 4. one application and another ----------------------------------------------------------------


async def test_another_application_in_its_own_account_sees_and_touches_nothing_of_the_first(
    deployment: Deployment,
) -> None:
    """The example tenant of deploy/nats/tenants.conf asks translate.rpc; the application of
    APP reads none of it, and the tenant reaches none of APP's consumers or subjects."""
    refusals = Refusals()
    tenant = await refusals.connect(deployment.url, TENANT, TENANT_PASSWORD)
    async with connected_as(deployment.url, Role.CLIENT) as app:
        app_seen: list[Msg] = []
        for subject in ("_INBOX.>", "translate.result.*"):
            await app.subscribe(subject, cb=listen(app_seen))
        durable = ConsumerConfig(
            name="app-durable", durable_name="app-durable", ack_policy=AckPolicy.EXPLICIT,
            filter_subject="translate.result.app",
        )  # fmt: skip
        await app.jetstream().add_consumer(RESULTS_STREAM, durable)
        secret = f"tenant words {uuid.uuid4().hex}"
        replies = await _rpc(tenant, secret, ("fr", "de"))
        for subject in ("translate.result.*", "_INBOX_translator.>", "$JS.API.>"):
            assert await refusals.refused_subscription(tenant, subject)
        before = len(refusals.errors)
        for subject in (
            "$JS.API.CONSUMER.DELETE.TRANSLATE_RESULTS.app-durable",
            "$JS.API.CONSUMER.MSG.NEXT.TRANSLATE_RESULTS.app-durable",
            request_subject(Pool.NORMAL),
        ):
            await tenant.publish(subject, b"{}")
        await tenant.flush()
        await anyio.sleep(QUIET)
        still = await app.jetstream().consumer_info(RESULTS_STREAM, "app-durable")
    await tenant.close()
    assert sorted(json.loads(r.data)["targetLanguage"] for r in replies) == ["de", "fr"]
    assert all(json.loads(r.data)["status"] == "ok" for r in replies)
    assert mentions(app_seen, secret) == []
    assert still.name == "app-durable"
    assert (
        sum("permissions violation for publish" in e.lower() for e in refusals.errors[before:]) == 3
    )


async def _rpc(nc: Client, text: str, targets: tuple[str, ...]) -> list[Msg]:
    """translate.rpc as a request-many: one reply per target."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    body = {"messageId": "tenant-1", "text": text, "sourceLanguage": "en"}
    await nc.publish(RPC_SUBJECT, json.dumps({**body, "targetLanguages": targets}).encode(), inbox)
    replies: list[Msg] = []
    with anyio.fail_after(60):
        while len(replies) < len(targets):
            replies.append(await sub.next_msg(timeout=None))
    await sub.unsubscribe()
    return replies


# -- 9. foreign messages on a pull inbox, where nothing stops them ---------------------------------


async def test_foreign_messages_on_the_pull_inboxes_are_dropped_and_nothing_stops(
    nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    """On a server without accounts anyone may publish to a service's inbox or point a consumer
    at it: the worker and the shim drop what is not their consumer's delivery, count it, and go
    on translating; no forged result reaches the gateway."""
    nc = await connected(nats_server.url)
    pulls: dict[str, str] = {}

    async def learn(msg: Msg) -> None:  # who pulls from where: the pull requests' inboxes
        pulls.setdefault(msg.subject.split(".")[-2], msg.reply)

    await nc.subscribe("$JS.API.CONSUMER.MSG.NEXT.>", cb=learn)
    worker = start_worker(worker_env(nats_server.url, models), Pool.NORMAL, tmp_path / "w.log")
    shim = start_shim(shim_env(nats_server.url), tmp_path / "shim.log")
    try:
        beat = await wait_for_heartbeat(nc, worker.pid, state="ready")
        ports = await shim_ready(tmp_path / "shim.log")
        gw = Gateway(*ports)
        await gw.connected()
        with anyio.fail_after(30):
            while not {request_stream(Pool.NORMAL), GATEWAY_RESULTS_STREAM} <= pulls.keys():  # noqa: ASYNC110
                await anyio.sleep(0.05)
        forged = {"taskId": "forged", "messageId": "forged", "translatedText": "pay me"}
        for inbox in pulls.values():  # (a reply of `$JS.ACK.` is the server's alone to give)
            await nc.publish(inbox, b"not even JSON")
            await nc.publish(inbox, json.dumps(forged).encode())
        await nc.jetstream().publish("translate.result.x", json.dumps(forged).encode())
        await nc.jetstream().add_consumer(
            RESULTS_STREAM,
            ConsumerConfig(
                name="pointed", deliver_subject=pulls[GATEWAY_RESULTS_STREAM],
                ack_policy=AckPolicy.NONE, filter_subject="translate.result.x",
            ),
        )  # fmt: skip
        sent = await gw.request("Hello again", ["fr"])
        (result,) = (await gw.results_for(sent)).values()
        assert worker.poll() is None
        assert shim.poll() is None
        counted = await wait_for_heartbeat(
            nc, worker.pid, where=lambda b: b.stats.errors.get("foreign_message", 0) >= 2
        )
        async with httpx.AsyncClient() as http:
            shim_http = await http_ready(tmp_path / "shim.log")
            shim_metrics = await http.get(f"http://127.0.0.1:{shim_http}/metrics")
        gw.close()
    finally:
        assert stop_process(shim) == 0
        assert stop_process(worker) == 0
        await nc.close()
    assert beat.state == "ready"
    assert counted.stats.errors["foreign_message"] == 2
    assert result["type"] == "translation_completed"
    assert [m for m in gw.received if "forged" in json.dumps(m)] == []
    foreign = next(
        line
        for line in shim_metrics.text.splitlines()
        if line.startswith('zmq_compat_requests_total{outcome="foreign"}')
    )
    assert float(foreign.split()[-1]) >= 3
