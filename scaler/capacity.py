"""How many worker processes this host can run: its cores over the threads each worker uses,
and its memory over what a worker holds (the median RSS its workers report, else an estimate).
Past that, more workers only add contention (bench/scaler_burst measured 3.5x slower with
threads x workers above the cores) or swap. The scaler never scales up past the cap; when the
0.4.9 rules want more, it raises the seed's `scaling_failed` alert instead.

Threads per worker: TORCH_THREADS, else `max(1, cores // (NORMAL_WORKERS + ANY_WORKERS))`, the
rule that gives the initial workers the cores between them (the scaler passes it to the workers
it starts). The pools' minimums are kept even above the cap (an operator's explicit choice)."""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

from translator.contracts.telemetry import WorkerHeartbeat

CGROUP = Path("/sys/fs/cgroup")  # cgroup v2: a container's CPU quota and memory limit


def host_cores() -> int:
    """The cores this process may use: its affinity (else the machine's), within a
    container's CPU quota (`cpus: 4` is a quota, not an affinity)."""
    try:
        cores = len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    quota, _, period = _cgroup("cpu.max").partition(" ")
    if quota.isdigit() and period.strip().isdigit():
        cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    return cores


def host_memory_mb() -> float:
    """The memory this host (or container: its cgroup limit) has, in MB."""
    total = psutil.virtual_memory().total
    limit = _cgroup("memory.max")
    if limit.isdigit():
        total = min(total, int(limit))
    return total / 2**20


def _cgroup(name: str) -> str:
    try:
        return (CGROUP / name).read_text().strip()
    except OSError:
        return ""


def default_threads(cores: int, initial_workers: int) -> int:
    return max(1, cores // max(1, initial_workers))


@dataclass(frozen=True)
class HostCapacity:
    cores: int
    threads: int  # per worker
    memory_mb: float  # the host's memory the workers may use (HOST_MEMORY_FRACTION of it)
    worker_mb: float  # one worker's RSS: measured (median) or the estimate
    measured: bool  # worker_mb is the workers' own figure

    @property
    def by_cores(self) -> int:
        return max(1, self.cores // self.threads)

    @property
    def by_memory(self) -> int:
        return max(1, int(self.memory_mb // max(self.worker_mb, 1.0)))

    @property
    def cap(self) -> int:
        return min(self.by_cores, self.by_memory)

    @property
    def bound(self) -> str:
        """What the cap comes from: `cores` or `memory`."""
        return "cores" if self.by_cores <= self.by_memory else "memory"

    def describe(self) -> str:
        rss = "measured" if self.measured else "estimated"
        return (
            f"{self.cap} workers ({self.cores} cores / {self.threads} threads each = "
            f"{self.by_cores}; {self.memory_mb:.0f} MB / {self.worker_mb:.0f} MB {rss} per "
            f"worker = {self.by_memory})"
        )


def measure(
    threads: int, memory_fraction: float, estimate_mb: float, beats: Iterable[WorkerHeartbeat]
) -> HostCapacity:
    """This host's capacity, from its cores and memory and its workers' heartbeats."""
    sizes = [b.rss_mb for b in beats if b.rss_mb > 0 and b.state in ("ready", "busy")]
    worker_mb = statistics.median(sizes) if sizes else estimate_mb
    memory_mb = host_memory_mb() * memory_fraction
    return HostCapacity(host_cores(), threads, memory_mb, worker_mb, bool(sizes))
