"""API keys and rate limits. Keys are off by default (as in LibreTranslate); with API_KEYS set,
every API request needs one of them (`api_key` in the body or the query, or an
`Authorization: Bearer` header) and each key has its own requests-per-minute limit. Without keys,
API_RATE_LIMIT bounds each client address. Limits are token buckets, one per key or address,
in this process (each instance of the API limits its own clients)."""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass

MAX_TRACKED = 100_000  # client addresses remembered; the least recently seen go first


class Refused(Exception):
    def __init__(self, status: int, reason: str, retry_after: float = 0.0) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.retry_after = retry_after


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class Gate:
    def __init__(self, keys: dict[str, int], per_address: int) -> None:
        self.keys = keys
        self.per_address = per_address
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    @property
    def keys_required(self) -> bool:
        return bool(self.keys)

    def admit(self, api_key: str | None, address: str) -> None:
        """Raise Refused (403 for a missing or unknown key, 429 past its limit)."""
        if self.keys:
            if not api_key:
                raise Refused(403, "Please contact the server operator to get an API key")
            if api_key not in self.keys:
                raise Refused(403, "Invalid API key")
            self._take(f"key:{api_key}", self.keys[api_key])
        else:
            self._take(f"address:{address}", self.per_address)

    def _take(self, who: str, per_minute: int) -> None:
        if per_minute <= 0:
            return
        now = time.monotonic()
        bucket = self._buckets.pop(who, None) or _Bucket(float(per_minute), now)
        bucket.tokens = min(per_minute, bucket.tokens + (now - bucket.stamp) * per_minute / 60)
        bucket.stamp = now
        self._buckets[who] = bucket
        while len(self._buckets) > MAX_TRACKED:
            self._buckets.popitem(last=False)
        if bucket.tokens < 1:
            wait = (1 - bucket.tokens) * 60 / per_minute
            raise Refused(429, f"Slowdown: more than {per_minute} requests per minute", wait)
        bucket.tokens -= 1
