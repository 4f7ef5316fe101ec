"""`gpu-inference destroy`: ordered teardown, then an audit that fails if anything billable is left.

The order is the point (field notes, eksctl#103/#487/#1960/#4979): load balancers and volumes are
created by controllers inside the cluster, so they must be deleted while those controllers still
run; deleting the cluster first orphans them.

  1. helm uninstall the chart (its Services, Ingresses, PVCs go with it or are left for step 3/5)
  2. helm uninstall the Cluster Autoscaler (nothing may scale while we tear down)
  3. delete every LoadBalancer Service and every Ingress, and wait until they are gone (their
     finalizers run until the cloud load balancer is deleted)
  4. wait until AWS shows no load balancer / target group tagged for the cluster, and none of the
     security groups the load balancer controller made (they hold the VPC)
  5. delete every PersistentVolumeClaim and wait; then wait until the volumes are gone in AWS
  6. helm uninstall the AWS Load Balancer Controller (it was needed for step 3)
  7. eksctl delete cluster --wait
  8. audit by tag; non-zero exit if anything remains

Every step is idempotent (absent releases and objects are fine), so re-running after a partial
failure continues where it stopped. A cluster that no longer exists skips steps 1-6; so does
`skip_in_cluster` (the API is unreachable or refuses this identity: eksctl grants cluster-admin to
the creating identity only), leaving what the controllers made to the audit's list.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpu_inference.adapters.aws import AwsClients, aws_call, paginate
from gpu_inference.adapters.eksctl import Eksctl
from gpu_inference.adapters.helm import Helm
from gpu_inference.adapters.kubectl import Kubectl
from gpu_inference.domain import versions
from gpu_inference.errors import GpuInferenceError, ToolFailedError
from gpu_inference.services.eks.audit import Auditor, AuditReport, Leftover, audit, describe_cluster
from gpu_inference.services.eks.deploy import StackOptions, kubeconfig_path
from gpu_inference.services.eks.progress import Reporter
from gpu_inference.services.eks.waits import Probe, poll

log = logging.getLogger(__name__)

#: The tag the AWS Load Balancer Controller puts on everything it creates (value: the cluster name).
LBC_CLUSTER_TAG = "elbv2.k8s.aws/cluster"

#: The teardown steps, in the order they must run (asserted by the tests).
STEPS: tuple[tuple[str, str], ...] = (
    ("helm-uninstall-chart", "helm uninstall the chart"),
    ("helm-uninstall-cluster-autoscaler", "helm uninstall the Cluster Autoscaler"),
    ("delete-load-balancer-services", "delete LoadBalancer Services (all namespaces) and wait"),
    ("delete-ingresses", "delete Ingresses (all namespaces) and wait"),
    ("wait-load-balancers-gone", "wait until AWS has no load balancer or target group for the cluster"),
    ("delete-pvcs", "delete PersistentVolumeClaims (all namespaces) and wait"),
    ("wait-volumes-gone", "wait until the claims' EBS volumes are deleted"),
    ("helm-uninstall-aws-load-balancer-controller", "helm uninstall the AWS Load Balancer Controller"),
    ("eksctl-delete-cluster", "eksctl delete cluster --wait"),
    ("audit", "audit everything billable tagged for the cluster"),
)
IN_CLUSTER_STEPS = frozenset(name for name, _ in STEPS[:8])


@dataclass(kw_only=True)
class DestroyOptions(StackOptions):
    """`gpu-inference destroy`: which cluster, and how long each wait may take."""

    cluster: str
    region: str
    #: Skip steps 1-6 (the cluster API is unreachable, or this identity has no access to it).
    skip_in_cluster: bool = False
    lb_timeout_s: float = 600
    volume_timeout_s: float = 600
    k8s_delete_timeout_s: float = 600


#: What kubectl, helm and eksctl print when the API server cannot be reached or refuses the caller
#: (eksctl grants cluster-admin to the creating identity only).
_UNREACHABLE = (
    "unauthorized",
    "forbidden",
    "you must be logged in",
    "connection refused",
    "i/o timeout",
    "no such host",
    "unable to connect to the server",
    "context deadline exceeded",
    "tls handshake timeout",
)


def unreachable(output: str) -> bool:
    """True when a tool's output says the cluster API is unreachable or denies this identity."""
    text = output.lower()
    return any(marker in text for marker in _UNREACHABLE)


class ClusterUnreachableError(GpuInferenceError):
    """The in-cluster steps cannot run: the API is unreachable or this identity has no access."""

    def __init__(self, cluster: str, region: str, cause: ToolFailedError) -> None:
        last = (cause.output.strip().splitlines() or ["no output"])[-1]
        super().__init__(
            f"the API of cluster {cluster} ({region}) is unreachable or refuses this identity ({last}). "
            "Fix: run destroy as the identity that created the cluster (eksctl grants cluster-admin to it "
            "alone), or pass --skip-in-cluster to go straight to `eksctl delete cluster` (load balancers and "
            "volumes made by controllers then stay; the audit lists them with delete commands)"
        )


