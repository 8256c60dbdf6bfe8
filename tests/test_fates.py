"""A message's fate while NATS is away: tried again in place (in progress) rather than handed
back at each failure, which would spend its MAX_DELIVER deliveries (an election of the results
stream's leader once spent them all in tests/test_cluster.py, leaving two translated requests
neither answered nor dead-lettered). A real nats-server, a real pull consumer."""

from __future__ import annotations

import os

import anyio
import nats.errors
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from tests.support import request
from translator.bus.client import submit
from translator.bus.topology import setup_topology
from translator.contracts.settings import TranslatorSettings
from translator.contracts.subjects import WORKERS_CONSUMER, Pool, request_stream, request_subject
from translator.worker import fates as fates_module
from translator.worker.fates import Fates
from translator.worker.results import Usage, WorkerIdentity
from translator.worker.spans import MessageSpans
from translator.worker.utilization import Counters

pytestmark = pytest.mark.anyio


def _fates(settings: TranslatorSettings, nc: Client) -> Fates:
    who = WorkerIdentity.current(Pool.NORMAL, os.getpid(), "test")
    spans = MessageSpans(Pool.NORMAL, who.worker_id)
    return Fates(settings, nc, who, Counters(), spans, lambda: Usage(0.0, 0.0))


async def _messages(nc: Client, settings: TranslatorSettings, count: int = 1):  # type: ignore[no-untyped-def]
    js = nc.jetstream()
    await setup_topology(js, settings)
    for i in range(count):
        await submit(nc, request(text=f"Hello {i}"), "translate.result.fates")
    sub = await js.pull_subscribe_bind(WORKERS_CONSUMER, request_stream(Pool.NORMAL))
    return js, await sub.fetch(count, timeout=10)


async def test_an_outage_longer_than_every_delivery_is_waited_out(
    nc: Client, settings: TranslatorSettings
) -> None:
    js, (msg,) = await _messages(nc, settings)
    tries = 0
    failures = settings.max_deliver + 2  # more than a hand-back per failure could survive

    async def fate() -> None:
        nonlocal tries
        tries += 1
        if tries <= failures:
            raise nats.errors.TimeoutError
        await msg.ack_sync()

    await _fates(settings, nc).settle(msg, set(), fate)
    assert tries == failures + 1
    assert msg.metadata.num_delivered == 1  # never handed back
    consumer = await js.consumer_info(request_stream(Pool.NORMAL), WORKERS_CONSUMER)
    assert (consumer.num_ack_pending, consumer.num_redelivered) == (0, 0)
    assert (await js.stream_info(request_stream(Pool.NORMAL))).state.messages == 0
    assert request_subject(Pool.NORMAL) == msg.subject


async def test_past_its_patience_a_message_is_handed_back_and_the_next_at_once(
    nc: Client, settings: TranslatorSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fates_module, "SETTLE_PATIENCE", 1.0)
    js, (msg, other) = await _messages(nc, settings, 2)
    fates = _fates(settings, nc)
    tries = 0

    async def away() -> None:
        nonlocal tries
        tries += 1
        raise nats.errors.NoRespondersError

    await fates.settle(msg, set(), away)
    assert 2 <= tries <= 5  # tried again for about a second, then handed back (nak)
    again = tries
    await anyio.sleep(1.0)  # the outage goes on past its budget
    await fates.settle(other, set(), away)  # the same outage: no second wait
    assert tries == again + 1
    sub = await js.pull_subscribe_bind(WORKERS_CONSUMER, request_stream(Pool.NORMAL))
    back: list[Msg] = []
    with anyio.fail_after(60):
        while len(back) < 2:  # both redelivered (each after its nak's delay): nothing lost
            back += await sub.fetch(2 - len(back), timeout=30)
    assert sorted(m.metadata.sequence.stream for m in back) == [1, 2]
    assert all(m.metadata.num_delivered == 2 for m in back)
    for m in back:
        await m.ack_sync()
