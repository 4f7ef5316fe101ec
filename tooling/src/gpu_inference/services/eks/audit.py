"""Audit: is anything billable still there for a cluster?

Finds resources by the tags that eksctl, EKS, the AWS cloud provider, the AWS Load Balancer
Controller, the EBS CSI driver and the VPC CNI put on what they create, plus this project's own
`gpu-inference.io/cluster` tag, by eksctl's stack names, by the cluster's VPC and by EKS's log group
names; then sweeps the Resource Groups Tagging API for anything else under the cluster's tags. Each
kind is a row of CHECKS. Every report names the account it searched. Read-only: it never deletes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import botocore.exceptions
from pydantic import BaseModel, ConfigDict

from gpu_inference.adapters.aws import AwsClients, aws_call, chunks, error_code, paginate
from gpu_inference.domain import versions

log = logging.getLogger(__name__)


class Leftover(BaseModel):
    model_config = ConfigDict(frozen=True)
    kind: str
    id: str
    detail: str = ""
    delete_hint: str = ""


class AuditReport(BaseModel):
    model_config = ConfigDict(frozen=True)
    cluster: str
    region: str
    checked: tuple[str, ...]
    leftovers: tuple[Leftover, ...]
    #: The AWS account that was searched (a clean audit of the wrong account proves nothing).
    account: str = "unknown"

    @property
    def clean(self) -> bool:
        return not self.leftovers

    def by_kind(self) -> dict[str, list[Leftover]]:
        out: dict[str, list[Leftover]] = {k: [] for k in self.checked}
        for item in self.leftovers:
            out.setdefault(item.kind, []).append(item)
        return out

    def summary(self) -> str:
        if self.clean:
            return (
                f"audit: nothing billable left for cluster {self.cluster} in {self.region}, account "
                f"{self.account} ({len(self.checked)} kinds checked)"
            )
        lines = [
            f"audit: {len(self.leftovers)} billable resource(s) still tagged for cluster {self.cluster} "
            f"in {self.region}, account {self.account}:"
        ]
        for item in self.leftovers:
            lines.append(f"  - {item.kind} {item.id} {item.detail}".rstrip())
            if item.delete_hint:
                lines.append(f"      delete: {item.delete_hint}")
        return "\n".join(lines)


def describe_cluster(clients: AwsClients, name: str) -> dict[str, Any] | None:
    """The EKS cluster description, or None if there is no such cluster."""
    eks = clients.client("eks")
    try:
        return dict(eks.describe_cluster(name=name)["cluster"])
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        with aws_call("eks:DescribeCluster"):
            raise


def belongs_to(tags: Mapping[str, str], cluster: str) -> bool:
    """True if the tags say the resource was created for `cluster`."""
    value_tags = (
        versions.CLUSTER_TAG,
        "elbv2.k8s.aws/cluster",
        "alpha.eksctl.io/cluster-name",
        "eksctl.cluster.k8s.io/v1alpha1/cluster-name",
        "eks:cluster-name",
        "aws:eks:cluster-name",
        "cluster.k8s.amazonaws.com/name",
        "KubernetesCluster",
    )
    if any(tags.get(k) == cluster for k in value_tags):
        return True
    return f"kubernetes.io/cluster/{cluster}" in tags or f"k8s.io/cluster-autoscaler/{cluster}" in tags


def _tags(items: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    return {str(t["Key"]): str(t.get("Value", "")) for t in items or []}


@dataclass(frozen=True)
class Listed:
    """A kind found by listing one service's resources and keeping those the cluster owns: by tag
    (`belongs_to`), by the cluster's VPC (`in_vpc`), or by `owned` (e.g. a name prefix)."""

    service: str
    operation: str
    key: str
    id_field: str
    hint: str
    detail: Callable[[Mapping[str, Any]], str] = lambda _: ""
    tags_field: str | None = "Tags"
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    #: Items are nested one level down (EC2 reservations -> instances).
    nested: str | None = None
    paginated: bool = True
    #: Drop items in a state that no longer bills (deleted, failed, ...).
    live: Callable[[Mapping[str, Any]], bool] = lambda _: True
    in_vpc: bool = False
    owned: Callable[[Mapping[str, Any], str], bool] | None = None

    @property
    def action(self) -> str:
        prefix = {"efs": "elasticfilesystem", "elbv2": "elasticloadbalancing"}.get(self.service, self.service)
        return f"{prefix}:{''.join(w.title() for w in self.operation.split('_'))}"


def _state(*dead: str, field_name: str = "State") -> Callable[[Mapping[str, Any]], bool]:
    return lambda item: str(item.get(field_name, "")).lower() not in dead


