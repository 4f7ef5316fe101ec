"""kubectl adapter: apply / get / delete / wait, always against an explicit kubeconfig.

Generic on purpose (used by the EKS deploy/teardown and available to other commands): every call
is an argument list through gpu_inference.adapters.process.run with an explicit timeout;
failures raise ToolFailedError. `get` returns parsed JSON.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gpu_inference.adapters import process
from gpu_inference.adapters.process import Runner
from gpu_inference.errors import ToolFailedError

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 60


class Kubectl:
    """A kubectl bound to one kubeconfig (and optionally one context)."""

    def __init__(
        self, kubeconfig: Path | None, *, context: str | None = None, runner: Runner | None = None
    ) -> None:
        self.kubeconfig = kubeconfig
        self.context = context
        self._run: Runner = runner or process.run
        if self._run is process.run:
            process.find_binary("kubectl")

    def _global(self) -> list[str]:
        args = []
        if self.kubeconfig is not None:
            args += ["--kubeconfig", str(self.kubeconfig)]
        if self.context:
            args += ["--context", self.context]
        return args

    def run(
        self, args: Sequence[str], *, timeout: float = DEFAULT_TIMEOUT_S, input_text: str | None = None
    ) -> process.Result:
        """Any kubectl command; the kubeconfig/context flags are prepended."""
        return self._run("kubectl", [*self._global(), *args], timeout=timeout, input_text=input_text)

    @staticmethod
    def _scope(namespace: str | None, all_namespaces: bool) -> list[str]:
        if all_namespaces:
            return ["--all-namespaces"]
        return ["--namespace", namespace] if namespace else []

    @staticmethod
    def _select(verb: str, kind: str, name: str | None, scope: list[str], selector: str | None) -> list[str]:
        """`VERB KIND [NAME] SCOPE [--selector SELECTOR]`."""
        args = [verb, kind, *([name] if name else []), *scope]
        return [*args, "--selector", selector] if selector else args

    def apply(
        self,
        manifest: str | Path,
        *,
        namespace: str | None = None,
        server_side: bool = False,
        timeout: float = 120,
    ) -> process.Result:
        """`kubectl apply -f` a file, or a YAML/JSON string fed on stdin."""
        args = ["apply", *self._scope(namespace, False)]
        if server_side:
            args.append("--server-side")
        if isinstance(manifest, Path):
            return self.run([*args, "-f", str(manifest)], timeout=timeout)
        return self.run([*args, "-f", "-"], timeout=timeout, input_text=manifest)

    def get(
        self,
        kind: str,
        name: str | None = None,
        *,
        namespace: str | None = None,
        all_namespaces: bool = False,
        selector: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> dict[str, Any]:
        """`kubectl get -o json`; a list kind returns {'items': [...]}."""
        args = self._select("get", kind, name, self._scope(namespace, all_namespaces), selector)
        args += ["--output", "json"]
        out = self.run(args, timeout=timeout).stdout
        try:
            data = json.loads(out)
        except json.JSONDecodeError as exc:
            raise ToolFailedError("kubectl", args, 0, f"output is not JSON: {out[:200]!r}") from exc
        if not isinstance(data, dict):
            raise ToolFailedError("kubectl", args, 0, "output is not a JSON object")
        return data

    def get_raw(self, path: str, *, timeout: float = DEFAULT_TIMEOUT_S) -> str:
        """`kubectl get --raw PATH` (e.g. an aggregated API such as custom.metrics.k8s.io)."""
        return self.run(["get", "--raw", path], timeout=timeout).stdout

    def delete(
        self,
        kind: str,
        name: str | None = None,
        *,
        namespace: str | None = None,
        all_namespaces: bool = False,
        selector: str | None = None,
        wait: bool = True,
        timeout: float = 300,
    ) -> process.Result:
        """`kubectl delete`; absent objects are fine (--ignore-not-found).

        With wait=True kubectl waits until finalizers ran (a LoadBalancer Service disappears only
        after its cloud load balancer was deleted, a PVC after its volume was released).
        """
        args = self._select("delete", kind, name, self._scope(namespace, all_namespaces), selector)
        if not name and not selector:
            args.append("--all")
        args += ["--ignore-not-found", f"--wait={str(wait).lower()}", f"--timeout={int(timeout)}s"]
        return self.run(args, timeout=timeout + 30)

    def wait(
        self,
        target: str,
        *,
        condition: str,
        namespace: str | None = None,
        all_namespaces: bool = False,
        selector: str | None = None,
        timeout: float = 300,
    ) -> process.Result:
        """`kubectl wait TARGET --for=CONDITION` (e.g. condition='delete', 'condition=Available')."""
        args = self._select("wait", target, None, self._scope(namespace, all_namespaces), selector)
        args += [f"--for={condition}", f"--timeout={int(timeout)}s"]
        return self.run(args, timeout=timeout + 30)

    def client_version(self) -> str:
        """The client's gitVersion, e.g. 'v1.36.3' (no cluster needed)."""
        out = self._run("kubectl", ["version", "--client", "--output", "json"], timeout=30).stdout
        try:
            return str(json.loads(out)["clientVersion"]["gitVersion"])
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ToolFailedError(
                "kubectl", ["version", "--client"], 0, f"unexpected output: {out[:200]!r}"
            ) from exc
