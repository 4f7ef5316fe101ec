"""Helm releases deploy installs next to the chart: the Cluster Autoscaler (always) and the AWS
Load Balancer Controller (when the chart renders an Ingress). Pinned charts, values built here.

The autoscaler settings follow the upstream defaults the design relies on (scan 10 s, a node is
removed after 10 min unneeded and not within 10 min of a scale-up, GPU utilization threshold
0.5, 15 min provision timeout), run on the system node group, discover the node groups by the
ASG tags eksctl sets, and prefer the spot GPU group when it exists.
"""

from __future__ import annotations

from typing import Any

from gpu_inference.adapters.helm import HelmRelease
from gpu_inference.domain import versions
from gpu_inference.domain.constants import NODE_POOL_LABEL
from gpu_inference.domain.eksctl_config import SYSTEM_NODE_GROUP, ClusterConfig
from gpu_inference.errors import ConfigError

#: Priority expander: the spot GPU group (ASG eks-gpu-spot-*) first, anything else after.
SPOT_FIRST_PRIORITIES = "50:\n  - .*-gpu-spot-.*\n10:\n  - .*\n"

#: The pinned add-on charts by release name: (chart, repository, chart version).
PINNED_CHARTS: dict[str, tuple[str, str, str]] = {
    versions.CLUSTER_AUTOSCALER_RELEASE: (
        versions.CLUSTER_AUTOSCALER_CHART,
        versions.CLUSTER_AUTOSCALER_REPO,
        versions.CLUSTER_AUTOSCALER_CHART_VERSION,
    ),
    versions.AWS_LB_CONTROLLER_RELEASE: (
        versions.AWS_LB_CONTROLLER_CHART,
        versions.AWS_LB_CONTROLLER_REPO,
        versions.AWS_LB_CONTROLLER_CHART_VERSION,
    ),
}


def pinned(release: str, values: dict[str, Any]) -> HelmRelease:
    """The release of a pinned add-on chart (into the add-on namespace) with these values."""
    chart, repo, version = PINNED_CHARTS[release]
    return HelmRelease(release, chart, repo, version, versions.ADDON_NAMESPACE, values)


def autoscaler_image_tag(k8s_version: str) -> str:
    try:
        return versions.CLUSTER_AUTOSCALER_IMAGE_TAGS[k8s_version]
    except KeyError:
        raise ConfigError(
            "metadata.version",
            f"no pinned Cluster Autoscaler image for Kubernetes {k8s_version} "
            f"(pinned: {sorted(versions.CLUSTER_AUTOSCALER_IMAGE_TAGS)})",
            "use a pinned version or add its image tag to gpu_inference/domain/versions.py",
        ) from None


def cluster_autoscaler(cfg: ClusterConfig) -> HelmRelease:
    values: dict[str, Any] = {
        "cloudProvider": "aws",
        "awsRegion": cfg.metadata.region,
        "autoDiscovery": {"clusterName": cfg.metadata.name},
        "image": {
            "repository": versions.CLUSTER_AUTOSCALER_IMAGE,
            "tag": autoscaler_image_tag(cfg.metadata.version),
        },
        "rbac": {"serviceAccount": {"create": True, "name": versions.CLUSTER_AUTOSCALER_SERVICE_ACCOUNT}},
        "nodeSelector": {NODE_POOL_LABEL: SYSTEM_NODE_GROUP},
        "extraArgs": {
            "expander": "priority,least-waste",
            "scan-interval": "10s",
            "scale-down-unneeded-time": "10m",
            "scale-down-delay-after-add": "10m",
            "scale-down-utilization-threshold": "0.5",
            "scale-down-gpu-utilization-threshold": "0.5",
            "max-node-provision-time": "15m",
            "skip-nodes-with-local-storage": "true",
            "balance-similar-node-groups": "false",
        },
        "expanderPriorities": SPOT_FIRST_PRIORITIES,
        "resources": {"requests": {"cpu": "100m", "memory": "300Mi"}, "limits": {"memory": "600Mi"}},
        "podDisruptionBudget": {"maxUnavailable": 1},
    }
    return pinned(versions.CLUSTER_AUTOSCALER_RELEASE, values)


def aws_load_balancer_controller(cfg: ClusterConfig, vpc_id: str) -> HelmRelease:
    values: dict[str, Any] = {
        "clusterName": cfg.metadata.name,
        "region": cfg.metadata.region,
        # Set explicitly: with IMDSv2 hop limit 1 the controller cannot look them up itself.
        "vpcId": vpc_id,
        "serviceAccount": {"create": True, "name": versions.AWS_LB_CONTROLLER_SERVICE_ACCOUNT},
        "nodeSelector": {NODE_POOL_LABEL: SYSTEM_NODE_GROUP},
        "replicaCount": 1,
        # Every load balancer, target group and security group it creates is found by the audit.
        "defaultTags": {versions.CLUSTER_TAG: cfg.metadata.name},
    }
    return pinned(versions.AWS_LB_CONTROLLER_RELEASE, values)
