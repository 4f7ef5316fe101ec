"""The GPU simulator: the data plane of the local cluster (simulated GPUs, labelled simulated).

Run it with `python -m gpu_inference.gpusim --help`; see docs/gpu-simulator.md. Profiles:
``classic`` (a server without batching) and ``llm`` (the chart's vLLM v0.11 server: continuous
batching with chunked prefill, a block KV cache and recompute preemption). Every parameter and
its source lives in ``data/profiles.yaml``; the engines are pure and can be driven on a virtual
clock (`gpu_inference.gpusim.virtual.run_virtual`).
"""
