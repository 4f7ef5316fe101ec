"""The eksctl ClusterConfig (eksctl.io/v1alpha5): a structural model and this project's rules.

The model is written from eksctl's documented ClusterConfig fields (field names and enums as in
eksctl's published schema). Every object forbids unknown keys, so a typo such as
`propagateAsgTags` fails here, with the path of the field, instead of being ignored by eksctl.
Sections this project does not use are accepted by name only (their content is eksctl's business).

`project_rules` adds what eksctl cannot know: the node groups the chart and the local cluster
rely on, scale-from-zero tags, the IAM the controllers need, one device plugin.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError

from gpu_inference.domain import versions
from gpu_inference.domain.constants import (
    ACCELERATOR_LABEL,
    GPU_RESOURCE,
    GPU_TAINT_KEY,
    NODE_POOL_LABEL,
    T4_ACCELERATOR,
)
from gpu_inference.domain.instance_types import GPU_INSTANCE_TYPES, INSTANCE_SHAPES, gpus_of
from gpu_inference.domain.models import StrictModel
from gpu_inference.errors import ClusterConfigError, Problem

AmiFamily = Literal[
    "AmazonLinux2",
    "AmazonLinux2023",
    "UbuntuPro2404",
    "Ubuntu2404",
    "UbuntuPro2204",
    "Ubuntu2204",
    "Ubuntu2004",
    "Ubuntu1804",
    "Bottlerocket",
    "WindowsServer2019CoreContainer",
    "WindowsServer2019FullContainer",
    "WindowsServer2022CoreContainer",
    "WindowsServer2022FullContainer",
]
VolumeType = Literal["gp2", "gp3", "io1", "sc1", "st1"]
TaintEffect = Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]

#: AMI families whose GPU AMI ships the NVIDIA device plugin itself (eksctl GPU support docs;
#: EKS "Install Kubernetes device plugin for GPUs").
AMI_FAMILIES_WITH_BUNDLED_DEVICE_PLUGIN = frozenset({"Bottlerocket"})
#: AMI families this project supports for GPU nodes (both cover g4dn's T4).
GPU_AMI_FAMILIES = frozenset({"AmazonLinux2023", "Bottlerocket"})

SYSTEM_NODE_GROUP = "system"
GPU_NODE_GROUP = "gpu"
CA_ENABLED_TAG = "k8s.io/cluster-autoscaler/enabled"
CA_NODE_TEMPLATE_GPU_TAG = f"k8s.io/cluster-autoscaler/node-template/resources/{GPU_RESOURCE}"
POD_IDENTITY_AGENT_ADDON = "eks-pod-identity-agent"


class ClusterMeta(StrictModel):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[a-zA-Z][-a-zA-Z0-9]*$")
    region: str = Field(min_length=1)
    version: str = Field(pattern=r"^1\.[0-9]+$")
    tags: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class WellKnownPolicies(StrictModel):
    imageBuilder: bool = False
    autoScaler: bool = False
    awsLoadBalancerController: bool = False
    externalDNS: bool = False
    certManager: bool = False
    ebsCSIController: bool = False
    efsCSIController: bool = False

    def any(self) -> bool:
        return any(self.model_dump().values())


class PodIdentityAssociation(StrictModel):
    namespace: str = Field(min_length=1)
    serviceAccountName: str = Field(min_length=1)
    roleARN: str | None = None
    createServiceAccount: bool = False
    roleName: str | None = None
    permissionsBoundaryARN: str | None = None
    permissionPolicyARNs: list[str] = Field(default_factory=list)
    permissionPolicy: dict[str, Any] = Field(default_factory=dict)
    wellKnownPolicies: WellKnownPolicies = Field(default_factory=WellKnownPolicies)
    tags: dict[str, str] = Field(default_factory=dict)


class ClusterIAM(StrictModel):
    serviceRoleARN: str | None = None
    serviceRolePermissionsBoundary: str | None = None
    fargatePodExecutionRoleARN: str | None = None
    fargatePodExecutionRolePermissionsBoundary: str | None = None
    withOIDC: bool = False
    serviceAccounts: list[dict[str, Any]] = Field(default_factory=list)
    podIdentityAssociations: list[PodIdentityAssociation] = Field(default_factory=list)
    vpcResourceControllerPolicy: bool = True


class Addon(StrictModel):
    name: str = Field(min_length=1)
    version: str | None = None
    serviceAccountRoleARN: str | None = None
    attachPolicyARNs: list[str] = Field(default_factory=list)
    attachPolicy: dict[str, Any] = Field(default_factory=dict)
    permissionsBoundary: str | None = None
    wellKnownPolicies: WellKnownPolicies = Field(default_factory=WellKnownPolicies)
    tags: dict[str, str] = Field(default_factory=dict)
    resolveConflicts: Literal["none", "overwrite", "preserve"] | None = None
    podIdentityAssociations: list[PodIdentityAssociation] = Field(default_factory=list)
    useDefaultPodIdentityAssociations: bool = False
    configurationValues: str | None = None
    publishers: list[str] = Field(default_factory=list)
    types: list[str] = Field(default_factory=list)
    owners: list[str] = Field(default_factory=list)


class AddonsConfig(StrictModel):
    autoApplyPodIdentityAssociations: bool = False
    disableDefaultAddons: bool = False


class ClusterNAT(StrictModel):
    gateway: Literal["HighlyAvailable", "Single", "Disable"] = "Single"


class ClusterVPC(StrictModel):
    id: str | None = None
    cidr: str | None = None
    ipv6Cidr: str | None = None
    ipv6Pool: str | None = None
    securityGroup: str | None = None
    subnets: dict[str, Any] | None = None
    hostnameType: str | None = None
    extraCIDRs: list[str] = Field(default_factory=list)
    extraIPv6CIDRs: list[str] = Field(default_factory=list)
    sharedNodeSecurityGroup: str | None = None
    manageSharedNodeSecurityGroupRules: bool = True
    autoAllocateIPv6: bool = False
    nat: ClusterNAT = Field(default_factory=ClusterNAT)
    clusterEndpoints: dict[str, bool] | None = None
    publicAccessCIDRs: list[str] = Field(default_factory=list)
    controlPlaneSubnetIDs: list[str] = Field(default_factory=list)
    controlPlaneSecurityGroupIDs: list[str] = Field(default_factory=list)


class Taint(StrictModel):
    key: str = Field(min_length=1)
    value: str = ""
    effect: TaintEffect


class UpdateConfig(StrictModel):
    maxUnavailable: int | None = Field(default=None, ge=1)
    maxUnavailablePercentage: int | None = Field(default=None, ge=1, le=100)


class ManagedNodeGroup(StrictModel):
    name: str = Field(min_length=1, pattern=r"^[a-zA-Z0-9][-_a-zA-Z0-9]*$")
    amiFamily: AmiFamily = "AmazonLinux2"
    instanceType: str | None = None
    instanceTypes: list[str] = Field(default_factory=list)
    availabilityZones: list[str] = Field(default_factory=list)
    subnets: list[str] = Field(default_factory=list)
    instancePrefix: str | None = None
    instanceName: str | None = None
    desiredCapacity: int | None = Field(default=None, ge=0)
    minSize: int | None = Field(default=None, ge=0)
    maxSize: int | None = Field(default=None, ge=0)
    volumeSize: int = Field(default=80, ge=1)
    ssh: dict[str, Any] | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    privateNetworking: bool = False
    tags: dict[str, str] = Field(default_factory=dict)
    iam: dict[str, Any] | None = None
    ami: str | None = None
    securityGroups: dict[str, Any] | None = None
    maxPodsPerNode: int | None = Field(default=None, ge=1)
    asgSuspendProcesses: list[str] = Field(default_factory=list)
    ebsOptimized: bool | None = None
    volumeType: VolumeType = "gp3"
    volumeName: str | None = None
    volumeEncrypted: bool | None = None
    volumeKmsKeyID: str | None = None
    volumeIOPS: int | None = None
    volumeThroughput: int | None = None
    additionalVolumes: list[dict[str, Any]] = Field(default_factory=list)
    preBootstrapCommands: list[str] = Field(default_factory=list)
    overrideBootstrapCommand: str | None = None
    propagateASGTags: bool = False
    disableIMDSv1: bool = True
    disablePodIMDS: bool = False
    placement: dict[str, str] | None = None
    efaEnabled: bool | None = None
    instanceSelector: dict[str, Any] | None = None
    bottlerocket: dict[str, Any] | None = None
    enableDetailedMonitoring: bool | None = None
    capacityReservation: dict[str, Any] | None = None
    outpostARN: str | None = None
    spot: bool = False
    taints: list[Taint] = Field(default_factory=list)
    updateConfig: UpdateConfig | None = None
    launchTemplate: dict[str, str] | None = None
    releaseVersion: str | None = None
    nodeRepairConfig: dict[str, bool] | None = None

    @property
    def instance_types(self) -> list[str]:
        return list(self.instanceTypes) or ([self.instanceType] if self.instanceType else [])

    @property
    def gpus_per_node(self) -> int:
        types = self.instance_types
        return gpus_of(types[0]) if types else 0

    @property
    def min_nodes(self) -> int:
        """minSize; eksctl's default for an unset minSize is used as 0 here."""
        return self.minSize or 0

    @property
    def max_nodes(self) -> int:
        """maxSize, or minSize when unset."""
        return self.maxSize if self.maxSize is not None else self.min_nodes

    @property
    def desired_nodes(self) -> int:
        """desiredCapacity, or minSize when unset."""
        return self.desiredCapacity if self.desiredCapacity is not None else self.min_nodes


