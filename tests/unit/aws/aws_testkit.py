"""Helpers for the AWS tests: moto (the only thing mocked is AWS), fake CLI executables that record
their argv, and a recording runner for the adapters. Nothing here reaches the network."""

from __future__ import annotations

import datetime as dt
import inspect
import json
import os
import stat
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gpu_inference.adapters import process
from gpu_inference.adapters.helm import Helm
from gpu_inference.errors import ToolFailedError

REPO = Path(__file__).resolve().parents[3]
CLUSTER_YAML = REPO / "eksctl" / "cluster.yaml"
SPOT_YAML = REPO / "eksctl" / "gpu-spot-nodegroup.yaml"
TODAY = dt.date(2026, 11, 29)
REGION = "us-east-1"


# --------------------------------------------------------------------------- recording runner


Handler = Callable[[str, list[str]], "str | process.Result | None"]


@dataclass
class Recorder(process.Runner):
    """A process.run stand-in: records (tool, args); the first handler that answers gives the output."""

    calls: list[tuple[str, list[str]]] = field(default_factory=list)
    handlers: list[Handler] = field(default_factory=list)

    def __call__(
        self, tool: str, args: Sequence[str], *, timeout: float, input_text: str | None = None
    ) -> process.Result:
        assert timeout > 0, "every call needs an explicit timeout"
        argv = list(args)
        self.calls.append((tool, argv))
        for handler in self.handlers:
            out = handler(tool, argv)
            if out is None:
                continue
            if isinstance(out, process.Result):
                if out.returncode:  # what process.run does on a non-zero exit
                    raise ToolFailedError(tool, argv, out.returncode, out.stdout + out.stderr)
                return out
            return process.Result([tool, *argv], 0, out, "")
        return process.Result([tool, *argv], 0, "", "")

    def lines(self, tool: str | None = None) -> list[str]:
        return [" ".join([t, *a]) for t, a in self.calls if tool is None or t == tool]


# --------------------------------------------------------------------------- fake executables


