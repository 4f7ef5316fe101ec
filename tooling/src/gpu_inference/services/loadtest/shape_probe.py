"""`python -m gpu_inference.services.loadtest.shape_probe`: preview shapes (JSON in on stdin, JSON out).

Runs in its own process because importing locust monkey-patches the interpreter.
"""

from __future__ import annotations

import sys

from gpu_inference.services.loadtest.shapes import _main

if __name__ == "__main__":
    sys.exit(_main())
