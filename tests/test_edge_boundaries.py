"""The HTTP API's and the gateway sockets' boundaries (docs/SECURITY.md) attacked through real
sockets against a running shim and worker: documents that would fill the pool or hold the
event loop, forwarded headers and guessed keys against the rate limits, strangers on the
ZeroMQ sockets, an absurd frame, and a subscriber that never reads under a ping flood."""

from __future__ import annotations

import hmac
import json
import math
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest
import zmq
import zmq.asyncio

from tests.gateway import Gateway
from tests.http_service import Api, is_ready, models_env, start_api, translates
from tests.support import (
    Models,
    connected,
    shim_env,
    shim_ports,
    start_shim,
    start_worker,
    stop_process,
    text_logged,
    worker_env,
)
from translator.api.keys import Gate, Refused
from translator.bus.embedded import EmbeddedNats
from translator.contracts.subjects import Pool, request_stream

pytestmark = pytest.mark.anyio
POOL = 40  # a small pool: a document made of one request per node would fill it
TEXT_LIMIT = 5000  # MAX_TEXT_LENGTH's default: a document's blocks are at most this long


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@dataclass(frozen=True)
class Edge:
    nats: str
    api: Api


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, models: Models) -> Iterator[Edge]:
    root = tmp_path_factory.mktemp("edge")
    with EmbeddedNats(root / "nats") as server:
        worker = start_worker(
            worker_env(server.url, models, NORMAL_POOL_SIZE=POOL), Pool.NORMAL, root / "w.log"
        )
        api = start_api(server.url, root / "api.log", translates, **models_env(models),
                        NORMAL_POOL_SIZE=POOL)  # fmt: skip
        try:
            yield Edge(server.url, api)
        finally:
            stop_process(api.process)
            stop_process(worker)


def lag_over(metrics: str, bound: str = "0.1") -> float:
    """How many times the shim's event loop woke later than `bound` seconds."""
    count = re.search(r"^translator_event_loop_lag_seconds_count (\S+)$", metrics, re.M)
    within = re.search(
        rf'^translator_event_loop_lag_seconds_bucket{{le="{bound}"}} (\S+)$', metrics, re.M
    )
    assert count, metrics[:2000]
    assert within, metrics[:2000]
    return float(count.group(1)) - float(within.group(1))


async def queued_so_far(url: str) -> int:
    nc = await connected(url)
    info = await nc.jetstream().stream_info(request_stream(Pool.NORMAL))
    await nc.close()
    return int(info.state.last_seq)


# -- HTTP: one request, bounded work -------------------------------------------------------------


async def test_a_document_is_a_few_requests_however_many_nodes_it_has(edge: Edge) -> None:
    """2,000 text nodes in 10 KB used to be 2,000 queued requests (and a full pool); now its
    text travels in blocks of at most MAX_TEXT_LENGTH, and the markup comes back whole."""
    html = "".join(f"<p>line {i}</p>" for i in range(2000))
    before = await queued_so_far(edge.nats)
    async with httpx.AsyncClient(base_url=edge.api.url, timeout=120) as api:
        reply = await api.post(
            "/translate", json={"q": html, "source": "en", "target": "de", "format": "html"}
        )
    after = await queued_so_far(edge.nats)
    assert reply.status_code == 200, reply.text
    text = "\n".join(f"line {i}" for i in range(2000))
    assert after - before <= math.ceil(len(text) / TEXT_LIMIT)
    assert reply.json()["translatedText"].count("<p>") == 2000


async def test_the_worst_documents_never_hold_the_event_loop(edge: Edge) -> None:
    """Deeply nested HTML (50 KB, the character limit), a page of thousands of nodes, and the
    same as an uploaded file, all at once, while /live is asked every 20 ms: the shim's event
    loop never wakes more than 100 ms late, and every request is answered."""
    deep = "<div><b>a " * 4500 + "</b></div>" * 10
    flat = "<span>x</span>" * 3400
    docs = [deep, flat, deep, flat]
    async with httpx.AsyncClient(base_url=edge.api.url, timeout=170) as api:
        before = lag_over((await api.get("/metrics")).text)
        statuses: list[int] = []
        live: list[float] = []

        async def post(html: str) -> None:
            ask = {"q": html, "source": "en", "target": "de", "format": "html"}
            statuses.append((await api.post("/translate", json=ask)).status_code)

        async def upload(html: str) -> None:
            files = {"file": ("page.html", html.encode(), "text/html")}
            done = await api.post("/translate_file", data={"source": "en", "target": "de"},
                                  files=files)  # fmt: skip
            statuses.append(done.status_code)

        async def ping(stop: anyio.Event) -> None:
            while not stop.is_set():
                started = time.perf_counter()
                assert (await api.get("/live")).status_code == 200
                live.append(time.perf_counter() - started)
                await anyio.sleep(0.02)

        stop = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(ping, stop)
            async with anyio.create_task_group() as attacks:
                for doc in docs:
                    attacks.start_soon(post, doc)
                attacks.start_soon(upload, deep)
            stop.set()
        metrics = (await api.get("/metrics")).text
        after = lag_over(metrics)
    lags = [line for line in metrics.splitlines() if line.startswith("translator_event_loop")]
    assert statuses == [200] * 5, statuses
    assert live  # /live was answered all along
    assert after - before == 0, (
        f"the event loop woke over 100 ms late {after - before} times: {lags}"
    )


