"""Pinned versions and dated facts the AWS tooling relies on, each with where it comes from.

Change a pin here and the tests that assert command lines and values follow.
"""

from __future__ import annotations

import datetime as dt

#: EKS end of standard support per Kubernetes minor (after it, extended support costs
#: $0.60 per cluster-hour). 1.33-1.35 from the EKS release calendar (docs.aws.amazon.com,
#: endoflife.date/amazon-eks); 1.36 reached EKS on 2026-06-02 and gets the usual 14 months.
#: `gpu-inference deploy` asks the EKS API (DescribeClusterVersions) first and falls back to this.
EKS_STANDARD_SUPPORT_END: dict[str, dt.date] = {
    "1.33": dt.date(2026, 7, 29),
    "1.34": dt.date(2026, 12, 2),
    "1.35": dt.date(2027, 3, 27),
    "1.36": dt.date(2027, 8, 2),
}
#: A version whose standard support ends sooner than this is refused (it would turn into an
#: extended-support cluster while it runs).
STANDARD_SUPPORT_MARGIN = dt.timedelta(days=30)

#: Cluster Autoscaler: the chart from https://kubernetes.github.io/autoscaler, pinned, and the
#: image pinned to the cluster's Kubernetes minor (the autoscaler embeds the scheduler of that
#: minor; kubernetes/autoscaler README: use the CA minor that matches the control plane).
CLUSTER_AUTOSCALER_REPO = "https://kubernetes.github.io/autoscaler"
CLUSTER_AUTOSCALER_CHART = "cluster-autoscaler"
CLUSTER_AUTOSCALER_CHART_VERSION = "9.56.0"
CLUSTER_AUTOSCALER_IMAGE = "registry.k8s.io/autoscaling/cluster-autoscaler"
CLUSTER_AUTOSCALER_IMAGE_TAGS: dict[str, str] = {
    "1.34": "v1.34.0",
    "1.35": "v1.35.0",
    "1.36": "v1.36.1",
}

#: AWS Load Balancer Controller: chart from https://aws.github.io/eks-charts (chart 3.x follows
#: the controller version; v3.5.0 is used with Kubernetes 1.36 downstream).
AWS_LB_CONTROLLER_REPO = "https://aws.github.io/eks-charts"
AWS_LB_CONTROLLER_CHART = "aws-load-balancer-controller"
AWS_LB_CONTROLLER_CHART_VERSION = "3.5.0"

#: Release names and the service accounts the pod identity associations in eksctl/cluster.yaml
#: bind to (they must match).
ADDON_NAMESPACE = "kube-system"
CLUSTER_AUTOSCALER_RELEASE = "cluster-autoscaler"
CLUSTER_AUTOSCALER_SERVICE_ACCOUNT = "cluster-autoscaler"
AWS_LB_CONTROLLER_RELEASE = "aws-load-balancer-controller"
AWS_LB_CONTROLLER_SERVICE_ACCOUNT = "aws-load-balancer-controller"

#: Lowest tool versions deploy accepts. eksctl 0.204.0 is the first that installs the NVIDIA
#: device plugin on AL2023 GPU node groups by itself (so the --install-nvidia-plugin=false we
#: pass means something) and it reads every field eksctl/cluster.yaml uses. helm 3.x is what
#: pyhelm3 drives and what the project pins (hack/tools/versions.env). kubectl must be within
#: one minor of the cluster (Kubernetes version skew policy).
MIN_EKSCTL_VERSION = (0, 204, 0)
MIN_HELM_VERSION = (3, 14, 0)
MAX_HELM_MAJOR = 3
KUBECTL_MAX_MINOR_SKEW = 1

#: Service Quotas codes, in vCPUs per region.
QUOTA_ON_DEMAND_G_VT = "L-DB2E81BA"  # Running On-Demand G and VT instances
QUOTA_SPOT_G_VT = "L-3819A6DF"  # All G and VT Spot Instance Requests
#: Network quotas a new cluster draws on (eksctl makes a VPC, and per NAT gateway an Elastic IP).
#: (service code, quota code, what it counts)
QUOTA_VPCS = ("vpc", "L-F678F1CE", "VPCs per Region")
QUOTA_NAT_PER_AZ = ("vpc", "L-FE5A380F", "NAT gateways per Availability Zone")
QUOTA_EIPS = ("ec2", "L-0263D0A3", "EC2-VPC Elastic IPs")

#: The tag every resource of the stack carries (eksctl metadata.tags, EBS CSI extraVolumeTags,
#: AWS Load Balancer Controller defaultTags). The audit searches by it and by the tags AWS and
#: the controllers set themselves.
CLUSTER_TAG = "gpu-inference.io/cluster"
