"""The cluster's shape as the local cluster needs it, built from the one eksctl config model.

eksctl/cluster.yaml is read by `gpu_inference.domain.eksctl_config` only (strict, eksctl's schema);
this module turns its node groups into the small frozen view the simulated node groups use.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from gpu_inference.domain import eksctl_config
from gpu_inference.domain.constants import ACCELERATOR_LABEL, GPU_RESOURCE, NODE_POOL_LABEL
from gpu_inference.domain.instance_types import INSTANCE_SHAPES, InstanceShape
from gpu_inference.domain.models import FrozenModel
from gpu_inference.errors import ConfigError

__all__ = [
    "ACCELERATOR_LABEL",
    "GPU_RESOURCE",
    "INSTANCE_SHAPES",
    "NODE_POOL_LABEL",
    "ClusterSpec",
    "InstanceShape",
    "NodeGroupSpec",
    "Taint",
    "load_cluster_spec",
    "spec_from_config",
]


class Taint(FrozenModel):
    """A node taint (key, value, effect)."""

    key: str
    value: str = ""
    effect: str


class NodeGroupSpec(FrozenModel):
    """One managed node group: instance type, sizes, labels, taints, capacity type."""

    name: str
    instance_types: tuple[str, ...]
    min_size: int = Field(ge=0)
    max_size: int = Field(ge=0)
    desired_capacity: int = Field(ge=0)
    labels: dict[str, str] = Field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    spot: bool = False
    volume_size_gib: int = 80
    private_networking: bool = False

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
                f"use one of {sorted(INSTANCE_SHAPES)} or add it to gpu_inference/domain/instance_types.py",
            ) from None

    @property
    def gpus_per_node(self) -> int:
        return self.shape.gpus

    @property
    def is_gpu(self) -> bool:
        return self.gpus_per_node > 0


class ClusterSpec(FrozenModel):
    """Name, region, version and node groups of the cluster."""

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


def spec_from_config(cfg: eksctl_config.ClusterConfig) -> ClusterSpec:
    """The node-group view of a validated ClusterConfig."""
    return ClusterSpec(
        name=cfg.metadata.name,
        region=cfg.metadata.region,
        version=cfg.metadata.version,
        node_groups=tuple(
            NodeGroupSpec(
                name=ng.name,
                instance_types=tuple(ng.instance_types),
                min_size=ng.min_nodes,
                max_size=ng.max_nodes,
                desired_capacity=ng.desired_nodes,
                labels=dict(ng.labels),
                taints=tuple(Taint(key=t.key, value=t.value, effect=t.effect) for t in ng.taints),
                spot=ng.spot,
                volume_size_gib=ng.volumeSize,
                private_networking=ng.privateNetworking,
            )
            for ng in cfg.managedNodeGroups
        ),
    )


def load_cluster_spec(path: Path) -> ClusterSpec:
    """Read an eksctl ClusterConfig through the strict model. Raises ClusterConfigError (a
    GpuInferenceError) naming the setting and the fix on bad input."""
    return spec_from_config(eksctl_config.load_cluster_config(path))