class ClusterConfig(StrictModel):
    apiVersion: Literal["eksctl.io/v1alpha5"]
    kind: Literal["ClusterConfig"]
    metadata: ClusterMeta
    kubernetesNetworkConfig: dict[str, Any] | None = None
    autoModeConfig: dict[str, Any] | None = None
    remoteNetworkConfig: dict[str, Any] | None = None
    iam: ClusterIAM = Field(default_factory=ClusterIAM)
    iamIdentityMappings: list[dict[str, Any]] = Field(default_factory=list)
    identityProviders: list[dict[str, Any]] = Field(default_factory=list)
    accessConfig: dict[str, Any] | None = None
    vpc: ClusterVPC = Field(default_factory=ClusterVPC)
    addons: list[Addon] = Field(default_factory=list)
    addonsConfig: AddonsConfig = Field(default_factory=AddonsConfig)
    privateCluster: dict[str, Any] | None = None
    nodeGroups: list[dict[str, Any]] = Field(default_factory=list)
    managedNodeGroups: list[ManagedNodeGroup] = Field(default_factory=list)
    fargateProfiles: list[dict[str, Any]] = Field(default_factory=list)
    availabilityZones: list[str] = Field(default_factory=list)
    localZones: list[str] = Field(default_factory=list)
    cloudWatch: dict[str, Any] | None = None
    secretsEncryption: dict[str, Any] | None = None
    gitops: dict[str, Any] | None = None
    karpenter: dict[str, Any] | None = None
    outpost: dict[str, Any] | None = None
    zonalShiftConfig: dict[str, Any] | None = None

    def node_group(self, name: str) -> ManagedNodeGroup | None:
        return next((ng for ng in self.managedNodeGroups if ng.name == name), None)

    @property
    def gpu_node_groups(self) -> list[ManagedNodeGroup]:
        return [ng for ng in self.managedNodeGroups if ng.gpus_per_node > 0]


