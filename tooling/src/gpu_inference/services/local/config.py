"""Settings of a local cluster (typed, with the defaults `gpu-inference local up` uses), and the
copy `local up` saves in the cluster's state directory so that `local status`, `local down` and
`--local` use the same ports, name, profile, timing and values as the cluster that is running.
"""

from __future__ import annotations

import json
import logging
import zlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from gpu_inference import paths
from gpu_inference.domain.models import set_keys
from gpu_inference.errors import ConfigError
from gpu_inference.services.local import timing as tp

log = logging.getLogger(__name__)

SETTINGS_FILE = "settings.json"
PROFILES = ("auto", "classic", "llm")

#: The command-line option of each setting, for error messages.
OPTION_OF = {
    "values_files": "--values",
    "set_values": "--set",
    "eksctl_config": "--cluster-config",
}
#: How to fix a bad value of a setting (pydantic's own wording otherwise).
FIX_OF = {
    "name": "use lower-case letters, digits and '-', starting and ending with a letter or digit, "
    "at most 40 characters (e.g. --name my-cluster)",
    "profile": f"use one of {', '.join(PROFILES)}",
    "timing": "use fast or eks",
    "front_door_port": "pick a port in 1024-65535",
    "prometheus_port": "pick a port in 1024-65535",
    "adapter_port": "pick a port in 1024-65535",
    "keda_grpc_port": "pick a port in 1024-65535",
    "autoscaler": "use hpa (HPA + prometheus-adapter) or keda (KEDA ScaledObject; needs `make keda`)",
    "time_scale": "pass a number above 0 (e.g. --time-scale 10 runs the profile 10 times faster)",
    "values_files": "pass an existing YAML file",
    "set_values": "write KEY=VALUE, e.g. --set autoscaling.maxReplicas=4",
}


def option_of(field: str) -> str:
    return OPTION_OF.get(field, "--" + field.replace("_", "-"))


