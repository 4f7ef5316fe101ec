"""Logging for the CLI only: rich output for people on a terminal, plain lines otherwise."""

from __future__ import annotations

import logging
import sys

from rich.console import Console
from rich.logging import RichHandler


def is_interactive() -> bool:
    return sys.stderr.isatty()


def configure(verbose: bool = False, log_file: str | None = None) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    root = logging.getLogger()
    root.handlers.clear()
    root.setLevel(logging.DEBUG if log_file else level)
    handler: logging.Handler
    if is_interactive():
        handler = RichHandler(console=Console(stderr=True), show_path=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(level)
    root.addHandler(handler)
    if log_file:
        fh = logging.FileHandler(log_file)
        fh.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        fh.setLevel(logging.DEBUG)
        root.addHandler(fh)
    for noisy in ("urllib3", "kubernetes", "botocore", "asyncio", "matplotlib", "pyhelm3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
