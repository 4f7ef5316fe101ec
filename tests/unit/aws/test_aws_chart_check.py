"""The chart as rendered vs the eksctl node groups: labels, taint, maxReplicas, one device plugin."""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
from aws_testkit import CLUSTER_YAML, REPO, TODAY, helm_binary

from gpu_inference.domain import eksctl_config as ec
from gpu_inference.services.eks.chart_check import check_alignment, extract, fits_labels, tolerates

pytestmark = pytest.mark.unit

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
GPU_SELECTOR = {"gpu-inference.io/node-pool": "gpu"}


def cfg() -> ec.ClusterConfig:
    return ec.load_and_check(CLUSTER_YAML, today=TODAY)[1]


def workload(kind: str, name: str, pod: dict[str, Any]) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name}, "spec": {"template": {"spec": pod}}}


def rendered() -> list[dict[str, Any]]:
    """A minimal chart rendering that satisfies every rule."""
    return [
        workload(
            "Deployment",
            "inference",
            {
                "nodeSelector": dict(GPU_SELECTOR),
                "tolerations": [dict(GPU_TOLERATION)],
                "containers": [
                    {"name": "server", "image": "x", "resources": {"limits": {"nvidia.com/gpu": 1}}}
                ],
            },
        ),
        {
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "inference"},
            "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": "inference"},
                "minReplicas": 1,
                "maxReplicas": 4,
            },
        },
        workload(
            "DaemonSet",
            "nvidia-device-plugin",
            {
                "nodeSelector": dict(GPU_SELECTOR),
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                "containers": [
                    {"name": "nvidia-device-plugin-ctr", "image": "nvcr.io/nvidia/k8s-device-plugin:v0.17.4"}
                ],
            },
        ),
        workload(
            "DaemonSet",
            "dcgm-exporter",
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {
                                    "matchExpressions": [
                                        {"key": "k8s.amazonaws.com/accelerator", "operator": "Exists"}
                                    ]
                                }
                            ]
                        }
                    }
                },
                "tolerations": [{"operator": "Exists"}],
                "containers": [{"name": "exporter", "image": "nvcr.io/nvidia/k8s/dcgm-exporter:4.2.3"}],
            },
        ),
        workload(
            "StatefulSet",
            "prometheus",
            {
                "nodeSelector": {"gpu-inference.io/node-pool": "system"},
                "containers": [{"name": "p", "image": "prom"}],
            },
        ),
        {"kind": "Service", "metadata": {"name": "inference"}, "spec": {"type": "LoadBalancer"}},
    ]


def problems(objects: list[dict[str, Any]], **kw: Any) -> list[str]:
    return [f"{p.setting}: {p.problem}" for p in check_alignment(cfg(), extract(objects), **kw)]


