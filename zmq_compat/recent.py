"""What the shim did lately, by key, for a window of seconds: the results it sent (a result
JetStream redelivers after a lost ack is not sent twice, and a gateway's retried push gets the
frame again), the tasks it answered with an error, the requests whose results are still due."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Recent(Generic[K, V]):
    """Values put in the last `window` seconds (at most `limit`, the oldest forgotten first)."""

    def __init__(self, window: float, limit: int = 100_000) -> None:
        self.window = window
        self.limit = limit
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def _expire(self) -> None:
        floor = time.monotonic() - self.window
        while self._entries and next(iter(self._entries.values()))[0] < floor:
            self._entries.popitem(last=False)

    def get(self, key: K) -> V | None:
        """The value put for `key` within the window, else None."""
        self._expire()
        entry = self._entries.get(key)
        return entry[1] if entry is not None else None

    def seen(self, key: K) -> bool:
        self._expire()
        return key in self._entries

    def put(self, key: K, value: V) -> None:
        """`key` now holds `value`, its window starting again."""
        self._entries.pop(key, None)
        while len(self._entries) >= self.limit:
            self._entries.popitem(last=False)
        self._entries[key] = (time.monotonic(), value)

    def pop(self, key: K) -> V | None:
        entry = self._entries.pop(key, None)
        return entry[1] if entry is not None else None