async def test_rotating_x_forwarded_for_buys_no_fresh_rate_limit(
    edge: Edge, tmp_path: Path, models: Models
) -> None:
    """uvicorn believes X-Forwarded-For from 127.0.0.1 by default: a client on loopback got a
    new address, and a new bucket, per request. Now only FORWARDED_ALLOW_IPS' proxies are."""
    limited = start_api(
        edge.nats, tmp_path / "limited.log", is_ready, **models_env(models),
        ZMQ_SHIM_NAME="limited", API_RATE_LIMIT=2,
    )  # fmt: skip
    proxied = start_api(
        edge.nats, tmp_path / "proxied.log", is_ready, **models_env(models),
        ZMQ_SHIM_NAME="proxied", API_RATE_LIMIT=2, FORWARDED_ALLOW_IPS='["127.0.0.0/8"]',
    )  # fmt: skip
    try:
        codes = {}
        for name, api in (("direct", limited), ("behind a proxy", proxied)):
            async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
                codes[name] = [await _detect_from(client, f"203.0.113.{i}") for i in range(4)]
    finally:
        stop_process(limited.process)
        stop_process(proxied.process)
    assert codes["direct"] == [200, 200, 429, 429]  # one address: its own connection's
    assert codes["behind a proxy"] == [200] * 4  # a listed proxy: the address it forwards


async def _detect_from(client: httpx.AsyncClient, forwarded_for: str) -> int:
    headers = {"X-Forwarded-For": forwarded_for}
    return (await client.post("/detect", json={"q": "Hello"}, headers=headers)).status_code