# --------------------------------------------------------------------------- loading


def _path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def parse_cluster_config(raw: Any, source: str) -> ClusterConfig:
    """Validate a loaded YAML document against the structural model."""
    try:
        return ClusterConfig.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = _path(err["loc"])
            if err["type"] == "extra_forbidden":
                problems.append(
                    Problem(
                        where,
                        "unknown field (not in eksctl's ClusterConfig)",
                        "fix the spelling or remove it",
                    )
                )
            elif err["type"] == "missing":
                problems.append(Problem(where, "required field is missing", "add it"))
            elif err["type"] == "literal_error":
                expected = (err.get("ctx") or {}).get("expected", "a value eksctl accepts")
                problems.append(
                    Problem(
                        where, f"unknown value {err.get('input')!r} (expected {expected})", f"use {expected}"
                    )
                )
            else:
                problems.append(
                    Problem(where, f"{err['msg']} (got {err.get('input')!r})", "use a value eksctl accepts")
                )
        raise ClusterConfigError(source, problems) from exc


def read_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ClusterConfigError(
            str(path), [Problem(str(path), "file not found", "pass --config eksctl/cluster.yaml")]
        ) from exc
    except yaml.YAMLError as exc:
        raise ClusterConfigError(
            str(path), [Problem(str(path), f"not valid YAML: {exc}", "fix the YAML syntax")]
        ) from exc


