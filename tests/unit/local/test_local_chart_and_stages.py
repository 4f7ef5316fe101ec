"""Node shapes, kwok Stages and the chart values the local cluster installs."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpu_inference.domain.cluster_spec import load_cluster_spec
from gpu_inference.domain.constants import GPU_RESOURCE
from gpu_inference.paths import eksctl_config
from gpu_inference.services.local import nodes, stages
from gpu_inference.services.local.cluster import VALUES_OVERLAY, LocalCluster
from gpu_inference.services.local.config import LocalClusterConfig
from gpu_inference.services.local.timing import Interval

pytestmark = pytest.mark.unit

SPEC = load_cluster_spec(eksctl_config())
GPU = next(g for g in SPEC.node_groups if g.name == "gpu")
SYSTEM = next(g for g in SPEC.node_groups if g.name == "system")


def test_gpu_node_is_shaped_like_a_g4dn_xlarge_of_the_node_group() -> None:
    n = nodes.node_manifest(GPU, 4, "us-east-1")
    labels = n["metadata"]["labels"]
    assert labels[nodes.INSTANCE_TYPE_LABEL] == "g4dn.xlarge"
    assert labels[nodes.NODE_GROUP_LABEL] == "gpu"
    assert labels[nodes.CAPACITY_TYPE_LABEL] == "ON_DEMAND"
    assert labels[nodes.ZONE_LABEL] == "us-east-1b"  # the index picks the zone: 4 -> b
    assert labels["k8s.amazonaws.com/accelerator"] == "nvidia-tesla-t4"
    assert n["status"]["capacity"] == {
        "cpu": "4",
        "memory": "16Gi",
        "pods": str(GPU.shape.max_pods),
        "ephemeral-storage": f"{GPU.volume_size_gib}Gi",
        GPU_RESOURCE: "1",
    }
    assert n["status"]["allocatable"]["cpu"] == "3920m"  # EKS keeps some CPU for the kubelet
    assert n["spec"]["taints"] == [{"key": GPU_RESOURCE, "value": "true", "effect": "NoSchedule"}]
    assert n["metadata"]["annotations"][nodes.KWOK_NODE_ANNOTATION] == "fake"


def test_cpu_node_has_no_gpu_and_names_are_never_reused() -> None:
    n = nodes.node_manifest(SYSTEM, 0, "us-east-1")
    assert GPU_RESOURCE not in n["status"]["capacity"]
    assert not n["spec"]["taints"]
    names = {nodes.node_name(GPU) for _ in range(50)}
    assert len(names) == 50


def _stage(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(d for d in docs if d["metadata"]["name"] == name)


def test_gpu_pods_wait_for_the_image_pull_then_the_model_load() -> None:
    docs = stages.stages(Interval(100, 150), Interval(40, 60))
    start, ready = _stage(docs, "gpu-pod-start"), _stage(docs, "gpu-pod-ready")
    assert start["spec"]["delay"] == {"durationMilliseconds": 100_000, "jitterDurationMilliseconds": 150_000}
    assert ready["spec"]["delay"] == {"durationMilliseconds": 40_000, "jitterDurationMilliseconds": 60_000}
    assert '"False"\n  type: Ready' in start["spec"]["next"]["statusTemplate"]
    assert '"True"\n  type: Ready' in ready["spec"]["next"]["statusTemplate"]
    selectors = {e["key"]: e for e in start["spec"]["selector"]["matchExpressions"]}
    assert selectors[f'.spec.containers.[] | .resources.limits["{GPU_RESOURCE}"]']["operator"] == "Exists"


def test_other_pods_are_ready_at_once_and_fixed_delays_have_no_window() -> None:
    docs = stages.stages(5.0, 10.0)
    assert "delay" not in _stage(docs, "pod-ready")["spec"]
    assert _stage(docs, "gpu-pod-start")["spec"]["delay"] == {
        "durationMilliseconds": 5000,
        "jitterDurationMilliseconds": 5000,
    }
    assert {d["spec"]["resourceRef"]["kind"] for d in docs} == {"Node", "Pod"}


def test_overlay_values_carry_the_cluster_timing() -> None:
    cluster = LocalCluster(LocalClusterConfig(name="o", scrape_interval_s=7, scale_down_window_s=45))
    assert cluster.overlay_values() == {
        "wiring": {"scrapeInterval": "7s"},
        "autoscaling": {"behavior": {"scaleDown": {"stabilizationWindowSeconds": 45}}},
    }
    overlay = yaml.safe_load(VALUES_OVERLAY.read_text())
    relist = int(overlay["wiring"]["relistInterval"].rstrip("s"))
    assert relist >= 5, "the adapter's relist interval must not be shorter than the scrape interval"


def _fake_helm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "helm-calls.jsonl"
    helm = bin_dir / "helm"
    helm.write_text(
        "#!/usr/bin/env python3\nimport json, sys\n"
        f"open({str(calls)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "if sys.argv[1:3] == ['get', 'values']:\n"
        "    print(json.dumps({'inference': {'preset': 'vllm'}}))\n"
    )
    helm.chmod(helm.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("GPU_INFERENCE_TOOLS_BIN", str(bin_dir))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return calls


def test_user_values_and_set_go_over_the_overlay_in_helm_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _fake_helm(tmp_path, monkeypatch)
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text("inference: {preset: custom}\n")
    b.write_text("autoscaling: {maxReplicas: 3}\n")
    cfg = LocalClusterConfig.from_options(
        name="v", values_files=(a, b), set_values=("autoscaling.minReplicas=2", "x.y=z")
    )
    LocalCluster(cfg).install_chart()
    argv = json.loads(calls.read_text().splitlines()[0])
    files = [argv[i + 1] for i, x in enumerate(argv) if x == "-f"]
    sets = [argv[i + 1] for i, x in enumerate(argv) if x == "--set"]
    assert files == [str(VALUES_OVERLAY), str(cfg.workdir / "values-settings.yaml"), str(a), str(b)]
    assert sets == ["autoscaling.minReplicas=2", "x.y=z"]
    assert argv.index("--set") > max(i for i, x in enumerate(argv) if x == "-f")
    assert argv[:4] == ["upgrade", "--install", "gpu-inference", str(Path(argv[3]))]


def test_auto_profile_is_resolved_from_the_release_and_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_helm(tmp_path, monkeypatch)
    cluster = LocalCluster(LocalClusterConfig.from_options(name="auto", profile="auto"))
    cluster.cfg.save()
    cluster.resolve_profile()
    assert cluster.cfg.profile == "llm"
    assert LocalClusterConfig.for_name("auto").profile == "llm"


def test_explicit_profile_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _fake_helm(tmp_path, monkeypatch)
    cluster = LocalCluster(LocalClusterConfig.from_options(name="c", profile="classic"))
    cluster.resolve_profile()
    assert cluster.cfg.profile == "classic"
    assert not calls.exists(), "helm was asked although --profile was given"