#: Every kind the audit looks at, in the order it reports them: a Listed spec, or the name of an
#: Auditor method for the kinds that need more than one call.
CHECKS: dict[str, Listed | str] = {
    "eks-cluster": "eks_cluster",
    "cloudformation-stack": "cloudformation_stacks",
    "autoscaling-group": Listed(
        "autoscaling",
        "describe_auto_scaling_groups",
        "AutoScalingGroups",
        "AutoScalingGroupName",
        "autoscaling delete-auto-scaling-group --force-delete --auto-scaling-group-name {id}",
        detail=lambda g: f"desired {g.get('DesiredCapacity')}, {len(g.get('Instances', []))} instance(s)",
    ),
    "ec2-instance": Listed(
        "ec2",
        "describe_instances",
        "Reservations",
        "InstanceId",
        "ec2 terminate-instances --instance-ids {id}",
        detail=lambda i: f"{i.get('InstanceType')} {i['State']['Name']}",
        nested="Instances",
        kwargs={
            "Filters": [
                {
                    "Name": "instance-state-name",
                    "Values": ["pending", "running", "stopping", "stopped", "shutting-down"],
                }
            ]
        },
    ),
    "load-balancer": "load_balancers",
    "classic-load-balancer": "classic_load_balancers",
    "target-group": "target_groups",
    "ebs-volume": Listed(
        "ec2",
        "describe_volumes",
        "Volumes",
        "VolumeId",
        "ec2 delete-volume --volume-id {id}",
        detail=lambda v: f"{v.get('Size')} GiB {v.get('VolumeType')} {v.get('State')}",
    ),
    "network-interface": Listed(
        "ec2",
        "describe_network_interfaces",
        "NetworkInterfaces",
        "NetworkInterfaceId",
        "ec2 delete-network-interface --network-interface-id {id}",
        detail=lambda n: f"{n.get('Status')} {n.get('Description', '')}".strip(),
        tags_field="TagSet",
        in_vpc=True,
        owned=lambda n, cluster: str(n.get("Description", "")).startswith(f"Amazon EKS {cluster}"),
    ),
    "security-group": Listed(
        "ec2",
        "describe_security_groups",
        "SecurityGroups",
        "GroupId",
        "ec2 delete-security-group --group-id {id}",
        detail=lambda g: str(g.get("GroupName", "")),
        live=lambda g: g.get("GroupName") != "default",
    ),
    "nat-gateway": Listed(
        "ec2",
        "describe_nat_gateways",
        "NatGateways",
        "NatGatewayId",
        "ec2 delete-nat-gateway --nat-gateway-id {id}",
        detail=lambda n: str(n.get("State")),
        live=_state("deleted", "failed"),
        in_vpc=True,
    ),
    "elastic-ip": Listed(
        "ec2",
        "describe_addresses",
        "Addresses",
        "AllocationId",
        "ec2 release-address --allocation-id {id}",
        detail=lambda a: str(a.get("PublicIp", "")),
        paginated=False,
    ),
    "vpc-endpoint": Listed(
        "ec2",
        "describe_vpc_endpoints",
        "VpcEndpoints",
        "VpcEndpointId",
        "ec2 delete-vpc-endpoints --vpc-endpoint-ids {id}",
        detail=lambda e: f"{e.get('VpcEndpointType')} {e.get('ServiceName')} {e.get('State')}",
        live=_state("deleted", "deleting", "rejected", "failed"),
        in_vpc=True,
    ),
    "efs-file-system": Listed(
        "efs",
        "describe_file_systems",
        "FileSystems",
        "FileSystemId",
        "efs delete-file-system --file-system-id {id} (delete its mount targets first)",
        detail=lambda f: f"{f.get('LifeCycleState')} {f.get('SizeInBytes', {}).get('Value', '?')} bytes",
        live=_state("deleted", "deleting", field_name="LifeCycleState"),
    ),
    "log-group": Listed(
        "logs",
        "describe_log_groups",
        "logGroups",
        "logGroupName",
        "logs delete-log-group --log-group-name {id}",
        detail=lambda g: f"{g.get('storedBytes', 0)} bytes stored",
        tags_field=None,
        owned=lambda g, cluster: any(
            str(g.get("logGroupName", "")).startswith(p)
            for p in (f"/aws/eks/{cluster}/", f"/aws/containerinsights/{cluster}/")
        ),
    ),
    "kms-key": "kms_keys",
    "vpc": "vpcs",
    "tagged-resource": "tagged_resources",
}
KINDS: tuple[str, ...] = tuple(CHECKS)

#: The elbv2 kinds: listed like a Listed kind, but their tags need a DescribeTags call per 20 ARNs.
ELBV2_KINDS: dict[str, Listed] = {
    "load-balancer": Listed(
        "elbv2",
        "describe_load_balancers",
        "LoadBalancers",
        "LoadBalancerArn",
        "elbv2 delete-load-balancer --load-balancer-arn {id}",
    ),
    "target-group": Listed(
        "elbv2",
        "describe_target_groups",
        "TargetGroups",
        "TargetGroupArn",
        "elbv2 delete-target-group --target-group-arn {id}",
    ),
}


