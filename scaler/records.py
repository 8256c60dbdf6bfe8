"""What the scalers keep in their KV buckets: each host's announcement and the leader's plan per
pool (TRANSLATOR_SCALERS, scaler/coordination.py), and the store audit's watermarks
(TRANSLATOR_STORE_AUDIT, scaler/audit.py). Only scalers (and `translator status`) read them."""

from __future__ import annotations

import time

from pydantic import Field

from translator.contracts.messages import Message


class HostBounds(Message):
    """One pool on one host: how many workers it has, and may have."""

    workers: int
    minimum: int
    maximum: int


class ScalerAnnouncement(Message):
    """A scaler's host, as it tells the others every scaling check (KV bucket
    TRANSLATOR_SCALERS, key `host.<host>`, expiring with the lease TTL)."""

    host: str
    pools: dict[str, HostBounds]
    room: int  # how many more workers this host takes (TRANSLATION_WORKERS, its capacity)
    cap: int = 0  # the most workers this host can run (0: not capped)
    cap_reason: str = ""  # what the cap comes from (cores, threads, memory)
    timestamp: float = Field(default_factory=time.time)


class PoolPlan(Message):
    """The leader's decision for a pool (key `plan.<pool>`): the pool-wide size, split into
    each host's share."""

    pool: str
    desired: int
    shares: dict[str, int]
    leader: str
    timestamp: float = Field(default_factory=time.time)


class StoreWatermark(Message):
    """What a request stream held at the scaler's last store audit (bucket
    TRANSLATOR_STORE_AUDIT, key: the stream's name): scaler/audit.py compares it with the stream
    as the server has it now, to find acknowledged requests a damaged store lost."""

    stream: str
    last_seq: int
    stored: list[tuple[int, int]]  # the sequences stored, as inclusive ranges
    delivered: int  # the `workers` consumer's last delivered stream sequence
    timestamp: float = Field(default_factory=time.time)
