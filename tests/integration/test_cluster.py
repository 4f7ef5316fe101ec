"""The local cluster comes up with the chart installed and the GPU metric flowing to the HPA."""

from __future__ import annotations

import pykube
from kubernetes import client
from pytest_helm_charts.clusters import Cluster
from pytest_helm_charts.k8s.deployment import wait_for_deployments_to_run

from gpu_inference.adapters.helm import Helm
from gpu_inference.services.local.cluster import LocalCluster

from .helpers import (
    gpu_nodes,
    hpa_condition,
    hpa_current_gpu,
    inference_pods,
    ready,
    wait_for_hpa,
    wait_until,
)


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
