"""Step reporting for the long-running AWS commands.

The orchestrators (deploy, teardown) announce steps through a `Reporter`; they never print.
`LogReporter` writes plain log lines (CI, pipes, the log file); `RichReporter` adds a live
spinner with elapsed time on a terminal. Both record what ran, for tests and for the summary.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass
class StepRecord:
    name: str
    description: str
    seconds: float = 0.0
    ok: bool = False
    skipped: str = ""


class Reporter(Protocol):
    records: list[StepRecord]

    def step(self, name: str, description: str) -> AbstractContextManager[None]: ...

    def skip(self, name: str, description: str, reason: str) -> None: ...

    def info(self, message: str) -> None: ...


@dataclass
class LogReporter:
    records: list[StepRecord] = field(default_factory=list)

    @contextmanager
    def step(self, name: str, description: str) -> Iterator[None]:
        rec = StepRecord(name, description)
        self.records.append(rec)
        log.info("[%s] %s ...", name, description)
        start = time.monotonic()
        try:
            yield
        except BaseException:
            rec.seconds = time.monotonic() - start
            log.error("[%s] failed after %.0fs", name, rec.seconds)
            raise
        rec.seconds = time.monotonic() - start
        rec.ok = True
        log.info("[%s] done in %.0fs", name, rec.seconds)

    def skip(self, name: str, description: str, reason: str) -> None:
        self.records.append(StepRecord(name, description, ok=True, skipped=reason))
        log.info("[%s] skipped: %s", name, reason)

    def info(self, message: str) -> None:
        log.info("%s", message)


@dataclass
class RichReporter(LogReporter):
    """LogReporter plus a transient spinner with elapsed time while a step runs."""

    @contextmanager
    def step(self, name: str, description: str) -> Iterator[None]:
        from rich.console import Console
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        with (
            Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            ) as progress,
            super().step(name, description),
        ):
            progress.add_task(f"{name}: {description}", total=None)
            yield
