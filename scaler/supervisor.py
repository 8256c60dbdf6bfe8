"""Worker subprocesses: start, stop gracefully (idle ones first), reap, replace with backoff.

Workers are spawned by `translator.children.spawn`: terminated even when the supervisor is
SIGKILLed, so no orphan is ever left behind."""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import anyio

from translator.contracts.subjects import Pool
from translator.runtime.children import spawn, worker_command

log = logging.getLogger(__name__)


@dataclass
class Child:
    pool: Pool
    process: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)
    served: bool = False  # a heartbeat showed it loaded and serving: not a crash loop

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class Backoff:
    """Exponential delay between restarts of a pool whose workers keep dying young, before
    they ever served (a crash loop: a bad model, a bad setting). A worker that had served and
    was killed (the OOM killer, an operator) is replaced at once."""

    initial: float = 1.0
    maximum: float = 60.0
    healthy_after: float = 30.0
    failures: int = 0
    not_before: float = 0.0

    def record_exit(self, lifetime: float, now: float, served: bool = False) -> None:
        healthy = served or lifetime >= self.healthy_after
        self.failures = 0 if healthy else self.failures + 1
        delay = min(self.initial * 2 ** (self.failures - 1), self.maximum) if self.failures else 0
        self.not_before = now + delay


class Supervisor:
    def __init__(
        self,
        env: dict[str, str] | None = None,
        grace: float = 30.0,
        command: Callable[[Pool], Sequence[str]] = worker_command,
        backoff: Callable[[], Backoff] = Backoff,
    ) -> None:
        self.env = {**os.environ, **(env or {})}
        self.grace = grace
        self.command = command
        self.children: dict[Pool, list[Child]] = {pool: [] for pool in Pool}
        self.wanted: dict[Pool, int] = dict.fromkeys(Pool, 0)
        self.backoff: dict[Pool, Backoff] = {pool: backoff() for pool in Pool}
        self.crashes: dict[Pool, int] = dict.fromkeys(Pool, 0)

    def count(self, pool: Pool) -> int:
        return len(self.children[pool])

    def pids(self, pool: Pool) -> list[int]:
        return [child.pid for child in self.children[pool]]

    def _start(self, pool: Pool) -> Child:
        process = spawn(self.command(pool), self.env)
        log.info("started %s worker pid %d", pool.value, process.pid)
        child = Child(pool, process)
        self.children[pool].append(child)
        return child

    async def scale(self, pool: Pool, wanted: int, idle_first: Sequence[int] = ()) -> None:
        """Start or stop workers until `wanted` run; stop the pids in `idle_first` first."""
        self.wanted[pool] = wanted
        self.reap()
        while self.count(pool) < wanted:
            self._start(pool)
        surplus = self.count(pool) - wanted
        if surplus > 0:
            order = sorted(self.children[pool], key=lambda c: (c.pid not in idle_first, c.started))
            await self._stop_children(order[:surplus])

    async def _stop_children(self, children: Sequence[Child]) -> None:
        for child in children:
            self.children[child.pool].remove(child)
        async with anyio.create_task_group() as tg:
            for child in children:
                tg.start_soon(self._stop_one, child)

    async def _stop_one(self, child: Child) -> None:
        """SIGTERM, the grace period to drain, then SIGKILL."""
        if child.process.poll() is None:
            child.process.terminate()
        with anyio.move_on_after(self.grace) as waiting:
            await anyio.to_thread.run_sync(child.process.wait, abandon_on_cancel=True)
        if waiting.cancelled_caught:
            log.warning("worker %d did not stop within %.0fs: killed", child.pid, self.grace)
            child.process.kill()
            await anyio.to_thread.run_sync(child.process.wait)
        log.info("stopped %s worker pid %d", child.pool.value, child.pid)

    def reap(self) -> list[Child]:
        """Forget workers that exited on their own; return them."""
        dead = []
        now = time.monotonic()
        for pool, children in self.children.items():
            for child in [c for c in children if c.process.poll() is not None]:
                children.remove(child)
                dead.append(child)
                self.crashes[pool] += 1
                self.backoff[pool].record_exit(now - child.started, now, child.served)
                log.warning(
                    "%s worker pid %d exited with %s",
                    pool.value,
                    child.pid,
                    child.process.returncode,
                )
        return dead

    def mark_serving(self, pids: set[int]) -> None:
        """The workers whose heartbeats say they loaded their models and serve."""
        for children in self.children.values():
            for child in children:
                child.served = child.served or child.pid in pids

    def replace_dead(self) -> list[Child]:
        """Start replacements for workers that died, when the pool's backoff allows."""
        self.reap()
        started = []
        now = time.monotonic()
        for pool in Pool:
            if self.count(pool) < self.wanted[pool] and now >= self.backoff[pool].not_before:
                started.append(self._start(pool))
        return started

    async def supervise(self, interval: float = 0.5) -> None:
        """Keep every pool at its wanted size, forever."""
        while True:
            self.replace_dead()
            await anyio.sleep(interval)

    async def stop_all(self) -> None:
        for pool in Pool:
            self.wanted[pool] = 0
        await self._stop_children([c for children in self.children.values() for c in children])
