"""What `gpu-inference deploy` records about a deployment, for destroy, the audit and verify-scaleup --eks.

One JSON file per cluster name: <work dir>/<cluster>/deploy.json (the work dir defaults to
~/.local/state/gpu-inference/eks). deploy writes it before it creates anything (status
"creating"), so a deploy that fails halfway still tells destroy where the cluster is; it is
rewritten when the stack is up ("deployed"), when a deploy fails ("failed") and when destroy
leaves nothing billable ("destroyed").

destroy and the audit use the recorded account, region and profile, and refuse to run against
another account or region (a clean audit of the wrong account proves nothing).
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gpu_inference.errors import ConfigError
from gpu_inference.paths import state_dir

log = logging.getLogger(__name__)

STATE_FILE = "deploy.json"
Status = Literal["creating", "deployed", "failed", "destroyed"]


class PrometheusAccess(BaseModel):
    """How to reach the in-cluster Prometheus: `kubectl port-forward -n NAMESPACE svc/SERVICE LOCAL:PORT`."""

    model_config = ConfigDict(extra="forbid")
    service: str
    namespace: str
    port: int = Field(ge=1, le=65535)

    def port_forward(self, kubeconfig: str, context: str | None, local_port: int = 9090) -> list[str]:
        """The kubectl arguments of the port-forward (without `kubectl`)."""
        ctx = ["--context", context] if context else []
        return [
            "--kubeconfig",
            kubeconfig,
            *ctx,
            "-n",
            self.namespace,
            "port-forward",
            f"svc/{self.service}",
            f"{local_port}:{self.port}",
        ]


class DeploymentState(BaseModel):
    """Where a deployment lives (account, region, profile) and how to reach what it runs."""

    model_config = ConfigDict(extra="forbid")
    schema_version: Literal[1] = 1
    cluster: str
    region: str
    account: str
    #: The AWS profile deploy ran with (None: the default credential chain).
    profile: str | None = None
    status: Status = "creating"
    updated: str = ""
    #: The rendered eksctl config handed to eksctl.
    config: str = ""
    kubeconfig: str
    context: str | None = None
    namespace: str
    release: str
    hpa: str | None = None
    prometheus: PrometheusAccess | None = None
    #: The step a failed deploy stopped at, and its error.
    failure: str = ""

    def destroy_command(self, config: str = "eksctl/cluster.yaml") -> str:
        """The exact command that removes this deployment."""
        profile = f" --profile {self.profile}" if self.profile else ""
        return (
            f"gpu-inference destroy --config {config} --region {self.region}{profile} "
            f"--release {self.release} --namespace {self.namespace}"
        )

    def make_destroy(self) -> str:
        """The same through make."""
        profile = f" PROFILE={self.profile}" if self.profile else ""
        return f"make destroy REGION={self.region}{profile}"


def default_work_dir() -> Path:
    """Where deploy keeps its rendered config, kubeconfig, logs and state by default."""
    return state_dir() / "eks"


def state_path(work_dir: Path, cluster: str) -> Path:
    """<work dir>/<cluster>/deploy.json."""
    return work_dir / cluster / STATE_FILE


def save_state(state: DeploymentState, work_dir: Path) -> Path:
    """Write the state (atomically: a reader never sees half a file) and return its path."""
    path = state_path(work_dir, state.cluster)
    path.parent.mkdir(parents=True, exist_ok=True)
    stamped = state.model_copy(update={"updated": dt.datetime.now(tz=dt.UTC).isoformat(timespec="seconds")})
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(stamped.model_dump_json(indent=2) + "\n")
    tmp.replace(path)
    log.debug("deployment state: %s (%s)", path, state.status)
    return path


def load_state(work_dir: Path, cluster: str) -> DeploymentState | None:
    """The recorded state of `cluster`, or None if deploy never ran for it from this work dir."""
    path = state_path(work_dir, cluster)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return DeploymentState.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(document)"
        raise ConfigError(
            str(path),
            f"not a deployment record ({where}: {first['msg']})",
            "delete the file (destroy then works from --config, --region and --profile alone)",
        ) from exc


def check_target(state: DeploymentState, *, region: str, account: str) -> None:
    """Refuse to act on another account or region than the one the cluster was deployed to."""
    if region != state.region:
        raise ConfigError(
            "--region",
            f"cluster {state.cluster} was deployed to {state.region} (account {state.account}), not {region}",
            f"pass --region {state.region} (or remove {STATE_FILE} if that deployment is gone)",
        )
    if account != state.account:
        via = f"profile {state.profile}" if state.profile else "the default credentials"
        raise ConfigError(
            "AWS credentials",
            f"they act in account {account}, but cluster {state.cluster} was deployed to account "
            f"{state.account} (with {via})",
            f"use the credentials of account {state.account}"
            + (f" (--profile {state.profile})" if state.profile else ""),
        )
