"""API keys and rate limits. Keys are off by default (as in LibreTranslate); with API_KEYS set,
every API request needs one of them (`api_key` in the body or the query, or an
`Authorization: Bearer` header) and each key has its own requests-per-minute limit. Without keys,
API_RATE_LIMIT bounds each client address. Limits are token buckets, one per key or address,
in this process (each instance of the API limits its own clients).

Guessing a key costs: a missing or wrong one takes a token from its address's bucket of
API_KEY_FAILURES a minute, and an address that has none left gets 429 for everything, a right
key included, until it refills. A key is compared in constant time (`hmac.compare_digest`). The
address is the connection's, unless a proxy listed in FORWARDED_ALLOW_IPS says otherwise."""

from __future__ import annotations

import hmac
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


class _Buckets:
    """A token bucket per name, refilled at its per-minute rate; the least recent go first."""

    def __init__(self) -> None:
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def left(self, who: str, per_minute: int) -> float:
        """The tokens `who` has now (refilled), the bucket kept as the most recent."""
        now = time.monotonic()
        bucket = self._buckets.pop(who, None) or _Bucket(float(per_minute), now)
        bucket.tokens = min(per_minute, bucket.tokens + (now - bucket.stamp) * per_minute / 60)
        bucket.stamp = now
        self._buckets[who] = bucket
        while len(self._buckets) > MAX_TRACKED:
            self._buckets.popitem(last=False)
        return bucket.tokens

    def take(self, who: str, per_minute: int, why: str) -> None:
        """One token, or Refused(429) saying `why` and when to come back."""
        if per_minute <= 0:
            return
        tokens = self.left(who, per_minute)
        if tokens < 1:
            raise Refused(429, why, (1 - tokens) * 60 / per_minute)
        self._buckets[who].tokens -= 1


class Gate:
    def __init__(self, keys: dict[str, int], per_address: int, failures: int = 10) -> None:
        self.keys = keys
        self.per_address = per_address
        self.failures = failures
        self._used = _Buckets()  # requests, per key or per address
        self._failed = _Buckets()  # missing or wrong keys, per address

    @property
    def keys_required(self) -> bool:
        return bool(self.keys)

    def admit(self, api_key: str | None, address: str) -> None:
        """Raise Refused (403 for a missing or unknown key, 429 past a limit)."""
        if not self.keys:
            why = f"Slowdown: more than {self.per_address} requests per minute"
            self._used.take(f"address:{address}", self.per_address, why)
            return
        guessing = f"Slowdown: more than {self.failures} requests per minute without a valid key"
        if self._failed.left(address, self.failures) < 1:
            self._failed.take(address, self.failures, guessing)  # raises: none left
        key = self._match(api_key)
        if key is None:
            self._failed.take(address, self.failures, guessing)
            missing = "Please contact the server operator to get an API key"
            raise Refused(403, "Invalid API key" if api_key else missing)
        limit = self.keys[key]
        self._used.take(f"key:{key}", limit, f"Slowdown: more than {limit} requests per minute")

    def _match(self, api_key: str | None) -> str | None:
        """The configured key equal to `api_key`, compared in constant time with every one."""
        if not api_key:
            return None
        given = api_key.encode()
        found = None
        for key in self.keys:
            if hmac.compare_digest(key.encode(), given):
                found = key
        return found