def merge_overlay(base: Mapping[str, Any], overlay: Mapping[str, Any], overlay_source: str) -> dict[str, Any]:
    """Append an overlay's managedNodeGroups (the only thing an overlay may carry)."""
    extra = set(overlay) - {"managedNodeGroups"}
    if extra:
        raise ClusterConfigError(
            overlay_source,
            [
                Problem(
                    ", ".join(sorted(extra)),
                    "an overlay may only add managedNodeGroups",
                    "move these keys into cluster.yaml",
                )
            ],
        )
    merged = copy.deepcopy(dict(base))
    existing = {ng.get("name") for ng in merged.get("managedNodeGroups") or []}
    for ng in overlay.get("managedNodeGroups") or []:
        if ng.get("name") in existing:
            raise ClusterConfigError(
                overlay_source,
                [
                    Problem(
                        f"managedNodeGroups.{ng.get('name')}",
                        "a node group of that name is already in the base config",
                        "rename it",
                    )
                ],
            )
        merged.setdefault("managedNodeGroups", []).append(copy.deepcopy(ng))
    return merged


def render(
    base_path: Path,
    *,
    region: str | None = None,
    version: str | None = None,
    overlays: Sequence[Path] = (),
) -> dict[str, Any]:
    """The document eksctl will get: base + overlays, with region/version overrides applied."""
    raw = read_yaml(base_path)
    if not isinstance(raw, dict):
        raise ClusterConfigError(
            str(base_path), [Problem("(document)", "not a YAML mapping", "use the file in eksctl/")]
        )
    for overlay in overlays:
        data = read_yaml(overlay)
        if not isinstance(data, dict):
            raise ClusterConfigError(
                str(overlay), [Problem("(document)", "not a YAML mapping", "fix the overlay")]
            )
        raw = merge_overlay(raw, data, str(overlay))
    doc: dict[str, Any] = copy.deepcopy(raw)
    meta = doc.setdefault("metadata", {})
    if region:
        meta["region"] = region
    if version:
        meta["version"] = str(version)
    return doc


# --------------------------------------------------------------------------- project rules


def _check_gpu_group(ng: ManagedNodeGroup, where: str) -> list[Problem]:
    p: list[Problem] = []
    if ng.labels.get(NODE_POOL_LABEL) != "gpu":
        p.append(
            Problem(
                f"{where}.labels",
                f"must have {NODE_POOL_LABEL}: gpu (the chart's GPU nodeSelector)",
                "add the label",
            )
        )
    if ACCELERATOR_LABEL not in ng.labels:
        p.append(
            Problem(
                f"{where}.labels",
                f"must have {ACCELERATOR_LABEL} (the cluster autoscaler uses it to wait for the device "
                "plugin "
                "instead of scaling out twice)",
                f"add {ACCELERATOR_LABEL}: {T4_ACCELERATOR} for g4dn",
            )
        )
    if not any(t.key == GPU_TAINT_KEY and t.value == "true" and t.effect == "NoSchedule" for t in ng.taints):
        p.append(
            Problem(
                f"{where}.taints",
                f"must have {GPU_TAINT_KEY}=true:NoSchedule (keeps CPU pods off GPU nodes)",
                "add the taint",
            )
        )
    if not ng.propagateASGTags:
        p.append(
            Problem(
                f"{where}.propagateASGTags",
                "must be true: without node-template tags the autoscaler cannot scale this group up from "
                "zero",
                "set propagateASGTags: true",
            )
        )
    if ng.tags.get(CA_NODE_TEMPLATE_GPU_TAG) != str(ng.gpus_per_node):
        p.append(
            Problem(
                f"{where}.tags",
                f'needs {CA_NODE_TEMPLATE_GPU_TAG}: "{ng.gpus_per_node}" so a node template from zero '
                "advertises its GPUs",
                "add the tag",
            )
        )
    if ng.amiFamily not in GPU_AMI_FAMILIES:
        p.append(
            Problem(
                f"{where}.amiFamily",
                f"{ng.amiFamily} is not a supported GPU AMI family",
                "use AmazonLinux2023 (NVIDIA AMI, device plugin from the chart) or Bottlerocket (bundled "
                "plugin)",
            )
        )
    if ng.minSize is None or ng.maxSize is None:
        p.append(Problem(where, "minSize and maxSize must be set", "set both"))
    if len({gpus_of(t) for t in ng.instance_types}) > 1 or any(
        t not in GPU_INSTANCE_TYPES for t in ng.instance_types
    ):
        p.append(
            Problem(
                f"{where}.instanceTypes",
                f"every type must be a known GPU type with the same GPU count ({sorted(GPU_INSTANCE_TYPES)})",
                "use one GPU instance type per group",
            )
        )
    return p


