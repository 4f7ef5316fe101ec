"""Helpers shared by the command modules: turning typed errors into clean exits."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import typer

from gpu_inference.errors import GpuInferenceError

log = logging.getLogger(__name__)
T = TypeVar("T")


@contextmanager
def user_errors() -> Iterator[None]:
    """Print a GpuInferenceError as one clear message and exit 2 (no traceback)."""
    try:
        yield
    except GpuInferenceError as exc:
        log.error("%s", exc)
        raise typer.Exit(code=2) from exc


def run_cli(fn: Callable[[], T]) -> T:
    with user_errors():
        return fn()
