"""Run locust as a child process and read what it writes while it runs.

Locust runs in its own process (its gevent monkey-patching would fight the Kubernetes client
and asyncio here). It writes, every second, the aggregated stats history CSV
(--csv-full-history: current-window percentiles) and, through the users' hook, cumulative
token counts as JSON lines. The readers below consume both incrementally, whole lines only.
"""

from __future__ import annotations

import bisect
import csv
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, TypeVar

from pydantic import BaseModel

from gpu_inference.domain.timeline import LocustPoint, TokenPoint
from gpu_inference.errors import ToolFailedError
from gpu_inference.paths import loadtest_dir

log = logging.getLogger(__name__)

CSV_PREFIX = "locust"
TOKENS_FILE = "tokens.jsonl"


class LocustOptions(BaseModel):
    host: str
    users_file: Path
    shape_file: Path
    out_dir: Path
    env: dict[str, str] = {}
    web_ui: bool = False
    web_port: int = 8089
    model: str | None = None
    max_tokens: int | None = None


def locust_command(o: LocustOptions) -> list[str]:
    cmd = [
        sys.executable, "-m", "locust",
        "--config", str(loadtest_dir() / "locust.conf"),
        "-f", f"{o.users_file},{o.shape_file}",
        "--host", o.host,
        "--csv", str(o.out_dir / CSV_PREFIX),
        "--csv-full-history",
        "--logfile", str(o.out_dir / "locust.log"),
        "--exit-code-on-error", "0",
        "--only-summary",
        "--tokens-file", str(o.out_dir / TOKENS_FILE),
    ]  # fmt: skip
    if o.web_ui:
        cmd += ["--autostart", "--autoquit", "5", "--web-host", "127.0.0.1", "--web-port", str(o.web_port)]
    else:
        cmd += ["--headless"]
    if o.model:
        cmd += ["--model", o.model]
    if o.max_tokens is not None:
        cmd += ["--max-tokens", str(o.max_tokens)]
    return cmd


class LocustProcess:
    """A running locust. Always stop() it (the runner does so in a finally block)."""

    def __init__(self, options: LocustOptions) -> None:
        self.options = options
        options.out_dir.mkdir(parents=True, exist_ok=True)
        for stale in options.out_dir.glob(f"{CSV_PREFIX}_*.csv"):
            stale.unlink()
        (options.out_dir / TOKENS_FILE).unlink(missing_ok=True)
        self.output_path = options.out_dir / "locust.out"
        self._output: IO[str] = self.output_path.open("w")
        cmd = locust_command(options)
        log.debug("locust: %s", " ".join(cmd))
        env = {**os.environ, **options.env, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(  # argument list, our own interpreter
            cmd, stdout=self._output, stderr=subprocess.STDOUT, cwd=loadtest_dir(), env=env, text=True
        )
        self.started_at = time.time()
        self.exited_at: float | None = None

    def poll(self) -> int | None:
        code = self.proc.poll()
        if code is not None and self.exited_at is None:
            self.exited_at = time.time()
        return code

    def stop(self, grace_s: float = 15.0) -> int:
        """Ask locust to stop (SIGINT: it writes its final stats), then kill it after grace_s."""
        if self.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                log.warning("locust did not stop within %ss: killing it", grace_s)
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.poll()
        self._output.close()
        return self.proc.returncode

    def check_failed(self) -> None:
        """Raise if locust exited non-zero (it could not start, or the shape raised)."""
        code = self.poll()
        if code:
            tail = self.output_path.read_text(errors="replace") if self.output_path.exists() else ""
            raise ToolFailedError("locust", locust_command(self.options)[3:], code, tail)


def _float(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


class _Appended:
    """Whole lines appended to a file since the last call (a line still being written waits)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0

    def new_lines(self) -> list[str]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        complete, _, _ = chunk.rpartition(b"\n")
        if not complete:
            return []
        self._offset += len(complete) + 1
        return complete.decode(errors="replace").splitlines()


class StatsHistoryReader:
    """Reads the Aggregated rows of locust's *_stats_history.csv as they are appended."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lines = _Appended(path)
        self._header: list[str] | None = None
        self.points: list[LocustPoint] = []

    def _parse(self, row: list[str]) -> LocustPoint | None:
        assert self._header is not None
        if len(row) != len(self._header):
            return None
        rec = dict(zip(self._header, row, strict=True))
        if rec.get("Name") != "Aggregated":
            return None
        ts, users = _float(rec["Timestamp"]), _float(rec["User Count"])
        if ts is None or users is None:
            return None
        return LocustPoint(
            ts=ts,
            users=int(users),
            rps=_float(rec["Requests/s"]) or 0.0,
            fail_rps=_float(rec["Failures/s"]) or 0.0,
            p50_ms=_float(rec.get("50%", "")),
            p95_ms=_float(rec.get("95%", "")),
            total_requests=int(_float(rec["Total Request Count"]) or 0),
            total_failures=int(_float(rec["Total Failure Count"]) or 0),
            avg_content_bytes=_float(rec.get("Total Average Content Size", "")),
        )

    def read(self) -> list[LocustPoint]:
        """Parse whatever complete rows were added since the last call; return every point so far."""
        for row in csv.reader(self._lines.new_lines()):
            if self._header is None:
                self._header = row
                continue
            point = self._parse(row)
            if point is not None:
                self.points.append(point)
        return self.points


class TokensReader:
    """Reads the users' cumulative token counts (JSON lines) as they are appended."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lines = _Appended(path)
        self.points: list[TokenPoint] = []

    def read(self) -> list[TokenPoint]:
        for line in self._lines.new_lines():
            try:
                self.points.append(TokenPoint.model_validate(json.loads(line)))
            except ValueError:
                log.debug("tokens: skipped a malformed line: %r", line)
        return self.points


def read_final_stats(out_dir: Path, ts: float) -> LocustPoint | None:
    """The run's final totals from locust_stats.csv (written when locust exits), stamped `ts`.

    The stats history's last row can lag the last requests by up to a second; this file cannot.
    """
    path = out_dir / f"{CSV_PREFIX}_stats.csv"
    if not path.exists():
        return None
    for rec in csv.DictReader(path.read_text(errors="replace").splitlines()):
        if rec.get("Name") == "Aggregated":
            return LocustPoint(
                ts=ts,
                users=0,
                rps=0.0,
                fail_rps=0.0,
                p50_ms=None,
                p95_ms=None,
                total_requests=int(_float(rec.get("Request Count", "")) or 0),
                total_failures=int(_float(rec.get("Failure Count", "")) or 0),
                avg_content_bytes=_float(rec.get("Average Content Size", "")),
            )
    return None


P = TypeVar("P", LocustPoint, TokenPoint)


def at_or_before(points: list[P], t: float) -> P | None:
    """The latest point stamped at or before t (points are in time order)."""
    i = bisect.bisect_right([p.ts for p in points], t)
    return points[i - 1] if i else None
