"""Filling a batch from the pool's consumer, and cutting it into generate() groups.

nats-py's `fetch` returns as soon as one message is there, and raises a timeout (sometimes
the builtin TimeoutError) when none is; so the first fetch long-polls, and later ones fill the
batch until it is full or the batch window has passed."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field

import anyio
import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from translator.engine import Translation
from translator.messages import ModelType, TranslationRequest

log = logging.getLogger(__name__)
_MIN_FETCH = 0.002


async def _fetch(sub: JetStreamContext.PullSubscription, size: int, timeout: float) -> list[Msg]:
    try:
        msgs: list[Msg] = await sub.fetch(batch=size, timeout=timeout)
    except (TimeoutError, nats.errors.TimeoutError):
        return []
    except nats.errors.Error as exc:  # reconnecting, slow consumer...: try again shortly
        log.warning("fetch failed: %s", exc)
        await anyio.sleep(min(timeout, 0.5))
        return []
    return msgs


async def fetch_batch(
    sub: JetStreamContext.PullSubscription, size: int, window: float, timeout: float
) -> list[Msg]:
    """Up to `size` messages: wait up to `timeout` for the first, then keep filling the batch
    for at most `window` while the consumer still holds queued messages (`num_pending`). An idle
    queue is not waited on: a lone message at low load goes through at once."""
    msgs = await _fetch(sub, size, timeout)
    deadline = time.monotonic() + window
    while msgs and len(msgs) < size and _more_queued(msgs[-1]):
        left = deadline - time.monotonic()
        if left < _MIN_FETCH:
            break
        more = await _fetch(sub, size - len(msgs), left)
        if not more:
            break
        msgs.extend(more)
    return msgs


def _more_queued(msg: Msg) -> bool:
    pending = msg.metadata.num_pending
    return pending is None or pending > 0


@dataclass(eq=False)
class Job:
    """One request of a batch, with an outcome per target language as they arrive."""

    msg: Msg
    request: TranslationRequest
    source: str
    received: float = field(default_factory=time.perf_counter)
    translations: dict[str, Translation] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    error_kinds: dict[str, str] = field(default_factory=dict)  # the metrics' `reason` label
    translation_time: float = 0.0
    model_id: str = ""

    @property
    def pending_targets(self) -> list[str]:
        done = self.translations.keys() | self.errors.keys()
        return [t for t in self.request.target_languages if t not in done]


@dataclass(frozen=True)
class GroupKey:
    model_type: ModelType
    source: str
    target: str


def group_jobs(jobs: list[Job]) -> dict[GroupKey, list[Job]]:
    """(model, source, target) -> the jobs that need it, shortest text first."""
    groups: dict[GroupKey, list[Job]] = defaultdict(list)
    for job in jobs:
        for target in job.pending_targets:
            groups[GroupKey(job.request.model_type, job.source, target)].append(job)
    for members in groups.values():
        members.sort(key=lambda job: len(job.request.text))
    return dict(groups)


def chunks(jobs: list[Job], size: int) -> Iterator[list[Job]]:
    for start in range(0, len(jobs), size):
        yield jobs[start : start + size]
