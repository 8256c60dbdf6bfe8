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
    enable_dynamic_scaling: bool = True
    translation_workers: int = Field(default=60, ge=1)
    max_normal_workers: int = Field(default=40, ge=0)
    max_any_workers: int = Field(default=20, ge=0)
    min_normal_workers: int | None = Field(default=None, ge=0)
    min_any_workers: int | None = Field(default=None, ge=0)

    normal_scale_up_queue: int = 100
    normal_scale_up_utilization: float = 0.8
    normal_scale_up_step: int = Field(default=5, ge=1)
    normal_scale_down_queue: int = 10
    normal_scale_down_utilization: float = 0.3
    normal_scale_down_step: int = Field(default=2, ge=1)
    any_scale_up_queue: int = 50
    any_scale_up_utilization: float = 0.8
    any_scale_up_step: int = Field(default=3, ge=1)
    any_scale_down_queue: int = 5
    any_scale_down_utilization: float = 0.3
    any_scale_down_step: int = Field(default=1, ge=1)

    alert_queue_ratio: float = 0.8
    alert_utilization: float = 0.9
    worker_stop_grace: float = Field(default=35.0, gt=0)
    # the host's cap on workers (scaler/capacity.py): cores over threads per worker, memory
    # (this fraction of it) over a worker's RSS (measured; the estimate until one reports)
    host_cap_enabled: bool = True
    host_memory_fraction: float = Field(default=0.8, gt=0, le=1)
    worker_rss_estimate_mb: float = Field(default=800.0, gt=0)
    metrics_interval: float = Field(default=1.0, gt=0)
    scaler_health_port: int = Field(default=8001, ge=0, le=65535)
    # the NATS user its workers connect as (the `translator` user of deploy/nats): handed to them
    # in place of the scaler's own credentials; unset, they connect as the scaler does
    worker_nats_user: str | None = None
    worker_nats_password: str | None = None

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
