"""gpu-inference: a GPU inference service on Kubernetes that scales on what the GPU reports."""

__version__ = "0.1.0"