def _check_sizes(ng: ManagedNodeGroup, where: str) -> list[Problem]:
    lo, hi = ng.minSize, ng.maxSize
    want = ng.desiredCapacity if ng.desiredCapacity is not None else lo
    if lo is not None and hi is not None and want is not None and not lo <= want <= hi:
        return [
            Problem(
                f"{where}.minSize/desiredCapacity/maxSize",
                f"need minSize <= desiredCapacity <= maxSize, got {lo}/{want}/{hi}",
                "fix the sizes",
            )
        ]
    return []


def _check_autoscaler_tags(ng: ManagedNodeGroup, cluster: str, where: str) -> list[Problem]:
    p = []
    if ng.tags.get(CA_ENABLED_TAG) != "true":
        p.append(
            Problem(
                f"{where}.tags", f'needs {CA_ENABLED_TAG}: "true" (autoscaler auto-discovery)', "add the tag"
            )
        )
    owner_tag = f"k8s.io/cluster-autoscaler/{cluster}"
    if owner_tag not in ng.tags:
        p.append(
            Problem(
                f"{where}.tags",
                f"needs {owner_tag}: owned (autoscaler auto-discovery for this cluster)",
                "add the tag",
            )
        )
    stray = [
        k
        for k in ng.tags
        if k.startswith("k8s.io/cluster-autoscaler/")
        and "/node-template/" not in k
        and k not in (CA_ENABLED_TAG, owner_tag)
    ]
    if stray:
        p.append(
            Problem(
                f"{where}.tags",
                f"autoscaler tag(s) for another cluster: {stray}",
                f"rename them to {owner_tag}",
            )
        )
    return p


def _check_iam(cfg: ClusterConfig) -> list[Problem]:
    p: list[Problem] = []
    for i, pia in enumerate(cfg.iam.podIdentityAssociations):
        where = f"iam.podIdentityAssociations[{i}]"
        has_policy = bool(pia.permissionPolicy or pia.permissionPolicyARNs or pia.wellKnownPolicies.any())
        if not pia.roleARN and not has_policy:
            p.append(
                Problem(
                    where,
                    "needs one of roleARN, permissionPolicy, permissionPolicyARNs, wellKnownPolicies",
                    "add a policy",
                )
            )
        if pia.roleARN and has_policy:
            p.append(
                Problem(
                    where,
                    "roleARN cannot be combined with policies (eksctl rejects it)",
                    "use either roleARN or policies",
                )
            )
        if pia.permissionPolicy:
            p.extend(_check_policy_document(pia.permissionPolicy, f"{where}.permissionPolicy"))

    def bound(sa: str, flag: str) -> bool:
        return any(
            a.namespace == versions.ADDON_NAMESPACE
            and a.serviceAccountName == sa
            and (getattr(a.wellKnownPolicies, flag) or a.roleARN or a.permissionPolicyARNs)
            for a in cfg.iam.podIdentityAssociations
        )

    if not bound(versions.CLUSTER_AUTOSCALER_SERVICE_ACCOUNT, "autoScaler"):
        p.append(
            Problem(
                "iam.podIdentityAssociations",
                f"no association for {versions.ADDON_NAMESPACE}/"
                f"{versions.CLUSTER_AUTOSCALER_SERVICE_ACCOUNT} "
                "with the autoScaler policy",
                "add it (the cluster autoscaler cannot resize node groups without it)",
            )
        )
    if not bound(versions.AWS_LB_CONTROLLER_SERVICE_ACCOUNT, "awsLoadBalancerController"):
        p.append(
            Problem(
                "iam.podIdentityAssociations",
                f"no association for {versions.ADDON_NAMESPACE}/{versions.AWS_LB_CONTROLLER_SERVICE_ACCOUNT} "
                "with the awsLoadBalancerController policy",
                "add it (Ingress needs the AWS Load Balancer Controller)",
            )
        )
    addons = {a.name for a in cfg.addons}
    if (
        cfg.iam.podIdentityAssociations
        and POD_IDENTITY_AGENT_ADDON not in addons
        and not cfg.addonsConfig.autoApplyPodIdentityAssociations
    ):
        p.append(
            Problem(
                "addons",
                f"pod identity associations need the {POD_IDENTITY_AGENT_ADDON} addon",
                f"add - name: {POD_IDENTITY_AGENT_ADDON}",
            )
        )
    return p


