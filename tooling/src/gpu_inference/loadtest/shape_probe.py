"""`python -m gpu_inference.loadtest.shape_probe`: preview shapes (JSON request on stdin, results on stdout).

Runs in its own process because importing locust monkey-patches the interpreter.
"""

from __future__ import annotations

import sys

from gpu_inference.loadtest.shapes import _main

if __name__ == "__main__":
    sys.exit(_main())