class LocalClusterConfig(BaseModel):
    """Everything `local up` needs to know. Defaults mirror EKS where EKS has a default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field("gpu-inference", pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=40)
    namespace: str = "gpu-inference"
    release: str = "gpu-inference"
    #: HPA controller loop; EKS runs the default 15 s.
    hpa_sync_period_s: int = Field(15, ge=1, le=60)
    #: GPU simulator profile: classic (utilization follows load), llm (continuous batching, vLLM-like),
    #: or auto (from the chart's inference preset: vllm -> llm, others -> classic).
    profile: str = Field("classic", pattern=r"^(auto|classic|llm)$")
    #: Timing profile (timing.yaml) and the factor every one of its intervals is divided by.
    timing: str = Field("fast", pattern=r"^(fast|eks)$")
    time_scale: float = Field(1.0, gt=0, le=10_000)
    #: Seed of the node group scaler's jitter (node provisioning times).
    seed: int = 0
    #: Overrides of the timing profile, in seconds, taken as given (not divided by time_scale).
    image_pull_s: float | None = Field(None, ge=0)
    model_load_s: float | None = Field(None, ge=0)
    provision_delay_s: float | None = Field(None, ge=0)
    scan_interval_s: float | None = Field(None, gt=0)
    scale_down_unneeded_s: float | None = Field(None, ge=0)
    #: Pod IPs of simulated nodes come from this loopback range, so they answer on this host.
    #: Empty: a /16 in 127.64.0.0-127.191.255.255 derived from the name, so clusters don't collide.
    pod_cidr: str = ""
    #: Host ports (loopback only).
    front_door_port: int = Field(18000, ge=1024, le=65535)
    prometheus_port: int = Field(19090, ge=1024, le=65535)
    #: prometheus-adapter's port, or KEDA's metrics API server's with autoscaler keda.
    adapter_port: int = Field(16443, ge=1024, le=65535)
    #: What scales the inference Deployment: hpa (the chart's HPA + prometheus-adapter) or keda (the
    #: chart's ScaledObject; KEDA's operator and metrics API server run as host processes).
    autoscaler: str = Field("hpa", pattern=r"^(hpa|keda)$")
    #: Loopback port of the KEDA operator's gRPC metrics service (autoscaler keda).
    keda_grpc_port: int = Field(19666, ge=1024, le=65535)
    #: Timing overrides for the chart, so a local scale-up takes minutes, not tens of minutes.
    scrape_interval_s: int = Field(5, ge=1)
    scale_down_window_s: int = Field(60, ge=0, le=3600)
    eksctl_config: Path = Field(default_factory=paths.eksctl_config)
    #: Laid over the local overlay as `helm install -f FILE... --set KEY=VALUE...` would.
    values_files: tuple[Path, ...] = ()
    set_values: tuple[str, ...] = ()

    @field_validator("values_files")
    @classmethod
    def _files_exist(cls, files: tuple[Path, ...], info: ValidationInfo) -> tuple[Path, ...]:
        if (info.context or {}).get("saved"):
            return files  # what `local up` ran with, even if a file changed since
        for f in files:
            if not f.is_file():
                raise ValueError(f"{f} is not a file")
        return tuple(f.resolve() for f in files)

    @field_validator("set_values")
    @classmethod
    def _key_value(cls, pairs: tuple[str, ...]) -> tuple[str, ...]:
        set_keys(pairs)
        return pairs

    @classmethod
    def from_options(cls, **settings: Any) -> LocalClusterConfig:
        """Build from command-line settings; a bad one becomes a ConfigError naming its option."""
        try:
            return cls(**settings)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else "settings"
            value = settings.get(field)
            problem = str(first["msg"]).removeprefix("Value error, ")
            shown = f"{value!r}: {problem}" if value is not None and field not in OPTION_OF else problem
            raise ConfigError(option_of(field), shown, FIX_OF.get(field, "fix the value")) from None

    @property
    def effective_pod_cidr(self) -> str:
        if self.pod_cidr:
            return self.pod_cidr
        return f"127.{64 + zlib.crc32(self.name.encode()) % 128}.0.0/16"

    @property
    def workdir(self) -> Path:
        """Everything this cluster writes lives here; `local down` removes it."""
        return workdir_of(self.name)

    def timings(self) -> tp.Timings:
        """The timing profile's intervals, divided by time_scale, with the explicit overrides."""
        t = tp.timings(self.timing, self.time_scale)

        def fixed(value: float | None, default: tp.Interval) -> tp.Interval:
            return default if value is None else tp.Interval(value, value)

        return tp.Timings(
            profile=t.profile,
            time_scale=t.time_scale,
            node_ready=fixed(self.provision_delay_s, t.node_ready),
            image_pull=fixed(self.image_pull_s, t.image_pull),
            model_load=fixed(self.model_load_s, t.model_load),
            scan_interval_s=self.scan_interval_s if self.scan_interval_s is not None else t.scan_interval_s,
            scale_down_unneeded_s=(
                self.scale_down_unneeded_s
                if self.scale_down_unneeded_s is not None
                else t.scale_down_unneeded_s
            ),
        )

    # ------------------------------------------------------------------ saved settings
    def save(self) -> Path:
        """Write these settings to the cluster's state directory (what `local up` ran with)."""
        path = self.workdir / SETTINGS_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
        tmp.replace(path)
        return path

    @classmethod
    def saved(cls, name: str) -> LocalClusterConfig | None:
        """The settings `local up --name NAME` saved, or None when it saved none."""
        name_only = cls.from_options(name=name)  # checks the name before it becomes a path
        path = name_only.workdir / SETTINGS_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ConfigError(
                "--name",
                f"the saved settings {path} cannot be read ({exc})",
                f"run `gpu-inference local down --name {name}` and `local up` again",
            ) from exc
        try:
            return cls.model_validate(data, context={"saved": True})
        except ValidationError as exc:
            raise ConfigError(
                "--name",
                f"the saved settings {path} are not valid ({exc.errors()[0]['msg']})",
                f"run `gpu-inference local down --name {name}` and `local up` again",
            ) from exc

    @classmethod
    def for_name(cls, name: str) -> LocalClusterConfig:
        """The saved settings of cluster `name`, or the defaults if it saved none."""
        return cls.saved(name) or cls.from_options(name=name)


def workdir_of(name: str) -> Path:
    return paths.state_dir() / "clusters" / name
