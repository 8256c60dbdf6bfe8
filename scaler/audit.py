"""The store audit: acknowledged requests that a damaged stream store lost.

nats-server recovers a truncated or corrupted block file by dropping every message from the
damage on (docs/DEPLOY.md, "A damaged store"). What it says about it is not enough: the stream
state's `lost` field may list the sequences or not, and without the block's index the server
says nothing at all and its `last_seq` goes back, so later publishes reuse the lost sequences.

So the scaler keeps, per request stream, a watermark in the file bucket TRANSLATOR_STORE_AUDIT:
the sequences the stream stored and how far the `workers` consumer had delivered. A later audit
compares it with the stream as it is now: a sequence that was stored and is gone, although no
worker was ever given it (above the consumer's delivered sequence, then and now), was lost.
A request that a worker had been given may have been answered before the damage: it is not
counted. The audit runs when the scaler starts, before its workers and (in `translator up`)
the gateway shim, and then on every scaling check; see docs/DEPLOY.md for what it cannot see."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

import anyio
from nats.aio.client import Client
from nats.js.errors import APIError, KeyNotFoundError
from nats.js.kv import KeyValue

from scaler.records import StoreWatermark
from translator.bus.buckets import open_bucket
from translator.contracts.messages import encode
from translator.contracts.subjects import AUDIT_BUCKET, WORKERS_CONSUMER, Pool, request_stream

Ranges = list[tuple[int, int]]


@dataclass(frozen=True)
class Loss:
    pool: Pool
    stream: str
    ranges: Ranges  # the lost sequences

    @property
    def count(self) -> int:
        return sum(last - first + 1 for first, last in self.ranges)

    def describe(self) -> str:
        return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in self.ranges)


def ranges(seqs: Iterable[int]) -> Ranges:
    """Sorted sequences as inclusive ranges."""
    out: Ranges = []
    for seq in sorted(set(seqs)):
        if out and out[-1][1] == seq - 1:
            out[-1] = (out[-1][0], seq)
        else:
            out.append((seq, seq))
    return out


def stored_ranges(first: int, last: int, deleted: Iterable[int]) -> Ranges:
    """[first, last] less the deleted sequences."""
    out: Ranges = []
    start = first
    for gap in sorted(set(d for d in deleted if first <= d <= last)):
        if gap > start:
            out.append((start, gap - 1))
        start = gap + 1
    if first > 0 and start <= last:
        out.append((start, last))
    return out


def _minus(kept: Ranges, gone: Ranges) -> Ranges:
    """The sequences of `kept` that `gone` does not hold."""
    out: Ranges = []
    for first, last in kept:
        start = first
        for a, b in gone:
            if b < start or a > last:
                continue
            if a > start:
                out.append((start, a - 1))
            start = max(start, b + 1)
        if start <= last:
            out.append((start, last))
    return out


def lost(before: StoreWatermark, now: StoreWatermark) -> Ranges:
    """Stored at `before`, gone at `now`, and never given to a worker."""
    given = max(before.delivered, now.delivered)
    gone = _minus(before.stored, now.stored)
    return [(max(a, given + 1), b) for a, b in gone if b > given]


async def watermark(nc: Client, pool: Pool) -> StoreWatermark:
    """The pool's request stream as the server has it now."""
    stream = request_stream(pool)
    # STREAM.INFO with deleted_details: nats-py's stream_info does not ask for the deleted list
    reply = await nc.request(
        f"$JS.API.STREAM.INFO.{stream}", json.dumps({"deleted_details": True}).encode(), timeout=5
    )
    info = json.loads(reply.data)
    if "error" in info:
        APIError.from_error(info["error"])  # raises the error's own class
    state = info["state"]
    consumer = await nc.jetstream().consumer_info(stream, WORKERS_CONSUMER)
    delivered = consumer.delivered.stream_seq if consumer.delivered else 0
    last = int(state.get("last_seq") or 0)
    stored = stored_ranges(int(state.get("first_seq") or 0), last, state.get("deleted") or [])
    return StoreWatermark(stream=stream, last_seq=last, stored=stored, delivered=delivered or 0)


class StoreAudit:
    """`await audit.check()`: each request stream's losses since the last check."""

    def __init__(self, nc: Client, replicas: int) -> None:
        self.nc = nc
        self.replicas = replicas
        self._bucket: KeyValue | None = None
        self._lock = anyio.Lock()  # one check at a time: each loss is reported once

    async def check(self) -> list[Loss]:
        async with self._lock:
            if self._bucket is None:
                self._bucket = await open_bucket(self.nc.jetstream(), AUDIT_BUCKET)
            losses = []
            for pool in Pool:
                now = await watermark(self.nc, pool)
                before = await self._read(self._bucket, now.stream)
                if before is not None:
                    gone = lost(before, now)
                    if gone:
                        losses.append(Loss(pool, now.stream, gone))
                await self._bucket.put(now.stream, encode(now))
            return losses

    @staticmethod
    async def _read(bucket: KeyValue, key: str) -> StoreWatermark | None:
        try:
            entry = await bucket.get(key)
        except KeyNotFoundError:
            return None
        return StoreWatermark.model_validate_json(entry.value or b"{}")