@dataclass
class DestroyResult:
    report: AuditReport | None = None
    planned: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def _is_pvc_volume(tags: dict[str, str]) -> bool:
    """Volumes the EBS CSI driver made for a claim (node root volumes go with their instances)."""
    return "kubernetes.io/created-for/pvc/name" in tags or "CSIVolumeName" in tags


@dataclass
class Destroyer:
    opts: DestroyOptions
    clients: AwsClients
    eksctl: Eksctl
    helm_factory: Callable[[Path], Helm]
    kubectl_factory: Callable[[Path], Kubectl]
    reporter: Reporter
    sleep: Callable[[float], None] = time.sleep

    def run(self) -> DestroyResult:
        o = self.opts
        result = DestroyResult()
        cluster = describe_cluster(self.clients, o.cluster)
        status = (cluster or {}).get("status")
        stacks = Auditor(self.clients, o.cluster).cloudformation_stacks()
        reachable = status == "ACTIVE" and not o.skip_in_cluster
        if not reachable:
            why = "the cluster does not exist" if cluster is None else f"the cluster is {status}"
            if o.skip_in_cluster and status == "ACTIVE":
                why = (
                    "--skip-in-cluster: load balancers and volumes the controllers made stay behind; "
                    "the audit lists them with delete commands"
                )
            for name, _ in STEPS[:8]:
                result.skipped[name] = why
        if cluster is None and not stacks:
            result.skipped["eksctl-delete-cluster"] = "no cluster and no eksctl stacks"

        if o.dry_run:
            result.planned = self.plan(result.skipped)
            result.report = audit(self.clients, o.cluster)
            return result

        kubeconfig = kubeconfig_path(o.work_dir, o.cluster, o.region)
        helm: Helm | None = None
        kubectl: Kubectl | None = None
        if reachable:
            with self.reporter.step("kubeconfig", f"write {kubeconfig}"):
                try:
                    self.eksctl.write_kubeconfig(cluster=o.cluster, region=o.region, kubeconfig=kubeconfig)
                except ToolFailedError as exc:
                    if unreachable(exc.output):
                        raise ClusterUnreachableError(o.cluster, o.region, exc) from exc
                    raise
            helm = self.helm_factory(kubeconfig)
            kubectl = self.kubectl_factory(kubeconfig)

        actions: dict[str, Callable[[], None]] = {}
        if helm is not None and kubectl is not None:
            h, k = helm, kubectl
            actions = {
                "helm-uninstall-chart": lambda: h.uninstall(o.release, namespace=o.namespace, wait=True),
                "helm-uninstall-cluster-autoscaler": lambda: h.uninstall(
                    versions.CLUSTER_AUTOSCALER_RELEASE, namespace=versions.ADDON_NAMESPACE, wait=True
                ),
                "delete-load-balancer-services": lambda: self.delete_lb_services(k),
                "delete-ingresses": lambda: self.delete_all(k, "ingresses"),
                "wait-load-balancers-gone": self.wait_load_balancers_gone,
                "delete-pvcs": lambda: self.delete_pvcs(k),
                "wait-volumes-gone": self.wait_volumes_gone,
                "helm-uninstall-aws-load-balancer-controller": lambda: h.uninstall(
                    versions.AWS_LB_CONTROLLER_RELEASE, namespace=versions.ADDON_NAMESPACE, wait=True
                ),
            }
        actions["eksctl-delete-cluster"] = self.delete_cluster

        for name, desc in STEPS[:-1]:
            if name in result.skipped:
                self.reporter.skip(name, desc, result.skipped[name])
                continue
            with self.reporter.step(name, desc):
                try:
                    actions[name]()
                except ToolFailedError as exc:
                    if name in IN_CLUSTER_STEPS and unreachable(exc.output):
                        raise ClusterUnreachableError(o.cluster, o.region, exc) from exc
                    raise
        with self.reporter.step("audit", STEPS[-1][1]):
            result.report = audit(self.clients, o.cluster)
        return result

    def delete_cluster(self) -> None:
        self.eksctl.delete_cluster(
            cluster=self.opts.cluster,
            region=self.opts.region,
            on_line=lambda line: self.reporter.info(f"eksctl: {line}"),
        )

    def plan(self, skipped: dict[str, str]) -> list[str]:
        o = self.opts
        lines = []
        for name, desc in STEPS:
            if name in skipped:
                lines.append(f"skip {name}: {skipped[name]}")
            elif name == "eksctl-delete-cluster":
                lines.append(
                    f"eksctl delete cluster --name {o.cluster} --region {o.region} --wait "
                    "--disable-nodegroup-eviction"
                )
            else:
                lines.append(f"{name}: {desc}")
        return lines

    # ------------------------------------------------------------------ in-cluster deletes

    def delete_lb_services(self, kubectl: Kubectl) -> None:
        items = kubectl.get("services", all_namespaces=True).get("items", [])
        for svc in items:
            if (svc.get("spec") or {}).get("type") != "LoadBalancer":
                continue
            meta = svc["metadata"]
            self.reporter.info(f"deleting Service {meta['namespace']}/{meta['name']} (type LoadBalancer)")
            kubectl.delete(
                "service",
                meta["name"],
                namespace=meta["namespace"],
                wait=True,
                timeout=self.opts.k8s_delete_timeout_s,
            )

    def delete_all(self, kubectl: Kubectl, kind: str) -> None:
        kubectl.delete(kind, all_namespaces=True, wait=True, timeout=self.opts.k8s_delete_timeout_s)

    def delete_pvcs(self, kubectl: Kubectl) -> None:
        pvcs = kubectl.get("persistentvolumeclaims", all_namespaces=True).get("items", [])
        claims = {(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pvcs}
        kubectl.delete(
            "persistentvolumeclaims", all_namespaces=True, wait=True, timeout=self.opts.k8s_delete_timeout_s
        )
        if not claims:
            return

        def bound_pvs() -> list[str]:
            pvs = kubectl.get("persistentvolumes").get("items", [])
            out = []
            for pv in pvs:
                ref = (pv.get("spec") or {}).get("claimRef") or {}
                if (ref.get("namespace"), ref.get("name")) in claims:
                    out.append(str(pv["metadata"]["name"]))
            return out

        self._poll(
            "PersistentVolumes of the deleted claims to be removed",
            self.opts.volume_timeout_s,
            lambda: (not (left := bound_pvs()), f"{left}"),
            "kubectl get pv; a reclaimPolicy Retain volume must be deleted by hand (the audit lists it)",
        )

    # ------------------------------------------------------------------ AWS-side waits

    def wait_load_balancers_gone(self) -> None:
        auditor = Auditor(self.clients, self.opts.cluster)

        def probe() -> tuple[bool, str]:
            left = [i.id for i in auditor.load_balancers() + auditor.classic_load_balancers()]
            left += [i.id for i in auditor.target_groups()] + self.lb_controller_security_groups()
            return not left, ", ".join(left) or "none"

        self._poll(
            "load balancers tagged for the cluster to be deleted",
            self.opts.lb_timeout_s,
            probe,
            "check the AWS Load Balancer Controller logs (kubectl logs -n kube-system "
            "deploy/aws-load-balancer-controller)",
        )

    def lb_controller_security_groups(self) -> list[str]:
        """Security groups the AWS Load Balancer Controller made for the cluster's load balancers: it
        deletes them after the load balancer, so they must be gone before the cluster's VPC can go."""
        ec2 = self.clients.client("ec2")
        with aws_call("ec2:DescribeSecurityGroups"):
            groups = paginate(
                ec2,
                "describe_security_groups",
                "SecurityGroups",
                Filters=[{"Name": f"tag:{LBC_CLUSTER_TAG}", "Values": [self.opts.cluster]}],
            )
        return [str(g["GroupId"]) for g in groups]

    def pvc_volumes(self) -> list[Leftover]:
        ec2 = self.clients.client("ec2")
        vols: list[dict[str, Any]] = []
        for page in ec2.get_paginator("describe_volumes").paginate():
            vols.extend(page.get("Volumes", []))
        auditor_items = {i.id for i in Auditor(self.clients, self.opts.cluster).check("ebs-volume")}
        out = []
        for v in vols:
            tags = {t["Key"]: t.get("Value", "") for t in v.get("Tags") or []}
            if v["VolumeId"] in auditor_items and _is_pvc_volume(tags):
                out.append(
                    Leftover(kind="ebs-volume", id=v["VolumeId"], detail=tags.get("CSIVolumeName", ""))
                )
        return out

    def wait_volumes_gone(self) -> None:
        def probe() -> tuple[bool, str]:
            left = self.pvc_volumes()
            return not left, ", ".join(i.id for i in left) or "none"

        self._poll(
            "the claims' EBS volumes to be deleted",
            self.opts.volume_timeout_s,
            probe,
            "check the EBS CSI controller logs (kubectl logs -n kube-system deploy/ebs-csi-controller)",
        )

    def _poll(self, what: str, timeout_s: float, probe: Probe, fix: str) -> None:
        poll(what, timeout_s, probe, fix, interval_s=self.opts.poll_interval_s, sleep=self.sleep)
