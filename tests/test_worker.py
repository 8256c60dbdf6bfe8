"""The worker, end to end: real nats-server, real worker subprocesses, tiny real models."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

import anyio
import pytest
from nats.aio.client import Client

from tests.support import (
    Models,
    collect_results,
    publish_request,
    request,
    running_worker,
    start_worker,
    stop_process,
    stored_count,
    wait_for_heartbeat,
    worker_env,
)
from translator.bus import heartbeat
from translator.bus.client import translate
from translator.bus.embedded import EmbeddedNats
from translator.contracts.subjects import RESULTS_STREAM, Pool
from translator.contracts.telemetry import WorkerHeartbeat

pytestmark = pytest.mark.anyio

RESULT_FIELDS = {
    "messageId", "translatedText", "sourceLanguage", "targetLanguage", "confidenceScore",
    "processingTime", "modelType", "workerName", "translatorModel", "workerId", "poolType",
    "translationTime", "queueTime", "memoryUsage", "cpuUsage", "timestamp", "version",
    "taskId", "conversationId", "status",
}  # fmt: skip


@pytest.mark.parametrize("engine", ["transformers", "ctranslate2"])
async def test_worker_answers_each_target_language_from_the_pool_of_the_conversation(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path, engine: str
) -> None:
    env = worker_env(
        nats_server.url, models, INFERENCE_ENGINE=engine, MODELS_PATH=tmp_path / "models"
    )
    log = tmp_path / "workers.log"
    async with (
        running_worker(nc, env, Pool.NORMAL, log) as normal,
        running_worker(nc, env, Pool.ANY, log) as any_,
    ):
        public = request(targets=("fr", "de"), conversation_id="any")
        private = request(targets=("fr", "de", "ro"), conversation_id="cmeiu1q9z0001")
        public_results = await translate(nc, public, timeout=30)
        private_results = await translate(nc, private, timeout=30)

    assert [r.target_language for r in public_results] == ["fr", "de"]
    assert [r.target_language for r in private_results] == ["fr", "de", "ro"]
    assert {r.pool_type for r in public_results} == {"any"}
    assert {r.pool_type for r in private_results} == {"normal"}
    assert {r.worker_name for r in public_results} == {f"any_worker_{any_.pid}"}
    assert {r.worker_name for r in private_results} == {f"normal_worker_{normal.pid}"}
    for result in public_results + private_results:
        wire = result.model_dump(by_alias=True)
        assert wire.keys() >= RESULT_FIELDS
        assert result.status == "ok"
        assert result.translated_text
        assert result.task_id in (public.task_id, private.task_id)
        assert result.source_language == "en"
        assert result.translator_model == "basic"  # the tier that wrote it, as Meeshy ranks
        assert result.model_name == models.t5.name  # the model's name, not a local path
        assert 0.0 < result.confidence_score <= 1.0
        assert result.memory_usage > 50
        assert result.queue_time >= result.processing_time >= result.translation_time > 0


async def test_worker_translates_queued_requests_in_fewer_generate_calls_than_requests(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    queued = [request(text=f"Message number {i} " + "word " * (i % 7)) for i in range(40)]
    for req in queued:
        await publish_request(nc, req, "translate.result.batch")
    env = worker_env(nats_server.url, models, BATCH_SIZE=16)
    process = start_worker(env, Pool.NORMAL, tmp_path / "worker.log")
    try:
        results = await collect_results(nc, "translate.result.batch", 40)
        beat = await wait_for_heartbeat(nc, process.pid, processed=40)
    finally:
        stop_process(process)

    assert {r.task_id for r in results} == {req.task_id for req in queued}
    assert all(r.status == "ok" for r in results)
    assert beat.generate_calls <= 6  # 40 requests in batches of up to 16
    assert beat.batches < 40


async def test_worker_killed_mid_batch_loses_nothing_and_duplicates_nothing(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    queued = [request(text=f"Slow message {i}", targets=("fr", "de")) for i in range(12)]
    for req in queued:
        await publish_request(nc, req, "translate.result.kill")
    log = tmp_path / "worker.log"
    slow = worker_env(nats_server.url, models, BASIC_MODEL=models.slow_t5, BATCH_SIZE=4)
    victim = start_worker(slow, Pool.NORMAL, log)
    await wait_for_heartbeat(nc, victim.pid, state="busy")
    stop_process(victim, signal.SIGKILL)

    async with running_worker(nc, worker_env(nats_server.url, models), Pool.NORMAL, log):
        results = await collect_results(nc, "translate.result.kill", 24)

    delivered = Counter((r.task_id, r.target_language) for r in results)
    assert set(delivered) == {(q.task_id, lang) for q in queued for lang in ("fr", "de")}
    assert max(delivered.values()) == 1
    assert await stored_count(nc, RESULTS_STREAM, "translate.result.kill") == 24


async def test_worker_stopped_with_sigterm_mid_batch_finishes_it_and_loses_nothing(
    nc: Client, nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    queued = [request(text=f"Drain message {i}") for i in range(10)]
    for req in queued:
        await publish_request(nc, req, "translate.result.term")
    log = tmp_path / "worker.log"
    slow = worker_env(nats_server.url, models, BASIC_MODEL=models.slow_t5, BATCH_SIZE=4)
    draining = start_worker(slow, Pool.NORMAL, log)
    await wait_for_heartbeat(nc, draining.pid, state="busy")
    exit_code = stop_process(draining, signal.SIGTERM)
    finished_before_exit = await stored_count(nc, RESULTS_STREAM, "translate.result.term")

    async with running_worker(nc, worker_env(nats_server.url, models), Pool.NORMAL, log):
        results = await collect_results(nc, "translate.result.term", 10)

    assert exit_code == 0
    assert finished_before_exit >= 1  # the batch in hand was finished, not dropped
    assert sorted(r.task_id for r in results) == sorted(q.task_id for q in queued)
    assert "stopped:" in log.read_text()


async def test_a_killed_workers_batch_is_answered_within_seconds_with_the_default_ack_wait(
    nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    """The default ACK_WAIT is short (a busy worker keeps its batch with `in_progress`): the
    batch of a SIGKILLed worker goes to another one within seconds, not after 30 s."""
    import time

    from translator.bus.connection import connect
    from translator.bus.topology import setup_topology
    from translator.contracts.settings import TranslatorSettings

    defaults = TranslatorSettings(nats_url=nats_server.url)
    nc = await connect(defaults, "tests")
    await setup_topology(nc.jetstream(), defaults)
    consumer = await nc.jetstream().consumer_info("TRANSLATE_NORMAL", "workers")
    assert consumer.config.ack_wait == defaults.ack_wait == 6.0
    env = worker_env(nats_server.url, models, BASIC_MODEL=models.slow_t5, BATCH_SIZE=8)
    del env["ACK_WAIT"]  # the default
    log = tmp_path / "worker.log"
    workers = {p.pid: p for p in (start_worker(env, Pool.NORMAL, log) for _ in range(2))}
    try:
        for pid in workers:
            await wait_for_heartbeat(nc, pid, state="ready")
        queued = [request(text=f"Slow message {i}") for i in range(6)]
        for req in queued:
            await publish_request(nc, req, "translate.result.ackwait")
        beat = await busy(nc, set(workers))  # the worker holding a batch dies
        stop_process(workers[beat.pid], signal.SIGKILL)
        killed = time.monotonic()
        results = await collect_results(nc, "translate.result.ackwait", 6, timeout=60)
        answered = time.monotonic() - killed
    finally:
        for process in workers.values():
            stop_process(process)
        await nc.close()
    assert beat.in_flight > 0
    assert sorted(r.task_id for r in results) == sorted(q.task_id for q in queued)
    assert answered < 20  # ACK_WAIT (6 s) and the slow model's batch; it was 30 s and more


async def busy(nc: Client, pids: set[int], timeout: float = 60) -> WorkerHeartbeat:
    """The first heartbeat, of one of `pids`, with requests in flight."""
    with anyio.fail_after(timeout):
        while True:
            for beat in await heartbeat.read_all(nc.jetstream()):
                if beat.pid in pids and beat.in_flight > 0:
                    return beat
            await anyio.sleep(0.05)


async def test_heartbeats_come_back_after_nats_restarts_without_their_bucket(
    nats_server: EmbeddedNats, models: Models, tmp_path: Path
) -> None:
    """The heartbeat bucket lives in memory: a restarted nats-server has none, and the workers
    create it again (or the scaler would see no worker for the rest of their lives)."""
    from translator.bus.connection import connect
    from translator.contracts.settings import TranslatorSettings

    port = nats_server.port or 0
    log = tmp_path / "log"
    process = start_worker(worker_env(nats_server.url, models), Pool.NORMAL, log)
    server = nats_server
    try:
        nc = await connect(TranslatorSettings(nats_url=server.url), "test")
        await wait_for_heartbeat(nc, process.pid, state="ready")
        await nc.close()
        server.kill()
        server = EmbeddedNats(nats_server.store_dir, port=port).start()
        nc = await connect(TranslatorSettings(nats_url=server.url), "test")
        try:
            await wait_for_heartbeat(nc, process.pid, timeout=60, state="ready")
        finally:
            await nc.close()
    finally:
        stop_process(process)
        server.stop()
