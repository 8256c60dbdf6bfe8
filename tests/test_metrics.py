"""Metrics after a known workload, scraped over HTTP from the scaler (with its workers' figures)
and the shim: 30 translations, one unreadable request, one scaling event."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import anyio
import pytest
from nats.aio.client import Client

from tests.gateway import gateway, shim
from tests.probes import (
    dashboard_and_alert_queries,
    health_port,
    scrape,
    value,
    wait_metric,
    wait_status,
)
from tests.support import (
    ROOT,
    Models,
    collect_results,
    free_port,
    publish_raw,
    publish_request,
    request,
    shim_env,
    start_scaler,
    stop_process,
    worker_env,
)
from translator.bus.embedded import EmbeddedNats
from translator.contracts.subjects import Pool
from translator.contracts.telemetry import BATCH_STAGES

pytestmark = pytest.mark.anyio


async def test_metrics_match_a_known_workload_and_cover_the_dashboard_and_alerts(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    """30 translations through a gateway and the shim, one unreadable request, one scaling
    event, one alert; then the scaler's and the shim's /metrics, scraped over HTTP."""
    http, shim_http = free_port(), free_port()
    env = worker_env(
        nats_server.url, models, NORMAL_WORKERS=2, MIN_NORMAL_WORKERS=1, ANY_WORKERS=0,
        ANY_POOL_SIZE=2, SCALING_CHECK_INTERVAL=0.5, METRICS_INTERVAL=0.2, UTILIZATION_WINDOW=2,
        SCALER_HEALTH_PORT=http,
    )  # fmt: skip
    log = tmp_path / "scaler.log"
    scaler = start_scaler(env, log)
    try:
        assert await health_port(log) == http
        await wait_status(http, "/ready", 200)
        # idle with 2 workers and a minimum of 1: one scaling event, down
        await wait_metric(http, "translator_scaling_events_total", 1, direction="down")
        async with shim(
            shim_env(nats_server.url, ZMQ_HEALTH_PORT=shim_http), tmp_path / "shim"
        ) as ports:
            async with gateway(ports) as gw:
                sent = [await gw.request(f"Hello number {i}", ["fr"]) for i in range(30)]
                results = [await gw.results_for(message) for message in sent]
            await publish_raw(nc, Pool.NORMAL, b"{not json", "translate.result.metrics")
            # the any pool has no worker and room for 2: full beyond 80% -> a queue_high alert
            for i in range(2):
                await publish_request(
                    nc, request(text=f"any {i}", conversation_id="any"), "translate.result.m"
                )
            await wait_metric(http, "translator_alerts_total", 1, pool="any", kind="queue_high")
            await wait_metric(http, "translator_dead_letters_total", 1, pool="normal")
            samples = await wait_metric(
                http, "translator_translations_total", 30, pool="normal", status="ok"
            )
            shim_samples = scrape(shim_http)
    finally:
        assert stop_process(scaler) == 0

    assert all(r["fr"]["type"] == "translation_completed" for r in results)
    normal = {"pool": "normal"}
    assert value(samples, "translator_translations_total", **normal, status="ok") == 30
    # every label value known in advance is there, at 0 until its first event
    assert value(samples, "translator_translations_total", **normal, status="error") == 0
    assert value(samples, "translator_translations_total", pool="any", status="ok") == 0
    assert value(samples, "translator_errors_total", **normal, reason="model_failure") == 0
    assert value(samples, "translator_alerts_total", **normal, kind="scaling_failed") == 0
    assert value(samples, "translator_scaling_events_total", **normal, direction="up") == 0
    assert value(samples, "translator_dead_letters_total", pool="any") == 0
    assert value(samples, "translator_service_info", service="scaler") == 1
    assert value(samples, "translator_errors_total", **normal) == 1
    assert value(samples, "translator_errors_total", **normal, reason="invalid_request") == 1
    assert value(samples, "translator_dead_letters_total", **normal) == 1
    assert value(samples, "translator_processing_seconds_count", **normal) == 30
    assert value(samples, "translator_processing_seconds_sum", **normal) > 0
    assert value(samples, "translator_processing_seconds_bucket", **normal, le="+Inf") == 30
    assert value(samples, "translator_queue_seconds_count", **normal) == 30
    assert value(samples, "translator_scaling_events_total", **normal, direction="down") == 1
    assert value(samples, "translator_scaling_events_total", **normal) == 1
    assert value(samples, "translator_workers", **normal, state="running") == 1
    assert value(samples, "translator_queue_depth", **normal) == 0
    assert value(samples, "translator_queue_depth", pool="any") == 2
    assert value(samples, "translator_queue_capacity", **normal) == 10_000
    assert value(samples, "translator_model_load_seconds", **normal, model=str(models.t5)) > 0
    assert value(samples, "translator_worker_rss_bytes", **normal) > 50 * 2**20
    # where the batches' time went: every stage ran, generate() the model's own share
    stages = {
        stage: value(samples, "translator_batch_seconds_total", **normal, stage=stage)
        for stage in BATCH_STAGES
    }
    assert all(seconds > 0 for seconds in stages.values()), stages
    assert value(samples, "translator_generate_cpu_seconds_total", **normal) > 0
    assert value(samples, "translator_batch_seconds_total", pool="any", stage="generate") == 0
    assert value(shim_samples, "zmq_compat_requests_total", outcome="accepted") == 30
    assert value(shim_samples, "zmq_compat_requests_total", outcome="result_ok") == 30

    exported = {name for name, _ in samples} | {name for name, _ in shim_samples}
    for query in dashboard_and_alert_queries():
        for name in re.findall(r"\b(?:translator|zmq_compat)_[a-z_]+\b", query):
            assert name in exported, f"{name} (in {query!r}) is not exported"


async def test_shim_metrics_count_requests_and_results_by_outcome(
    nats_server: EmbeddedNats, nc: Client, models: Models, tmp_path: Path
) -> None:
    from tests.support import running_worker

    http = free_port()
    log = tmp_path / "log"
    async with (
        running_worker(nc, worker_env(nats_server.url, models), Pool.NORMAL, log),
        shim(shim_env(nats_server.url, ZMQ_HEALTH_PORT=http), log) as ports,
        gateway(ports) as gw,
    ):
        for i in range(5):
            await gw.results_for(await gw.request(f"Hello {i}", ["fr", "de"]))
        await gw.results_for(await gw.request("Hello", ["xx"]))  # no such language
        # not for this t5: the medium tier's model translates it (fallback)
        await gw.results_for(await gw.request("Hello", ["es"]))
        await gw.send_raw(json.dumps({"type": "translation", "messageId": "m"}).encode())
        samples = await wait_metric(http, "zmq_compat_requests_total", 1, outcome="invalid")
    ok = value(samples, "zmq_compat_requests_total", outcome="result_ok")
    # "xx" names no language: the shim answers it itself (issue 37), it is not queued
    assert (ok, value(samples, "zmq_compat_requests_total", outcome="accepted")) == (11, 6)
    assert value(samples, "zmq_compat_requests_total", outcome="result_error") == 0
    assert value(samples, "zmq_compat_requests_total", outcome="unsupported_target") == 1
    assert value(samples, "zmq_compat_requests_total", outcome="invalid") == 1
    assert value(samples, "zmq_compat_requests_total", outcome="pool_full") == 0


async def test_an_observing_scaler_runs_no_worker_and_reports_every_hosts_workers(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    """SCALER_MODE=observe, as under KEDA: workers are started by someone else. One that dies
    (its heartbeat gone without a clean stop) is a failure all the same."""
    import psutil

    from tests.support import running_worker

    http = free_port()
    env = worker_env(
        nats_server.url, models, SCALER_MODE="observe", SCALING_CHECK_INTERVAL=0.5,
        METRICS_INTERVAL=0.2, SCALER_HEALTH_PORT=http, HEARTBEAT_TTL=2,
    )  # fmt: skip
    log = tmp_path / "log"
    worker = worker_env(nats_server.url, models, HEARTBEAT_TTL=2)
    async with running_worker(nc, worker, Pool.NORMAL, log) as dying:
        scaler = start_scaler(env, tmp_path / "scaler.log")
        try:
            assert await health_port(tmp_path / "scaler.log") == http
            await wait_status(http, "/ready", 200)
            for i in range(3):
                await publish_request(nc, request(text=f"Hi {i}"), "translate.result.observe")
            await collect_results(nc, "translate.result.observe", 3)
            samples = await wait_metric(http, "translator_translations_total", 3, status="ok")
            await anyio.sleep(2)  # several scaling checks: none may start a worker
            assert psutil.Process(scaler.pid).children() == []
            # a clean stop of another worker is no failure; the SIGKILLed one is
            async with running_worker(nc, worker, Pool.ANY, log):
                pass
            stop_process(dying, signal.SIGKILL)
            failed = await wait_metric(
                http, "translator_alerts_total", 1, pool="normal", kind="scaling_failed"
            )
        finally:
            assert stop_process(scaler) == 0
    assert value(samples, "translator_workers", pool="normal", state="running") == 1
    assert value(samples, "translator_workers", pool="any", state="running") == 0
    assert value(samples, "translator_scaling_events_total") == 0  # exported, never counted
    assert value(failed, "translator_alerts_total", pool="any", kind="scaling_failed") == 0
    assert "observe mode" in (tmp_path / "scaler.log").read_text()


def test_every_shim_outcome_is_documented() -> None:
    from zmq_compat.outcomes import Outcome

    row = next(
        line
        for line in (ROOT / "docs" / "OBSERVABILITY.md").read_text().splitlines()
        if line.startswith("| `zmq_compat_requests_total`")
    )
    assert [o.value for o in Outcome if f"`{o.value}`" not in row] == []
