"""The shim: PULL frames -> JetStream requests; the shim's results consumer -> PUB frames.

Pings are answered inline on the receive loop, never behind a publish. Requests go through a
bounded buffer to concurrent publishers; a full pool is answered with a `translation_error`.
While NATS is unreachable a request is held (ZMQ_HOLD_TIMEOUT, ZMQ_HOLD_MAX) and published again
with the same Nats-Msg-Id, which JetStream de-duplicates; only one that will not be processed is
answered with an error, and a result that comes for it anyway is not sent: one fate each.

Results are acked only once queued on PUB. PUB never drops (XPUB_NODROP): a gateway that reads
slowly fills its queue (ZMQ_SEND_HWM), and the shim then stops taking results from JetStream
until it has room.

The current gateway pushes a request again, with the same taskId and the targets it still
waits for, when no result came in 30 s: a target whose result was sent gets the same frame
again, one still due is left to come, and only the others are queued (docs/GATEWAYS.md)."""

from __future__ import annotations

import datetime
import logging
import math
import time
import uuid
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass

import anyio
import nats.errors
import zmq
import zmq.asyncio
from anyio.abc import TaskStatus
from anyio.streams.memory import MemoryObjectReceiveStream
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import trace

from translator.bus.client import queue
from translator.bus.fetching import fetch_batch, log_refusal
from translator.bus.retry import patiently
from translator.contracts.errors import PoolFull, QueueUnavailable
from translator.contracts.messages import ModelType, TranslationRequest, TranslationResult
from translator.contracts.subjects import GATEWAY_RESULTS_STREAM
from translator.inference import languages
from translator.inference.catalog import Catalog
from translator.runtime import tracing
from zmq_compat import envelopes, outcomes, protocol
from zmq_compat.errors import BadFrame, TooLong
from zmq_compat.outcomes import Outcome
from zmq_compat.peers import Peers
from zmq_compat.recent import Recent
from zmq_compat.settings import ShimSettings
from zmq_compat.stories import Stories, StoryRequest, story_of

log = logging.getLogger(__name__)
POOL_FULL = "translation pool full"
UNAVAILABLE = "translation service unavailable: the queue (NATS) cannot be reached"
STOPPING = "translation service stopping: the request was not queued"
_SWEEP = 1.0  # stopping: the longest the frames libzmq holds are taken before PULL closes
_AWAIT = 0.1  # stopping: how long PULL waits for a frame to close right after
_FOLLOW = 0.005  # stopping: a frame's follower (0.4.9 sends a ping, then its request)
_RESULTS_ACK_WAIT = 30.0
_REMEMBER_LIMIT = 20.0  # the longest the start spends reading back the window's results
_SEND_BACKOFF = (0.002, 0.05)  # a full PUB queue: first and longest wait before trying again
Received = tuple[TranslationRequest, tracing.Span, float]  # with its arrival (monotonic)


