"""Shared pytest setup: the pinned tools on PATH, and the `live` marker gated behind --live."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--live",
        action="store_true",
        default=False,
        help="also run `live` tests against a real AWS account / real GPUs (costs money)",
    )


def pytest_configure(config: pytest.Config) -> None:
    # `make` exports these; a bare `pytest` finds the same pinned tools in the cache.
    if not os.environ.get("GPU_INFERENCE_TOOLS_BIN"):
        bin_dir = subprocess.run(
            [str(ROOT / "hack" / "build-tools.sh"), "--print-bin"], capture_output=True, text=True, check=True
        ).stdout.strip()
        os.environ["GPU_INFERENCE_TOOLS_BIN"] = bin_dir
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--live"):
        return
    skip = pytest.mark.skip(reason="live test: needs a real AWS account or GPU; run with --live")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)
