"""Streams and consumers: bounded pools, backpressure, persistence, idempotent set-up."""

from __future__ import annotations

import math
from pathlib import Path

import anyio
import pytest
from nats.js.api import AckPolicy, ConsumerConfig

from tests.support import Models, collect_results, request, running_worker, worker_env
from translator.bus.client import submit
from translator.bus.connection import connect
from translator.bus.embedded import EmbeddedNats
from translator.bus.retry import patiently
from translator.bus.topology import setup_topology
from translator.contracts.errors import PoolFull
from translator.contracts.settings import TranslatorSettings
from translator.contracts.subjects import (
    GATEWAY_RESULTS_STREAM,
    WORKERS_CONSUMER,
    Pool,
    request_stream,
)

pytestmark = pytest.mark.anyio


async def test_a_full_pool_refuses_new_requests_and_keeps_what_is_queued(
    settings: TranslatorSettings,
) -> None:
    small = settings.model_copy(update={"normal_pool_size": 3})
    nc = await connect(small, "test")
    await setup_topology(nc.jetstream(), small)
    queued = [request(text=f"queued {i}") for i in range(3)]
    for req in queued:
        await submit(nc, req, "translate.result.full")

    with pytest.raises(PoolFull, match="translation pool full"):
        await submit(nc, request(text="one too many"), "translate.result.full")
    await submit(nc, request(conversation_id="any"), "translate.result.full")  # other pool

    info = await nc.jetstream().stream_info(request_stream(Pool.NORMAL))
    assert info.state.messages == 3
    assert info.state.first_seq == 1
    await nc.close()


async def test_changed_limits_are_applied_on_restart(settings: TranslatorSettings) -> None:
    nc = await connect(settings, "test")
    js = nc.jetstream()
    await setup_topology(js, settings)
    changed = settings.model_copy(
        update={"normal_pool_size": 50, "any_pool_size": 7, "ack_wait": 9.0, "max_deliver": 2}
    )
    await setup_topology(js, changed)
    await setup_topology(js, changed)  # a second start changes nothing

    normal = await js.stream_info(request_stream(Pool.NORMAL))
    any_ = await js.stream_info(request_stream(Pool.ANY))
    consumer = await js.consumer_info(request_stream(Pool.NORMAL), WORKERS_CONSUMER)
    assert (normal.config.max_msgs, any_.config.max_msgs) == (50, 7)
    assert normal.config.discard == "new"
    assert (consumer.config.ack_wait, consumer.config.max_deliver) == (9.0, 2)
    await nc.close()


async def test_queued_requests_survive_a_nats_restart(
    tmp_path: Path, models: Models, settings: TranslatorSettings
) -> None:
    store = tmp_path / "persistent"
    queued = [request(text=f"persist {i}") for i in range(5)]
    with EmbeddedNats(store) as first:
        before = settings.model_copy(update={"nats_url": first.url})
        nc = await connect(before, "test")
        await setup_topology(nc.jetstream(), before)
        for req in queued:
            await submit(nc, req, "translate.result.persist")
        await nc.close()

    with EmbeddedNats(store) as second:
        after = settings.model_copy(update={"nats_url": second.url})
        nc = await connect(after, "test")
        info = await nc.jetstream().stream_info(request_stream(Pool.NORMAL))
        assert info.state.messages == 5
        env = worker_env(second.url, models)
        async with running_worker(nc, env, Pool.NORMAL, tmp_path / "worker.log"):
            results = await collect_results(nc, "translate.result.persist", 5)
        await nc.close()
    assert sorted(r.task_id for r in results) == sorted(q.task_id for q in queued)


def test_embedded_nats_starts_on_a_random_port_and_stops(tmp_path: Path) -> None:
    server = EmbeddedNats(tmp_path / "nats").start()
    assert server.port is not None
    assert server.port > 0
    assert server.url == f"nats://127.0.0.1:{server.port}"
    process = server._process
    assert process is not None
    assert process.poll() is None
    server.stop()
    assert process.poll() is not None


def test_every_stream_takes_the_configured_replica_count() -> None:
    from translator.bus import topology

    settings = TranslatorSettings(stream_replicas=3)
    configs = [
        *(topology.request_stream_config(settings, pool) for pool in Pool),
        topology.results_stream_config(settings),
        topology.dead_letter_stream_config(settings),
        topology.events_stream_config(settings),
    ]
    assert [c.num_replicas for c in configs] == [3] * 5


async def test_a_jetstream_call_on_an_unbuffered_connection_waits_out_an_outage(
    settings: TranslatorSettings, nats_server: EmbeddedNats, caplog: pytest.LogCaptureFixture
) -> None:
    """The shim's connection buffers nothing: while NATS is down a call fails at once
    (OutboundBufferLimitError), and `patiently` tries again until NATS is back (the shim died
    of this when NATS went away right after its start)."""
    nc = await connect(settings, "test", buffered=False)
    js = nc.jetstream()
    await setup_topology(js, settings)
    config = ConsumerConfig(durable_name="after_outage", ack_policy=AckPolicy.EXPLICIT)
    port = nats_server.port
    nats_server.stop()
    with anyio.fail_after(30):
        while nc.is_connected:  # noqa: ASYNC110
            await anyio.sleep(0.05)
    restarted: EmbeddedNats | None = None
    try:
        async with anyio.create_task_group() as tg:
            created: list[str] = []

            async def create() -> None:
                info = await patiently(
                    "creating a consumer",
                    lambda: js.add_consumer(GATEWAY_RESULTS_STREAM, config),
                    deadline=math.inf,
                )
                created.append(info.name)

            tg.start_soon(create)
            with anyio.fail_after(30):
                while "consumer: nats: outbound buffer limit" not in caplog.text:  # noqa: ASYNC110
                    await anyio.sleep(0.05)  # it failed while NATS was down, and waits
            restarted = EmbeddedNats(nats_server.store_dir, port=port or -1).start()
        assert created == ["after_outage"]
    finally:
        if restarted is not None:
            restarted.stop()
        await nc.close()
