"""The CLI's error boundary: every failure ends as one line on stderr and a documented exit status.

    Error: <what> (<setting>): <fix>

Exit status 2: bad input or a failure this package explains (GpuInferenceError and its kinds:
ConfigError, ToolNotFoundError, ...); click's usage errors exit 2 too. Exit status 1 is reserved
for a failed verdict (the commands raise it themselves). Exit status 3: an unexpected crash; the
traceback goes to a log file, and the one line on stderr says where.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import typer
from typer._click.core import Context as ClickContext
from typer.core import TyperGroup
from typer.exceptions import TyperException

from gpu_inference import paths
from gpu_inference.errors import (
    AwsError,
    ConfigError,
    GpuInferenceError,
    ToolNotFoundError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

EXIT_VERDICT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_CRASH = 3


def error_line(exc: GpuInferenceError) -> str:
    """`Error: <what> (<setting>): <fix>` for the error kinds that name a setting and a fix."""
    if isinstance(exc, ConfigError):
        return f"Error: {exc.problem} ({exc.setting}): {exc.fix}"
    if isinstance(exc, AwsError):
        return f"Error: {exc.detail} (AWS {exc.action}): {exc.fix}"
    if isinstance(exc, ToolNotFoundError):
        text = str(exc)
        what, _, fix = text.partition(". ")
        return f"Error: {what} (PATH): {fix}" if fix else f"Error: {text}"
    return f"Error: {exc}"


def _file_handlers() -> list[logging.FileHandler]:
    return [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.FileHandler) and h.baseFilename != os.devnull
    ]


def _to_log_files(level: int, message: str, exc: BaseException | None) -> list[Path]:
    """Write `message` (and the traceback) to the log files the command configured; returns them."""
    handlers = _file_handlers()
    if not handlers:
        return []
    record = log.makeRecord(
        log.name,
        level,
        __file__,
        0,
        "%s",
        (message,),
        (type(exc), exc, exc.__traceback__) if exc is not None else None,
    )
    for h in handlers:
        h.handle(record)
    return [Path(h.baseFilename) for h in handlers]


def report_user_error(exc: GpuInferenceError) -> None:
    """The one line on stderr; the log files (if any) get it too, with the traceback."""
    line = error_line(exc)
    typer.echo(line, err=True)
    _to_log_files(logging.ERROR, line, exc)


def crash_log_path(now: dt.datetime | None = None) -> Path:
    """Where an unexpected crash's traceback goes when the command keeps no log file of its own."""
    stamp = (now or dt.datetime.now()).strftime("%Y%m%d-%H%M%S-%f")
    return paths.state_dir() / "logs" / f"crash-{stamp}.log"


def report_crash(exc: BaseException) -> Path:
    """Traceback to a log file, one line on stderr naming it; returns the log file."""
    files = _to_log_files(logging.CRITICAL, f"unexpected error: {exc!r}", exc)
    if files:
        where = files[0]
    else:
        where = crash_log_path()
        try:
            where.parent.mkdir(parents=True, exist_ok=True)
            where.write_text(
                f"gpu-inference {' '.join(sys.argv[1:])}\n"
                + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            )
        except OSError:
            typer.echo("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)), err=True)
    typer.echo(
        f"Error: unexpected {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''} "
        f"(a bug, not your input): the traceback is in {where}; please report it with that file",
        err=True,
    )
    return where


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a GpuInferenceError into its one line and exit status 2 (no traceback)."""
    try:
        yield
    except GpuInferenceError as exc:
        report_user_error(exc)
        raise typer.Exit(code=EXIT_BAD_INPUT) from exc


def run_cli(fn: Callable[[], T]) -> T:
    """Run `fn` inside user_errors()."""
    with user_errors():
        return fn()


class ErrorBoundary(TyperGroup):
    """The root command group: whatever a command raises ends as one line and an exit status."""

    def invoke(self, ctx: ClickContext) -> Any:
        """Run the command; map errors to exit statuses 2 (explained) and 3 (crash)."""
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, TyperException, KeyboardInterrupt):
            raise  # click prints usage errors and exits 2; Exit carries the command's own status
        except GpuInferenceError as exc:
            report_user_error(exc)
            raise typer.Exit(code=EXIT_BAD_INPUT) from exc
        except Exception as exc:
            report_crash(exc)
            raise typer.Exit(code=EXIT_CRASH) from exc
