"""The cluster's shape, read from eksctl/cluster.yaml: the one source for node groups.

The EKS deployment, the local cluster's simulated node groups and the cost estimate all
read their node groups (instance type, min/max, labels, taints, spot) from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from gpu_inference.errors import ConfigError


class InstanceShape(BaseModel):
    """What one EC2 instance type offers to Kubernetes (AWS instance type specs, EKS max-pods table)."""

    model_config = ConfigDict(frozen=True)
    vcpu: int
    memory_gib: int
    gpus: int = 0
    gpu_model: str = ""
    gpu_memory_mib: int = 0
    max_pods: int = 29


#: Instance types this project can model (local cluster nodes, cost estimates).
INSTANCE_SHAPES: dict[str, InstanceShape] = {
    "g4dn.xlarge": InstanceShape(vcpu=4, memory_gib=16, gpus=1, gpu_model="Tesla T4", gpu_memory_mib=15360),
    "g4dn.2xlarge": InstanceShape(vcpu=8, memory_gib=32, gpus=1, gpu_model="Tesla T4", gpu_memory_mib=15360),
    "g5.xlarge": InstanceShape(vcpu=4, memory_gib=16, gpus=1, gpu_model="NVIDIA A10G", gpu_memory_mib=23028),
    "g6.xlarge": InstanceShape(vcpu=4, memory_gib=16, gpus=1, gpu_model="NVIDIA L4", gpu_memory_mib=23034),
    "m6i.large": InstanceShape(vcpu=2, memory_gib=8),
    "m6i.xlarge": InstanceShape(vcpu=4, memory_gib=16, max_pods=58),
    "m5.large": InstanceShape(vcpu=2, memory_gib=8),
    "t3.large": InstanceShape(vcpu=2, memory_gib=8, max_pods=35),
}

#: Label every node group carries so the chart can select it (set in eksctl/cluster.yaml).
NODE_POOL_LABEL = "gpu-inference.io/node-pool"
ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"
GPU_RESOURCE = "nvidia.com/gpu"


class Taint(BaseModel):
    model_config = ConfigDict(frozen=True)
    key: str
    value: str = ""
    effect: str


class NodeGroupSpec(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    instance_types: tuple[str, ...]
    min_size: int = Field(ge=0)
    max_size: int = Field(ge=0)
    desired_capacity: int = Field(ge=0)
    labels: dict[str, str] = Field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    spot: bool = False
    volume_size_gib: int = 80

    @property
    def instance_type(self) -> str:
        return self.instance_types[0]

    @property
    def shape(self) -> InstanceShape:
        try:
            return INSTANCE_SHAPES[self.instance_type]
        except KeyError:
            raise ConfigError(
                f"managedNodeGroups[{self.name}].instanceType",
                f"unknown instance type {self.instance_type!r}",
                f"use one of {sorted(INSTANCE_SHAPES)} or add it to cluster_spec.INSTANCE_SHAPES",
            ) from None

    @property
    def gpus_per_node(self) -> int:
        return self.shape.gpus

    @property
    def is_gpu(self) -> bool:
        return self.gpus_per_node > 0


class ClusterSpec(BaseModel):
    model_config = ConfigDict(frozen=True)
    name: str
    region: str
    version: str
    node_groups: tuple[NodeGroupSpec, ...]

    @property
    def gpu_node_groups(self) -> tuple[NodeGroupSpec, ...]:
        return tuple(ng for ng in self.node_groups if ng.is_gpu)

    @property
    def system_node_groups(self) -> tuple[NodeGroupSpec, ...]:
        return tuple(ng for ng in self.node_groups if not ng.is_gpu)

    def node_group(self, name: str) -> NodeGroupSpec:
        for ng in self.node_groups:
            if ng.name == name:
                return ng
        raise KeyError(name)


def _node_group(raw: dict[str, Any], where: str) -> NodeGroupSpec:
    types = raw.get("instanceTypes") or ([raw["instanceType"]] if raw.get("instanceType") else [])
    if not types:
        raise ConfigError(
            f"{where}.instanceType", "no instance type", "set instanceType (or instanceTypes for spot)"
        )
    min_size = int(raw.get("minSize", 0))
    max_size = int(raw.get("maxSize", min_size))
    desired = int(raw.get("desiredCapacity", min_size))
    if not min_size <= desired <= max_size:
        raise ConfigError(
            f"{where}.minSize/desiredCapacity/maxSize",
            f"need minSize <= desiredCapacity <= maxSize, got {min_size}/{desired}/{max_size}",
            "adjust the sizes of this node group",
        )
    taints = tuple(Taint(**t) for t in raw.get("taints") or [])
    return NodeGroupSpec(
        name=raw["name"],
        instance_types=tuple(types),
        min_size=min_size,
        max_size=max_size,
        desired_capacity=desired,
        labels={str(k): str(v) for k, v in (raw.get("labels") or {}).items()},
        taints=taints,
        spot=bool(raw.get("spot", False)),
        volume_size_gib=int(raw.get("volumeSize", 80)),
    )


def load_cluster_spec(path: Path) -> ClusterSpec:
    """Read an eksctl ClusterConfig. Raises ConfigError naming the field on bad input."""
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(str(path), "file not found", "pass --config eksctl/cluster.yaml") from exc
    if not isinstance(raw, dict) or raw.get("kind") != "ClusterConfig":
        raise ConfigError(str(path), "not an eksctl ClusterConfig", "use the file in eksctl/")
    meta = raw.get("metadata") or {}
    groups = [
        _node_group(ng, f"managedNodeGroups[{i}]") for i, ng in enumerate(raw.get("managedNodeGroups") or [])
    ]
    if not groups:
        raise ConfigError("managedNodeGroups", "no node groups", "define a system and a GPU node group")
    return ClusterSpec(
        name=str(meta.get("name", "")),
        region=str(meta.get("region", "")),
        version=str(meta.get("version", "")),
        node_groups=tuple(groups),
    )
