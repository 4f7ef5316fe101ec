"""What the EC2 instance types this project models offer to Kubernetes.

Sources: AWS instance type specifications (vCPU, memory, GPU model and memory) and the EKS
max-pods table (eni-max-pods.txt) for the VPC CNI without prefix delegation.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from gpu_inference.domain.constants import T4_FRAMEBUFFER_MIB


class InstanceShape(BaseModel):
    """What one EC2 instance type offers to Kubernetes."""

    model_config = ConfigDict(frozen=True)
    vcpu: int
    memory_gib: int
    gpus: int = 0
    gpu_model: str = ""
    gpu_memory_mib: int = 0
    max_pods: int = 29


#: Instance types this project can model (local cluster nodes, cost estimates, config checks).
INSTANCE_SHAPES: dict[str, InstanceShape] = {
    "g4dn.xlarge": InstanceShape(
        vcpu=4, memory_gib=16, gpus=1, gpu_model="Tesla T4", gpu_memory_mib=T4_FRAMEBUFFER_MIB
    ),
    "g4dn.2xlarge": InstanceShape(
        vcpu=8, memory_gib=32, gpus=1, gpu_model="Tesla T4", gpu_memory_mib=T4_FRAMEBUFFER_MIB
    ),
    "g5.xlarge": InstanceShape(vcpu=4, memory_gib=16, gpus=1, gpu_model="NVIDIA A10G", gpu_memory_mib=23028),
    "g6.xlarge": InstanceShape(vcpu=4, memory_gib=16, gpus=1, gpu_model="NVIDIA L4", gpu_memory_mib=23034),
    "m6i.large": InstanceShape(vcpu=2, memory_gib=8),
    "m6i.xlarge": InstanceShape(vcpu=4, memory_gib=16, max_pods=58),
    "m5.large": InstanceShape(vcpu=2, memory_gib=8),
    "t3.large": InstanceShape(vcpu=2, memory_gib=8, max_pods=35),
}


def gpus_of(instance_type: str) -> int:
    """GPUs of an instance type this project models (0 for CPU or unknown types)."""
    shape = INSTANCE_SHAPES.get(instance_type)
    return shape.gpus if shape else 0


GPU_INSTANCE_TYPES = frozenset(t for t, s in INSTANCE_SHAPES.items() if s.gpus > 0)