def _check_policy_document(doc: Mapping[str, Any], where: str) -> list[Problem]:
    if doc.get("Version") != "2012-10-17":
        return [
            Problem(
                f"{where}.Version", "IAM policy documents use Version 2012-10-17", 'set Version: "2012-10-17"'
            )
        ]
    stmts = doc.get("Statement")
    if not isinstance(stmts, list) or not stmts:
        return [Problem(f"{where}.Statement", "must be a non-empty list", "add statements")]
    p = []
    for j, s in enumerate(stmts):
        if (
            not isinstance(s, dict)
            or s.get("Effect") not in ("Allow", "Deny")
            or not s.get("Action")
            or not s.get("Resource")
        ):
            p.append(
                Problem(
                    f"{where}.Statement[{j}]",
                    "needs Effect (Allow|Deny), Action and Resource",
                    "complete the statement",
                )
            )
    return p


def _check_addons(cfg: ClusterConfig) -> list[Problem]:
    p = []
    for i, addon in enumerate(cfg.addons):
        if not addon.configurationValues:
            continue
        try:
            values = json.loads(addon.configurationValues)
        except json.JSONDecodeError as exc:
            p.append(
                Problem(
                    f"addons[{i}].configurationValues",
                    f"not valid JSON: {exc}",
                    "write it as a JSON string",
                )
            )
            continue
        tags = (
            ((values.get("controller") or {}).get("extraVolumeTags") or {})
            if isinstance(values, dict)
            else {}
        )
        if versions.CLUSTER_TAG in tags and tags[versions.CLUSTER_TAG] != cfg.metadata.name:
            p.append(
                Problem(
                    f"addons[{i}].configurationValues",
                    f"extraVolumeTags {versions.CLUSTER_TAG}={tags[versions.CLUSTER_TAG]} is not the cluster "
                    f"name {cfg.metadata.name}: the teardown audit would miss its volumes",
                    f"set it to {cfg.metadata.name}",
                )
            )
    p.extend(_check_default_storage_class(cfg))
    names = [a.name for a in cfg.addons]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        p.append(Problem("addons", f"listed twice: {dupes}", "list each addon once"))
    return p


EBS_CSI_ADDON = "aws-ebs-csi-driver"
#: EKS stopped marking gp2 as the default StorageClass in 1.30; the EBS CSI addon can create a
#: default class from v1.31 (configurationValues defaultStorageClass.enabled).
NO_DEFAULT_STORAGE_CLASS_SINCE = (1, 30)
EBS_CSI_DEFAULT_CLASS_SINCE = (1, 31)


def _minor(version: str) -> tuple[int, int] | None:
    m = re.match(r"v?(\d+)\.(\d+)", version)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _check_default_storage_class(cfg: ClusterConfig) -> list[Problem]:
    """A PersistentVolumeClaim without storageClassName binds only if some class is the default."""
    k8s = _minor(cfg.metadata.version)
    if k8s is None or k8s < NO_DEFAULT_STORAGE_CLASS_SINCE:
        return []
    where = "addons"
    addon = next((a for a in cfg.addons if a.name == EBS_CSI_ADDON), None)
    if addon is None:
        return [
            Problem(
                where,
                f"no {EBS_CSI_ADDON} addon: on EKS >= 1.30 no StorageClass is the default, so PVCs stay "
                "Pending",
                f'add - name: {EBS_CSI_ADDON} with configurationValues \'{{"defaultStorageClass":'
                '{"enabled":true}}\'',
            )
        ]
    i = cfg.addons.index(addon)
    p: list[Problem] = []
    if addon.version and addon.version != "latest":
        have = _minor(addon.version)
        if have is not None and have < EBS_CSI_DEFAULT_CLASS_SINCE:
            p.append(
                Problem(
                    f"addons[{i}].version",
                    f"{addon.version} cannot create a default StorageClass (needs v1.31 or later)",
                    "remove the version (EKS picks the default for the cluster) or pin v1.31+",
                )
            )
    try:
        values = json.loads(addon.configurationValues or "{}")
    except json.JSONDecodeError:
        return p  # reported by _check_addons
    enabled = isinstance(values, dict) and (values.get("defaultStorageClass") or {}).get("enabled") is True
    if not enabled:
        p.append(
            Problem(
                f"addons[{i}].configurationValues",
                "defaultStorageClass is not enabled: on EKS >= 1.30 no StorageClass is the default, so a PVC "
                "without storageClassName stays Pending",
                'add "defaultStorageClass":{"enabled":true} (the class\'s volumes get extraVolumeTags too)',
            )
        )
    return p


