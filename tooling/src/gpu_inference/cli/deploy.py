"""`gpu-inference deploy`: the whole stack on EKS (billable; docs/runbook.md first)."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Annotated

import typer

from gpu_inference import paths
from gpu_inference.adapters.aws import AwsClients
from gpu_inference.adapters.eksctl import Eksctl
from gpu_inference.adapters.helm import Helm
from gpu_inference.adapters.kubectl import Kubectl
from gpu_inference.cli import logging_setup
from gpu_inference.cli.common import user_errors
from gpu_inference.cli.options import (
    AwsProfileOpt,
    LogFileOpt,
    ReleaseOptions,
    WorkDirOpt,
    with_option_groups,
)
from gpu_inference.domain.deployment_state import default_work_dir
from gpu_inference.services.eks.deploy import Deployer, DeployOptions, DeployResult
from gpu_inference.services.eks.progress import LogReporter, Reporter, RichReporter

log = logging.getLogger(__name__)

DEFAULT_CONFIG = Path("eksctl/cluster.yaml")

DEPLOY_HELP = "\n\n".join(
    [
        (
            "Create the EKS cluster from eksctl/cluster.yaml and install the whole stack on it. BILLABLE: "
            "GPU nodes, NAT gateway, load balancer and the EKS control plane cost money until "
            "`gpu-inference destroy`."
        ),
        "Steps, in order; each failure stops with a message naming the fix and a non-zero exit:",
        (
            "1. config: validate eksctl/cluster.yaml (eksctl's schema plus this project's rules); apply "
            "--region, --kubernetes-version and --spot (adds eksctl/gpu-spot-nodegroup.yaml) to a "
            "rendered copy next to the log."
        ),
        (
            "2. preflight (creates nothing): eksctl/helm/kubectl present with supported versions; AWS "
            "identity; region; Kubernetes version in EKS standard support; vCPU quota for G instances "
            "(on-demand, and spot with --spot) covers every GPU node group's maxSize; no half-deleted "
            "cluster; `helm lint --strict`; the chart as rendered fits the GPU node group (labels, taint, "
            "HPA maxReplicas <= GPU nodes, exactly one NVIDIA device plugin)."
        ),
        (
            "3. cluster: `eksctl create cluster --install-nvidia-plugin=false` (15-25 min). An existing "
            "cluster is reused: only node groups missing from it are created."
        ),
        ("4. kubeconfig: written to the work dir (printed at the end); your ~/.kube/config is not touched."),
        ("5. cluster-autoscaler: pinned chart into kube-system on the system nodes (the HPA -> ASG link)."),
        (
            "6. aws-load-balancer-controller: pinned chart, when the chart renders an Ingress (or "
            "--lb-controller)."
        ),
        (
            "7. chart: `helm upgrade --install --wait` of charts/gpu-inference (waits for the GPU node "
            "and pods)."
        ),
        ("8. custom-metrics / hpa: wait until custom.metrics.k8s.io answers and the HPA shows a number."),
        "9. endpoint: print the service endpoint, how to reach Grafana, and the cost estimate.",
        (
            "Progress is shown while steps run (eksctl's own progress lines as they come); every step, "
            "command and eksctl output goes to the log file."
        ),
        (
            "The account, region, profile, kubeconfig, namespace, release, HPA and Prometheus Service are "
            "recorded in <work dir>/<cluster>/deploy.json before anything is created. If a step fails after "
            "that, deploy prints what is billing (the audit) and the exact destroy command."
        ),
    ]
)


@with_option_groups()
def deploy(
    *,
    config: Annotated[Path, typer.Option("--config", help="eksctl ClusterConfig.")] = DEFAULT_CONFIG,
    chart_release: ReleaseOptions,
    kubernetes_version: Annotated[
        str | None,
        typer.Option(
            "--kubernetes-version",
            help="EKS Kubernetes minor, e.g. 1.36 (default: metadata.version of --config).",
        ),
    ] = None,
    spot: Annotated[
        bool,
        typer.Option(
            "--spot/--no-spot", help="Add the spot GPU node group (eksctl/gpu-spot-nodegroup.yaml)."
        ),
    ] = False,
    values: Annotated[
        list[Path] | None,
        typer.Option("--values", "-f", help="Extra values file(s) for the chart (repeatable)."),
    ] = None,
    lb_controller: Annotated[
        bool | None,
        typer.Option(
            "--lb-controller/--no-lb-controller",
            help="Install the AWS Load Balancer Controller (default: when the chart renders an Ingress).",
        ),
    ] = None,
    profile: AwsProfileOpt = None,
    skip_quota_check: Annotated[
        bool,
        typer.Option(
            "--skip-quota-check",
            help="Skip the G-instance vCPU quota check (when Service Quotas can't be read).",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Validate and run the preflight, print the plan, create nothing."),
    ] = False,
    metrics_timeout: Annotated[
        int, typer.Option("--metrics-timeout", help="Seconds to wait for the custom metric on the HPA.")
    ] = 900,
    work_dir: WorkDirOpt = None,
    log_file: LogFileOpt = None,
) -> None:
    work, log_path, reporter = start_session("deploy", work_dir, log_file)
    try:
        with user_errors():
            opts = DeployOptions(
                config=config,
                release=chart_release.release,
                namespace=chart_release.namespace,
                chart=paths.chart_dir(),
                work_dir=work,
                region=chart_release.region,
                profile=profile,
                kubernetes_version=kubernetes_version,
                spot=spot,
                values_files=list(values or []),
                load_balancer_controller=lb_controller,
                skip_quota_check=skip_quota_check,
                dry_run=dry_run,
                metrics_timeout_s=metrics_timeout,
            )
            result = Deployer(
                opts=opts,
                clients_factory=lambda r: AwsClients(r, profile=profile),
                eksctl=Eksctl(),
                helm_factory=lambda kc: Helm(kubeconfig=kc),
                kubectl_factory=Kubectl,
                kubectl_version=lambda: Kubectl(None).client_version(),
                reporter=reporter,
            ).run()
            _print(result, chart_release.namespace, dry_run, profile)
    finally:
        typer.echo(f"log: {log_path}", err=True)


def start_session(command: str, work_dir: Path | None, log_file: Path | None) -> tuple[Path, Path, Reporter]:
    """The work dir, a timestamped log file in it (console + file logging) and the step reporter."""
    work = work_dir or default_work_dir()
    log_path = log_file or work / f"{command}-{dt.datetime.now():%Y%m%d-%H%M%S}.log"
    _configure_logging(log_path)
    reporter: Reporter = RichReporter() if logging_setup.is_interactive() else LogReporter()
    return work, log_path, reporter


def _configure_logging(log_path: Path) -> None:
    verbose = any(
        h.level == logging.DEBUG
        for h in logging.getLogger().handlers
        if not isinstance(h, logging.FileHandler)
    )
    log_path.parent.mkdir(parents=True, exist_ok=True)
    logging_setup.configure(verbose=verbose, log_file=str(log_path))


def _print(r: DeployResult, namespace: str, dry_run: bool, profile: str | None = None) -> None:
    echo = typer.echo
    for check in r.preflight:
        echo(f"preflight  {check}")
    if dry_run:
        echo(f"dry run: nothing created. Rendered config: {r.rendered_config}. Would run:")
        for line in r.planned:
            echo(f"  {line}")
        return
    echo(f"cluster:     {r.cluster} in {r.region} ({'created' if r.created_cluster else 'reused'})")
    if r.added_nodegroups:
        echo(f"node groups added: {', '.join(r.added_nodegroups)}")
    echo(f"kubeconfig:  export KUBECONFIG={r.kubeconfig}")
    echo(f"releases:    {', '.join(r.releases)}")
    for name, value in r.hpa_metrics.items():
        echo(f"HPA {name}: {value}")
    echo(f"check it:    kubectl --kubeconfig {r.kubeconfig} -n {namespace} get hpa")
    if r.endpoints:
        for e in r.endpoints:
            echo(f"endpoint:    {e}")
    else:
        echo(f"endpoint:    none yet (kubectl --kubeconfig {r.kubeconfig} -n {namespace} get svc,ingress)")
    echo(f"grafana:     {r.grafana}")
    echo(r.cost_estimate)
    if r.state_file:
        echo(f"recorded:    {r.state_file} (destroy and verify-scaleup --eks read it)")
    make_args = f" REGION={r.region}" + (f" PROFILE={profile}" if profile else "")
    cli_args = f" --region {r.region}" + (f" --profile {profile}" if profile else "")
    echo(f"remove everything with: make destroy{make_args} (or gpu-inference destroy{cli_args})")


def register(app: typer.Typer) -> None:
    app.command("deploy", help=DEPLOY_HELP)(deploy)
