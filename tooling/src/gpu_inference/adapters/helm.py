"""Helm adapter: pyhelm3 for releases, values, status and version; the helm binary (via process.run)
only for lint and for template with --set, which pyhelm3 does not cover.

Every call has an explicit timeout; failures become ToolFailedError.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pyhelm3 import Client
from pyhelm3.command import Command
from pyhelm3.errors import Error as PyHelmError

from gpu_inference.adapters import process
from gpu_inference.errors import ToolFailedError

log = logging.getLogger(__name__)
T = TypeVar("T")


def _load_values(values_files: Sequence[Path]) -> list[dict[str, Any]]:
    out = []
    for f in values_files:
        data = yaml.safe_load(f.read_text()) or {}
        if not isinstance(data, dict):
            raise ToolFailedError("helm", ["-f", str(f)], 1, f"{f} is not a YAML mapping")
        out.append(data)
    return out


@dataclass(frozen=True)
class HelmRelease:
    """One `helm upgrade --install` of a pinned chart from a repository."""

    release: str
    chart: str
    repo: str
    version: str
    namespace: str
    values: dict[str, Any]


class Helm:
    """A helm client bound to one kubeconfig."""

    def __init__(self, kubeconfig: Path | None = None, kube_context: str | None = None) -> None:
        self.binary = process.find_binary("helm")
        self.kubeconfig = kubeconfig
        self.kube_context = kube_context

    def _options(self, timeout_s: int) -> dict[str, Any]:
        """What pyhelm3's Client and Command are built with."""
        return {
            "executable": self.binary,
            "kubeconfig": self.kubeconfig,
            "kubecontext": self.kube_context,
            "default_timeout": f"{timeout_s}s",
        }

    def _command(self, timeout_s: int) -> Command:
        """pyhelm3's low-level command runner (for the calls its Client does not wrap)."""
        return Command(**self._options(timeout_s))

    def _client(self, timeout_s: int) -> Client:
        return Client(**self._options(timeout_s))

    def _run_async(self, what: str, coro: Coroutine[Any, Any, T], timeout_s: int) -> T:
        async def guarded() -> T:
            # helm enforces its own --timeout; this outer bound catches a hung binary.
            return await asyncio.wait_for(coro, timeout=timeout_s + 60)

        try:
            return asyncio.run(guarded())
        except PyHelmError as exc:
            raise ToolFailedError("helm", [what], 1, str(exc)) from exc
        except TimeoutError as exc:
            raise ToolFailedError("helm", [what], None, f"no answer within {timeout_s + 60}s") from exc

    def _kube_args(self) -> list[str]:
        args = []
        if self.kubeconfig:
            args += ["--kubeconfig", str(self.kubeconfig)]
        if self.kube_context:
            args += ["--kube-context", self.kube_context]
        return args

    def upgrade_install(
        self,
        release: str,
        chart: Path | str,
        *,
        namespace: str,
        values_files: Sequence[Path] = (),
        values: Mapping[str, Any] | None = None,
        wait: bool = True,
        timeout_s: int = 600,
        repo: str | None = None,
        version: str | None = None,
    ) -> int:
        """`helm upgrade --install`; returns the new revision number."""
        all_values = [*_load_values(values_files), dict(values or {})]

        async def go() -> int:
            client = self._client(timeout_s)
            chart_obj = await client.get_chart(chart, repo=repo, version=version)
            revision = await client.install_or_upgrade_release(
                release,
                chart_obj,
                *all_values,
                namespace=namespace,
                create_namespace=True,
                wait=wait,
                timeout=f"{timeout_s}s",
            )
            return int(revision.revision)

        log.info("helm upgrade --install %s %s -n %s", release, chart, namespace)
        return self._run_async(f"upgrade --install {release}", go(), timeout_s)

    def install(self, rel: HelmRelease, *, wait: bool = True, timeout_s: int = 600) -> int:
        """`helm upgrade --install` of a pinned release; returns the new revision number."""
        return self.upgrade_install(
            rel.release,
            rel.chart,
            namespace=rel.namespace,
            values=rel.values,
            repo=rel.repo,
            version=rel.version,
            wait=wait,
            timeout_s=timeout_s,
        )

    def upgrade_install_files(
        self,
        release: str,
        chart: Path,
        *,
        namespace: str,
        values_files: Sequence[Path] = (),
        set_values: Sequence[str] = (),
        wait: bool = True,
        timeout_s: int = 600,
    ) -> None:
        """`helm upgrade --install -f F1 -f F2 ... --set K=V ...` with the helm binary itself, so
        files and --set pairs merge exactly as helm merges them (files in order, --set last)."""
        args = ["upgrade", "--install", release, str(chart), "-n", namespace, "--create-namespace"]
        for f in values_files:
            args += ["-f", str(f)]
        for pair in set_values:
            args += ["--set", pair]
        if wait:
            args.append("--wait")
        args += ["--timeout", f"{timeout_s}s", *self._kube_args()]
        log.info(
            "helm upgrade --install %s %s -n %s (%d values files, %d --set)",
            release,
            chart,
            namespace,
            len(values_files),
            len(set_values),
        )
        process.run("helm", args, timeout=timeout_s + 60)

    def get_values(self, release: str, *, namespace: str, timeout_s: int = 60) -> dict[str, Any]:
        """The release's computed values (`helm get values --all`): chart defaults, subcharts'
        included, with every -f and --set applied."""
        data = (
            self._run_async(
                f"get values {release}",
                self._command(timeout_s).get_values(release, computed=True, namespace=namespace),
                timeout_s,
            )
            or {}
        )
        if not isinstance(data, dict):
            raise ToolFailedError("helm", ["get", "values", release], 0, "the values are not a mapping")
        return data

    def uninstall(self, release: str, *, namespace: str, wait: bool = True, timeout_s: int = 600) -> None:
        """`helm uninstall`; a release that does not exist counts as uninstalled."""

        async def go() -> None:
            await self._client(timeout_s).uninstall_release(
                release, namespace=namespace, wait=wait, timeout=f"{timeout_s}s"
            )

        log.info("helm uninstall %s -n %s", release, namespace)
        self._run_async(f"uninstall {release}", go(), timeout_s)

    def status(self, release: str, *, namespace: str, timeout_s: int = 60) -> str:
        """The release status as helm reports it ('deployed', 'failed', ...)."""
        data = self._run_async(
            f"status {release}", self._command(timeout_s).status(release, namespace=namespace), timeout_s
        )
        return str(data["info"]["status"])

    def template(
        self,
        release: str,
        chart: Path,
        *,
        namespace: str,
        values_files: Sequence[Path] = (),
        set_values: Mapping[str, str] | None = None,
        timeout_s: int = 120,
    ) -> list[dict[str, Any]]:
        """`helm template` rendered to a list of objects (no cluster needed)."""
        args = ["template", release, str(chart), "-n", namespace]
        for f in values_files:
            args += ["-f", str(f)]
        for k, v in (set_values or {}).items():
            args += ["--set", f"{k}={v}"]
        out = process.run("helm", args, timeout=timeout_s)
        return [d for d in yaml.safe_load_all(out.stdout) if d]

    def lint(self, chart: Path, *, values_files: Sequence[Path] = (), timeout_s: int = 120) -> None:
        args = ["lint", "--strict", str(chart)]
        for f in values_files:
            args += ["-f", str(f)]
        process.run("helm", args, timeout=timeout_s)

    def version(self) -> str:
        """The helm client's version, e.g. v3.22.0."""
        return str(self._run_async("version", self._command(30).version(), 30)).strip()
