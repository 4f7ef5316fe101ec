"""Entry point of the `gpu-inference` command."""

from __future__ import annotations

import typer

from gpu_inference.cli import logging_setup
from gpu_inference.cli.common import ErrorBoundary

#: Exit status: 0 done, 1 a verdict failed (verify-scaleup, demo, destroy's audit), 2 bad input or a
#: failure the message explains, 3 an unexpected crash (traceback in the log file it names).
app = typer.Typer(
    name="gpu-inference",
    cls=ErrorBoundary,
    help="Deploy a GPU inference service that scales on GPU utilization, prove it scales, and cost it.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    logging_setup.configure(verbose=verbose)


def _register() -> None:
    """Each command lives in its own module; each module exposes `register(app)`."""
    import importlib
    import pkgutil

    import gpu_inference.cli as pkg

    for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if mod.name in {"main", "logging_setup", "common", "options"}:
            continue
        module = importlib.import_module(f"gpu_inference.cli.{mod.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register()


if __name__ == "__main__":
    app()
