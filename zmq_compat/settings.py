"""Settings of the shim, from the environment. It shares the translator's (pool sizes, text
limit, NATS) because it creates the same topology when it starts first, and the HTTP API's,
which it serves."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network

from pydantic import Field, IPvAnyNetwork, model_validator

from translator.api.settings import ApiSettings
from translator.contracts.subjects import gateway_results_subject


class ShimSettings(ApiSettings):
    """The shim's process serves the HTTP API too (port ZMQ_HEALTH_PORT, 8000 as in 0.4.9)."""

    translator_zmq_pull_port: int = Field(default=5555, ge=0, le=65535)
    """The shim's PULL port: the gateway pushes its requests here (`0`: a random one)."""
    translator_zmq_pub_port: int = Field(default=5558, ge=0, le=65535)
    """The shim's PUB port: the gateway subscribes to its results here (`0`: a random one)."""
    zmq_bind_host: str = "127.0.0.1"  # compose and Kubernetes bind 0.0.0.0 (and list peers)
    """The address PULL and PUB bind (compose and Kubernetes bind `0.0.0.0` and list their
    peers)."""
    # the addresses (CIDRs) that may connect to PULL and PUB, checked by ZAP for every
    # connection: PUB gives every result to every subscriber (docs/SECURITY.md)
    zmq_allowed_peers: tuple[IPvAnyNetwork, ...] = (
        IPv4Network("127.0.0.0/8"), IPv6Network("::1/128"),
    )  # fmt: skip
    """The addresses (CIDRs, a JSON list) that may connect to PULL and PUB, checked through ZAP for
    every connection: PUB gives every result to every subscriber."""
    zmq_max_frame_bytes: int = Field(default=1_048_576, ge=1024)
    """A larger frame is answered with `translation_error`."""
    # libzmq drops a connection whose frame announces more than this, before taking it whole
    zmq_maxmsgsize: int = Field(default=8 * 1_048_576, ge=1024)
    """A frame announcing more cuts its connection before libzmq takes it (at least twice
    `ZMQ_MAX_FRAME_BYTES`)."""
    zmq_shim_name: str = Field(default="zmq_compat", pattern=r"^[A-Za-z0-9_-]+$")
    """The shim's name: its results subject (`translate.gateway.result.<name>`) and its durable
    consumer."""
    zmq_publishers: int = Field(default=64, ge=1)
    """The shim's publishes to JetStream in flight at once."""
    zmq_publish_timeout: float = Field(default=2.0, gt=0)
    """Seconds one try to publish a request waits for JetStream's answer."""
    zmq_request_buffer: int = Field(default=1_000, ge=1)
    """Requests taken from PULL that may wait for a publisher."""
    zmq_drain_timeout: float = Field(default=15.0, gt=0)  # a stop's time to queue what it holds
    """On SIGTERM: the time to queue (or answer with `translation_error`) every request the shim
    holds."""
    zmq_duplicate_window: float = Field(default=300.0, ge=0)  # a result is sent once within it
    """Seconds within which a result is sent to the gateway once, and a gateway's retry of a sent
    result is answered with it."""
    zmq_results_batch: int = Field(default=256, ge=1)
    """Results taken from JetStream at once."""
    # NATS briefly unreachable: a request waits this long, and at most this many wait, before
    # `translation_error`; a publish is retried with the same Nats-Msg-Id meanwhile
    zmq_hold_timeout: float = Field(default=8.0, ge=0)
    """NATS briefly unreachable: a request is held this long from its arrival, published again with
    the same `Nats-Msg-Id`, then answered with `translation_error`."""
    zmq_hold_max: int = Field(default=1_000, ge=0)
    """NATS unreachable: at most this many requests are held; the next ones get `translation_error`
    at once."""
    zmq_send_hwm: int = Field(default=1_000, ge=1)  # frames queued per gateway, then backpressure
    """Frames queued for a gateway; PUB never drops: a full queue makes the shim wait, and stop
    taking results from JetStream, until the gateway reads."""
    zmq_pong_interval: float = Field(default=0.0, ge=0)  # at most one pong per interval; 0: each
    """`0`: a pong for every ping (the protocol); `N`: at most one pong per N seconds."""
    zmq_health_port: int = Field(default=8000, ge=0, le=65535)
    """The shim's HTTP port: the REST API (0.4.9's and LibreTranslate's), health and metrics."""

    @model_validator(mode="after")
    def _hold_within_dedup(self) -> ShimSettings:
        if self.zmq_hold_timeout >= self.request_duplicate_window:
            raise ValueError(
                "ZMQ_HOLD_TIMEOUT must be shorter than REQUEST_DUPLICATE_WINDOW: a held request"
                " is published again with the same Nats-Msg-Id, which JetStream de-duplicates"
                " only within that window"
            )
        return self

    @model_validator(mode="after")
    def _frames_within_libzmq(self) -> ShimSettings:
        if self.zmq_maxmsgsize < 2 * self.zmq_max_frame_bytes:
            raise ValueError(
                "ZMQ_MAXMSGSIZE must be at least twice ZMQ_MAX_FRAME_BYTES: frames between the"
                " two are answered with translation_error, larger ones cut the connection"
            )
        return self

    @property
    def result_subject(self) -> str:
        """The shim's own results subject (reserved for the gateway), read by its own durable
        consumer."""
        return gateway_results_subject(self.zmq_shim_name)
