"""Signals: the first SIGTERM/SIGINT starts a graceful stop, a second forces exit."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable

import anyio

log = logging.getLogger(__name__)
FORCED_EXIT_CODE = 130


async def stop_on_signal(stop: Callable[[], None]) -> None:
    """Run `stop` on the first signal; exit the process at once on the second, unless the
    parent has died: its death signal (PR_SET_PDEATHSIG, translator/runtime/children.py) can
    arrive more than once (once per exiting thread of the parent), and a parent's death means
    one graceful drain, never a forced exit."""
    parent = os.getppid()
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        received = 0
        async for signum in signals:
            received += 1
            if received == 1:
                log.info("%s: stopping gracefully", signal.Signals(signum).name)
                stop()
            elif os.getppid() != parent:
                log.info("%s: the parent is gone; the graceful stop goes on", signum)
            else:
                log.warning("second signal: forced exit")
                logging.shutdown()
                os._exit(FORCED_EXIT_CODE)


def exit_without_threads(code: int, wait: float = 2.0) -> int:
    """`code`, or end the process now with it when a thread is still busy after `wait`
    seconds: one abandoned on a stop (a model load inside `from_pretrained` cannot be
    interrupted) would otherwise hold the interpreter's exit until it finished."""
    deadline = time.monotonic() + wait
    busy = [t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon]
    for thread in busy:
        thread.join(max(deadline - time.monotonic(), 0.0))
    if still := [t.name for t in busy if t.is_alive()]:
        log.info("exiting without waiting for busy threads (an abandoned model load): %s", still)
        logging.shutdown()
        os._exit(code)
    return code
