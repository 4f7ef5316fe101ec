"""`gpu-inference destroy`: ordered teardown and a billing audit that fails if anything is left."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from gpu_inference.adapters.aws import AwsClients
from gpu_inference.adapters.eksctl import Eksctl
from gpu_inference.adapters.helm import Helm
from gpu_inference.adapters.kubectl import Kubectl
from gpu_inference.cli.common import user_errors
from gpu_inference.cli.deploy import DEFAULT_CONFIG, start_session
from gpu_inference.cli.options import (
    AwsProfileOpt,
    LogFileOpt,
    ReleaseOptions,
    WorkDirOpt,
    with_option_groups,
)
from gpu_inference.domain import eksctl_config
from gpu_inference.domain.deployment_state import (
    DeploymentState,
    check_target,
    load_state,
    save_state,
)
from gpu_inference.services.eks.audit import AuditReport, audit, caller_account
from gpu_inference.services.eks.teardown import Destroyer, DestroyOptions

log = logging.getLogger(__name__)

DESTROY_HELP = "\n\n".join(
    [
        "Remove the stack and the EKS cluster, then prove that nothing billable is left.",
        "Steps, in order (each is idempotent: re-run after a partial failure and it continues):",
        "1. helm-uninstall-chart: helm uninstall the chart release.",
        "2. helm-uninstall-cluster-autoscaler: stop node scaling.",
        (
            "3. delete-load-balancer-services / delete-ingresses: delete every LoadBalancer Service and "
            "Ingress (all namespaces) and wait until they are gone, i.e. until their cloud load balancers "
            "were deleted."
        ),
        (
            "4. wait-load-balancers-gone: wait until AWS lists no load balancer or target group for the "
            "cluster."
        ),
        (
            "5. delete-pvcs / wait-volumes-gone: delete every PersistentVolumeClaim and wait until the "
            "EBS volumes are deleted in AWS."
        ),
        "6. helm-uninstall-aws-load-balancer-controller (it had to run during step 3).",
        (
            "7. eksctl-delete-cluster: `eksctl delete cluster --wait` (node groups, control plane, VPC, "
            "NAT, IAM)."
        ),
        (
            "8. audit: everything billable still tagged for the cluster (EKS cluster, CloudFormation "
            "stacks, Auto Scaling groups, EC2 instances, load balancers, target groups, EBS volumes, "
            "network interfaces, security groups, NAT gateways, Elastic IPs, VPC endpoints, EFS file "
            "systems, CloudWatch log groups, KMS keys, the VPC, and anything else the tagging API lists "
            "under the cluster's tags), in the account it names. Exit 1 and a list with delete commands "
            "if anything remains; exit 0 only on a clean account."
        ),
        (
            "Steps 1-6 are skipped when the cluster no longer exists, or with --skip-in-cluster when its "
            "API is unreachable or refuses this identity. --dry-run prints the plan and the current audit "
            "without changing anything. --audit-only runs step 8 alone."
        ),
        (
            "Account and region: deploy records them (with the profile) in <work dir>/<cluster>/"
            "deploy.json; destroy and the audit use them, and refuse to run in another account or region."
        ),
    ]
)


@with_option_groups()
def destroy(
    *,
    config: Annotated[
        Path, typer.Option("--config", help="eksctl ClusterConfig (name, region).")
    ] = DEFAULT_CONFIG,
    chart_release: ReleaseOptions,
    profile: AwsProfileOpt = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan and the current audit; change nothing.")
    ] = False,
    audit_only: Annotated[
        bool, typer.Option("--audit-only", help="Only audit for billable leftovers.")
    ] = False,
    skip_in_cluster: Annotated[
        bool,
        typer.Option(
            "--skip-in-cluster",
            help="Skip steps 1-6 (cluster API unreachable or not open to this identity).",
        ),
    ] = False,
    work_dir: WorkDirOpt = None,
    log_file: LogFileOpt = None,
) -> None:
    work, log_path, reporter = start_session("destroy", work_dir, log_file)
    report: AuditReport | None = None
    state: DeploymentState | None = None
    try:
        with user_errors():
            name, reg = cluster_identity(config, chart_release.region)
            state = load_state(work, name)
            if state is not None:
                reg = chart_release.region or state.region
                profile = profile or state.profile
            clients = AwsClients(reg, profile=profile)
            if state is not None:
                check_target(state, region=reg, account=caller_account(clients))
            else:
                log.warning("no deploy record for %s in %s: using --config, --region, --profile", name, work)
            if audit_only:
                report = audit(clients, name)
            else:
                destroyer = Destroyer(
                    opts=DestroyOptions(
                        cluster=name,
                        region=reg,
                        release=chart_release.release,
                        namespace=chart_release.namespace,
                        work_dir=work,
                        dry_run=dry_run,
                        skip_in_cluster=skip_in_cluster,
                    ),
                    clients=clients,
                    eksctl=Eksctl(),
                    helm_factory=lambda kc: Helm(kubeconfig=kc),
                    kubectl_factory=Kubectl,
                    reporter=reporter,
                )
                result = destroyer.run()
                report = result.report
                if dry_run:
                    typer.echo("dry run: nothing changed. Would run:")
                    for line in result.planned:
                        typer.echo(f"  {line}")
    finally:
        typer.echo(f"log: {log_path}", err=True)
    if report is not None:
        typer.echo(report.summary())
        if state is not None and report.clean and not dry_run and not audit_only:
            save_state(state.model_copy(update={"status": "destroyed"}), work)
        if not report.clean and not dry_run:
            raise typer.Exit(code=1)


def cluster_identity(config: Path, region: str | None) -> tuple[str, str]:
    """Cluster name and region from the config (the strict model); destroy needs nothing else from it."""
    cfg = eksctl_config.parse_cluster_config(eksctl_config.render(config, region=region), str(config))
    return cfg.metadata.name, cfg.metadata.region


def register(app: typer.Typer) -> None:
    app.command("destroy", help=DESTROY_HELP)(destroy)