class Shim:
    """The gateway's two sockets and the shim's two directions. Gateway -> NATS (`receive`):
    each frame from PULL is parsed into one typed envelope (protocol.parse), a request gets
    exactly one fate (queued, or a `translation_error`; `_fate` counts it and ends its time in
    flight). NATS -> gateway (`forward_results`): results from the shim's durable consumer
    are sent on PUB, each once (`_sent`), and acked only once sent. The rest of its state is
    what makes one fate hold across retries, restarts and outages: what was sent, restored,
    is still due, was refused, and the errors held until a request's other targets are in.
    Every outcome is counted (`counts`, zmq_compat/outcomes.py)."""

    def __init__(self, settings: ShimSettings, nc: Client, catalog: Catalog) -> None:
        self.settings = settings
        self.nc = nc
        self.catalog = catalog  # what the configured models write: a target none does is refused
        self.session_id = str(uuid.uuid4())
        self.counts = outcomes.zeroed()
        self._context = zmq.asyncio.Context()
        self.peers = Peers(self._context, settings.zmq_allowed_peers)
        self.pull = self._context.socket(zmq.PULL)
        # a frame announcing more than this cuts its connection before libzmq allocates it
        self.pull.setsockopt(zmq.MAXMSGSIZE, settings.zmq_maxmsgsize)
        # XPUB is PUB on the wire, and tells us when a gateway subscribes or goes away: results
        # are taken from JetStream only while one listens (PUB would drop them otherwise).
        self.pub = self._context.socket(zmq.XPUB)
        self.pub.setsockopt(zmq.XPUB_VERBOSER, 1)
        self.pub.setsockopt(zmq.XPUB_NODROP, 1)  # a full queue refuses a frame, never drops it
        self.pub.setsockopt(zmq.SNDHWM, settings.zmq_send_hwm)
        self.pub.setsockopt(zmq.MAXMSGSIZE, 65_536)  # what comes in on PUB: subscriptions
        self.subscribers = 0
        self._listening = anyio.Event()
        self.pull_port = 0
        self.pub_port = 0
        self._reading = anyio.CancelScope()  # the PULL loop; `drain` cancels it
        self._drained = anyio.Event()  # every request taken has had its fate
        self._abandon = False
        self.taken_on_stop = 0
        # stopping: the results loop finishes the batch in hand (sent and acked) and ends, so
        # that no result is sent by this shim and then delivered again to the next one
        self._results_stop = anyio.Event()
        self._results_done = anyio.Event()
        window = settings.zmq_duplicate_window
        # the frames sent, by (taskId, target language): never twice, again for a retried push
        # that cannot have had it (`Sent`)
        self._sent: Recent[tuple[str, str], Sent] = Recent(window)
        # the gateways' subscriptions so far: a frame sent before the latest one may have gone
        # to a gateway that was away; one sent since has reached every subscriber's queue
        self._epoch = 0
        # what an earlier shim sent, from the results stream (`remember`): a retry gets it
        self._restored: Recent[tuple[str, str], bytes] = Recent(window)
        # the target languages still due, by taskId: a retried push does not queue them again
        self._due: Recent[str, frozenset[str]] = Recent(window)
        # task ids answered with an error whose result may still come: it is never sent
        self._refused: Recent[str, bool] = Recent(window)
        # the errors of a request's unsupported targets, by taskId: sent once its other
        # targets have their fate (a gateway counting consecutive errors sees its successes
        # first: the current gateway opens its circuit breaker after 8)
        self._after: Recent[str, dict[str, bytes]] = Recent(window)
        self._stories: Stories[Msg] = Stories()
        self.unsupported: Counter[str] = Counter(dict.fromkeys(envelopes.NOT_SERVED, 0))
        self.in_flight = 0  # requests taken from PULL whose fate is not settled yet
        self._last_pong = -float("inf")

    def bind(self) -> None:
        """Listen, each socket asking ZAP about every connection (ZMQ_ALLOWED_PEERS)."""
        self.peers.start()
        for socket in (self.pull, self.pub):
            self.peers.guard(socket)
        host = self.settings.zmq_bind_host
        self.pull_port = _bind(self.pull, host, self.settings.translator_zmq_pull_port)
        self.pub_port = _bind(self.pub, host, self.settings.translator_zmq_pub_port)
        log.info(
            "zmq_compat: PULL on %s:%d, PUB on %s:%d", host, self.pull_port, host, self.pub_port
        )

    def close(self) -> None:
        self.pull.close(linger=0)
        self.pub.close(linger=1000)
        self.peers.stop()
        self._context.term()

    async def _send(self, frame: bytes) -> None:
        """Queue `frame` on PUB; while a gateway's queue is full, wait for room (backpressure:
        the caller, and with it whatever feeds it, waits too)."""
        delay, longest = _SEND_BACKOFF
        blocked = False
        while True:
            try:
                await self.pub.send(frame, flags=zmq.NOBLOCK)
                return
            except zmq.Again:
                if not blocked:
                    blocked = True
                    self.counts[Outcome.SEND_BLOCKED] += 1
                await anyio.sleep(delay)
                delay = min(delay * 2, longest)

    # -- gateway -> NATS ---------------------------------------------------------------------

    async def receive(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Frames from PULL to the publishers, until `drain`: then the frames already queued
        on PULL are taken too, and every buffered request gets its fate before this returns."""
        send, receive = anyio.create_memory_object_stream[Received](
            self.settings.zmq_request_buffer
        )
        try:
            async with anyio.create_task_group() as tg:
                for _ in range(self.settings.zmq_publishers):
                    tg.start_soon(self._publisher, receive.clone())
                receive.close()
                task_status.started()
                async with send:
                    with self._reading:
                        while True:
                            frames = await self.pull.recv_multipart(copy=True)
                            with anyio.CancelScope(shield=True):  # a frame taken is handled
                                await self._dispatch(frames[0], send)
                    self.taken_on_stop = await self._take_queued(send)
        finally:
            self._drained.set()

    async def _take_queued(self, requests: anyio.abc.ObjectSendStream[Received]) -> int:
        """The frames on their way, each given to the publishers, then PULL closed in the same
        breath as the read that found none. A frame the gateway sends after the close finds no
        connection, and its PUSH keeps it for the next shim. PUSH/PULL has no acknowledgement:
        a frame the gateway writes while the connection closes (before its side has seen the
        close) is lost with it. So the close comes right after a frame, when the gateway's next
        one is furthest away: the shim waits up to `_AWAIT` for one (a gateway that sends
        nothing meanwhile is idle), takes it and whatever follows within `_FOLLOW` (a 0.4.9
        request right behind its ping), and closes. A gateway that never pauses holds this for
        at most `_SWEEP` seconds."""
        taken = 0
        started = time.monotonic()
        wait = _AWAIT
        now: zmq.Socket[bytes] = zmq.Socket.shadow(self.pull.underlying)  # reads without yielding
        while True:
            try:
                frames = now.recv_multipart(flags=zmq.NOBLOCK, copy=True)
            except zmq.Again:
                left = min(wait - (time.monotonic() - started), _SWEEP)
                if left <= 0 or not await self.pull.poll(timeout=max(int(left * 1000), 1)):
                    try:  # nothing came: one last look, and the close right after it
                        frames = now.recv_multipart(flags=zmq.NOBLOCK, copy=True)
                    except zmq.Again:
                        break
                else:
                    continue
            taken += 1
            await self._dispatch(frames[0], requests)
            wait = min(time.monotonic() - started + _FOLLOW, _SWEEP)  # what follows it
        self.pull.close(linger=0)
        return taken

    async def drain(self, timeout: float) -> None:
        """Stop taking frames, take those already queued, and give every buffered request its
        fate (queued on NATS, or a `translation_error`) within `timeout`; past it, what is left
        is answered with an error at once."""
        self._reading.cancel()
        with anyio.move_on_after(timeout):
            await self._drained.wait()
        if not self._drained.is_set():
            self._abandon = True
            with anyio.move_on_after(self.settings.zmq_publish_timeout + 1):
                await self._drained.wait()

    async def _dispatch(self, frame: bytes, requests: anyio.abc.ObjectSendStream[Received]) -> None:
        try:
            parsed = protocol.parse(
                frame, self.settings.zmq_max_frame_bytes, self.settings.max_text_length
            )
        except BadFrame as bad:
            await self._refuse(bad)
            return
        except Exception as exc:  # a frame nobody foresaw: refused, and the shim goes on
            log.exception("zmq_compat: a frame could not be read")
            await self._refuse(BadFrame(f"invalid request: {type(exc).__name__}"))
            return
        if isinstance(parsed, protocol.Ping):
            await self._pong()
            return
        if isinstance(parsed, envelopes.Unsupported):
            await self._not_served(parsed)
            return
        request: TranslationRequest | None
        if isinstance(parsed, StoryRequest):
            request = self._story_targets(parsed)
            if request is None:
                await self._nothing_to_translate(parsed)
                return
        else:
            request = await self._repush(parsed.request)
            request = request and await self._served(request, parsed.typed)
            if request is None:
                return
        full = self._hold_full()
        self.in_flight += 1  # until its fate (`_fate`)
        if full:
            await self._answer_error(request, UNAVAILABLE, Outcome.UNAVAILABLE)
            return
        self._due.put(request.task_id, frozenset(request.target_languages))
        await requests.send((request, self._receive_span(request), time.monotonic()))

    async def _repush(self, request: TranslationRequest) -> TranslationRequest | None:
        """The request with only the targets to queue; None when none is left. A target whose
        result was sent gets the frame again (the gateway pushes again when it did not get it),
        one still due is left to come."""
        due = self._due.get(request.task_id) or frozenset()
        left = []
        for language in request.target_languages:
            key = (request.task_id, language)
            sent, restored = self._sent.get(key), self._restored.pop(key)
            if sent is not None and not self._may_have_missed(sent):
                self.counts[Outcome.REPUSH_UNREAD] += 1  # in the gateway's queue, not read yet
            elif sent is not None or restored is not None:
                self.counts[Outcome.REPUSH_RESENT] += 1
                frame = sent.frame if sent is not None else restored or b""
                await self._send(frame)
                self._sent.put(key, Sent(frame, self._epoch if self.subscribers > 0 else -1))
            elif language in due:
                self.counts[Outcome.REPUSH_IN_FLIGHT] += 1
            else:
                left.append(language)
        if len(left) == len(request.target_languages):
            return request
        log.info(
            "zmq_compat: task %s pushed again; %d target(s) to queue", request.task_id, len(left)
        )
        return request.model_copy(update={"target_languages": tuple(left)}) if left else None

    def _may_have_missed(self, sent: Sent) -> bool:
        """Whether a gateway may not have `sent`: nobody listened when it went, or a gateway
        subscribed since (it reconnected: what was queued for it before went with the
        connection)."""
        return sent.epoch < 0 or sent.epoch != self._epoch

    def refusal(self, target: str, tier: ModelType) -> str | None:
        """Why no model will translate into `target` (as written), or None."""
        read = languages.language(target)
        if read is None:
            return f"unsupported language {target!r}: not a language code"
        if not self.catalog.writes(read.key, tier):
            return f"unsupported language {languages.named(target)}: no configured model writes it"
        return None

    async def _served(self, request: TranslationRequest, typed: bool) -> TranslationRequest | None:
        """The request with the targets a model can write; each other target gets its own
        `translation_error`, at once when none is left, else after the others' fates. None when
        no target is left to queue."""
        refused = {
            target: why
            for target in request.target_languages
            if (why := self.refusal(target, request.model_type)) is not None
        }
        if not refused:
            return request
        self.counts[Outcome.UNSUPPORTED_TARGET] += len(refused)
        frames = {t: protocol.target_error(request, t, why, typed) for t, why in refused.items()}
        kept = tuple(t for t in request.target_languages if t not in refused)
        if kept:
            self._after.put(request.task_id, frames)
            return request.model_copy(update={"target_languages": kept})
        await self._send_frames(request.task_id, frames)
        return None

    def _story_targets(self, story: StoryRequest) -> TranslationRequest | None:
        """A story's request with the targets a model can write (the others are left out of
        its completed event, as the gateway's own translator leaves out failed ones)."""
        if story.request is None:
            return None
        targets = story.request.target_languages
        kept = tuple(t for t in targets if self.refusal(t, story.request.model_type) is None)
        self.counts[Outcome.UNSUPPORTED_TARGET] += len(targets) - len(kept)
        return story.request.model_copy(update={"target_languages": kept}) if kept else None

    async def _send_frames(self, task_id: str, frames: dict[str, bytes]) -> None:
        """Send a task's frames by target, each remembered as sent (a retried push gets it
        again)."""
        for frame in frames.values():
            await self._send(frame)
        self._answered(task_id, frames)

    async def _settled(self, task_id: str) -> None:
        """Once a task has nothing due, the errors held for its unsupported targets."""
        if not self._due.seen(task_id):
            held = self._after.pop(task_id)
            if held:
                await self._send_frames(task_id, held)

    async def _not_served(self, refusal: envelopes.Unsupported) -> None:
        self.counts[Outcome.UNSUPPORTED] += 1
        self.unsupported[refusal.kind] += 1
        log.warning("zmq_compat: a %s request, which this service does not serve", refusal.kind)
        await self._send(refusal.frame)

    async def _nothing_to_translate(self, story: StoryRequest) -> None:
        self.counts[Outcome.STORY_EMPTY] += 1
        log.warning(
            "zmq_compat: story %s text object %d: %s", story.post_id, story.index, story.reason
        )
        await self._send(envelopes.story_completed(story.post_id, story.index, {}))

    async def _pong(self) -> None:
        """One pong per ping, or at most one per ZMQ_PONG_INTERVAL (the 0.4.9 gateway reads one
        frame per 100 ms, pongs included, and only logs them)."""
        self.counts[Outcome.PING] += 1
        now = time.monotonic()
        if now - self._last_pong < self.settings.zmq_pong_interval:
            self.counts[Outcome.PONG_SKIPPED] += 1
            return
        await self._send_lossy(protocol.pong(self.pub_port, self.pull_port))
        if self.subscribers > 0:  # a pong sent to nobody does not count
            self._last_pong = now

    async def _send_lossy(self, frame: bytes) -> None:
        """`frame` to every subscriber with room for it, at once: one whose queue is full (a
        subscriber that does not read) misses it, and nobody waits behind it. For pongs only:
        a lost pong is harmless, a lost result is not (results wait: `_send`)."""
        self.pub.setsockopt(zmq.XPUB_NODROP, 0)
        try:
            await self.pub.send(frame, flags=zmq.NOBLOCK)
        finally:
            self.pub.setsockopt(zmq.XPUB_NODROP, 1)

    def _hold_full(self) -> bool:
        """NATS is unreachable and ZMQ_HOLD_MAX requests already wait for it."""
        return not self.nc.is_connected and self.in_flight >= self.settings.zmq_hold_max

    @staticmethod
    def _receive_span(request: TranslationRequest) -> tracing.Span:
        """The root of a request's trace: received from the gateway, until it is queued."""
        attributes = tracing.messaging(
            "zeromq", "receive", "translation_request", request.task_id, request.conversation_id
        )
        attributes["meeshy.message_id"] = request.message_id
        return tracing.tracer().start_span(
            "receive translation_request", kind=tracing.SpanKind.CONSUMER, attributes=attributes
        )

    async def _refuse(self, bad: BadFrame) -> None:
        self.counts[Outcome.INVALID] += 1
        log.warning("zmq_compat: refused a frame: %s (messageId %s)", bad.reason, bad.message_id)
        if isinstance(bad, TooLong) and bad.typed:  # what the current gateway's translator sends
            self.counts[Outcome.SKIPPED] += 1
            await self._send(
                envelopes.translation_skipped(
                    bad.message_id, bad.length, bad.maximum, bad.conversation_id
                )
            )
        if bad.message_id is not None:
            frame = protocol.translation_error(
                bad.task_id, bad.message_id, bad.reason, bad.conversation_id
            )
            await self._send(frame)

    async def _publisher(self, requests: MemoryObjectReceiveStream[Received]) -> None:
        async with requests:
            async for request, span, arrived in requests:
                with trace.use_span(span, end_on_exit=True):
                    if self._abandon:  # stopping, and out of time: answered, never dropped
                        await self._answer_error(request, STOPPING, Outcome.UNAVAILABLE)
                    else:
                        await self._publish(request, arrived)

    async def _publish(self, request: TranslationRequest, arrived: float) -> None:
        try:
            await self._publish_held(request, arrived)
        except PoolFull:
            trace.get_current_span().set_status(trace.StatusCode.ERROR, POOL_FULL)
            await self._answer_error(request, POOL_FULL, Outcome.POOL_FULL)
        except QueueUnavailable as exc:
            log.warning("zmq_compat: request %s not queued: %s", request.task_id, exc.why)
            trace.get_current_span().set_status(trace.StatusCode.ERROR, UNAVAILABLE)
            if exc.maybe_stored:  # it may still come back translated: it must not
                self._refused.put(request.task_id, True)
            await self._answer_error(request, UNAVAILABLE, Outcome.UNAVAILABLE)
        except Exception as exc:  # the one broad except of a request's fate: answered, never lost
            log.exception("zmq_compat: request %s could not be queued", request.task_id)
            trace.get_current_span().set_status(trace.StatusCode.ERROR, repr(exc))
            why = f"translation failed: {type(exc).__name__}"
            await self._answer_error(request, why, Outcome.INVALID)
        else:
            self._fate(Outcome.ACCEPTED)

    def _fate(self, outcome: Outcome) -> None:
        """A request taken from PULL has its fate: counted once, and no longer in flight."""
        self.counts[outcome] += 1
        self.in_flight -= 1

    async def _publish_held(self, request: TranslationRequest, arrived: float) -> None:
        """Publish `request`, holding it while NATS is unreachable: every try carries the same
        Nats-Msg-Id (the taskId), so a try that reached JetStream unconfirmed is stored once.
        QueueUnavailable past ZMQ_HOLD_TIMEOUT from its arrival, or when a stop runs out of time."""
        deadline = arrived + self.settings.zmq_hold_timeout
        maybe_stored = held = False
        while True:
            try:
                await queue(
                    self.nc, request, self.settings.result_subject,
                    self.settings.zmq_publish_timeout, via_gateway=True,
                )  # fmt: skip
                return
            except QueueUnavailable as exc:
                maybe_stored = maybe_stored or exc.maybe_stored
                if not held:
                    held = True
                    self.counts[Outcome.HELD] += 1
                if not await self._reachable_before(deadline):
                    raise QueueUnavailable(exc.why, maybe_stored) from exc

    async def _reachable_before(self, deadline: float) -> bool:
        """Wait for a connection to NATS (and a moment, so that a failing JetStream is not
        hammered); False once `deadline` passes or a stop runs out of time."""
        await anyio.sleep(0.1)
        while not self.nc.is_connected:
            if time.monotonic() >= deadline or self._abandon:
                return False
            await anyio.sleep(0.05)
        return time.monotonic() < deadline and not self._abandon

    async def _answer_error(
        self, request: TranslationRequest, reason: str, outcome: Outcome
    ) -> None:
        """A request that will not be translated: `translation_error` (a story: its event with
        no translations, the only answer the gateway reads for one)."""
        self._fate(outcome)
        self._due.pop(request.task_id)
        story = story_of(request.task_id)
        if story is not None:
            frame = envelopes.story_completed(*story, {})
        else:
            frame = protocol.translation_error(
                request.task_id, request.message_id, reason, request.conversation_id
            )
        await self._send(frame)
        await self._settled(request.task_id)

    # -- NATS -> gateway ---------------------------------------------------------------------

    def results_consumer(self) -> ConsumerConfig:
        return ConsumerConfig(
            name=self.settings.zmq_shim_name,
            durable_name=self.settings.zmq_shim_name,
            filter_subject=self.settings.result_subject,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=_RESULTS_ACK_WAIT,
            max_ack_pending=10_000,
        )

    async def remember(self) -> None:
        """What earlier shims sent within ZMQ_DUPLICATE_WINDOW, read back from the results
        stream before the sockets open: a gateway's retry of one is answered after a restart
        too (JetStream de-duplicates the retried request, so nothing else would answer it). A
        result still unacked is delivered again as usual; this only answers retries."""
        window = self.settings.zmq_duplicate_window
        js = self.nc.jetstream()
        subject = self.settings.result_subject
        info = await js.stream_info(GATEWAY_RESULTS_STREAM, subjects_filter=subject)
        if window <= 0 or not (info.state.subjects or {}).get(subject):
            return
        since = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=window)
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=since)
        sub = await js.subscribe(
            subject, stream=GATEWAY_RESULTS_STREAM, ordered_consumer=True, config=config
        )
        restored = 0
        with anyio.move_on_after(_REMEMBER_LIMIT):
            while True:
                try:
                    msg = await sub.next_msg(timeout=1.0)
                except (TimeoutError, nats.errors.TimeoutError):
                    break  # nothing (more) in the window
                restored += self._restore(msg)
                if msg.metadata.num_pending == 0:
                    break
        await sub.unsubscribe()
        log.info("zmq_compat: %d result(s) of the last %.0fs remembered", restored, window)

    def _restore(self, msg: Msg) -> int:
        try:
            result = TranslationResult.model_validate_json(msg.data)
        except ValueError:
            return 0
        if story_of(result.task_id) is not None:  # a story's event is made from all its results
            return 0
        frame = protocol.result_frame(result, self.session_id)
        self._restored.put((result.task_id, result.target_language), frame)
        return 1

    async def track_subscribers(self) -> None:
        """Count the gateways subscribed to PUB (XPUB: b"\\x01" subscribe, b"\\x00" leave)."""
        while True:
            event = await self.pub.recv()
            joined = event[:1] == b"\x01"
            self.subscribers += 1 if joined else -1
            self._epoch += joined
            if self.subscribers > 0:
                self._listening.set()
            elif self._listening.is_set():
                self._listening = anyio.Event()
                log.info("zmq_compat: no gateway subscribed; results wait in JetStream")

    async def forward_results(self) -> None:
        js = self.nc.jetstream()
        await patiently(  # NATS may go away right after the start: the shim waits, serving
            "creating the results consumer",
            lambda: js.add_consumer(GATEWAY_RESULTS_STREAM, self.results_consumer()),
            deadline=math.inf,
        )
        sub = await js.pull_subscribe_bind(self.settings.zmq_shim_name, GATEWAY_RESULTS_STREAM)
        try:
            while await self._listened():
                msgs = await fetch_batch(
                    sub, self.settings.zmq_results_batch, 0.0, 1.0, self.refuse_foreign
                )
                await self._forward_batch(msgs)
        finally:
            self._results_done.set()

    async def _listened(self) -> bool:
        """Wait for a gateway to listen; False once the shim stops taking results."""
        async with anyio.create_task_group() as tg:

            async def stopped() -> None:
                await self._results_stop.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(stopped)
            await self._listening.wait()
            tg.cancel_scope.cancel()
        return not self._results_stop.is_set()

    async def stop_results(self, timeout: float) -> None:
        """Take no more results: the batch in hand is sent and acked (within `timeout`, a
        gateway that does not read aside); what was not taken stays on JetStream for the next
        shim. A result sent here and acked is remembered there (`remember`)."""
        self._results_stop.set()
        with anyio.move_on_after(timeout):
            await self._results_done.wait()

    def refuse_foreign(self, msg: Msg, why: str) -> None:
        """A message on the results inbox that is not our consumer's delivery of our subject:
        never sent to the gateway (docs/SECURITY.md)."""
        self.counts[Outcome.FOREIGN] += 1
        log_refusal(msg, why)

    async def _forward_batch(self, msgs: list[Msg]) -> None:
        """Send and ack each result in turn. A slow gateway makes a send wait: the results
        still in hand then tell JetStream they are in progress, so none is redelivered
        meanwhile, and nothing more is fetched until they are all sent."""
        progress_every = _RESULTS_ACK_WAIT / 3
        last_progress = time.monotonic()
        for i, msg in enumerate(msgs):
            if self.subscribers <= 0:  # the gateway left: PUB would send these to nobody
                for waiting in msgs[i:]:
                    await _tell(waiting.nak(delay=1))
                return
            for done in await self._forward(msg):
                await _tell(done.ack())
            if time.monotonic() - last_progress > progress_every:
                for waiting in msgs[i + 1 :]:
                    await _tell(waiting.in_progress())
                last_progress = time.monotonic()

    async def _forward(self, msg: Msg) -> list[Msg]:
        """Send what `msg` answers; the results that may be acked now (a story's are held until
        its last)."""
        if msg.subject != self.settings.result_subject:
            self.refuse_foreign(msg, f"a result on {msg.subject[:80]}")
            return [msg]
        try:
            result = TranslationResult.model_validate_json(msg.data)
        except ValueError:
            self.counts[Outcome.BAD_RESULT] += 1
            log.error("zmq_compat: dropped an unreadable result: %r", msg.data[:200])
            return [msg]
        key = (result.task_id, result.target_language)
        if self._refused.seen(result.task_id):
            self.counts[Outcome.RESULT_AFTER_ERROR] += 1  # the gateway got its error: one fate
            return [msg]
        if self._sent.seen(key):
            self.counts[Outcome.RESULT_DUPLICATE] += 1  # redelivered after a lost ack: sent already
            return [msg]
        if story_of(result.task_id) is not None:
            return await self._forward_story(result, msg)
        self.counts[Outcome.of_result(result.status)] += 1
        frame = protocol.result_frame(result, self.session_id)
        event = "translation_completed" if result.status == "ok" else "translation_error"
        await self._send_result(frame, event, result, msg)
        self._answered(result.task_id, {result.target_language: frame})
        await self._settled(result.task_id)
        return [msg]

    async def _forward_story(self, result: TranslationResult, msg: Msg) -> list[Msg]:
        answered = self._stories.add(result, msg)
        if answered is None:
            return []
        frame, held = answered
        self.counts[Outcome.STORY_COMPLETED] += 1
        await self._send_result(frame, envelopes.STORY_COMPLETED, result, msg)
        self._answered(result.task_id, dict.fromkeys(held, frame))
        return list(held.values())

    async def _send_result(
        self, frame: bytes, event: str, result: TranslationResult, msg: Msg
    ) -> None:
        attributes = tracing.messaging(
            "zeromq", "send", event, result.task_id, result.conversation_id
        )
        attributes["meeshy.target_language"] = result.target_language
        with tracing.tracer().start_as_current_span(
            f"send {event}",
            context=tracing.extract(msg.headers),
            kind=tracing.SpanKind.PRODUCER,
            attributes=attributes,
        ):
            await self._send(frame)

    def _answered(self, task_id: str, frames: dict[str, bytes]) -> None:
        """`frames` were sent (only once they were: a result whose send failed goes again)."""
        epoch = self._epoch if self.subscribers > 0 else -1
        for language, frame in frames.items():
            self._sent.put((task_id, language), Sent(frame, epoch))
        due = (self._due.get(task_id) or frozenset()) - frames.keys()
        if due:
            self._due.put(task_id, due)
        else:
            self._due.pop(task_id)


async def _tell(reply: Awaitable[None]) -> None:
    """An ack, nak or progress for JetStream. With NATS unreachable it cannot go (the shim's
    connection buffers nothing): the result is redelivered later, and `Recent` keeps the
    gateway from getting it twice."""
    try:
        await reply
    except nats.errors.Error as exc:
        log.debug("zmq_compat: ack not sent: %r", exc)


@dataclass(frozen=True)
class Sent:
    """A frame sent to the gateways, and the subscription epoch it went out in (-1: nobody
    was subscribed)."""

    frame: bytes
    epoch: int


def _bind(socket: zmq.asyncio.Socket, host: str, port: int) -> int:
    if port == 0:
        return int(socket.bind_to_random_port(f"tcp://{host}"))
    socket.bind(f"tcp://{host}:{port}")
    return port
