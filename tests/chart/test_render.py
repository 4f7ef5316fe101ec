"""Render every ci/ scenario with the real helm, lint it, and validate every object offline
against the Kubernetes OpenAPI schemas (kubernetes-validate, strict: unknown fields fail)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from .conftest import CHART, CI_DIR, EXAMPLE_EXISTING, SCENARIOS, Rendered, helm

pytestmark = pytest.mark.unit

# Oldest supported (Chart.yaml kubeVersion >=1.30), the cluster's (eksctl/cluster.yaml) and the
# newest kubernetes-validate knows.
K8S_VERSIONS = ["1.30.0", "1.36.0", "1.37.0"]
# prometheus-operator and cert-manager CRDs: no schema in kubernetes-validate; their shape is
# asserted in test_semantics.py and test_hardening.py instead.
# KEDA's ScaledObject is validated against KEDA's own CRD schema in test_keda.py.
CRD_KINDS = {"PodMonitor", "PrometheusRule", "Certificate", "Issuer", "ScaledObject"}


def test_every_scenario_is_listed() -> None:
    assert len(SCENARIOS) >= 7, SCENARIOS
    assert "01-default" in SCENARIOS
    assert "02-existing-cluster" in SCENARIOS


def test_existing_cluster_scenario_is_the_documented_example() -> None:
    # ci/02 is what CI renders; examples/ is what users copy. They must not drift apart.
    assert (CI_DIR / "02-existing-cluster-values.yaml").read_text() == EXAMPLE_EXISTING.read_text()


def test_scenario_renders(scenario: tuple[str, Rendered]) -> None:
    name, rendered = scenario
    assert rendered.objects, name
    for obj in rendered.objects:
        labels = obj["metadata"].get("labels", {})
        for key in (
            "app.kubernetes.io/name",
            "app.kubernetes.io/instance",
            "app.kubernetes.io/managed-by",
            "helm.sh/chart",
            "app.kubernetes.io/part-of",
        ):
            assert key in labels, f"{name}: {obj['kind']}/{obj['metadata']['name']} lacks label {key}"


@pytest.mark.parametrize("scenario_name", sorted(SCENARIOS))
def test_helm_lint_strict(scenario_name: str, helm_binary: str) -> None:
    result = helm("lint", "--strict", str(CHART), "-f", str(SCENARIOS[scenario_name]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def _validate(obj: dict[str, Any], version: str) -> str | None:
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}"
    return None


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_objects_match_kubernetes_schemas(scenario: tuple[str, Rendered], version: str) -> None:
    name, rendered = scenario
    errors = [
        err for obj in rendered.objects if obj["kind"] not in CRD_KINDS if (err := _validate(obj, version))
    ]
    assert not errors, f"{name} against Kubernetes {version}:\n" + "\n".join(errors)


def test_schema_validation_catches_an_unknown_field(default: Rendered) -> None:
    # The validator itself must be able to fail: a typo'd field in a rendered Deployment.
    deployment = dict(default.one("Deployment", "inference"))
    broken = {**deployment, "spec": {**deployment["spec"], "replicaz": 3}}
    assert _validate(broken, "1.36.0") is not None