#: Tag filters for the tagging-API sweep: this project's tag and eksctl's, by value; the cloud
#: provider's by key (its value is owned/shared).
def sweep_filters(cluster: str) -> list[list[dict[str, Any]]]:
    return [
        [{"Key": versions.CLUSTER_TAG, "Values": [cluster]}],
        [{"Key": "alpha.eksctl.io/cluster-name", "Values": [cluster]}],
        [{"Key": f"kubernetes.io/cluster/{cluster}"}],
    ]


class Auditor:
    """Runs every check; each returns the leftovers of one kind."""

    def __init__(self, clients: AwsClients, cluster: str) -> None:
        self.clients = clients
        self.cluster = cluster
        self.region = clients.region
        self._vpcs: set[str] | None = None
        self._found: list[Leftover] = []

    def _hint(self, cmd: str) -> str:
        return f"aws {cmd} --region {self.region}"

    # -- helpers

    def cluster_vpcs(self) -> set[str]:
        if self._vpcs is None:
            ec2 = self.clients.client("ec2")
            with aws_call("ec2:DescribeVpcs"):
                vpcs = paginate(ec2, "describe_vpcs", "Vpcs")
            self._vpcs = {v["VpcId"] for v in vpcs if belongs_to(_tags(v.get("Tags")), self.cluster)}
        return self._vpcs

    def listed(self, kind: str, spec: Listed) -> list[Leftover]:
        """The generic check: list, keep what the cluster owns and still bills."""
        client = self.clients.client(spec.service)
        with aws_call(spec.action):
            if spec.paginated:
                items = paginate(client, spec.operation, spec.key, **spec.kwargs)
            else:
                items = getattr(client, spec.operation)(**spec.kwargs).get(spec.key, [])
        if spec.nested:
            items = [i for outer in items for i in outer.get(spec.nested, [])]
        vpcs = self.cluster_vpcs() if spec.in_vpc else set()
        out = []
        for item in items:
            if not spec.live(item):
                continue
            mine = spec.tags_field is not None and belongs_to(_tags(item.get(spec.tags_field)), self.cluster)
            mine = mine or (spec.in_vpc and item.get("VpcId") in vpcs)
            mine = mine or (spec.owned is not None and spec.owned(item, self.cluster))
            if mine:
                ident = str(item.get(spec.id_field) or "?")
                out.append(
                    Leftover(
                        kind=kind,
                        id=ident,
                        detail=spec.detail(item),
                        delete_hint=self._hint(spec.hint.format(id=ident)),
                    )
                )
        return out

    # -- checks that need more than one call

    def eks_cluster(self) -> list[Leftover]:
        c = describe_cluster(self.clients, self.cluster)
        if c is None:
            return []
        return [
            Leftover(
                kind="eks-cluster",
                id=self.cluster,
                detail=f"status {c.get('status')}",
                delete_hint=f"eksctl delete cluster --name {self.cluster} --region {self.region} --wait",
            )
        ]

    def cloudformation_stacks(self) -> list[Leftover]:
        cfn = self.clients.client("cloudformation")
        with aws_call("cloudformation:ListStacks"):
            stacks = paginate(cfn, "list_stacks", "StackSummaries")
        prefix = f"eksctl-{self.cluster}-"
        return [
            Leftover(
                kind="cloudformation-stack",
                id=s["StackName"],
                detail=s["StackStatus"],
                delete_hint=self._hint(f"cloudformation delete-stack --stack-name {s['StackName']}"),
            )
            for s in stacks
            if s["StackName"].startswith(prefix) and s["StackStatus"] != "DELETE_COMPLETE"
        ]

    def _elbv2(self, kind: str) -> list[Leftover]:
        spec = ELBV2_KINDS[kind]
        elbv2 = self.clients.client(spec.service)
        with aws_call(spec.action):
            items = paginate(elbv2, spec.operation, spec.key)
        tags: dict[str, dict[str, str]] = {}
        for batch in chunks([i[spec.id_field] for i in items], 20):
            with aws_call("elasticloadbalancing:DescribeTags"):
                for d in elbv2.describe_tags(ResourceArns=batch)["TagDescriptions"]:
                    tags[d["ResourceArn"]] = _tags(d.get("Tags"))
        return [
            Leftover(
                kind=kind,
                id=i[spec.id_field],
                detail=f"{i.get('Type', '')} {i.get('DNSName', '')}".strip() or i.get("TargetGroupName", ""),
                delete_hint=self._hint(spec.hint.format(id=i[spec.id_field])),
            )
            for i in items
            if belongs_to(tags.get(i[spec.id_field], {}), self.cluster)
        ]

    def load_balancers(self) -> list[Leftover]:
        return self._elbv2("load-balancer")

    def target_groups(self) -> list[Leftover]:
        return self._elbv2("target-group")

    def classic_load_balancers(self) -> list[Leftover]:
        elb = self.clients.client("elb")
        with aws_call("elasticloadbalancing:DescribeLoadBalancers"):
            lbs = paginate(elb, "describe_load_balancers", "LoadBalancerDescriptions")
        names = [lb["LoadBalancerName"] for lb in lbs]
        tags: dict[str, dict[str, str]] = {}
        for batch in chunks(names, 20):
            with aws_call("elasticloadbalancing:DescribeTags"):
                for d in elb.describe_tags(LoadBalancerNames=batch)["TagDescriptions"]:
                    tags[d["LoadBalancerName"]] = _tags(d.get("Tags"))
        return [
            Leftover(
                kind="classic-load-balancer",
                id=name,
                delete_hint=self._hint(f"elb delete-load-balancer --load-balancer-name {name}"),
            )
            for name in names
            if belongs_to(tags.get(name, {}), self.cluster)
        ]

    def kms_keys(self) -> list[Leftover]:
        """Customer managed keys tagged for the cluster ($1/month each until deleted)."""
        kms = self.clients.client("kms")
        with aws_call("kms:ListKeys"):
            keys = paginate(kms, "list_keys", "Keys")
        out = []
        for k in keys:
            with aws_call("kms:ListResourceTags"):
                raw = kms.list_resource_tags(KeyId=k["KeyId"]).get("Tags", [])
            tags = {str(t["TagKey"]): str(t.get("TagValue", "")) for t in raw}
            if not belongs_to(tags, self.cluster):
                continue
            with aws_call("kms:DescribeKey"):
                state = kms.describe_key(KeyId=k["KeyId"])["KeyMetadata"].get("KeyState", "")
            if state in ("PendingDeletion", "PendingReplicaDeletion"):
                continue
            out.append(
                Leftover(
                    kind="kms-key",
                    id=k["KeyId"],
                    detail=state,
                    delete_hint=self._hint(
                        f"kms schedule-key-deletion --pending-window-in-days 7 --key-id {k['KeyId']}"
                    ),
                )
            )
        return out

    def vpcs(self) -> list[Leftover]:
        """The VPC eksctl made (no hourly charge itself, but it holds what does)."""
        return [
            Leftover(
                kind="vpc",
                id=v,
                delete_hint=self._hint(f"ec2 delete-vpc --vpc-id {v}") + " (after what is inside it)",
            )
            for v in sorted(self.cluster_vpcs())
        ]

    def tagged_resources(self) -> list[Leftover]:
        """Catch-all: every resource the tagging API knows under the cluster's tags that no check
        above reported (any service, e.g. an S3 bucket or an SNS topic made for the cluster)."""
        tagging = self.clients.client("resourcegroupstaggingapi")
        arns: set[str] = set()
        for filters in sweep_filters(self.cluster):
            with aws_call("tag:GetResources"):
                found = paginate(tagging, "get_resources", "ResourceTagMappingList", TagFilters=filters)
            arns |= {str(r["ResourceARN"]) for r in found}
        known = {i.id for i in self._found}
        return [
            Leftover(
                kind="tagged-resource",
                id=arn,
                detail="tagged for the cluster (the tagging API can list a just-deleted resource briefly)",
                delete_hint=f"delete it in the console or with the CLI of its service ({arn.split(':')[2]})",
            )
            for arn in sorted(arns)
            if arn not in known and not set(re.split(r"[/:]", arn)) & known
        ]

    def check(self, kind: str) -> list[Leftover]:
        """Run the check of one kind (remembering what it found, for the sweep's deduplication)."""
        spec = CHECKS[kind]
        found: list[Leftover] = self.listed(kind, spec) if isinstance(spec, Listed) else getattr(self, spec)()
        self._found.extend(found)
        return found


def caller_account(clients: AwsClients) -> str:
    """The account the credentials act in (sts:GetCallerIdentity)."""
    with aws_call("sts:GetCallerIdentity"):
        return str(clients.client("sts").get_caller_identity()["Account"])


def audit(clients: AwsClients, cluster: str, kinds: Iterable[str] = KINDS) -> AuditReport:
    """Check every kind; an AWS error in any check propagates (an audit that could not look is not clean)."""
    auditor = Auditor(clients, cluster)
    account = caller_account(clients)
    wanted = list(kinds)
    leftovers: list[Leftover] = []
    for kind in wanted:
        found = auditor.check(kind)
        log.debug("audit %s: %d", kind, len(found))
        leftovers.extend(found)
    return AuditReport(
        cluster=cluster,
        region=clients.region,
        checked=tuple(wanted),
        leftovers=tuple(leftovers),
        account=account,
    )
