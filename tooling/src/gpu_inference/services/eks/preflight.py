"""Preflight for `gpu-inference deploy`: everything that can be known before anything is created.

Each check returns a CheckResult (name, ok, detail, fix); `run_preflight` runs them all, so a
user sees every problem at once, then raises PreflightError if any failed.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import botocore.exceptions

from gpu_inference.adapters.aws import AwsClients, aws_call, error_code, paginate
from gpu_inference.adapters.eksctl import INSTALL_HINT, Eksctl
from gpu_inference.adapters.helm import Helm
from gpu_inference.adapters.process import parse_version
from gpu_inference.domain import versions
from gpu_inference.domain.eksctl_config import ClusterConfig, newest_standard_version
from gpu_inference.errors import (
    AwsError,
    GpuInferenceError,
    PreflightError,
    ToolFailedError,
    ToolNotFoundError,
)
from gpu_inference.services.eks.chart_check import ChartFacts, check_alignment, extract

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def __str__(self) -> str:
        mark = "ok" if self.ok else "FAILED"
        tail = f" Fix: {self.fix}" if (self.fix and not self.ok) else ""
        return f"{self.name}: {mark}: {self.detail}.{tail}"


@dataclass
class PreflightContext:
    cfg: ClusterConfig
    clients: AwsClients
    eksctl: Eksctl
    helm: Callable[[], Helm]
    kubectl_version: Callable[[], str]
    chart: Path
    release: str
    namespace: str
    values_files: Sequence[Path] = ()
    today: dt.date = field(default_factory=dt.date.today)
    skip_quota: bool = False
    #: filled by the chart checks, used by deploy (does the chart render an Ingress?)
    chart_facts: ChartFacts | None = None
    account: str | None = None


# --------------------------------------------------------------------------- tools


def check_eksctl(ctx: PreflightContext) -> CheckResult:
    try:
        v = ctx.eksctl.version()
    except ToolNotFoundError:
        return CheckResult("eksctl", False, "eksctl is not installed", INSTALL_HINT)
    except ToolFailedError as exc:
        return CheckResult("eksctl", False, f"`eksctl version` failed: {exc}", "reinstall eksctl")
    if v < versions.MIN_EKSCTL_VERSION:
        need = ".".join(map(str, versions.MIN_EKSCTL_VERSION))
        return CheckResult(
            "eksctl",
            False,
            f"version {'.'.join(map(str, v))} is older than {need}",
            f"upgrade eksctl to >= {need}",
        )
    version = ctx.cfg.metadata.version
    try:
        supported = ctx.eksctl.supported_kubernetes_versions()
    except ToolFailedError as exc:
        return CheckResult(
            "eksctl", False, f"cannot read `eksctl version -o json`: {exc}", "upgrade or reinstall eksctl"
        )
    if version not in supported:
        return CheckResult(
            "eksctl",
            False,
            f"eksctl {'.'.join(map(str, v))} cannot create Kubernetes {version} (it supports "
            f"{', '.join(supported)})",
            f"upgrade eksctl, or use --kubernetes-version {supported[-1] if supported else '<supported>'}",
        )
    return CheckResult("eksctl", True, f"version {'.'.join(map(str, v))}, supports Kubernetes {version}")


#: How to fix a tool that is missing, and one whose version cannot be read.
_TOOL_FIXES = {
    "helm": ("run `make tools` (builds the pinned helm) or install helm 3", "reinstall helm 3"),
    "kubectl": ("run `make tools` (builds kubectl) or install kubectl", "reinstall kubectl"),
}


def _tool_version(name: str, probe: Callable[[], str]) -> tuple[str, tuple[int, int, int]] | CheckResult:
    """(version text, parsed version) of a tool, or the failed check when it cannot be read."""
    install, reinstall = _TOOL_FIXES[name]
    try:
        text = probe()
        return text, parse_version(text)
    except ToolNotFoundError as exc:
        return CheckResult(name, False, str(exc), install)
    except (ToolFailedError, ValueError) as exc:
        return CheckResult(name, False, f"cannot read the {name} version: {exc}", reinstall)


def check_helm(ctx: PreflightContext) -> CheckResult:
    found = _tool_version("helm", lambda: ctx.helm().version())
    if isinstance(found, CheckResult):
        return found
    text, v = found
    need = ".".join(map(str, versions.MIN_HELM_VERSION))
    if v < versions.MIN_HELM_VERSION or v[0] > versions.MAX_HELM_MAJOR:
        return CheckResult(
            "helm",
            False,
            f"version {text} is not in [{need}, {versions.MAX_HELM_MAJOR + 1})",
            "use helm 3 (make tools)",
        )
    return CheckResult("helm", True, f"version {text}")


def check_kubectl(ctx: PreflightContext) -> CheckResult:
    found = _tool_version("kubectl", ctx.kubectl_version)
    if isinstance(found, CheckResult):
        return found
    text, v = found
    major, minor = (int(x) for x in ctx.cfg.metadata.version.split("."))
    skew = abs(v[1] - minor) if v[0] == major else 99
    if skew > versions.KUBECTL_MAX_MINOR_SKEW:
        return CheckResult(
            "kubectl",
            False,
            f"client {text} is more than {versions.KUBECTL_MAX_MINOR_SKEW} minor away from the cluster's "
            f"{ctx.cfg.metadata.version}",
            f"use kubectl {ctx.cfg.metadata.version}.x (make tools builds a matching one)",
        )
    return CheckResult("kubectl", True, f"client {text}")


# --------------------------------------------------------------------------- AWS


def check_identity(ctx: PreflightContext) -> CheckResult:
    try:
        with aws_call("sts:GetCallerIdentity"):
            ident = ctx.clients.client("sts").get_caller_identity()
    except AwsError as exc:
        return CheckResult("aws identity", False, exc.detail, exc.fix)
    ctx.account = str(ident["Account"])
    return CheckResult("aws identity", True, f"account {ident['Account']} as {ident['Arn']}")


def check_region(ctx: PreflightContext) -> CheckResult:
    region = ctx.cfg.metadata.region
    known = ctx.clients.available_regions("eks")
    if region not in known:
        return CheckResult(
            "aws region",
            False,
            f"{region!r} is not an EKS region",
            "pass --region with an EKS region, e.g. us-east-1",
        )
    return CheckResult("aws region", True, region)


def check_kubernetes_version(ctx: PreflightContext) -> CheckResult:
    """EKS says whether the version is in standard support; the built-in calendar is the fallback."""
    version = ctx.cfg.metadata.version
    status: str | None = None
    end: dt.date | None = None
    source = "EKS DescribeClusterVersions"
    try:
        resp = ctx.clients.client("eks").describe_cluster_versions(clusterVersions=[version])
        items = resp.get("clusterVersions") or []
        if items:
            status = str(items[0].get("versionStatus") or items[0].get("status") or "")
            raw_end = items[0].get("endOfStandardSupportDate")
            end = raw_end.date() if isinstance(raw_end, dt.datetime) else None
        else:
            status = "UNSUPPORTED"
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
        log.debug("DescribeClusterVersions unavailable (%s); using the built-in calendar", exc)
        source = "built-in calendar"
        end = versions.EKS_STANDARD_SUPPORT_END.get(version)
        status = "STANDARD_SUPPORT" if end and end > ctx.today else ("EXTENDED_SUPPORT" if end else None)
    newest = newest_standard_version()
    if status is None:
        return CheckResult(
            "kubernetes version",
            False,
            f"{version} is unknown to the built-in calendar and EKS could not be asked",
            f"use --kubernetes-version {newest}",
        )
    if status != "STANDARD_SUPPORT":
        return CheckResult(
            "kubernetes version",
            False,
            f"{version} is {status} ({source}); extended support costs $0.60 per cluster-hour",
            f"use --kubernetes-version {newest}",
        )
    if end is not None and end - ctx.today < versions.STANDARD_SUPPORT_MARGIN:
        return CheckResult(
            "kubernetes version",
            False,
            f"{version} leaves standard support on {end} ({source})",
            f"use --kubernetes-version {newest}",
        )
    return CheckResult(
        "kubernetes version", True, f"{version} in standard support until {end or '?'} ({source})"
    )


def _quota(ctx: PreflightContext, code: str, service: str = "ec2") -> float:
    sq = ctx.clients.client("service-quotas")
    try:
        return float(sq.get_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]["Value"])
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) != "NoSuchResourceException":
            raise
    # Never adjusted in this account: the AWS default applies.
    return float(sq.get_aws_default_service_quota(ServiceCode=service, QuotaCode=code)["Quota"]["Value"])


#: Instance families the "G and VT" quotas count (g4dn, g5, g6e, gr6, vt1, ...).
_G_VT = re.compile(r"^(g[a-z]*|vt)\d")


def _running_g_vcpus(ctx: PreflightContext) -> dict[bool, tuple[int, int]]:
    """vCPUs and count of running G/VT instances outside this cluster, by spot (True) or on-demand:
    they draw on the same quota the node groups need."""
    from gpu_inference.services.eks.audit import belongs_to

    with aws_call("ec2:DescribeInstances"):
        reservations = paginate(
            ctx.clients.client("ec2"),
            "describe_instances",
            "Reservations",
            Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}],
        )
    instances = [
        i
        for r in reservations
        for i in r.get("Instances", [])
        if _G_VT.match(str(i.get("InstanceType", "")))
        and not belongs_to({t["Key"]: t.get("Value", "") for t in i.get("Tags") or []}, ctx.cfg.metadata.name)
    ]
    vcpu = _vcpus(ctx, {i["InstanceType"] for i in instances}) if instances else {}
    out: dict[bool, tuple[int, int]] = {False: (0, 0), True: (0, 0)}
    for i in instances:
        spot = i.get("InstanceLifecycle") == "spot"
        used, n = out[spot]
        out[spot] = (used + vcpu.get(i["InstanceType"], 0), n + 1)
    return out


def _vcpus(ctx: PreflightContext, instance_types: set[str]) -> dict[str, int]:
    with aws_call("ec2:DescribeInstanceTypes"):
        resp = ctx.clients.client("ec2").describe_instance_types(InstanceTypes=sorted(instance_types))
    return {t["InstanceType"]: int(t["VCpuInfo"]["DefaultVCpus"]) for t in resp["InstanceTypes"]}


def check_gpu_quota(ctx: PreflightContext) -> list[CheckResult]:
    """vCPU quota for G instances, on-demand and (with a spot group) spot, vs the groups' maxSize."""
    if ctx.skip_quota:
        return [CheckResult("G instance vCPU quota", True, "skipped (--skip-quota-check)")]
    groups = ctx.cfg.gpu_node_groups
    types = {t for ng in groups for t in ng.instance_types}
    try:
        vcpu = _vcpus(ctx, types)
    except AwsError as exc:
        return [CheckResult("G instance vCPU quota", False, exc.detail, exc.fix)]
    try:
        running = _running_g_vcpus(ctx)
    except AwsError as exc:
        return [CheckResult("G instance vCPU quota", False, exc.detail, exc.fix)]
    results = []
    for spot, code, label in (
        (False, versions.QUOTA_ON_DEMAND_G_VT, "Running On-Demand G and VT instances"),
        (True, versions.QUOTA_SPOT_G_VT, "All G and VT Spot Instance Requests"),
    ):
        chosen = [ng for ng in groups if ng.spot == spot]
        if not chosen:
            continue
        need = sum((ng.maxSize or 0) * max(vcpu.get(t, 0) for t in ng.instance_types) for ng in chosen)
        parts = ", ".join(f"{ng.name}: {ng.maxSize} x {ng.instance_types[0]}" for ng in chosen)
        name = f"{'spot' if spot else 'on-demand'} G vCPU quota"
        try:
            with aws_call(f"servicequotas:GetServiceQuota {code}"):
                have = _quota(ctx, code)
        except AwsError as exc:
            results.append(
                CheckResult(
                    name,
                    False,
                    f"cannot read quota {code} ({label}): {exc.detail}",
                    "allow servicequotas:GetServiceQuota, or check it in the Service Quotas console and pass "
                    "--skip-quota-check",
                )
            )
            continue
        used, count = running[spot]
        in_use = (
            f", {used} already used by {count} running G/VT instance(s) outside this cluster" if count else ""
        )
        if have - used < need:
            results.append(
                CheckResult(
                    name,
                    False,
                    f"quota {code} ({label}) is {math.floor(have)} vCPUs in {ctx.cfg.metadata.region}"
                    f"{in_use}, the node groups can grow to {need} ({parts})",
                    "request an increase: aws service-quotas request-service-quota-increase "
                    "--service-code ec2 "
                    f"--quota-code {code} --desired-value {need + used} --region {ctx.cfg.metadata.region} "
                    "(or lower maxSize, or stop the other instances)",
                )
            )
        else:
            results.append(
                CheckResult(name, True, f"{math.floor(have)} vCPUs{in_use} >= {need} needed ({parts})")
            )
    return results


