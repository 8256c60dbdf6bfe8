"""Signals: the first SIGTERM/SIGINT starts a graceful stop, a second forces exit."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable

import anyio

log = logging.getLogger(__name__)
FORCED_EXIT_CODE = 130


async def stop_on_signal(stop: Callable[[], None]) -> None:
    """Run `stop` on the first signal; exit the process at once on the second."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        received = 0
        async for signum in signals:
            received += 1
            if received == 1:
                log.info("%s: stopping gracefully", signal.Signals(signum).name)
                stop()
            else:
                log.warning("second signal: forced exit")
                logging.shutdown()
                os._exit(FORCED_EXIT_CODE)


def exit_without_threads(code: int) -> int:
    """`code`, or end the process now with it when a thread is still busy: one abandoned on a
    stop (a model load inside `from_pretrained` cannot be interrupted) would otherwise hold the
    interpreter's exit until it finished."""
    busy = [t for t in threading.enumerate() if t.is_alive() and not t.daemon]
    if any(t is not threading.main_thread() for t in busy):
        log.info("exiting without waiting for a busy thread (an abandoned model load)")
        logging.shutdown()
        os._exit(code)
    return code
