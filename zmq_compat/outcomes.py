"""What became of each frame and each result the shim handled: the `outcome` label of
`zmq_compat_requests_total` (docs/OBSERVABILITY.md), every member exported from 0."""

from __future__ import annotations

from collections import Counter
from enum import StrEnum


class Outcome(StrEnum):
    # a request's fate (each request taken from PULL gets exactly one of these four)
    ACCEPTED = "accepted"  #: queued on NATS
    POOL_FULL = "pool_full"  #: its pool's stream at capacity: `translation_error`
    UNAVAILABLE = "unavailable"  #: NATS did not take it (held past ZMQ_HOLD_TIMEOUT, a stop)
    INVALID = "invalid"  #: a frame that is not a request (or could not be queued): refused
    # what else came on PULL
    PING = "ping"  #: a ping, answered with a pong
    PONG_SKIPPED = "pong_skipped"  #: a ping within ZMQ_PONG_INTERVAL of the last pong
    HELD = "held"  #: a request held while its publish to JetStream failed
    SKIPPED = "skipped"  #: the current gateway's text too long: `translation_skipped`
    UNSUPPORTED = "unsupported"  #: a request of a type not served here (audio, voice)
    STORY_EMPTY = "story_empty"  #: a story's text object with nothing to translate
    UNSUPPORTED_TARGET = "unsupported_target"  #: a target no configured model writes
    REPUSH_RESENT = "repush_resent"  #: a retried push's target whose result was sent: again
    REPUSH_IN_FLIGHT = "repush_in_flight"  #: a retried push's target still due: left to come
    REPUSH_UNREAD = "repush_unread"  #: a retried push's result still in the gateway's queue
    # results from JetStream
    RESULT_OK = "result_ok"  #: a translation sent to the gateway
    RESULT_ERROR = "result_error"  #: a worker's error result sent to the gateway
    RESULT_DUPLICATE = "result_duplicate"  #: redelivered after a lost ack: not sent twice
    RESULT_AFTER_ERROR = "result_after_error"  #: its request was answered with an error
    STORY_COMPLETED = "story_completed"  #: a story's event, once all its targets are in
    BAD_RESULT = "bad_result"  #: a result the shim cannot read: dropped
    FOREIGN = "foreign"  #: on the shim's or the API's inbox, not theirs: dropped
    SEND_BLOCKED = "send_blocked"  #: a frame waited for room in a gateway's PUB queue

    @classmethod
    def of_result(cls, status: str) -> Outcome:
        """A worker's result, by its `status` (ok, error)."""
        return cls.RESULT_OK if status == "ok" else cls.RESULT_ERROR


def zeroed() -> Counter[Outcome]:
    """A count of every outcome, from 0."""
    return Counter(dict.fromkeys(Outcome, 0))
