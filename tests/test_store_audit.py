"""A damaged stream store (scaler/audit.py): a request stream's block file truncated or
corrupted while nats-server is down. nats-server comes back having dropped everything from the
damage on; the scaler says how many acknowledged requests were lost, in one ERROR line and one
`store_data_lost` alert, once; what survived is answered exactly once, and nothing else."""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from scaler.audit import lost, ranges, stored_ranges
from scaler.records import StoreWatermark
from scaler.service import Scaler
from scaler.settings import ScalerSettings
from scaler.supervisor import Supervisor
from tests.gateway import Gateway, shim
from tests.support import (
    Models,
    connected,
    free_port,
    publish_request,
    request,
    running_worker,
    settled,
    shim_env,
    worker_env,
)
from translator.bus.embedded import EmbeddedNats
from translator.bus.topology import setup_topology
from translator.contracts.messages import Alert, decode_request
from translator.contracts.settings import TranslatorSettings
from translator.contracts.subjects import (
    ALERT_EVENTS,
    Pool,
    request_stream,
)

pytestmark = pytest.mark.anyio
STREAM = request_stream(Pool.NORMAL)


def mark(stream: str, stored: list[tuple[int, int]], delivered: int) -> StoreWatermark:
    last = stored[-1][1] if stored else 0
    return StoreWatermark(stream=stream, last_seq=last, stored=stored, delivered=delivered)


def test_stored_ranges_leave_out_the_deleted_sequences() -> None:
    assert stored_ranges(3, 10, [5, 6, 9]) == [(3, 4), (7, 8), (10, 10)]
    assert stored_ranges(11, 10, []) == []  # every message acked: an empty stream
    assert stored_ranges(0, 0, []) == []


def test_lost_counts_what_vanished_without_being_given_to_a_worker() -> None:
    before = mark(STREAM, [(1, 100)], delivered=20)
    assert lost(before, mark(STREAM, [(31, 50)], delivered=30)) == [(51, 100)]
    # acked in between (delivered went to 60): not lost; a hole above it is
    assert lost(before, mark(STREAM, [(61, 70), (80, 100)], delivered=60)) == [(71, 79)]
    assert lost(before, mark(STREAM, [(21, 100)], delivered=20)) == []


