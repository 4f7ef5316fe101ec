"""Settings of a local cluster (typed, with the defaults `gpu-inference local up` uses)."""

from __future__ import annotations

import zlib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from gpu_inference import paths


class LocalClusterConfig(BaseModel):
    """Everything `local up` needs to know. Defaults mirror EKS where EKS has a default."""

    model_config = ConfigDict(frozen=True)

    name: str = Field("gpu-inference", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=40)
    namespace: str = "gpu-inference"
    release: str = "gpu-inference"
    #: HPA controller loop; EKS runs the default 15 s.
    hpa_sync_period_s: int = Field(15, ge=1, le=60)
    #: Simulated image pull (pod scheduled -> container running, not ready).
    image_pull_s: float = Field(5.0, ge=0)
    #: Simulated model load (container running -> Ready).
    model_load_s: float = Field(10.0, ge=0)
    #: GPU simulator profile: classic (utilization follows load) or llm (continuous batching).
    profile: str = Field("classic", pattern=r"^(classic|llm)$")
    #: Pod IPs of simulated nodes come from this loopback range, so they answer on this host.
    #: Empty: a /16 in 127.64.0.0-127.191.255.255 derived from the name, so clusters don't collide.
    pod_cidr: str = ""
    #: Host ports (loopback only).
    front_door_port: int = Field(18000, ge=1024, le=65535)
    prometheus_port: int = Field(19090, ge=1024, le=65535)
    adapter_port: int = Field(16443, ge=1024, le=65535)
    #: Node group scaler (stands in for Cluster Autoscaler + the ASG).
    scale_down_unneeded_s: float = Field(60.0, ge=0)
    provision_delay_s: float = Field(5.0, ge=0)
    #: Timing overrides for the chart, so a local scale-up takes minutes, not tens of minutes.
    scrape_interval_s: int = Field(5, ge=1)
    scale_down_window_s: int = Field(60, ge=0, le=3600)
    eksctl_config: Path = Field(default_factory=paths.eksctl_config)

    @property
    def effective_pod_cidr(self) -> str:
        if self.pod_cidr:
            return self.pod_cidr
        return f"127.{64 + zlib.crc32(self.name.encode()) % 128}.0.0/16"

    @property
    def workdir(self) -> Path:
        """Everything this cluster writes lives here; `local down` removes it."""
        return paths.state_dir() / "clusters" / self.name
