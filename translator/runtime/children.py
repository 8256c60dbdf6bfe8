"""Child processes that neither take the terminal's Ctrl-C nor outlive their parent.

Each child gets its own session (a Ctrl-C reaches the parent only, which stops its children in
order) and PR_SET_PDEATHSIG (terminated even when the parent is SIGKILLed: no orphans).
`worker_command` is a worker process's command line, for whoever starts one (the scaler, the
benchmarks, the tests)."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
from collections.abc import Sequence

from translator.contracts.subjects import Pool

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def worker_command(pool: Pool) -> list[str]:
    """`translator worker --pool <pool>` with this interpreter."""
    return [sys.executable, "-m", "translator", "worker", "--pool", pool.value]


def spawn(command: Sequence[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        list(command),
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,
    )


def stop(process: subprocess.Popen[bytes], grace: float = 10.0) -> int:
    """SIGTERM, `grace` seconds to exit, then SIGKILL; the exit code."""
    if process.poll() is None:
        process.terminate()
        try:
            return process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
    return process.wait()