def truncate(block: Path) -> None:
    os.truncate(block, block.stat().st_size * 3 // 4)


def corrupt(block: Path) -> None:
    data = bytearray(block.read_bytes())
    at = len(data) * 3 // 4
    data[at : at + 24] = bytes(b ^ 0xFF for b in data[at : at + 24])
    block.write_bytes(bytes(data))


def damage(store: Path, how: Callable[[Path], None], keep_index: bool) -> None:
    """Damage the normal pool's request stream as it lies on disk (the server is down)."""
    (folder,) = [p for p in store.rglob(STREAM) if p.is_dir()]
    blocks = sorted((folder / "msgs").glob("*.blk"))
    how(blocks[-1])
    if not keep_index:
        for index in folder.rglob("index.db"):
            index.unlink()


def observer(nc: Client) -> Scaler:
    """The scaler in observe mode: it audits, and starts no worker."""
    settings = ScalerSettings(nats_url="", scaler_mode="observe")
    return Scaler(settings, nc, Supervisor(env={}, grace=1))


async def ungettable(nc: Client, seqs: range) -> list[int]:
    gone = []
    for seq in seqs:
        try:
            await nc.jetstream().get_msg(STREAM, seq)
        except NotFoundError:
            gone.append(seq)
    return gone


@pytest.mark.parametrize("keep_index", [True, False], ids=["with-index", "without-index"])
@pytest.mark.parametrize("how", [truncate, corrupt], ids=["truncated", "corrupted"])
async def test_a_damaged_block_gives_one_error_line_and_one_alert_with_the_count(
    how: Callable[[Path], None],
    keep_index: bool,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, port, count = tmp_path / "nats", free_port(), 100
    server = EmbeddedNats(store, port=port).start()
    try:
        nc = await connected(server.url)
        await setup_topology(nc.jetstream(), TranslatorSettings(nats_url=server.url))
        for i in range(count):
            await publish_request(nc, request(f"request {i} " + "x" * 200), "_INBOX.nobody")
        assert await observer(nc).audit.check() == []  # the watermark: 1-100 stored
        await nc.close()
        server.stop()
        damage(store, how, keep_index)
        server = EmbeddedNats(store, port=port).start()
        nc = await connected(server.url)
        alerts = await nc.subscribe(ALERT_EVENTS)
        gone = await ungettable(nc, range(1, count + 1))
        assert 0 < len(gone) < count, "the damage should take some requests and leave some"
        scaler = observer(nc)
        with caplog.at_level(logging.INFO):
            await scaler.audit_store()
            await scaler.audit_store()  # the second audit has nothing new to say
        alert = Alert.model_validate_json((await alerts.next_msg(timeout=10)).data)
        with pytest.raises(TimeoutError):
            await alerts.next_msg(timeout=1)
        await nc.close()
    finally:
        server.stop()
    assert (alert.kind, alert.pool, alert.value) == ("store_data_lost", "normal", len(gone))
    assert f"lost {len(gone)} acknowledged request(s)" in alert.message
    (first, last), *more = ranges(gone)
    assert more == []
    assert f"sequences {first}-{last}" in alert.message
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == [f"alert normal store_data_lost: {alert.message}"]
    assert scaler.events.alerts["normal", "store_data_lost"] == 1


async def test_after_a_damaged_block_the_survivors_are_answered_exactly_once(
    models: Models, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Through the gateway shim: 10 answered, then 20 queued with no worker; the block is
    truncated at restart. The lost ones are counted, and never answered; each of the others is
    answered once."""
    log, store, port = tmp_path / "log", tmp_path / "nats", free_port()
    server = EmbeddedNats(store, port=port).start()
    pull, pub = free_port(), free_port()
    gw = Gateway(pull, pub)
    try:
        env = shim_env(server.url, TRANSLATOR_ZMQ_PULL_PORT=pull, TRANSLATOR_ZMQ_PUB_PORT=pub)
        async with shim(env, log):
            await gw.connected()
            nc = await connected(server.url)
            async with running_worker(nc, worker_env(server.url, models), Pool.NORMAL, log):
                before = [await gw.request(f"answered {i} " + "x" * 100, ["fr"]) for i in range(10)]
                for sent in before:
                    await gw.results_for(sent, timeout=60)
            queued = [await gw.request(f"queued {i} " + "x" * 100, ["fr"]) for i in range(20)]
            await wait_until_stored(nc, 20)
            assert await observer(nc).audit.check() == []
            await nc.close()
            server.stop()
            damage(store, truncate, keep_index=False)
            server = EmbeddedNats(store, port=port).start()
            nc = await connected(server.url)
            survivors = await surviving_message_ids(nc)
            assert 0 < len(survivors) < len(queued)
            with caplog.at_level(logging.INFO):
                await observer(nc).audit_store()
            async with running_worker(nc, worker_env(server.url, models), Pool.NORMAL, log):
                for sent in queued:
                    if sent["messageId"] in survivors:
                        await gw.results_for(sent, timeout=90)
                await settled(nc)
            await nc.close()
    finally:
        gw.close()
        server.stop()
    lost_count = len(queued) - len(survivors)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert f"lost {lost_count} acknowledged request(s)" in errors[0]
    answers = Counter(
        m["result"]["messageId"] for m in gw.received if m.get("type") == "translation_completed"
    )
    assert [m for m in gw.received if m.get("type") == "translation_error"] == []
    assert set(answers) == {s["messageId"] for s in before} | survivors
    assert set(answers.values()) == {1}, "a request answered twice"


async def wait_until_stored(nc: Client, count: int) -> None:
    with anyio.fail_after(30):
        while (await nc.jetstream().stream_info(STREAM)).state.messages < count:  # noqa: ASYNC110
            await anyio.sleep(0.05)


async def surviving_message_ids(nc: Client) -> set[str]:
    info = await nc.jetstream().stream_info(STREAM)
    found = set()
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            msg = await nc.jetstream().get_msg(STREAM, seq)
        except NotFoundError:
            continue
        found.add(decode_request(msg.data or b"").message_id)
    return found
