"""`translator worker --pool X`: the pieces of one worker process, put together."""

from __future__ import annotations

import contextlib
import logging

import anyio
import nats.errors
import torch

from translator.bus import heartbeat
from translator.bus.connection import connect
from translator.bus.topology import verify_topology
from translator.contracts.errors import TranslatorError
from translator.contracts.settings import TranslatorSettings
from translator.contracts.subjects import Pool, Role
from translator.inference.models import ModelRegistry
from translator.runtime.signals import stop_on_signal
from translator.worker.service import TranslatorService
from translator.worker.worker import Worker

log = logging.getLogger(__name__)
EXIT_CANNOT_START = 3


async def run_worker(settings: TranslatorSettings, pool: Pool) -> int:
    if settings.torch_threads:  # several workers on one host: threads x workers <= cores
        torch.set_num_threads(settings.torch_threads)
    nc = await connect(settings, f"translator-worker-{pool.value}", Role.WORKER)
    js = nc.jetstream()
    await verify_topology(js, settings, consumer_limits=True)
    bucket = await heartbeat.heartbeat_bucket(js)
    worker = Worker(settings, pool, nc, ModelRegistry(settings))
    service = TranslatorService(settings, nc, worker.who, worker.status.counters)
    await service.start()
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(stop_on_signal, worker.stop)
            tg.start_soon(worker.reporter.beat_forever, bucket)
            try:
                if await worker.load_models():
                    await worker.serve()
            except TranslatorError as exc:  # a setting no retry can fix (QUANTIZATION_LEVEL...)
                log.error("worker cannot start: %s", exc)
                tg.cancel_scope.cancel()
                return EXIT_CANNOT_START
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(10):
            with contextlib.suppress(nats.errors.Error):
                await service.stop()
            await heartbeat.remove(bucket, pool.value, worker.who.worker_id)
            try:
                await nc.drain()
            except nats.errors.Error:  # NATS stopped first: nothing left to drain
                await nc.close()
    counters = worker.status.counters
    log.info(
        "worker %s stopped: %d translated, %d failed, %d batches, %d generate calls",
        worker.who.worker_id,
        counters.processed,
        counters.failed,
        counters.batches,
        counters.generate_calls,
    )
    return 0