def find(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(
        o for o in objects if o["metadata"]["name"] == name and o["kind"] != "HorizontalPodAutoscaler"
    )


def test_aligned_rendering_passes() -> None:
    facts = extract(rendered())
    assert [w.ref for w in facts.gpu_workloads] == ["Deployment/inference"]
    assert facts.load_balancer_services == ["inference"]
    assert problems(rendered()) == []


def test_gpu_pod_without_toleration_fails() -> None:
    objs = rendered()
    find(objs, "inference")["spec"]["template"]["spec"]["tolerations"] = []
    assert any("Deployment/inference" in p and "do not match" in p for p in problems(objs))


def test_gpu_pod_selecting_a_label_the_group_lacks_fails() -> None:
    objs = rendered()
    find(objs, "inference")["spec"]["template"]["spec"]["nodeSelector"] = {
        "gpu-inference.io/node-pool": "gpus"
    }
    assert any("Deployment/inference" in p for p in problems(objs))


def test_max_replicas_above_gpu_node_group_max_fails() -> None:
    objs = rendered()
    next(o for o in objs if o["kind"] == "HorizontalPodAutoscaler")["spec"]["maxReplicas"] = 5
    found = problems(objs)
    assert any("maxReplicas" in p and "at most 4 node(s)" in p for p in found), found


def test_missing_hpa_fails() -> None:
    objs = [o for o in rendered() if o["kind"] != "HorizontalPodAutoscaler"]
    assert any("no HorizontalPodAutoscaler" in p for p in problems(objs))


def test_no_gpu_workload_fails() -> None:
    objs = [o for o in rendered() if o["metadata"]["name"] != "inference" or o["kind"] == "Service"]
    assert any("renders no workload with nvidia.com/gpu" in p for p in problems(objs))


def test_zero_or_two_device_plugins_fail() -> None:
    none = [o for o in rendered() if o["metadata"]["name"] != "nvidia-device-plugin"]
    assert any("0 device plugins" in p for p in problems(none))
    # eksctl's own plugin on top of the chart's (what --install-nvidia-plugin=true would do)
    assert any("2 device plugins" in p for p in problems(rendered(), eksctl_installs_plugin=True))
    two = [*rendered(), copy.deepcopy(find(rendered(), "nvidia-device-plugin"))]
    two[-1]["metadata"]["name"] = "second-plugin"
    assert any("2 device plugins" in p for p in problems(two))


def test_device_plugin_selecting_nfd_labels_cannot_run_on_gpu_nodes() -> None:
    """The upstream plugin chart selects on NFD/GFD labels, which EKS nodes lack (k8s-device-plugin#708)."""
    objs = rendered()
    pod = find(objs, "nvidia-device-plugin")["spec"]["template"]["spec"]
    pod["nodeSelector"] = {"feature.node.kubernetes.io/pci-10de.present": "true"}
    assert any("DaemonSet/nvidia-device-plugin" in p and "cannot run" in p for p in problems(objs))


def test_cpu_workload_tolerating_the_gpu_taint_fails() -> None:
    objs = rendered()
    pod = find(objs, "prometheus")["spec"]["template"]["spec"]
    pod["nodeSelector"] = {}
    pod["tolerations"] = [{"operator": "Exists"}]
    assert any("StatefulSet/prometheus" in p and "GPU taint" in p for p in problems(objs))
    # pinned to the system pool it may tolerate whatever it likes: it cannot land on a GPU node
    pod["nodeSelector"] = {"gpu-inference.io/node-pool": "system"}
    assert not any("prometheus" in p for p in problems(objs))


@pytest.mark.parametrize(
    ("toleration", "expected"),
    [
        ({"operator": "Exists"}, True),
        ({"key": "nvidia.com/gpu", "operator": "Exists"}, True),
        ({"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}, True),
        ({"key": "nvidia.com/gpu", "value": "false"}, False),
        ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoExecute"}, False),
        ({"key": "other", "operator": "Exists"}, False),
    ],
)
def test_toleration_semantics(toleration: dict[str, str], expected: bool) -> None:
    assert tolerates([toleration], "nvidia.com/gpu", "true", "NoSchedule") is expected


def test_node_affinity_semantics() -> None:
    labels = {"a": "1", "b": "x"}

    def aff(*exprs: dict[str, Any]) -> dict[str, Any]:
        terms = [{"matchExpressions": list(exprs)}]
        return {
            "affinity": {
                "nodeAffinity": {
                    "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}
                }
            }
        }

    assert fits_labels(aff({"key": "a", "operator": "In", "values": ["1", "2"]}), labels)
    assert not fits_labels(aff({"key": "a", "operator": "NotIn", "values": ["1"]}), labels)
    assert fits_labels(aff({"key": "c", "operator": "DoesNotExist"}), labels)
    assert fits_labels(aff({"key": "a", "operator": "Gt", "values": ["0"]}), labels)
    assert not fits_labels(
        aff({"key": "b", "operator": "Exists"}, {"key": "c", "operator": "Exists"}), labels
    )


# --------------------------------------------------------------------------- the real chart

CHART = REPO / "charts" / "gpu-inference"


@pytest.mark.skipif(not (CHART / "Chart.yaml").is_file(), reason="charts/gpu-inference is not written yet")
@pytest.mark.skipif(helm_binary() is None, reason="helm not built (make tools)")
def test_real_chart_defaults_fit_the_eksctl_node_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    """helm template of the real chart (defaults, the cluster's Kubernetes version) vs eksctl/cluster.yaml."""
    import yaml

    from gpu_inference.adapters import process

    helm = helm_binary()
    assert helm is not None
    monkeypatch.setenv("GPU_INFERENCE_TOOLS_BIN", os.path.dirname(helm))
    c = cfg()
    out = process.run(
        "helm",
        [
            "template",
            "gpu-inference",
            str(CHART),
            "-n",
            "gpu-inference",
            "--kube-version",
            f"{c.metadata.version}.0",
        ],
        timeout=120,
    )
    objects = [d for d in yaml.safe_load_all(out.stdout) if d]
    found = [f"{p.setting}: {p.problem}" for p in check_alignment(c, extract(objects))]
    assert found == []
