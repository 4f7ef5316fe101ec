"""The local cluster comes up with the chart installed and the GPU metric flowing to the HPA."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time

import pykube
from kubernetes import client
from pytest_helm_charts.clusters import Cluster
from pytest_helm_charts.k8s.deployment import wait_for_deployments_to_run

from gpu_inference.adapters.helm import Helm
from gpu_inference.domain.constants import GPU_RESOURCE
from gpu_inference.services import local
from gpu_inference.services.local import hostprocs
from gpu_inference.services.local.cluster import LocalCluster, profile_for_preset
from gpu_inference.services.local.config import LocalClusterConfig

from .helpers import (
    gpu_nodes,
    hpa_condition,
    hpa_current_gpu,
    inference_pods,
    ready,
    wait_for_hpa,
    wait_until,
)

log = logging.getLogger(__name__)
NODE_SCALER = "gpu_inference.services.local.nodescaler"


def test_release_is_deployed(local_cluster: LocalCluster) -> None:
    status = Helm(kubeconfig=local_cluster.kubeconfig).status(
        local_cluster.cfg.release, namespace=local_cluster.cfg.namespace
    )
    assert status == "deployed"


def test_deployments_run(kube_cluster: Cluster, local_cluster: LocalCluster) -> None:
    ns = local_cluster.cfg.namespace
    names = [d.name for d in pykube.Deployment.objects(kube_cluster.kube_client).filter(namespace=ns)]
    assert names, "the chart created no Deployment"
    wait_for_deployments_to_run(kube_cluster.kube_client, names, ns, timeout_sec=60)


def test_gpu_nodes_are_modelled_on_the_eks_node_group(api: client.ApiClient) -> None:
    nodes = gpu_nodes(api)
    assert nodes, "no GPU node"
    node = nodes[0]
    labels = node.metadata.labels
    assert labels["node.kubernetes.io/instance-type"] == "g4dn.xlarge"
    assert labels["k8s.amazonaws.com/accelerator"] == "nvidia-tesla-t4"
    assert labels["eks.amazonaws.com/capacityType"] == "ON_DEMAND"
    assert labels["topology.kubernetes.io/zone"].startswith("us-east-1")
    assert node.status.allocatable["nvidia.com/gpu"] == "1"
    assert node.status.capacity["cpu"] == "4"
    assert [(t.key, t.value, t.effect) for t in node.spec.taints] == [
        ("nvidia.com/gpu", "true", "NoSchedule")
    ]


def test_only_gpu_pods_land_on_gpu_nodes(api: client.ApiClient, local_cluster: LocalCluster) -> None:
    gpu_node_names = {n.metadata.name for n in gpu_nodes(api)}
    pods = client.CoreV1Api(api).list_namespaced_pod(local_cluster.cfg.namespace).items
    for p in pods:
        if p.spec.node_name in gpu_node_names:
            owner_kinds = {o.kind for o in p.metadata.owner_references or []}
            wants_gpu = any(
                "nvidia.com/gpu" in ((c.resources.limits or {}) if c.resources else {})
                for c in p.spec.containers
            )
            assert wants_gpu or "DaemonSet" in owner_kinds, f"{p.metadata.name} runs on a GPU node"


def test_custom_metric_has_one_value_per_ready_inference_pod(
    api: client.ApiClient, local_cluster: LocalCluster
) -> None:
    ready_pods = {p.metadata.name for p in inference_pods(api, local_cluster.cfg.namespace) if ready(p)}
    assert ready_pods

    def all_pods_have_a_value() -> dict[str, float] | None:
        values = local_cluster.custom_metric()
        return values if set(values) >= ready_pods else None

    values = wait_until("a GPU value for every Ready pod", all_pods_have_a_value, 60)
    assert set(values) == ready_pods
    assert all(0 <= v <= 100 for v in values.values())


def test_hpa_shows_a_number_for_the_gpu_metric(api: client.ApiClient, local_cluster: LocalCluster) -> None:
    ns = local_cluster.cfg.namespace
    h = wait_for_hpa(
        api, ns, "the HPA to report the GPU metric", lambda h: hpa_current_gpu(h) is not None, 90
    )
    active = hpa_condition(h, "ScalingActive")
    assert active is not None, "the HPA has no ScalingActive condition"
    assert active.status == "True", active
    assert h.spec.metrics[0].pods.metric.name == "DCGM_FI_DEV_GPU_UTIL"


def test_kwokctl_downloads_nothing(local_cluster: LocalCluster) -> None:
    plan = local_cluster.kwokctl.dry_run(
        "dry-run-probe",
        kubeconfig=local_cluster.workdir / "dry-run.kubeconfig",
        config_file=local_cluster.kwokctl_config(),
        extra_args=local_cluster.extra_args(),
    )
    downloads = [line for line in plan.splitlines() if line.startswith("# Download")]
    assert downloads, "dry run printed no plan"
    remote = [line for line in downloads if "http://" in line or "https://" in line]
    assert not remote, remote


def test_saved_settings_give_status_and_local_this_clusters_ports(local_cluster: LocalCluster) -> None:
    name = local_cluster.cfg.name
    saved = LocalClusterConfig.saved(name)
    assert saved is not None
    assert saved.front_door_port == local_cluster.cfg.front_door_port != LocalClusterConfig().front_door_port
    t = local.target(name)
    assert t.url == local_cluster.endpoints.front_door_url
    assert t.prometheus_url == local_cluster.endpoints.prometheus_url
    proc = subprocess.run(
        [sys.executable, "-m", "gpu_inference.cli.main", "local", "status", "--name", name],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    status = json.loads(proc.stdout)
    assert status["endpoints"]["front_door_url"] == local_cluster.endpoints.front_door_url
    assert all(status["processes"].values()), status["processes"]
    assert status["settings"]["profile"] in ("classic", "llm")


def test_simulator_profile_follows_the_installed_preset(local_cluster: LocalCluster) -> None:
    """`helm get values --all` of the release carries the inference subchart's preset."""
    preset = local_cluster.chart_preset()
    assert preset == "vllm"
    assert profile_for_preset(preset) == "llm"