@dataclass
class FakeBin:
    """A directory of fake executables on PATH. Each appends its argv as a JSON line to calls.jsonl."""

    dir: Path
    log: Path

    def add(self, name: str, body: str = "", exit_code: int = 0) -> Path:
        """`body` is Python run with `argv` (list) in scope; it may print and set `code`."""
        script = self.dir / name
        script.write_text(
            f"#!{sys.executable}\n"
            "import json, sys\n"
            "argv = sys.argv[1:]\n"
            f"with open({str(self.log)!r}, 'a') as f:\n"
            f"    f.write(json.dumps([{name!r}, argv]) + '\\n')\n"
            f"code = {exit_code}\n" + textwrap.dedent(body) + "\nsys.exit(code)\n"
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return script

    def calls(self, name: str | None = None) -> list[list[str]]:
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text().splitlines():
            tool, argv = json.loads(line)
            if name is None or tool == name:
                out.append(argv)
        return out


def helm_binary() -> str | None:
    """The project's pinned helm (make tools), if it was built; None otherwise."""
    tools = os.environ.get("GPU_INFERENCE_TOOLS_BIN")
    candidates = [Path(tools) / "helm"] if tools else []
    import subprocess

    try:
        out = subprocess.run(
            [str(REPO / "hack" / "build-tools.sh"), "--print-bin"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout.strip()
        if out:
            candidates.append(Path(out) / "helm")
    except (OSError, subprocess.TimeoutExpired):
        pass
    return next((str(c) for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)


# --------------------------------------------------------------------------- a tiny fake cluster

_PLURAL = {
    "service": "services",
    "svc": "services",
    "ingress": "ingresses",
    "pvc": "persistentvolumeclaims",
    "persistentvolumeclaim": "persistentvolumeclaims",
    "pv": "persistentvolumes",
    "persistentvolume": "persistentvolumes",
    "hpa": "horizontalpodautoscalers",
    "horizontalpodautoscaler": "horizontalpodautoscalers",
}


def two_subnets(ec2: Any) -> list[str]:
    """In moto: a VPC 10.0.0.0/16 with a /24 subnet in each of REGION's zones a and b; the subnet ids."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    return [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{z}")["Subnet"][
            "SubnetId"
        ]
        for i, z in enumerate("ab")
    ]


@dataclass
class FakeKube:
    """A kubectl Runner over an in-memory object store. `on_delete[kind](obj)` runs what a controller
    would do (e.g. delete the AWS load balancer behind a Service). Every mutating call is logged."""

    events: list[str]
    objects: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    on_delete: dict[str, Callable[[dict[str, Any]], None]] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)
    calls: list[list[str]] = field(default_factory=list)

    def add(self, kind: str, name: str, namespace: str | None = None, **spec: Any) -> dict[str, Any]:
        obj: dict[str, Any] = {"metadata": {"name": name}, **spec}
        if namespace:
            obj["metadata"]["namespace"] = namespace
        self.objects.setdefault(_PLURAL.get(kind, kind), []).append(obj)
        return obj

    def add_app_service(
        self, name: str, app: str, port: int, namespace: str = "gpu-inference"
    ) -> dict[str, Any]:
        """A ClusterIP Service labelled app.kubernetes.io/name=`app` (how Grafana, Prometheus are found)."""
        svc = self.add("service", name, namespace, spec={"type": "ClusterIP", "ports": [{"port": port}]})
        svc["metadata"]["labels"] = {"app.kubernetes.io/name": app}

    def __call__(self, tool: str, args: Sequence[str], *, timeout: float, **kw: Any) -> process.Result:
        assert tool == "kubectl"
        assert timeout > 0
        argv = list(args)
        self.calls.append(argv)
        while argv and argv[0] in ("--kubeconfig", "--context"):
            argv = argv[2:]

        def opt(flag: str) -> str | None:
            return argv[argv.index(flag) + 1] if flag in argv else None

        verb = argv[0]
        if verb == "get" and argv[1] == "--raw":
            if argv[2] not in self.raw:  # what process.run does on a non-zero exit
                raise ToolFailedError(
                    "kubectl",
                    argv,
                    1,
                    "Error from server (NotFound): the server could not find the requested resource",
                )
            return process.Result(["kubectl", *argv], 0, self.raw[argv[2]], "")
        kind = _PLURAL.get(argv[1], argv[1])
        name = argv[2] if len(argv) > 2 and not argv[2].startswith("-") else None
        ns = opt("--namespace")
        selector = opt("--selector")

        def match(o: dict[str, Any]) -> bool:
            m = o["metadata"]
            if name and m["name"] != name:
                return False
            if ns and "--all-namespaces" not in argv and m.get("namespace") != ns:
                return False
            if selector:
                k, v = selector.split("=", 1)
                if (m.get("labels") or {}).get(k) != v:
                    return False
            return True

        items = [o for o in self.objects.get(kind, []) if match(o)]
        if verb == "get":
            return process.Result(["kubectl", *argv], 0, json.dumps({"items": items}), "")
        if verb == "delete":
            for o in items:
                self.objects[kind].remove(o)
                where = f"{o['metadata'].get('namespace', '')}/{o['metadata']['name']}".lstrip("/")
                self.events.append(f"kubectl delete {kind} {where}")
                if kind in self.on_delete:
                    self.on_delete[kind](o)
            return process.Result(["kubectl", *argv], 0, "", "")
        raise AssertionError(f"unexpected kubectl call {argv}")


def _bound(method: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
    """The arguments of a call as `method` would receive them (defaults filled in); a call that does
    not fit the real signature fails here as it would against the real adapter."""
    bound = inspect.signature(method).bind(*args, **kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


@dataclass
class FakeHelm(Helm):
    """Stands in for gpu_inference.adapters.helm.Helm where the test is about order and arguments
    (the real adapter's argv is asserted with a fake helm binary in test_aws_adapters). Each method
    takes the real one's arguments; `install` is the real one, over the fake `upgrade_install`."""

    events: list[str]
    kubeconfig: Path | None = None
    installs: list[dict[str, Any]] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)  # what `helm template` renders
    lint_error: str | None = None
    helm_version: str = "v3.22.0+gabc"

    def version(self) -> str:
        return self.helm_version

    def lint(self, *args: Any, **kwargs: Any) -> None:
        chart = _bound(Helm.lint, self, *args, **kwargs)["chart"]
        self.events.append(f"helm lint {chart.name}")
        if self.lint_error:
            raise ToolFailedError("helm", ["lint", "--strict", str(chart)], 1, self.lint_error)

    def template(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        _bound(Helm.template, self, *args, **kwargs)
        return json.loads(json.dumps(self.objects))

    def upgrade_install(self, *args: Any, **kwargs: Any) -> int:
        a = _bound(Helm.upgrade_install, self, *args, **kwargs)
        self.events.append(f"helm upgrade --install {a['release']} -n {a['namespace']}")
        self.installs.append(
            {"release": a["release"], "chart": str(a["chart"]), "namespace": a["namespace"],
             "values": dict(a["values"] or {}), "values_files": list(a["values_files"]), "wait": a["wait"],
             "repo": a["repo"], "version": a["version"], "kubeconfig": self.kubeconfig}
        )  # fmt: skip
        return 1

    def uninstall(self, *args: Any, **kwargs: Any) -> None:
        a = _bound(Helm.uninstall, self, *args, **kwargs)
        self.events.append(f"helm uninstall {a['release']} -n {a['namespace']}")
