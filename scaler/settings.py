"""Settings of the scaler, from the environment: the 0.4.9 rules as defaults, every number
configurable (`NORMAL_SCALE_UP_QUEUE=200`, `ANY_SCALE_DOWN_STEP=2`, ...)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from scaler import capacity
from scaler.policy import PoolRule
from translator.contracts.settings import TranslatorSettings
from translator.contracts.subjects import Pool


class ScalerSettings(TranslatorSettings):
    # supervise: run and scale this host's workers; observe: run none (KEDA or another
    # orchestrator scales them), report every worker of every host, and raise alerts
    scaler_mode: Literal["supervise", "observe"] = "supervise"
    """`supervise`: run and scale this host's workers; `observe`: run none (KEDA or another
    orchestrator does), report every host's workers and raise alerts."""
    enable_dynamic_scaling: bool = True
    """`false`: the pools keep their initial sizes (workers that die are still replaced)."""
    translation_workers: int = Field(default=60, ge=1)
    """The cap on all workers together."""
    max_normal_workers: int = Field(default=40, ge=0)
    """The most workers of the normal pool."""
    max_any_workers: int = Field(default=20, ge=0)
    """The most workers of the `any` pool."""
    min_normal_workers: int | None = Field(default=None, ge=0)
    """The fewest workers of the normal pool (unset: `NORMAL_WORKERS`)."""
    min_any_workers: int | None = Field(default=None, ge=0)
    """The fewest workers of the `any` pool (unset: `ANY_WORKERS`)."""

    normal_scale_up_queue: int = 100
    """Scale the normal pool up when more requests than this wait (and its utilization is above
    `NORMAL_SCALE_UP_UTILIZATION`)."""
    normal_scale_up_utilization: float = 0.8
    """Scale the normal pool up when its utilization is above this (and its queue above
    `NORMAL_SCALE_UP_QUEUE`)."""
    normal_scale_up_step: int = Field(default=5, ge=1)
    """Workers one scale-up adds to the normal pool."""
    normal_scale_down_queue: int = 10
    """Scale the normal pool down when fewer requests than this wait (and its utilization is below
    `NORMAL_SCALE_DOWN_UTILIZATION`)."""
    normal_scale_down_utilization: float = 0.3
    """Scale the normal pool down when its utilization is below this (and its queue below
    `NORMAL_SCALE_DOWN_QUEUE`)."""
    normal_scale_down_step: int = Field(default=2, ge=1)
    """Workers one scale-down stops in the normal pool."""
    any_scale_up_queue: int = 50
    """Scale the `any` pool up when more requests than this wait (and its utilization is above
    `ANY_SCALE_UP_UTILIZATION`)."""
    any_scale_up_utilization: float = 0.8
    """Scale the `any` pool up when its utilization is above this (and its queue above
    `ANY_SCALE_UP_QUEUE`)."""
    any_scale_up_step: int = Field(default=3, ge=1)
    """Workers one scale-up adds to the `any` pool."""
    any_scale_down_queue: int = 5
    """Scale the `any` pool down when fewer requests than this wait (and its utilization is below
    `ANY_SCALE_DOWN_UTILIZATION`)."""
    any_scale_down_utilization: float = 0.3
    """Scale the `any` pool down when its utilization is below this (and its queue below
    `ANY_SCALE_DOWN_QUEUE`)."""
    any_scale_down_step: int = Field(default=1, ge=1)
    """Workers one scale-down stops in the `any` pool."""

    alert_queue_ratio: float = 0.8
    """An alert when a pool's queue is above this fraction of its capacity."""
    alert_utilization: float = 0.9
    """An alert when a pool's utilization is above this."""
    worker_stop_grace: float = Field(default=35.0, gt=0)
    """Seconds from a worker's SIGTERM to its SIGKILL when the scaler stops it."""
    # the host's cap on workers (scaler/capacity.py): cores over threads per worker, memory
    # (this fraction of it) over a worker's RSS (measured; the estimate until one reports)
    host_cap_enabled: bool = True
    """Cap this host's workers: cores over threads per worker, and memory over a worker's RSS."""
    host_memory_fraction: float = Field(default=0.8, gt=0, le=1)
    """The fraction of the host's memory its workers may use."""
    worker_rss_estimate_mb: float = Field(default=800.0, gt=0)
    """A worker's memory until one reports its own (MB)."""
    metrics_interval: float = Field(default=1.0, gt=0)
    """How often the scaler refreshes what `/ready` and `/metrics` report (seconds)."""
    scaler_health_port: int = Field(default=8001, ge=0, le=65535)
    """The scaler's HTTP port: health and metrics."""
    # the NATS user its workers connect as (the `translator` user of deploy/nats): handed to them
    # in place of the scaler's own credentials; unset, they connect as the scaler does
    worker_nats_user: str | None = None
    """The NATS user its workers connect as (the `translator` user of deploy/nats), in place of the
    scaler's own credentials; unset: they connect as the scaler does."""
    worker_nats_password: str | None = None
    """The password of `WORKER_NATS_USER`."""

    @property
    def worker_threads(self) -> int:
        """TORCH_THREADS, else the initial workers share the host's cores."""
        initial = self.initial_workers(Pool.NORMAL) + self.initial_workers(Pool.ANY)
        return self.torch_threads or capacity.default_threads(capacity.host_cores(), initial)

    def worker_credentials(self) -> dict[str, str]:
        """What a worker's environment holds for NATS in place of the scaler's own."""
        if not self.worker_nats_user:
            return {}
        return {
            "NATS_USER": self.worker_nats_user,
            "NATS_PASSWORD": self.worker_nats_password or "",
            "NATS_TOKEN": "",
            "NATS_CREDS": "",
        }

    @property
    def observe_only(self) -> bool:
        return self.scaler_mode == "observe"

    def rule(self, pool: Pool) -> PoolRule:
        p = pool.value
        minimum = getattr(self, f"min_{p}_workers")
        initial = self.initial_workers(pool)
        return PoolRule(
            up_queue=getattr(self, f"{p}_scale_up_queue"),
            up_utilization=getattr(self, f"{p}_scale_up_utilization"),
            up_step=getattr(self, f"{p}_scale_up_step"),
            down_queue=getattr(self, f"{p}_scale_down_queue"),
            down_utilization=getattr(self, f"{p}_scale_down_utilization"),
            down_step=getattr(self, f"{p}_scale_down_step"),
            minimum=initial if minimum is None else minimum,
            maximum=getattr(self, f"max_{p}_workers"),
            initial=initial,
        )
