"""Names shared by the chart, the EKS tooling, the local cluster and the cost figures, defined once.

Each value is a Kubernetes or NVIDIA name other software reads, so it cannot be changed here alone.
"""

from __future__ import annotations

#: The extended resource the NVIDIA device plugin advertises (and pods put in their limits).
GPU_RESOURCE = "nvidia.com/gpu"
#: Taint key on GPU nodes (eksctl/cluster.yaml); the same name as the resource by convention.
GPU_TAINT_KEY = GPU_RESOURCE
#: Node label the Cluster Autoscaler and EKS use for the GPU model (eksctl/cluster.yaml sets it).
ACCELERATOR_LABEL = "k8s.amazonaws.com/accelerator"
#: The accelerator label's value for the NVIDIA T4 of g4dn instances.
T4_ACCELERATOR = "nvidia-tesla-t4"
#: Well-known node label with the EC2 instance type (set by the kubelet's cloud provider).
INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"
#: Its deprecated predecessor, still read on older nodes.
INSTANCE_TYPE_LABEL_BETA = "beta.kubernetes.io/instance-type"
INSTANCE_TYPE_LABELS = (INSTANCE_TYPE_LABEL, INSTANCE_TYPE_LABEL_BETA)
#: Label every node group carries so the chart can select it (eksctl/cluster.yaml).
NODE_POOL_LABEL = "gpu-inference.io/node-pool"
#: DCGM exporter's GPU utilization gauge (percent, 0-100).
GPU_UTIL_METRIC = "DCGM_FI_DEV_GPU_UTIL"
#: Frame buffer of an NVIDIA T4 as the driver reports it (MiB; nvidia-smi on g4dn shows 15360 MiB).
T4_FRAMEBUFFER_MIB = 15360

# Evidence that GPUs are simulated: the GPU simulator announces itself in all three places, and
# reports are labelled SIMULATED whenever any of them is seen (never from a flag alone).
#: Response header on every answer of the simulated inference API.
SIMULATED_HEADER = "X-GPU-Simulated"
#: Gauge on every simulated /metrics endpoint (value 1).
SIMULATED_METRIC = "gpu_inference_simulated"
#: Label on the local cluster's simulated nodes.
SIMULATED_NODE_LABEL = "gpu-inference.io/simulated"
