"""The engine of a profile (`make_engine`): `model.Engine` for classic, `batching.BatchEngine` for llm.

`make_engine` lives in `gpu_inference.gpusim.model`; this module names it for callers that
want the engines without the DCGM device side.
"""

from __future__ import annotations

from gpu_inference.gpusim.batching import BatchEngine
from gpu_inference.gpusim.core import Finished, SimEngine
from gpu_inference.gpusim.model import Engine, make_engine

__all__ = ["BatchEngine", "Engine", "Finished", "SimEngine", "make_engine"]
