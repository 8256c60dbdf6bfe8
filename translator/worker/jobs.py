"""The jobs of a batch (one per request, with an outcome per target language as they arrive),
and cutting them into generate() groups."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from nats.aio.msg import Msg

from translator.contracts.errors import InvalidRequest
from translator.contracts.messages import ModelType, TranslationRequest
from translator.inference.engine import Translation
from translator.inference.languages import language
from translator.text.plan import Plan

T = TypeVar("T")


@dataclass(eq=False)
class Job:
    """One request of a batch, with an outcome per target language as they arrive. The
    models are asked in language keys (`source`, `keys`: languages.py); its results name each
    target as the request wrote it. Outcomes are kept by key (`pt` for `pt-BR`), or by the
    target as written for one that is not a language code."""

    msg: Msg
    request: TranslationRequest
    source: str  # the key of the language translated from (the detected one for `auto`)
    plan: Plan
    keys: dict[str, str] = field(default_factory=dict)  # each target as written -> its key
    received: float = field(default_factory=time.perf_counter)
    translations: dict[str, Translation] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    error_kinds: dict[str, str] = field(default_factory=dict)  # the metrics' `reason` label
    translation_time: float = 0.0
    models: dict[str, str] = field(default_factory=dict)  # target -> the model's name
    tiers: dict[str, str] = field(default_factory=dict)  # target -> the tier that produced it
    pieces: dict[str, PieceCounts] = field(default_factory=dict)  # target -> its pieces

    @property
    def pending_targets(self) -> list[str]:
        """The keys still waiting for an outcome."""
        done = self.translations.keys() | self.errors.keys()
        return [key for key in dict.fromkeys(self.keys.values()) if key not in done]

    def outcome_key(self, target: str) -> str:
        """Where the outcome of `target` (as written) is kept."""
        return self.keys.get(target, target)


@dataclass(frozen=True)
class PieceCounts:
    """What a translation was made of: its pieces, how many came from the cache, how many hit
    their token budget; the tier it fell back from, and the language it went through, if it did."""

    total: int = 0
    cached: int = 0
    at_budget: int = 0
    fell_back_from: str = ""
    pivot: str = ""  # the language it went through (routing.PIVOT), when it did


@dataclass(frozen=True)
class GroupKey:
    model_type: ModelType
    source: str
    target: str


def source_key(code: str) -> str:
    """`auto`, or the key of the language a request translates from; InvalidRequest for a
    code that names none."""
    if code == "auto":
        return code
    read = language(code)
    if read is None:
        raise InvalidRequest(f"sourceLanguage {code!r} is not a language code")
    return read.key


def targets_of(job: Job) -> Job:
    """The job with each target's key; a target that names no language gets its own error
    outcome (the others are translated)."""
    for target in job.request.target_languages:
        read = language(target)
        if read is None:
            job.errors[target] = f"{target!r} is not a language code"
            job.error_kinds[target] = InvalidRequest.kind
        else:
            job.keys[target] = read.key
    return job


def group_jobs(jobs: list[Job]) -> dict[GroupKey, list[Job]]:
    """(model, source, target) -> the jobs that need it, shortest text first."""
    groups: dict[GroupKey, list[Job]] = defaultdict(list)
    for job in jobs:
        for target in job.pending_targets:
            groups[GroupKey(job.request.model_type, job.source, target)].append(job)
    for members in groups.values():
        members.sort(key=lambda job: len(job.request.text))  # similar plans near each other
    return dict(groups)


def chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
