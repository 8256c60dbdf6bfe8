"""One pool-wide scaling decision per interval, whatever the number of hosts.

Every scaler announces its host (its workers per pool, its per-host bounds and room) in the KV
bucket TRANSLATOR_SCALERS, replicated like every stream, whose TTL is the lease's. One scaler
holds the lease (key `leader`: created atomically, renewed every check, gone with the TTL when
its holder dies). The leader applies the 0.4.9 rules once to the whole pool (its queue, every
host's workers, the hosts' bounds added up) and splits the result into per-host shares
(`split`), written as the pool's plan (`plan.<pool>`); every scaler, the leader too, applies its
own share. Every scaler watches the announcements; a host whose announcement expires is
reported by the leader (the next one, when the lost host was the leader): its share goes to the
others, and an alert says so."""

from __future__ import annotations

import logging
from dataclasses import replace

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.kv import KeyValue

from scaler.observe import SERVING, PoolView
from scaler.policy import PoolRule, PoolState
from scaler.records import HostBounds, PoolPlan, ScalerAnnouncement
from translator.bus import buckets
from translator.contracts.messages import encode
from translator.contracts.subjects import LEADER_KEY, SCALER_HOST_PREFIX, SCALERS_BUCKET, Pool

log = logging.getLogger(__name__)


async def scalers_bucket(js: JetStreamContext) -> KeyValue:
    """The bucket; its TTL is the lease's (SCALER_LEASE_TTL, set up with it)."""
    return await buckets.open_bucket(js, SCALERS_BUCKET)


class Coordination:
    def __init__(self, js: JetStreamContext, bucket: KeyValue, host: str) -> None:
        self.js = js
        self.bucket = bucket
        self.host = host
        self.known: set[str] = set()  # the hosts this scaler has seen announced
        self.lost: set[str] = set()  # seen, then gone: reported by whoever leads next

    async def announce(
        self, pools: dict[Pool, HostBounds], room: int, cap: int = 0, cap_reason: str = ""
    ) -> None:
        bounds = {pool.value: b for pool, b in pools.items()}
        message = ScalerAnnouncement(
            host=self.host, pools=bounds, room=room, cap=cap, cap_reason=cap_reason
        )
        await self.bucket.put(SCALER_HOST_PREFIX + buckets.safe_key(self.host), encode(message))

    async def lead(self) -> bool:
        """Take the lease if it is free, renew it if it is ours; whether we hold it now."""
        try:
            await self.bucket.create(LEADER_KEY, self.host.encode())
            log.info("scaler %s leads the pool-wide scaling decisions", self.host)
            return True
        except nats.js.errors.KeyWrongLastSequenceError:
            pass
        try:
            entry = await self.bucket.get(LEADER_KEY)
        except nats.js.errors.KeyNotFoundError:
            return False  # expired in between: the next check takes it
        if (entry.value or b"").decode() != self.host or entry.revision is None:
            return False
        try:
            await self.bucket.update(LEADER_KEY, self.host.encode(), last=entry.revision)
        except nats.js.errors.KeyWrongLastSequenceError:
            return False
        return True

    async def survey_hosts(self) -> dict[str, ScalerAnnouncement]:
        """Every live host's announcement."""
        hosts = await announcements(self.js)
        self.lost = (self.lost | (self.known - set(hosts))) - set(hosts)
        self.known = set(hosts)
        return hosts

    async def publish_plan(self, plan: PoolPlan) -> None:
        await self.bucket.put(f"plan.{plan.pool}", encode(plan))

    async def plan(self, pool: Pool) -> PoolPlan | None:
        try:
            entry = await self.bucket.get(f"plan.{pool.value}")
        except (nats.js.errors.KeyNotFoundError, nats.errors.TimeoutError):
            return None
        return PoolPlan.model_validate_json(entry.value) if entry.value else None


async def announcements(js: JetStreamContext) -> dict[str, ScalerAnnouncement]:
    """Every live host's announcement, by host (`translator status` reads them too)."""
    entries = await buckets.read(js, SCALERS_BUCKET, SCALER_HOST_PREFIX)
    found = [ScalerAnnouncement.model_validate_json(v) for v in entries.values.values()]
    return {seen.host: seen for seen in found}


def split(desired: int, hosts: dict[str, HostBounds], rooms: dict[str, int]) -> dict[str, int]:
    """`desired` workers as per-host shares, moving as few workers as possible: each host
    starts from what it has (within its bounds); one at a time, a worker is added to the host
    with the fewest that has room, or taken from the one with the most above its minimum."""
    shares = {h: max(b.minimum, min(b.workers, b.maximum)) for h, b in hosts.items()}
    room = {h: rooms.get(h, 0) - (shares[h] - b.workers) for h, b in hosts.items()}
    while sum(shares.values()) < desired:
        open_ = [h for h in hosts if shares[h] < hosts[h].maximum and room[h] > 0]
        if not open_:
            break
        host = min(open_, key=lambda h: (shares[h], h))
        shares[host] += 1
        room[host] -= 1
    while sum(shares.values()) > desired:
        above = [h for h in hosts if shares[h] > hosts[h].minimum]
        if not above:
            break
        host = max(above, key=lambda h: (shares[h], h))
        shares[host] -= 1
    return shares


def pool_wide(seen: PoolView, hosts: dict[str, HostBounds]) -> PoolState:
    """The pool as the rules see it across hosts: its queue, every host's workers (those not
    serving yet are capacity on its way), the busy fraction of every serving worker."""
    total = sum(b.workers for b in hosts.values())
    running = sum(1 for b in seen.heartbeats if b.state in SERVING)
    state = seen.state
    return replace(state, running=min(running, total), starting=max(total - running, 0))


def pool_rule(rule: PoolRule, hosts: dict[str, HostBounds]) -> PoolRule:
    """The 0.4.9 rule with the hosts' bounds added up (MIN_/MAX_*_WORKERS are per host)."""
    minimum = sum(b.minimum for b in hosts.values())
    return replace(rule, minimum=minimum, maximum=sum(b.maximum for b in hosts.values()))
