"""Shared fixtures for the chart tests: the real helm binary, renders cached per session."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpu_inference.adapters.process import Result, find_binary, run

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "gpu-inference"
CI_DIR = CHART / "ci"
EXAMPLE_EXISTING = CHART / "examples" / "existing-cluster-values.yaml"
RELEASE = "gpu-inference"
NAMESPACE = "gpu-inference"
HELM_TIMEOUT = 120.0

# Every ci/NN-<scenario>-values.yaml, by scenario name ("01-default", ...).
SCENARIOS = {p.name.removesuffix("-values.yaml"): p for p in sorted(CI_DIR.glob("[0-9][0-9]-*-values.yaml"))}


@dataclass(frozen=True)
class Rendered:
    """One `helm template` result: the objects, without hooks and with them."""

    objects: list[dict[str, Any]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        found = [
            o
            for o in self.objects
            if o["kind"] == kind
            and o["metadata"]["name"] == name
            and (namespace is None or o["metadata"].get("namespace") == namespace)
        ]
        assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
        return found[0]

    def by_component(self, kind: str, component: str) -> list[dict[str, Any]]:
        return [
            o
            for o in self.of_kind(kind)
            if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component
        ]

    def one(self, kind: str, component: str) -> dict[str, Any]:
        found = self.by_component(kind, component)
        assert len(found) == 1, f"expected one {kind} of component {component}, found {len(found)}"
        return found[0]

    def workloads(self) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] in ("Deployment", "DaemonSet", "StatefulSet", "Pod")]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]
    return spec


def helm(*args: str) -> Result:
    """Run the real helm binary (never raises on a non-zero exit; callers check)."""
    return run("helm", list(args), timeout=HELM_TIMEOUT, check=False)


def _set_args(sets: tuple[str, ...]) -> list[str]:
    out: list[str] = []
    for s in sets:
        out += ["--set", s]
    return out


@functools.lru_cache(maxsize=64)
def render(values: tuple[str, ...] = (), sets: tuple[str, ...] = (), namespace: str = NAMESPACE) -> Rendered:
    """`helm template` the chart once per (values files, --set, namespace) per session."""
    args = ["template", RELEASE, str(CHART), "--namespace", namespace]
    for v in values:
        args += ["-f", v]
    result = helm(*args, *_set_args(sets))
    assert result.returncode == 0, f"helm template failed:\n{result.stdout}\n{result.stderr}"
    return Rendered([d for d in yaml.safe_load_all(result.stdout) if d])


def render_error(sets: tuple[str, ...] = (), values: tuple[str, ...] = ()) -> str:
    """`helm template` expected to fail; returns its output."""
    args = ["template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    for v in values:
        args += ["-f", v]
    result = helm(*args, *_set_args(sets))
    assert result.returncode != 0, f"helm template succeeded but should have failed for {sets} {values}"
    return result.stderr


@pytest.fixture(scope="session")
def helm_binary() -> str:
    return find_binary("helm")


@pytest.fixture(scope="session", params=sorted(SCENARIOS), ids=sorted(SCENARIOS))
def scenario(request: pytest.FixtureRequest, helm_binary: str) -> tuple[str, Rendered]:
    name: str = request.param
    return name, render((str(SCENARIOS[name]),))


@pytest.fixture(scope="session")
def default(helm_binary: str) -> Rendered:
    return render((str(SCENARIOS["01-default"]),))


@pytest.fixture(scope="session")
def existing(helm_binary: str) -> Rendered:
    return render((str(EXAMPLE_EXISTING),))
