"""The one place that runs external binaries."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gpu_inference.errors import ToolFailedError, ToolNotFoundError

log = logging.getLogger(__name__)

TOOLS_HINT = "Run `make tools` (builds the pinned tools into the cache and puts them on PATH via make)."


def find_binary(name: str, hint: str = TOOLS_HINT) -> str:
    """Absolute path of `name`: $GPU_INFERENCE_TOOLS_BIN first, then PATH."""
    tools_bin = os.environ.get("GPU_INFERENCE_TOOLS_BIN")
    if tools_bin:
        candidate = Path(tools_bin) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if not found:
        raise ToolNotFoundError(name, hint)
    return found


def redact(args: Sequence[str], secrets: Sequence[str]) -> list[str]:
    out = []
    for arg in args:
        shown = arg
        for secret in secrets:
            if secret:
                shown = shown.replace(secret, "***")
        out.append(shown)
    return out


@dataclass(frozen=True)
class Result:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str


class Runner(Protocol):
    """What an adapter needs of `run` (tests pass a recording stand-in)."""

    def __call__(
        self, tool: str, args: Sequence[str], *, timeout: float, input_text: str | None = None
    ) -> Result: ...


def parse_version(text: str) -> tuple[int, int, int]:
    """'0.215.0', 'v0.215.0-dev+abc' or a JSON/YAML blob containing it -> (0, 215, 0)."""
    m = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    if not m:
        raise ValueError(f"no version in {text!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def run(
    tool: str,
    args: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
    secrets: Sequence[str] = (),
    input_text: str | None = None,
) -> Result:
    """Run `tool` (a binary name) with an argument list and a timeout.

    Secrets are replaced by *** in logs and error messages.
    """
    binary = find_binary(tool)
    full_env = {**os.environ, **(env or {})}
    shown = redact([tool, *args], secrets)
    log.debug("run: %s", " ".join(shown))
    try:
        proc = subprocess.run(
            [binary, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
            cwd=cwd,
            input=input_text,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        raise ToolFailedError(tool, shown[1:], None, "\n".join(redact([out], secrets))) from exc
    result = Result(list(shown), proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise ToolFailedError(
            tool, shown[1:], proc.returncode, "\n".join(redact([proc.stdout, proc.stderr], secrets))
        )
    return result
