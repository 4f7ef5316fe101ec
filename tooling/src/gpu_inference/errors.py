"""Typed errors. Every error a user can cause names the setting and the fix."""

from __future__ import annotations


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
