"""Signals: the first SIGTERM/SIGINT starts a graceful stop, a second forces exit."""

from __future__ import annotations

import logging
import os
import signal
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
