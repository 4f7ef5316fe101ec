"""Typed errors. Every error a user can cause names the setting and the fix."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class GpuInferenceError(Exception):
    """Base class for every error this package raises on purpose."""


class ConfigError(GpuInferenceError):
    """A setting is wrong. The message names the setting and how to fix it."""

    def __init__(self, setting: str, problem: str, fix: str) -> None:
        self.setting = setting
        self.problem = problem
        self.fix = fix
        super().__init__(f"{setting}: {problem}. Fix: {fix}")


class ToolNotFoundError(GpuInferenceError):
    """An external binary (helm, kubectl, eksctl, kwokctl, ...) is not installed."""

    def __init__(self, tool: str, hint: str) -> None:
        self.tool = tool
        super().__init__(f"'{tool}' was not found on PATH or in $GPU_INFERENCE_TOOLS_BIN. {hint}")


class ToolFailedError(GpuInferenceError):
    """An external tool exited non-zero or timed out."""

    def __init__(self, tool: str, args: list[str], returncode: int | None, output: str) -> None:
        self.tool = tool
        self.command = args
        self.returncode = returncode
        self.output = output
        status = "timed out" if returncode is None else f"exited {returncode}"
        tail = "\n".join(output.strip().splitlines()[-20:])
        super().__init__(f"{tool} {status}: {' '.join(args)}\n{tail}")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a setting: where, what, and how to fix it."""

    setting: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.setting}: {self.problem}. Fix: {self.fix}"


class ClusterConfigError(ConfigError):
    """eksctl/cluster.yaml (or an overlay) breaks eksctl's schema or a rule of this project.

    A ConfigError: with one problem, its setting, problem and fix; with several, the file as the
    setting and every problem (each with its fix) on one line.
    """

    def __init__(self, source: str, problems: Sequence[Problem]) -> None:
        self.source = source
        self.problems = list(problems) or [Problem(source, "invalid", "fix the file")]
        first = self.problems[0]
        if len(self.problems) == 1:
            self.setting, self.problem, self.fix = f"{source}: {first.setting}", first.problem, first.fix
        else:
            self.setting = source
            self.problem = f"{len(self.problems)} problems: " + "; ".join(str(p) for p in self.problems)
            self.fix = "fix each setting listed"
        if len(self.problems) == 1:
            # One problem, one line: the file, the setting, the problem and the fix.
            GpuInferenceError.__init__(self, f"{source}: {first}")
            return
        lines = "\n".join(f"  - {p}" for p in self.problems)
        GpuInferenceError.__init__(self, f"{source} has {len(self.problems)} problem(s):\n{lines}")


class AwsError(GpuInferenceError):
    """An AWS API call failed (credentials, permissions, throttling, a missing resource)."""

    def __init__(self, action: str, detail: str, fix: str) -> None:
        self.action = action
        self.detail = detail
        self.fix = fix
        super().__init__(f"AWS {action} failed: {detail}. Fix: {fix}")


class PreflightError(GpuInferenceError):
    """One or more preflight checks failed; nothing was created."""

    def __init__(self, failures: Sequence[str]) -> None:
        self.failures = list(failures)
        lines = "\n".join(f"  - {f}" for f in self.failures)
        super().__init__(f"preflight failed, nothing was created:\n{lines}")


class WaitTimeoutError(GpuInferenceError):
    """Something did not reach the expected state in time."""

    def __init__(self, what: str, timeout_s: float, last_state: str, fix: str) -> None:
        self.what = what
        self.last_state = last_state
        super().__init__(
            f"timed out after {timeout_s:.0f}s waiting for {what} (last seen: {last_state}). Fix: {fix}"
        )