def _probe_pod(name: str) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app.kubernetes.io/name": "gpu-probe"}),
        spec=client.V1PodSpec(
            node_selector={"gpu-inference.io/node-pool": "gpu"},
            tolerations=[client.V1Toleration(key=GPU_RESOURCE, operator="Exists", effect="NoSchedule")],
            containers=[
                client.V1Container(
                    name="probe",
                    image="registry.k8s.io/pause:3.10",
                    resources=client.V1ResourceRequirements(limits={GPU_RESOURCE: "1"}),
                )
            ],
        ),
    )


def test_eks_timing_gpu_node_ready_within_the_documented_range(
    api: client.ApiClient, local_cluster: LocalCluster
) -> None:
    """The eks profile (compressed with --time-scale 5): a GPU node for a pending GPU pod is Ready
    after EC2 boot + GPU driver + device plugin, within the documented range."""
    scale = 5.0
    eks = LocalCluster(
        local_cluster.cfg.model_copy(update={"timing": "eks", "time_scale": scale, "seed": 11})
    )
    t = eks.cfg.timings()
    workdir, core, ns = local_cluster.workdir, client.CoreV1Api(api), "default"
    before = {n.metadata.name for n in gpu_nodes(api)}
    hostprocs.stop(workdir, "node-scaler")
    hostprocs.start(workdir, "node-scaler", NODE_SCALER, eks.node_scaler_args(), python_module=True)
    probes = [f"gpu-probe-{i}" for i in range(2)]
    measured: dict[str, float] = {}
    try:
        time.sleep(1.0)  # the scaler's first scan happens at once
        created = time.monotonic()
        for p in probes:
            core.create_namespaced_pod(ns, _probe_pod(p))
        deadline = created + t.node_ready.high + 4 * t.scan_interval_s + 30
        while len(measured) < len(probes) and time.monotonic() < deadline:
            for n in gpu_nodes(api):
                name = n.metadata.name
                is_ready = any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
                if name not in before and name not in measured and is_ready:
                    measured[name] = time.monotonic() - created
            time.sleep(0.25)
        drawn = json.loads(local_cluster.node_scaler_status.read_text())["provision_delays_s"]
    finally:
        for p in probes:
            core.delete_namespaced_pod(p, ns, grace_period_seconds=0)
        hostprocs.stop(workdir, "node-scaler")
        hostprocs.start(
            workdir, "node-scaler", NODE_SCALER, local_cluster.node_scaler_args(), python_module=True
        )
    log.info(
        "eks timing at time scale %g: GPU node Ready after %s s, drawn delays %s s "
        "(documented %.1f-%.1f s, scan %.1f s)",
        scale,
        sorted(round(v, 1) for v in measured.values()),
        sorted(drawn),
        t.node_ready.low,
        t.node_ready.high,
        t.scan_interval_s,
    )
    assert len(measured) == len(probes), f"only {len(measured)} GPU node(s) became Ready: {measured}"
    assert len(drawn) == len(probes), drawn
    assert all(t.node_ready.low <= d <= t.node_ready.high for d in drawn), drawn
    for seconds, delay in zip(sorted(measured.values()), sorted(drawn), strict=True):
        # At least the drawn delay; at most that plus one scan and the scheduler's first try.
        assert delay - 0.5 <= seconds <= delay + t.scan_interval_s + 3, (seconds, delay)
        assert t.node_ready.low - 0.5 <= seconds <= t.node_ready.high + t.scan_interval_s + 3, seconds
