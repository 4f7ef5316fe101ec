"""The GPU simulator: the data plane of the local cluster (simulated GPUs, labelled simulated).

Run it with `python -m gpu_inference.gpusim --help`; see docs/gpu-simulator.md.
"""
