"""`gpu-inference local up|down|status`: the local cluster (no GPU, no Docker, no cloud).

`local up` saves its settings in the cluster's state directory; `status`, `down` and every
`--local` read them, so a cluster started on other ports or with other values is found as it is.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer

from gpu_inference.cli.options import LOCAL, ClusterNameOpt, SetOpt, ValuesFilesOpt

log = logging.getLogger(__name__)
local_app = typer.Typer(
    help="Local cluster: real Kubernetes control plane, SIMULATED GPU nodes and GPUs.", no_args_is_help=True
)

ProfileOpt = Annotated[
    str,
    typer.Option(
        "--profile",
        help="GPU simulator profile: auto (from the chart's inference preset: vllm -> llm, others -> "
        "classic), classic (utilization follows load, one request at a time) or llm (continuous batching).",
        rich_help_panel=LOCAL,
    ),
]
TimingOpt = Annotated[
    str,
    typer.Option(
        "--timing",
        help="Timing profile: fast (short, for tests) or eks (node boot, image pull, model load and "
        "Cluster Autoscaler defaults as on EKS; figures in docs/local-cluster.md).",
        rich_help_panel=LOCAL,
    ),
]
TimeScaleOpt = Annotated[
    float,
    typer.Option(
        "--time-scale",
        help="Divide every interval of the timing profile (pull, load, node boot, scan, unneeded) by this.",
        rich_help_panel=LOCAL,
    ),
]


@local_app.command("up")
def up(
    name: ClusterNameOpt = "gpu-inference",
    profile: ProfileOpt = "auto",
    timing: TimingOpt = "fast",
    time_scale: TimeScaleOpt = 1.0,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the node provisioning jitter.", rich_help_panel=LOCAL)
    ] = 0,
    values: ValuesFilesOpt = None,
    set_values: SetOpt = None,
    model_load_s: Annotated[
        float | None,
        typer.Option(help="Override: simulated model load time of a new replica (seconds)."),
    ] = None,
    image_pull_s: Annotated[
        float | None,
        typer.Option(help="Override: simulated image pull time of a new replica (seconds)."),
    ] = None,
    front_door_port: Annotated[
        int, typer.Option(help="Loopback port of the inference API (the Service).")
    ] = 18000,
    prometheus_port: Annotated[int, typer.Option(help="Loopback port of Prometheus.")] = 19090,
    adapter_port: Annotated[
        int,
        typer.Option(help="Loopback port of prometheus-adapter (of KEDA's metrics API server with keda)."),
    ] = 16443,
    autoscaler: Annotated[
        str,
        typer.Option(
            "--autoscaler",
            help="What scales the inference Deployment: hpa (the chart's HPA + prometheus-adapter) or keda "
            "(the chart's KEDA ScaledObject; KEDA runs on the host; needs `make keda`).",
            rich_help_panel=LOCAL,
        ),
    ] = "hpa",
    keda_grpc_port: Annotated[
        int, typer.Option(help="Loopback port of the KEDA operator's gRPC metrics service (with keda).")
    ] = 19666,
) -> None:
    """Start the control plane, the simulated nodes, the chart (via helm) and the host processes."""
    from gpu_inference.services.local.cluster import LocalCluster
    from gpu_inference.services.local.config import LocalClusterConfig

    cfg = LocalClusterConfig.from_options(
        name=name,
        profile=profile,
        timing=timing,
        time_scale=time_scale,
        seed=seed,
        values_files=tuple(values or ()),
        set_values=tuple(set_values or ()),
        model_load_s=model_load_s,
        image_pull_s=image_pull_s,
        front_door_port=front_door_port,
        prometheus_port=prometheus_port,
        adapter_port=adapter_port,
        autoscaler=autoscaler,
        keda_grpc_port=keda_grpc_port,
    )
    cluster = LocalCluster(cfg)
    ep = cluster.up()
    typer.echo(f"kubeconfig:     {ep.kubeconfig}")
    typer.echo(f"inference API:  {ep.front_door_url}  (SIMULATED GPUs, profile {cluster.cfg.profile})")
    typer.echo(f"prometheus:     {ep.prometheus_url}")
    typer.echo(f"settings:       {cluster.workdir / 'settings.json'}")
    if cluster.cfg.autoscaler == "keda":
        typer.echo(f"autoscaler:     KEDA (external metrics on 127.0.0.1:{cluster.cfg.adapter_port})")
    typer.echo(f"check the HPA:  kubectl --kubeconfig {ep.kubeconfig} -n {ep.namespace} get hpa")


@local_app.command("down")
def down(name: ClusterNameOpt = "gpu-inference") -> None:
    """Stop every process of the cluster and remove all of its files."""
    from gpu_inference.services.local.cluster import LocalCluster

    LocalCluster.named(name).down()


@local_app.command("status")
def status(name: ClusterNameOpt = "gpu-inference") -> None:
    """Print the cluster's processes, endpoints and saved settings as JSON."""
    from gpu_inference.services.local.cluster import LocalCluster

    typer.echo(json.dumps(LocalCluster.named(name).status(), indent=2, default=str))


def register(app: typer.Typer) -> None:
    app.add_typer(local_app, name="local")