#: Stack states eksctl cannot build on: the stack must be deleted before a create can succeed.
BROKEN_STACK_STATES = frozenset(
    {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_FAILED", "UPDATE_ROLLBACK_FAILED"}
)
#: Managed node group states that will not heal by themselves.
BROKEN_NODEGROUP_STATES = frozenset({"CREATE_FAILED", "DELETE_FAILED", "DEGRADED"})


def _nodegroup_problems(ctx: PreflightContext) -> list[str]:
    """Failed or degraded managed node groups of the existing cluster, with their health issues."""
    eks = ctx.clients.client("eks")
    name = ctx.cfg.metadata.name
    with aws_call("eks:ListNodegroups"):
        groups = eks.list_nodegroups(clusterName=name).get("nodegroups", [])
    out = []
    for ng in groups:
        with aws_call("eks:DescribeNodegroup"):
            desc = eks.describe_nodegroup(clusterName=name, nodegroupName=ng)["nodegroup"]
        issues = (desc.get("health") or {}).get("issues") or []
        if desc.get("status") in BROKEN_NODEGROUP_STATES or issues:
            said = (
                "; ".join(f"{i.get('code')}: {i.get('message')}" for i in issues) or "no health issues given"
            )
            out.append(f"node group {ng} is {desc.get('status')} ({said})")
    return out


def _existing_problem(
    name: str,
    region: str,
    *,
    cluster: Mapping[str, Any] | None,
    broken: list[str],
    unhealthy: list[str],
    stacks: list[str],
) -> tuple[str, str] | None:
    """(detail, fix) of what stops deploy from building on what exists, or None."""
    if broken:
        return (
            f"eksctl stack(s) left by a failed run: {'; '.join(broken)} (eksctl cannot create them again)",
            "run `make destroy` (or aws cloudformation delete-stack --region "
            f"{region} --stack-name {broken[0].split(' ')[0]}), then deploy again",
        )
    if cluster is not None and cluster.get("status") != "ACTIVE":
        status = cluster.get("status")
        return (
            f"cluster {name} is {status}; only an ACTIVE cluster is reused",
            f"wait: aws eks wait cluster-active --name {name} --region {region}"
            if status in ("CREATING", "UPDATING")
            else "run `make destroy`, then deploy again",
        )
    if unhealthy:
        return (
            f"cluster {name} is ACTIVE but {'; '.join(unhealthy)}",
            f"eksctl delete nodegroup --cluster {name} --region {region} --name <group> (deploy then "
            "creates it again), or `make destroy`",
        )
    if cluster is None and stacks:
        return (
            f"no cluster, but eksctl stacks remain: {stacks}",
            "run `make destroy` to remove the half-deleted cluster, then deploy again",
        )
    return None


def check_network_quotas(ctx: PreflightContext) -> list[CheckResult]:
    """A new cluster needs a VPC, a NAT gateway per AZ it puts one in, and an Elastic IP per NAT
    gateway (eksctl's VPC); count what the region already uses against each quota."""
    if ctx.skip_quota:
        return [CheckResult("network quotas", True, "skipped (--skip-quota-check)")]
    from gpu_inference.services.eks.audit import describe_cluster

    gateway = ctx.cfg.vpc.nat.gateway
    azs = len(ctx.cfg.availabilityZones) or (2 if ctx.cfg.metadata.region == "us-east-1" else 3)
    nats = {"Single": 1, "HighlyAvailable": azs, "Disable": 0}[gateway]
    ec2 = ctx.clients.client("ec2")
    try:
        if describe_cluster(ctx.clients, ctx.cfg.metadata.name) is not None:
            return [CheckResult("network quotas", True, "the cluster exists: no new VPC, NAT or Elastic IP")]
        with aws_call("ec2:DescribeVpcs"):
            vpcs = len(paginate(ec2, "describe_vpcs", "Vpcs"))
        with aws_call("ec2:DescribeAddresses"):
            eips = len(ec2.describe_addresses().get("Addresses", []))
        with aws_call("ec2:DescribeNatGateways"):
            live = [
                n
                for n in paginate(ec2, "describe_nat_gateways", "NatGateways")
                if n.get("State") in ("pending", "available")
            ]
        subnets = sorted({n["SubnetId"] for n in live if n.get("SubnetId")})
        az_of: dict[str, str] = {}
        if subnets:
            with aws_call("ec2:DescribeSubnets"):
                az_of = {
                    s["SubnetId"]: s["AvailabilityZone"]
                    for s in ec2.describe_subnets(SubnetIds=subnets)["Subnets"]
                }
        per_az: dict[str, int] = {}
        for n in live:
            az = az_of.get(n.get("SubnetId", ""), "?")
            per_az[az] = per_az.get(az, 0) + 1
        busiest = max(per_az.values(), default=0)
    except AwsError as exc:
        return [CheckResult("network quotas", False, exc.detail, exc.fix)]
    results = []
    region = ctx.cfg.metadata.region
    for (service, code, label), used, need in (
        (versions.QUOTA_VPCS, vpcs, 1),
        (versions.QUOTA_EIPS, eips, nats),
        (versions.QUOTA_NAT_PER_AZ, busiest, 1 if nats else 0),
    ):
        name = f"{label} quota"
        try:
            with aws_call(f"servicequotas:GetServiceQuota {code}"):
                have = _quota(ctx, code, service)
        except AwsError as exc:
            results.append(
                CheckResult(
                    name,
                    False,
                    f"cannot read quota {code}: {exc.detail}",
                    "allow servicequotas:GetServiceQuota, or check it in the console and pass "
                    "--skip-quota-check",
                )
            )
            continue
        detail = f"{math.floor(have)} in {region}, {used} in use, the new cluster needs {need}"
        if used + need > have:
            results.append(
                CheckResult(
                    name,
                    False,
                    detail,
                    "free some (the audit of an old cluster lists its VPC, NAT and Elastic IPs) or request "
                    "an increase: aws service-quotas request-service-quota-increase "
                    f"--service-code {service} --quota-code {code} "
                    f"--desired-value {math.floor(used + need)} --region {region}",
                )
            )
        else:
            results.append(CheckResult(name, True, detail))
    return results


def check_leftover_stacks(ctx: PreflightContext) -> CheckResult:
    """Only an ACTIVE cluster with healthy node groups and no broken eksctl stacks is built on; a
    half-deleted cluster (stacks without a cluster) makes `eksctl create cluster` fail late."""
    from gpu_inference.services.eks.audit import Auditor, describe_cluster

    name, region = ctx.cfg.metadata.name, ctx.cfg.metadata.region
    try:
        cluster = describe_cluster(ctx.clients, name)
        stacks = Auditor(ctx.clients, name).cloudformation_stacks()
        broken = [f"{s.id} is {s.detail}" for s in stacks if s.detail in BROKEN_STACK_STATES]
        unhealthy = _nodegroup_problems(ctx) if cluster and cluster.get("status") == "ACTIVE" else []
    except AwsError as exc:
        return CheckResult("existing cluster", False, exc.detail, exc.fix)
    problem = _existing_problem(
        name, region, cluster=cluster, broken=broken, unhealthy=unhealthy, stacks=[s.id for s in stacks]
    )
    if problem is not None:
        return CheckResult("existing cluster", False, *problem)
    if cluster is not None:
        return CheckResult("existing cluster", True, f"cluster {name} exists (ACTIVE): it will be reused")
    return CheckResult("existing cluster", True, f"no cluster named {name}: it will be created")


# --------------------------------------------------------------------------- chart


def check_chart(ctx: PreflightContext) -> list[CheckResult]:
    if not (ctx.chart / "Chart.yaml").is_file():
        return [
            CheckResult("chart lint", False, f"{ctx.chart}/Chart.yaml not found", "run from the checkout")
        ]
    try:
        helm = ctx.helm()
        helm.lint(ctx.chart, values_files=ctx.values_files)
    except GpuInferenceError as exc:
        return [
            CheckResult("chart lint", False, str(exc).splitlines()[0], "fix the chart or the --values files")
        ]
    results = [CheckResult("chart lint", True, f"helm lint --strict {ctx.chart}")]
    try:
        objects = helm.template(
            ctx.release, ctx.chart, namespace=ctx.namespace, values_files=ctx.values_files
        )
    except GpuInferenceError as exc:
        return [
            *results,
            CheckResult("chart vs node groups", False, f"helm template failed: {exc}", "fix the values"),
        ]
    facts = extract(objects)
    ctx.chart_facts = facts
    problems = check_alignment(ctx.cfg, facts, eksctl_installs_plugin=False)
    if problems:
        results.extend(
            CheckResult("chart vs node groups", False, f"{p.setting}: {p.problem}", p.fix) for p in problems
        )
    else:
        results.append(
            CheckResult(
                "chart vs node groups",
                True,
                f"{len(facts.gpu_workloads)} GPU workload(s) fit node group 'gpu', HPA max within its "
                "GPUs, one device plugin",
            )
        )
    return results


def run_preflight(ctx: PreflightContext) -> list[CheckResult]:
    results: list[CheckResult] = [check_eksctl(ctx), check_helm(ctx), check_kubectl(ctx)]
    results.append(check_identity(ctx))
    if results[-1].ok:
        results.append(check_region(ctx))
        results.append(check_kubernetes_version(ctx))
        results.extend(check_gpu_quota(ctx))
        results.extend(check_network_quotas(ctx))
        results.append(check_leftover_stacks(ctx))
    if results[1].ok:
        results.extend(check_chart(ctx))
    for r in results:
        (log.info if r.ok else log.error)("preflight %s", r)
    failed = [str(r) for r in results if not r.ok]
    if failed:
        raise PreflightError(failed)
    return results
