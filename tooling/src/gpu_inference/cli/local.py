"""`gpu-inference local up|down|status`: the local cluster (no GPU, no Docker, no cloud)."""

from __future__ import annotations

import json
import logging

import typer

from gpu_inference.cli.common import user_errors
from gpu_inference.services.local.cluster import LocalCluster
from gpu_inference.services.local.config import LocalClusterConfig

log = logging.getLogger(__name__)
local_app = typer.Typer(
    help="Local cluster: real Kubernetes control plane, SIMULATED GPU nodes and GPUs.", no_args_is_help=True
)

NAME = typer.Option(
    "gpu-inference", "--name", help="Cluster name (its files live under ~/.local/state/gpu-inference)."
)


@local_app.command("up")
def up(
    name: str = NAME,
    profile: str = typer.Option("classic", help="GPU simulator profile: classic (util follows load) or llm."),
    model_load_s: float = typer.Option(10.0, help="Simulated model load time of a new replica (seconds)."),
    image_pull_s: float = typer.Option(5.0, help="Simulated image pull time of a new replica (seconds)."),
    front_door_port: int = typer.Option(18000, help="Loopback port of the inference API (the Service)."),
    prometheus_port: int = typer.Option(19090, help="Loopback port of Prometheus."),
    adapter_port: int = typer.Option(16443, help="Loopback port of prometheus-adapter."),
) -> None:
    """Start the control plane, the simulated nodes, the chart (via helm) and the host processes."""
    with user_errors():
        cfg = LocalClusterConfig(
            name=name,
            profile=profile,
            model_load_s=model_load_s,
            image_pull_s=image_pull_s,
            front_door_port=front_door_port,
            prometheus_port=prometheus_port,
            adapter_port=adapter_port,
        )
        ep = LocalCluster(cfg).up()
        typer.echo(f"kubeconfig:     {ep.kubeconfig}")
        typer.echo(f"inference API:  {ep.front_door_url}  (SIMULATED GPUs)")
        typer.echo(f"prometheus:     {ep.prometheus_url}")
        typer.echo(f"check the HPA:  kubectl --kubeconfig {ep.kubeconfig} -n {ep.namespace} get hpa")


@local_app.command("down")
def down(name: str = NAME) -> None:
    """Stop every process of the cluster and remove all of its files."""
    with user_errors():
        LocalCluster(LocalClusterConfig(name=name)).down()


@local_app.command("status")
def status(name: str = NAME) -> None:
    """Print the cluster's processes and endpoints as JSON."""
    with user_errors():
        typer.echo(json.dumps(LocalCluster(LocalClusterConfig(name=name)).status(), indent=2, default=str))


def register(app: typer.Typer) -> None:
    app.add_typer(local_app, name="local")