async def test_guessed_keys_are_limited_and_keys_are_compared_in_constant_time(
    edge: Edge, tmp_path: Path, models: Models, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyed = start_api(
        edge.nats, tmp_path / "keyed.log", is_ready, **models_env(models),
        ZMQ_SHIM_NAME="keyed", API_KEYS=json.dumps({"right-key": 0}), API_KEY_FAILURES=3,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=keyed.url, timeout=60) as client:

            async def detect(key: str) -> int:
                reply = await client.post("/detect", json={"q": "Hello", "api_key": key})
                return reply.status_code

            guesses = [await detect(f"guess-{i}") for i in range(5)]
            right_while_blocked = await detect("right-key")
    finally:
        stop_process(keyed.process)
    assert guesses == [403, 403, 403, 429, 429]
    assert right_while_blocked == 429  # an address out of guesses waits, right key or not

    compared: list[tuple[bytes, bytes]] = []
    constant_time = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return constant_time(a, b)

    monkeypatch.setattr("translator.api.keys.hmac.compare_digest", recording)
    gate = Gate({"alpha": 0, "beta": 0, "gamma": 0}, 0)
    gate.admit("beta", "a")
    with pytest.raises(Refused):
        gate.admit("delta", "a")
    assert len(compared) == 6  # every key, every time, in hmac's constant time


# -- ZeroMQ: only the gateways -------------------------------------------------------------------


@pytest.fixture
def shim_only(tmp_path: Path, nats_server: EmbeddedNats) -> Iterator[tuple[int, int, int]]:
    """A shim whose sockets only 127.0.0.2 may use (a gateway "on another host"), with a small
    send queue: (pull, pub, pid)."""
    env = shim_env(nats_server.url, ZMQ_ALLOWED_PEERS='["127.0.0.2/32"]', ZMQ_SEND_HWM=50)
    shim = start_shim(env, tmp_path / "shim.log")
    try:
        pull, pub = shim_ports(tmp_path / "shim.log")
        yield pull, pub, shim.pid
    finally:
        assert stop_process(shim) == 0


async def test_only_listed_peers_reach_the_gateway_sockets(
    shim_only: tuple[int, int, int], nats_server: EmbeddedNats, tmp_path: Path, models: Models
) -> None:
    """A stranger on loopback neither queues a request nor reads a result (nor a pong), and a
    result waits in JetStream for the gateway that comes back, instead of going to whoever
    subscribed meanwhile."""
    pull, pub, _ = shim_only
    before = await queued_so_far(nats_server.url)
    stranger = Gateway(pull, pub, source="127.0.0.1")
    await stranger.request("A stranger's words", ["fr"])
    await stranger.ping()
    with anyio.move_on_after(2):
        await stranger.read_one()
    gateway = Gateway(pull, pub, source="127.0.0.2")
    await gateway.connected()
    sent = await gateway.request("Hello from the gateway", ["fr"])
    gateway.close()  # gone before its result is there; the stranger still listens
    worker = start_worker(worker_env(nats_server.url, models), Pool.NORMAL, tmp_path / "w.log")
    try:
        await text_logged(tmp_path / "w.log", "serving pool normal")
        with anyio.move_on_after(3):
            await stranger.read_one()
        back = Gateway(pull, pub, source="127.0.0.2")
        (result,) = (await back.results_for(sent)).values()
        back.close()
    finally:
        assert stop_process(worker) == 0
    after = await queued_so_far(nats_server.url)
    stranger.close()
    assert stranger.received == []
    assert after - before == 1  # the gateway's request, not the stranger's
    assert result["type"] == "translation_completed"
    log = (tmp_path / "shim.log").read_text()
    assert "refused a connection from 127.0.0.1" in log


async def test_an_absurd_frame_is_refused_before_it_is_allocated(
    shim_only: tuple[int, int, int],
) -> None:
    """300 MiB in one frame: libzmq drops the connection at its header (ZMQ_MAXMSGSIZE), so
    the shim grows by far less than the frame, and answers the gateway as before."""
    pull, pub, pid = shim_only
    before = peak_rss(pid)
    context = zmq.asyncio.Context()
    push = context.socket(zmq.PUSH)
    push.connect(f"tcp://127.0.0.2:0;127.0.0.1:{pull}")
    await push.send(b"{" + b" " * (300 << 20) + b"}")
    await anyio.sleep(2)  # the frame on its way, and refused
    peak = peak_rss(pid)
    push.close(linger=0)
    context.term()
    gateway = Gateway(pull, pub, source="127.0.0.2")
    await gateway.connected()
    gateway.close()
    assert peak - before < 64 << 20


def peak_rss(pid: int) -> int:
    """The process's highest resident size so far (VmHWM), in bytes."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^VmHWM:\s+(\d+) kB$", status, re.M)
    assert found, status
    return int(found.group(1)) * 1024


async def test_pongs_never_wait_behind_a_subscriber_that_does_not_read(
    shim_only: tuple[int, int, int],
) -> None:
    """A subscriber that never reads fills its queue; a ping flood then used to hold every send
    (pongs included, and the PULL loop behind them). Pongs now go to those that read."""
    pull, pub, _ = shim_only
    context = zmq.asyncio.Context()
    stuck = context.socket(zmq.SUB)
    stuck.setsockopt(zmq.RCVHWM, 1)
    stuck.setsockopt(zmq.RCVBUF, 4096)
    stuck.setsockopt(zmq.SUBSCRIBE, b"")
    stuck.connect(f"tcp://127.0.0.2:0;127.0.0.1:{pub}")
    gateway = Gateway(pull, pub, source="127.0.0.2")
    await gateway.connected()
    flood = 20_000
    pongs = 0

    async def read() -> None:
        nonlocal pongs
        while True:
            if (await gateway.read_one()).get("type") == "pong":
                pongs += 1

    async with anyio.create_task_group() as tg:
        tg.start_soon(read)
        for _ in range(flood):
            await gateway.ping()
        # the pongs of the flood, to the gateway that reads: until all came, or none came for
        # 5 s (a pong is lossy: some of the flood never come), at most 30 s
        with anyio.move_on_after(30):
            seen, since = -1, time.monotonic()
            while pongs < flood and time.monotonic() - since < 5:
                if pongs != seen:
                    seen, since = pongs, time.monotonic()
                await anyio.sleep(0.05)
        answered = pongs
        await gateway.ping()  # and the shim still answers at once
        with anyio.fail_after(5):
            while pongs == answered:  # noqa: ASYNC110
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    stuck.close(linger=0)
    context.term()
    gateway.close()
    # Held behind the stuck subscriber, the shim would stop after its queue (ZMQ_SEND_HWM, 50)
    # and the sockets' buffers: a few hundred pongs. A pong is lossy for the reading gateway
    # too (one that finds its queue full is dropped), so not every one of the flood comes.
    assert answered >= flood / 2
