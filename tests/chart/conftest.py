"""Shared fixtures for the chart tests: the real helm binary, renders cached per session."""

from __future__ import annotations

import functools
import shutil
import tempfile
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


def scale_target_ref(deployment: dict[str, Any]) -> dict[str, str]:
    """The scaleTargetRef an autoscaler (HPA or ScaledObject) needs to scale `deployment`."""
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]}


def helm(*args: str) -> Result:
    """Run the real helm binary (never raises on a non-zero exit; callers check)."""
    return run("helm", list(args), timeout=HELM_TIMEOUT, check=False)


def _template(
    chart: Path, values: tuple[str, ...], sets: tuple[str, ...], namespace: str = NAMESPACE, *extra: str
) -> Result:
    """`helm template` of `chart` with -f for each of `values` and --set for each of `sets`."""
    args = ["template", RELEASE, str(chart), "--namespace", namespace, *extra]
    for v in values:
        args += ["-f", v]
    for s in sets:
        args += ["--set", s]
    return helm(*args)


@functools.lru_cache(maxsize=64)
def render(values: tuple[str, ...] = (), sets: tuple[str, ...] = (), namespace: str = NAMESPACE) -> Rendered:
    """`helm template` the chart once per (values files, --set, namespace) per session."""
    result = _template(CHART, values, sets, namespace)
    assert result.returncode == 0, f"helm template failed:\n{result.stdout}\n{result.stderr}"
    return Rendered([d for d in yaml.safe_load_all(result.stdout) if d])


@functools.lru_cache(maxsize=32)
def render_notes(values: tuple[str, ...] = (), sets: tuple[str, ...] = ()) -> str:
    """NOTES.txt as `helm install` prints it, once per (values files, --set) per session.

    `helm template` does not render NOTES.txt; it is rendered through tpl in a copy of the chart.
    """
    with tempfile.TemporaryDirectory() as tmp:
        chart = Path(tmp) / "gpu-inference"
        shutil.copytree(CHART, chart)
        shutil.copy(chart / "templates" / "NOTES.txt", chart / "notes.txt")
        (chart / "templates" / "zz-notes.yaml").write_text(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: |\n"
            '    {{- tpl (.Files.Get "notes.txt") . | nindent 4 }}\n'
        )
        result = _template(chart, values, sets, NAMESPACE, "--show-only", "templates/zz-notes.yaml")
        assert result.returncode == 0, result.stderr
        return str(yaml.safe_load(result.stdout)["data"]["notes"])


def render_error(sets: tuple[str, ...] = (), values: tuple[str, ...] = ()) -> str:
    """`helm template` expected to fail; returns its output."""
    result = _template(CHART, values, sets)
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


#: The design's signal (the chart's default is the inference preset's recommended set): tests of the
#: DCGM path ask for it.
GPU_SIGNAL = ("autoscaling.signals={gpuUtilization}",)


@pytest.fixture(scope="session")
def existing(helm_binary: str) -> Rendered:
    """The existing-cluster example (GPU Operator, kube-prometheus-stack) scaling on GPU utilization."""
    return render((str(EXAMPLE_EXISTING),), GPU_SIGNAL)


@pytest.fixture(scope="session")
def gpu_default(helm_binary: str) -> Rendered:
    """The defaults with the design's GPU-utilization signal."""
    return render((str(SCENARIOS["01-default"]),), GPU_SIGNAL)


# --- promtool --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def promtool() -> str:
    return find_binary("promtool", hint="Run `make tools` (builds promtool with Prometheus).")
