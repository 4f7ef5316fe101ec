"""Simulated EKS nodes: Node objects built from the node groups in eksctl/cluster.yaml.

The labels and taints are the ones EKS puts on managed node group nodes plus the ones
eksctl/cluster.yaml adds, so the chart's selectors and tolerations are exercised as on EKS.
"""

from __future__ import annotations

import uuid
from typing import Any

from gpu_inference.domain.cluster_spec import GPU_RESOURCE, NodeGroupSpec

#: kwok manages nodes carrying this annotation (kwokctl's default selector).
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
NODE_GROUP_LABEL = "eks.amazonaws.com/nodegroup"
CAPACITY_TYPE_LABEL = "eks.amazonaws.com/capacityType"
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
ZONE_LABEL = "topology.kubernetes.io/zone"
REGION_LABEL = "topology.kubernetes.io/region"
SIMULATED_LABEL = "gpu-inference.io/simulated"

# EKS reserves CPU and memory for the kubelet and the system on every node.
_RESERVED_CPU_MILLI = 80
_RESERVED_MEMORY_MIB = 700


def node_name(group: NodeGroupSpec) -> str:
    """A name never used before, like an EC2 instance's: a replacement is a new node."""
    return f"{group.name}-{uuid.uuid4().hex[:8]}"


def node_manifest(group: NodeGroupSpec, index: int, region: str, name: str | None = None) -> dict[str, Any]:
    """A Node for the `index`-th instance of `group` (the index picks its zone), as EKS would
    register it."""
    shape = group.shape
    name = name or node_name(group)
    zones = ("a", "b", "c")
    capacity = {
        "cpu": str(shape.vcpu),
        "memory": f"{shape.memory_gib}Gi",
        "pods": str(shape.max_pods),
        "ephemeral-storage": f"{group.volume_size_gib}Gi",
    }
    allocatable = {
        "cpu": f"{shape.vcpu * 1000 - _RESERVED_CPU_MILLI}m",
        "memory": f"{shape.memory_gib * 1024 - _RESERVED_MEMORY_MIB}Mi",
        "pods": str(shape.max_pods),
        "ephemeral-storage": f"{group.volume_size_gib - 2}Gi",
    }
    if shape.gpus:
        capacity[GPU_RESOURCE] = str(shape.gpus)
        allocatable[GPU_RESOURCE] = str(shape.gpus)
    labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        INSTANCE_TYPE_LABEL: group.instance_type,
        ZONE_LABEL: f"{region}{zones[index % len(zones)]}",
        REGION_LABEL: region,
        NODE_GROUP_LABEL: group.name,
        CAPACITY_TYPE_LABEL: "SPOT" if group.spot else "ON_DEMAND",
        SIMULATED_LABEL: "true",
        "type": "kwok",
        **group.labels,
    }
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {KWOK_NODE_ANNOTATION: "fake", "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {
            "providerID": f"kwok://{region}/{name}",
            "taints": [
                {"key": t.key, "value": t.value, "effect": t.effect}
                if t.value
                else {"key": t.key, "effect": t.effect}
                for t in group.taints
            ],
        },
        "status": {"capacity": capacity, "allocatable": allocatable},
    }