def newest_standard_version() -> str:
    """The newest Kubernetes minor in the built-in EKS calendar."""
    return max(versions.EKS_STANDARD_SUPPORT_END, key=lambda v: versions.EKS_STANDARD_SUPPORT_END[v])


def _check_version(version: str, today: dt.date) -> list[Problem]:
    end = versions.EKS_STANDARD_SUPPORT_END.get(version)
    known = ", ".join(sorted(versions.EKS_STANDARD_SUPPORT_END))
    if end is None:
        return [
            Problem(
                "metadata.version",
                f"{version} is not in this tool's EKS calendar ({known})",
                "use a version in EKS standard support or add it to gpu_inference/domain/versions.py with "
                "its dates",
            )
        ]
    if end - today < versions.STANDARD_SUPPORT_MARGIN:
        return [
            Problem(
                "metadata.version",
                f"{version} leaves EKS standard support on {end} (extended support costs $0.60 per "
                "cluster-hour)",
                f"use {newest_standard_version()}",
            )
        ]
    return []


def project_rules(
    cfg: ClusterConfig, *, today: dt.date | None = None, check_version: bool = True
) -> list[Problem]:
    """Everything this project needs from the config beyond eksctl's own schema.

    check_version=False leaves the standard-support question to deploy's preflight, which asks EKS.
    """
    p: list[Problem] = []
    name = cfg.metadata.name
    if check_version:
        p.extend(_check_version(cfg.metadata.version, today or dt.date.today()))
    if cfg.metadata.tags.get(versions.CLUSTER_TAG) != name:
        p.append(
            Problem(
                f"metadata.tags.{versions.CLUSTER_TAG}",
                f"must equal metadata.name ({name}); the teardown audit finds resources by it",
                f"set {versions.CLUSTER_TAG}: {name}",
            )
        )
    if cfg.nodeGroups:
        p.append(
            Problem("nodeGroups", "self-managed node groups are not supported here", "use managedNodeGroups")
        )
    system = cfg.node_group(SYSTEM_NODE_GROUP)
    gpu = cfg.node_group(GPU_NODE_GROUP)
    if system is None:
        p.append(
            Problem(
                "managedNodeGroups",
                f"no node group named {SYSTEM_NODE_GROUP!r}",
                "add the CPU system node group",
            )
        )
    else:
        if system.labels.get(NODE_POOL_LABEL) != "system":
            p.append(
                Problem(
                    f"managedNodeGroups.{SYSTEM_NODE_GROUP}.labels",
                    f"must have {NODE_POOL_LABEL}: system",
                    "add the label",
                )
            )
        if system.gpus_per_node:
            p.append(
                Problem(
                    f"managedNodeGroups.{SYSTEM_NODE_GROUP}.instanceType",
                    "the system group must be CPU-only",
                    "use a CPU type",
                )
            )
        if (system.minSize or 0) < 1:
            p.append(
                Problem(
                    f"managedNodeGroups.{SYSTEM_NODE_GROUP}.minSize",
                    "must be >= 1 (the autoscaler itself runs there)",
                    "set minSize: 1",
                )
            )
    if gpu is None:
        p.append(
            Problem("managedNodeGroups", f"no node group named {GPU_NODE_GROUP!r}", "add the GPU node group")
        )
    elif gpu.spot:
        p.append(
            Problem(
                f"managedNodeGroups.{GPU_NODE_GROUP}.spot",
                "the base GPU group must be on-demand",
                "use the gpu-spot overlay for spot",
            )
        )
    for ng in cfg.managedNodeGroups:
        where = f"managedNodeGroups.{ng.name}"
        if not ng.instance_types:
            p.append(
                Problem(f"{where}.instanceType", "no instance type", "set instanceType (or instanceTypes)")
            )
        if ng.instanceType and ng.instanceTypes:
            p.append(Problem(where, "instanceType and instanceTypes are mutually exclusive", "keep one"))
        p.extend(_check_sizes(ng, where))
        p.extend(_check_autoscaler_tags(ng, name, where))
        if ng.gpus_per_node:
            p.extend(_check_gpu_group(ng, where))
        elif any(t.key == GPU_TAINT_KEY for t in ng.taints):
            p.append(Problem(f"{where}.taints", "a CPU node group carries the GPU taint", "remove it"))
    families = {ng.amiFamily for ng in cfg.gpu_node_groups}
    if len(families) > 1:
        p.append(
            Problem(
                "managedNodeGroups[*].amiFamily",
                f"GPU node groups mix AMI families {sorted(families)}: one would get two device plugins "
                "or none",
                "use one AMI family for every GPU group",
            )
        )
    p.extend(_check_iam(cfg))
    p.extend(_check_addons(cfg))
    return p


