"""Signals: a parent's death is one graceful drain for its children, however many times its
death signal arrives; with the parent alive, a second signal still forces the exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from tests.support import ROOT

CHILD = """
import logging, sys
import anyio
from translator.runtime.signals import stop_on_signal

logging.basicConfig(level=logging.INFO, stream=sys.stdout)

async def main():
    stopped = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(stop_on_signal, stopped.set)
        print("ready", flush=True)
        await stopped.wait()
        await anyio.sleep(2)  # the drain
        print("drained", flush=True)
        tg.cancel_scope.cancel()

anyio.run(main)
"""

PARENT = """
import sys, time
from translator.runtime.children import spawn
child = spawn([sys.executable, "-c", sys.argv[1]])
print(child.pid, flush=True)
time.sleep(600)
"""


def wait_for(log: Path, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


def wait_gone(pid: int, timeout: float = 30) -> None:
    """Until the process has exited (a zombie counts: its parent may not reap it)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        assert time.monotonic() < deadline, f"process {pid} still running"
        time.sleep(0.05)


def start_family(log: Path) -> tuple[subprocess.Popen[bytes], int]:
    with log.open("wb") as out:
        parent = subprocess.Popen(
            [sys.executable, "-c", PARENT, CHILD], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )
    wait_for(log, "ready")
    child = int(log.read_text().split()[0])
    return parent, child


def test_signals_a_killed_parent_means_one_graceful_drain(tmp_path: Path) -> None:
    log = tmp_path / "family.log"
    parent, child = start_family(log)
    parent.kill()  # its death signal reaches the child (SIGTERM)
    parent.wait()
    wait_for(log, "stopping gracefully")
    for _ in range(3):  # the death signal again, as from each exiting thread of a parent
        os.kill(child, signal.SIGTERM)
        time.sleep(0.1)
    wait_for(log, "drained")
    wait_gone(child)
    assert "forced exit" not in log.read_text()


def test_signals_a_second_signal_forces_the_exit_while_the_parent_lives(tmp_path: Path) -> None:
    log = tmp_path / "family.log"
    parent, child = start_family(log)
    try:
        os.kill(child, signal.SIGTERM)
        wait_for(log, "stopping gracefully")
        os.kill(child, signal.SIGTERM)
        wait_for(log, "forced exit")
        wait_gone(child)
        assert "drained" not in log.read_text()
    finally:
        parent.kill()
        parent.wait()
