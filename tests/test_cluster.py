"""A real 3-node JetStream cluster (the deployed cluster.conf, STREAM_REPLICAS=3, each process
with its own NATS user): the services start against a server list, the requests stream's leader
node is killed under load, then the heartbeat bucket's; nothing is lost or duplicated, and the
scaler keeps observing."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import anyio
import pytest

from tests.cluster import NatsCluster, leader, nats_cluster
from tests.deployed_nats import as_user, set_up, settings_as
from tests.probes import health_port, value, wait_metric, wait_status
from tests.support import (
    Models,
    collect_results,
    free_port,
    publish_request,
    request,
    start_scaler,
    stop_process,
    stored_count,
    worker_env,
)
from translator.bus.connection import connect
from translator.bus.retry import patiently
from translator.contracts.subjects import (
    DETECT_SUBJECT,
    HEARTBEAT_BUCKET,
    RESULTS_STREAM,
    SCALERS_BUCKET,
    Pool,
    Role,
    request_stream,
)

pytestmark = pytest.mark.anyio
REPLY = "translate.result.cluster"
N = 120


async def test_a_three_node_cluster_loses_a_leader_node_and_nothing_is_lost(
    models: Models, tmp_path: Path
) -> None:
    with nats_cluster(tmp_path / "cluster") as cluster:
        http = free_port()
        env = worker_env(
            cluster.url, models, STREAM_REPLICAS=3, NORMAL_WORKERS=1, ANY_WORKERS=0,
            ENABLE_DYNAMIC_SCALING="false", METRICS_INTERVAL=0.2, SCALER_HEALTH_PORT=http,
            HEARTBEAT_TTL=4,
        )  # fmt: skip
        log = tmp_path / "scaler.log"
        await set_up(cluster.url, env)  # the operator's, with three replicas of everything
        scaler = start_scaler(as_user(env, Role.SCALER), log)
        nc = await connect(settings_as(cluster.url, Role.OPERATOR), "tests-reader", Role.OPERATOR)
        client = await connect(settings_as(cluster.url, Role.CLIENT), "tests-client", Role.CLIENT)
        try:
            assert await health_port(log) == http
            await wait_status(http, "/ready", 200, timeout=120)
            js = nc.jetstream()
            for stream in (request_stream(Pool.NORMAL), RESULTS_STREAM, f"KV_{HEARTBEAT_BUCKET}",
                           f"KV_{SCALERS_BUCKET}"):  # fmt: skip
                assert (await js.stream_info(stream)).config.num_replicas == 3, stream

            # under load, the node leading the requests stream dies, then comes back
            sent = [request(text=f"cluster {i}") for i in range(N)]
            victim = await leader(js, request_stream(Pool.NORMAL))
            for i, req in enumerate(sent):
                if i == N // 3:
                    cluster.kill(victim)
                await patiently(f"publishing {i}", partial(publish_request, client, req, REPLY))
                await anyio.sleep(1 / 30)
            cluster.start(victim)
            # the application's own copy (its account's stream), as it reads them
            results = await collect_results(client, REPLY, N, timeout=120)
            assert sorted(r.task_id for r in results) == sorted(r.task_id for r in sent)
            assert all(r.status == "ok" for r in results)
            await anyio.sleep(2)  # a redelivered request would store a second result by now
            assert await stored_count(nc, RESULTS_STREAM, REPLY) == N  # none duplicated

            # the node leading the heartbeat bucket dies: the scaler keeps observing
            victim = await leader(js, f"KV_{HEARTBEAT_BUCKET}")
            cluster.kill(victim)
            await anyio.sleep(8)  # two heartbeat TTLs: stale beats would have expired
            await wait_metric(http, "translator_scaler_observing", 1)
            samples = await wait_metric(
                http, "translator_workers", 1, pool="normal", state="running"
            )
            assert value(samples, "translator_queue_depth", pool="normal") == 0
            await wait_status(http, "/ready", 200, timeout=60)
        finally:
            await nc.close()
            await client.close()
            assert stop_process(scaler) == 0
    text = log.read_text()
    assert "Traceback" not in text
    assert "forced exit" not in text


async def test_a_node_without_the_route_password_cannot_join(tmp_path: Path) -> None:
    """cluster.conf's routes need NATS_ROUTE_PASSWORD: a server that reaches the route ports
    with another one is refused (a route carries every account's messages). A message published
    on the first node reaches a subscriber on the second, not on the third."""
    cluster = NatsCluster(tmp_path / "cluster")
    try:
        cluster.start("n1")
        cluster.start("n2")
        cluster.start("n3", route_password="guessed")
        log = tmp_path / "cluster" / "n3" / "nats-server.log"
        with anyio.fail_after(30):
            while "authorization violation" not in log.read_text().lower():  # noqa: ASYNC110
                await anyio.sleep(0.1)
        heard = {name: await _hears(cluster, name) for name in ("n2", "n3")}
    finally:
        cluster.stop()
    assert heard == {"n2": True, "n3": False}


async def _hears(cluster: NatsCluster, name: str) -> bool:
    """Whether a worker on node `name` gets a detection the shim asks on n1 (a few seconds)."""
    url = f"nats://127.0.0.1:{cluster.client_ports[name]}"
    listener = await connect(settings_as(url, Role.WORKER), "tests-listener", Role.WORKER)
    speaker_url = f"nats://127.0.0.1:{cluster.client_ports['n1']}"
    speaker = await connect(settings_as(speaker_url, Role.SHIM), "tests-speaker", Role.SHIM)
    sub = await listener.subscribe(DETECT_SUBJECT)
    await listener.flush()
    got = False
    with anyio.move_on_after(5):
        while not got:
            await speaker.publish(DETECT_SUBJECT, b"across the route")
            with anyio.move_on_after(0.5):
                await sub.next_msg(timeout=None)
                got = True
    await listener.close()
    await speaker.close()
    return got
