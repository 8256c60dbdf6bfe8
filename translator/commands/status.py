"""`translator status [--watch]`: one line per pool, read from NATS."""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from scaler.coordination import announcements
from scaler.records import ScalerAnnouncement
from translator.bus import heartbeat
from translator.bus.retry import patiently
from translator.contracts.messages import ScalingEvent
from translator.contracts.subjects import (
    EVENTS_STREAM,
    SCALING_EVENTS,
    WORKERS_CONSUMER,
    Pool,
    request_stream,
)

_HEADER = (
    "pool",
    "queue",
    "in flight",
    "capacity",
    "running",
    "starting",
    "unavailable",
    "util",
    "avg s",
    "last scaling",
)
_SCAN = 500


@dataclass(frozen=True)
class PoolStatus:
    pool: str
    queue: int
    in_flight: int
    capacity: int
    running: int
    starting: int
    unavailable: int
    utilization: float
    avg_seconds: float
    last_scaling: str
    why_unavailable: str = ""  # one unavailable worker's reason

    def row(self) -> tuple[str, ...]:
        counts = (self.queue, self.in_flight, self.capacity, self.running, self.starting)
        rates = (f"{self.utilization:.2f}", f"{self.avg_seconds:.3f}")
        return (self.pool, *map(str, counts), str(self.unavailable), *rates, self.last_scaling)


async def last_scaling_events(nc: Client) -> dict[str, ScalingEvent]:
    """The newest scaling event of each pool, from the end of TRANSLATE_EVENTS."""
    js = nc.jetstream()
    try:
        info = await js.stream_info(EVENTS_STREAM)
    except NotFoundError:
        return {}
    found: dict[str, ScalingEvent] = {}
    if not info.state.messages:
        return found
    last, first = info.state.last_seq, max(info.state.first_seq, info.state.last_seq - _SCAN, 1)
    for seq in range(last, first - 1, -1):
        if len(found) == len(Pool):
            break
        try:
            msg = await js.get_msg(EVENTS_STREAM, seq)
        except NotFoundError:
            continue
        if msg.subject == SCALING_EVENTS and msg.data:
            event = ScalingEvent.model_validate_json(msg.data)
            found.setdefault(event.pool, event)
    return found


def _describe(event: ScalingEvent | None) -> str:
    if event is None:
        return "-"
    age = time.time() - event.timestamp
    return f"{event.from_workers}->{event.to_workers} {age:.0f}s ago ({event.reason})"


async def pool_statuses(nc: Client) -> list[PoolStatus]:
    js = nc.jetstream()
    beats = await heartbeat.read_all(js)
    events = await last_scaling_events(nc)
    statuses = []
    for pool in Pool:
        consumer = await js.consumer_info(request_stream(pool), WORKERS_CONSUMER)
        stream = await js.stream_info(request_stream(pool))
        mine = [b for b in beats if b.pool == pool.value]
        serving = [b for b in mine if b.state in ("ready", "busy")]
        unavailable = [b for b in mine if b.state == "unavailable"]
        statuses.append(
            PoolStatus(
                pool=pool.value,
                queue=int(consumer.num_pending or 0),
                in_flight=int(consumer.num_ack_pending or 0),
                capacity=int(stream.config.max_msgs or 0),
                running=len(serving),
                starting=sum(1 for b in mine if b.state == "loading"),
                unavailable=len(unavailable),
                utilization=sum(b.utilization for b in serving) / len(serving) if serving else 0.0,
                avg_seconds=sum(b.avg_processing_time for b in serving) / len(serving)
                if serving
                else 0.0,
                last_scaling=_describe(events.get(pool.value)),
                why_unavailable=unavailable[0].unavailable if unavailable else "",
            )
        )
    return statuses


async def host_announcements(nc: Client) -> list[ScalerAnnouncement]:
    """Each scaler's host: its workers and its cap (none before a scaler has checked)."""
    hosts = await announcements(nc.jetstream())
    return [hosts[host] for host in sorted(hosts)]


def host_lines(hosts: list[ScalerAnnouncement]) -> list[str]:
    lines = []
    for seen in hosts:
        workers = sum(bounds.workers for bounds in seen.pools.values())
        cap = f"cap {seen.cap_reason}" if seen.cap else "no host cap"
        lines.append(f"host {seen.host}: {workers} workers, room for {seen.room} more; {cap}")
    return lines


def table(statuses: list[PoolStatus], hosts: list[ScalerAnnouncement] | None = None) -> str:
    rows = [_HEADER, *(s.row() for s in statuses)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(_HEADER))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    lines += [f"{s.pool}: {s.why_unavailable}" for s in statuses if s.why_unavailable]
    return "\n".join(lines + host_lines(hosts or []))


async def show(nc: Client, watch: bool, interval: float = 2.0, deadline: float = 30.0) -> None:
    """Print the table (every `interval` with `watch`); raises JetStreamUnavailable when the
    JetStream API does not answer within `deadline` (a leader election takes seconds)."""
    while True:
        statuses = await patiently("reading the pools", lambda: pool_statuses(nc), deadline)
        text = table(
            statuses, await patiently("reading the hosts", lambda: host_announcements(nc), deadline)
        )
        print("\x1b[2J\x1b[H" + text if watch else text, flush=True)
        if not watch:
            return
        await anyio.sleep(interval)