def device_plugin_count(
    cfg: ClusterConfig, *, eksctl_installs_plugin: bool, chart_device_plugins: int
) -> int:
    """How many NVIDIA device plugins would serve the GPU nodes: AMI + eksctl + chart."""
    families = {ng.amiFamily for ng in cfg.gpu_node_groups}
    bundled = 1 if families & AMI_FAMILIES_WITH_BUNDLED_DEVICE_PLUGIN else 0
    # eksctl skips its plugin when the cluster only has Bottlerocket GPU groups (eksctl GPU docs).
    from_eksctl = (
        1 if eksctl_installs_plugin and not families <= AMI_FAMILIES_WITH_BUNDLED_DEVICE_PLUGIN else 0
    )
    return bundled + from_eksctl + chart_device_plugins


def load_and_check(
    base_path: Path,
    *,
    region: str | None = None,
    version: str | None = None,
    overlays: Sequence[Path] = (),
    today: dt.date | None = None,
    check_version: bool = True,
) -> tuple[dict[str, Any], ClusterConfig]:
    """Render, validate structurally, apply the project rules. Raises ClusterConfigError."""
    raw = render(base_path, region=region, version=version, overlays=overlays)
    source = str(base_path) + "".join(f" + {o}" for o in overlays)
    cfg = parse_cluster_config(raw, source)
    problems = project_rules(cfg, today=today, check_version=check_version)
    if problems:
        raise ClusterConfigError(source, problems)
    return raw, cfg


def shape_rules(cfg: ClusterConfig) -> list[Problem]:
    """What every reader of the node groups needs (the local cluster, the cost estimate): each group
    has one known instance type and consistent sizes."""
    p: list[Problem] = []
    if not cfg.managedNodeGroups:
        p.append(Problem("managedNodeGroups", "no node groups", "define a system and a GPU node group"))
    for ng in cfg.managedNodeGroups:
        where = f"managedNodeGroups.{ng.name}"
        if not ng.instance_types:
            p.append(
                Problem(f"{where}.instanceType", "no instance type", "set instanceType (or instanceTypes)")
            )
            continue
        unknown = [t for t in ng.instance_types if t not in INSTANCE_SHAPES]
        if unknown:
            p.append(
                Problem(
                    f"{where}.instanceType",
                    f"unknown instance type(s) {unknown}",
                    f"use one of {sorted(INSTANCE_SHAPES)} or add it to "
                    "gpu_inference/domain/instance_types.py",
                )
            )
        if not ng.min_nodes <= ng.desired_nodes <= ng.max_nodes:
            p.append(
                Problem(
                    f"{where}.minSize/desiredCapacity/maxSize",
                    "need minSize <= desiredCapacity <= maxSize, got "
                    f"{ng.min_nodes}/{ng.desired_nodes}/{ng.max_nodes}",
                    "adjust the sizes of this node group",
                )
            )
    return p


def load_cluster_config(
    path: Path,
    *,
    region: str | None = None,
    version: str | None = None,
    overlays: Sequence[Path] = (),
) -> ClusterConfig:
    """The one way to read eksctl/cluster.yaml for its node groups: eksctl's schema plus `shape_rules`.

    Raises ClusterConfigError naming each bad setting and its fix (deploy adds `project_rules`).
    """
    raw = render(path, region=region, version=version, overlays=overlays)
    source = str(path) + "".join(f" + {o}" for o in overlays)
    cfg = parse_cluster_config(raw, source)
    problems = shape_rules(cfg)
    if problems:
        raise ClusterConfigError(source, problems)
    return cfg


def write_rendered(raw: Mapping[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Rendered by gpu-inference deploy from eksctl/cluster.yaml; do not edit.\n"
    path.write_text(header + yaml.safe_dump(dict(raw), sort_keys=False))
    return path
