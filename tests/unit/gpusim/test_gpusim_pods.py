"""Pod-watch logic with plain V1Pod/V1Node objects (no API server)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from kubernetes import client

from gpu_inference.errors import ConfigError
from gpu_inference.gpusim.model import TESLA_T4
from gpu_inference.gpusim.pods import (
    AddressAllocator,
    AddressMode,
    PodKind,
    PodTracker,
    node_info,
    pod_address,
    pod_info,
    served_model_from_args,
)

pytestmark = pytest.mark.unit

MakePod = Callable[..., client.V1Pod]
MakeNode = Callable[..., client.V1Node]


def test_pod_info_reads_the_gpu_container(make_pod: MakePod) -> None:
    pod = make_pod(
        "inf-1",
        pod_ip="127.10.0.5",
        args=[
            "--model",
            "org/m",
            "--served-model-name=served",
            "--max-model-len",
            "2048",
            "--max-num-seqs=64",
            "--gpu-memory-utilization=0.85",
        ],
        port=8001,
    )
    info = pod_info(PodKind.INFERENCE, pod)
    assert (info.container, info.gpu_count, info.port) == ("vllm", 1, 8001)
    assert (info.model_name, info.max_model_len) == ("served", 2048)
    assert (info.max_num_seqs, info.gpu_memory_utilization) == (64, 0.85)
    assert (info.node, info.pod_ip, info.ready, info.phase) == ("gpu-node-1", "127.10.0.5", True, "Running")
    assert info.key == "default/inf-1"


@pytest.mark.parametrize(
    ("tokens", "model"),
    [
        (["vllm", "serve", "org/a", "--port", "8000"], "org/a"),
        (["--model=org/b"], "org/b"),
        (["python3", "-m", "vllm.entrypoints.openai.api_server", "--model", "org/c"], "org/c"),
        (["--served-model-name", "x", "--model", "org/d"], "x"),
        (["--port", "8000"], None),
    ],
)
def test_served_model_from_args(tokens: list[str], model: str | None) -> None:
    assert served_model_from_args(tokens) == model


def test_node_info_reads_gpu_capacity_and_model(make_node: MakeNode) -> None:
    info = node_info(make_node("gpu-a", gpus=4))
    assert (info.gpu_count, info.spec, info.spec_known) == (4, TESLA_T4, True)
    cpu = node_info(make_node("cpu-a", gpus=0, labels={}))
    assert (cpu.gpu_count, cpu.spec_known) == (0, False)


def test_only_ready_pods_are_served(make_pod: MakePod, make_node: MakeNode) -> None:
    t = PodTracker()
    t.replace_nodes([make_node("gpu-node-1")])
    t.apply_pod(PodKind.INFERENCE, "ADDED", make_pod("inf-1", pod_ip="127.10.0.5", ready=False))
    (r,) = t.desired().replicas
    assert not r.serving
    assert r.address is None
    assert r.gpus == (0,)  # a Running-not-Ready pod already holds its GPU (and shows 0 % there)
    t.apply_pod(PodKind.INFERENCE, "MODIFIED", make_pod("inf-1", pod_ip="127.10.0.5", ready=True))
    (r,) = t.desired().replicas
    assert r.serving
    assert r.address == "127.10.0.5"
    t.apply_pod(PodKind.INFERENCE, "DELETED", make_pod("inf-1", pod_ip="127.10.0.5"))
    assert t.desired().replicas == ()


def test_unscheduled_and_finished_pods_are_ignored(make_pod: MakePod) -> None:
    t = PodTracker()
    t.replace_pods(
        PodKind.INFERENCE,
        [make_pod("pending", node=None, phase="Pending", ready=False), make_pod("done", phase="Succeeded")],
    )
    assert t.desired().replicas == ()


def test_non_loopback_pod_ip_is_refused_with_the_fix(make_pod: MakePod) -> None:
    t = PodTracker()
    t.apply_pod(PodKind.INFERENCE, "ADDED", make_pod("inf-1", pod_ip="10.244.0.7"))
    (r,) = t.desired().replicas
    assert not r.serving
    assert "127.0.0.0/8" in r.problem
    assert "--address-mode allocate" in r.problem


def test_allocate_mode_gives_stable_distinct_loopback_addresses(make_pod: MakePod) -> None:
    alloc = AddressAllocator("127.1.0.0/30")  # two usable hosts
    t = PodTracker(AddressMode.ALLOCATE, alloc)
    t.apply_pod(PodKind.INFERENCE, "ADDED", make_pod("a", pod_ip="10.0.0.1"))
    t.apply_pod(PodKind.INFERENCE, "ADDED", make_pod("b", pod_ip="10.0.0.2"))
    first = {r.pod.name: r.address for r in t.desired().replicas}
    assert first == {"a": "127.1.0.1", "b": "127.1.0.2"}
    assert {r.pod.name: r.address for r in t.desired().replicas} == first  # stable
    t.apply_pod(PodKind.INFERENCE, "ADDED", make_pod("c"))
    c = next(r for r in t.desired().replicas if r.pod.name == "c")
    assert c.address is None
    assert "exhausted" in c.problem
    t.apply_pod(PodKind.INFERENCE, "DELETED", make_pod("a"))
    t.desired()  # releases a's address
    c = next(r for r in t.desired().replicas if r.pod.name == "c")
    assert c.address == "127.1.0.1"


@pytest.mark.parametrize("cidr", ["10.0.0.0/24", "not-a-cidr", "::1/128"])
def test_allocate_cidr_must_be_loopback(cidr: str) -> None:
    with pytest.raises(ConfigError) as err:
        AddressAllocator(cidr)
    assert err.value.setting == "--allocate-cidr"


def test_pod_address_strategies(make_pod: MakePod) -> None:
    info = pod_info(PodKind.INFERENCE, make_pod("x", pod_ip="127.3.4.5"))
    assert pod_address(info, AddressMode.POD_IP, None) == ("127.3.4.5", "")
    no_ip = pod_info(PodKind.INFERENCE, make_pod("y", pod_ip=None))
    assert pod_address(no_ip, AddressMode.POD_IP, None)[0] is None
    assert pod_address(no_ip, AddressMode.ALLOCATE, AddressAllocator("127.9.0.0/24")) == ("127.9.0.1", "")


def test_gpu_assignment_is_stable_and_reuses_freed_gpus(make_pod: MakePod, make_node: MakeNode) -> None:
    t = PodTracker()
    t.replace_nodes([make_node("multi", gpus=2)])
    t.apply_pod(PodKind.INFERENCE, "ADDED", make_pod("first", node="multi", pod_ip="127.10.0.1"))
    t.apply_pod(PodKind.INFERENCE, "ADDED", make_pod("second", node="multi", pod_ip="127.10.0.2"))
    assert {r.pod.name: r.gpus for r in t.desired().replicas} == {"first": (0,), "second": (1,)}
    t.apply_pod(PodKind.INFERENCE, "DELETED", make_pod("first", node="multi"))
    t.apply_pod(PodKind.INFERENCE, "ADDED", make_pod("third", node="multi", pod_ip="127.10.0.3"))
    assert {r.pod.name: r.gpus for r in t.desired().replicas} == {"second": (1,), "third": (0,)}
    t.apply_pod(PodKind.INFERENCE, "ADDED", make_pod("fourth", node="multi", pod_ip="127.10.0.4"))
    fourth = next(r for r in t.desired().replicas if r.pod.name == "fourth")
    assert fourth.gpus == ()  # node full: it serves but no GPU figures are invented for it
    (node,) = t.desired().nodes
    assert (node.name, node.gpu_count) == ("multi", 2)


def test_pod_without_gpu_limit_holds_no_gpu(make_pod: MakePod) -> None:
    t = PodTracker()
    t.apply_pod(PodKind.INFERENCE, "ADDED", make_pod("cpu-only", pod_ip="127.10.0.9", gpus=0))
    (r,) = t.desired().replicas
    assert r.gpus == ()
    assert r.serving
    assert t.desired().nodes == ()


def test_unknown_node_gets_the_gpus_its_pods_hold(make_pod: MakePod) -> None:
    t = PodTracker()
    t.apply_pod(PodKind.INFERENCE, "ADDED", make_pod("x", node="not-yet-seen", pod_ip="127.10.0.1", gpus=2))
    (node,) = t.desired().nodes
    assert (node.name, node.gpu_count) == ("not-yet-seen", 2)


def test_exporter_pods_map_to_their_node(make_pod: MakePod, make_node: MakeNode) -> None:
    t = PodTracker()
    t.replace_nodes([make_node("gpu-node-1"), make_node("gpu-node-2")])
    exp = dict(
        gpus=0,
        container="exporter",
        port=9400,
        port_name="metrics",
        labels={"app.kubernetes.io/name": "dcgm-exporter"},
    )
    t.replace_pods(
        PodKind.EXPORTER,
        [
            make_pod("dcgm-a", node="gpu-node-1", pod_ip="127.20.0.1", **exp),
            make_pod("dcgm-b", node="gpu-node-2", pod_ip="127.20.0.2", phase="Pending", ready=False, **exp),
        ],
    )
    (e,) = t.desired().exporters
    assert (e.pod.name, e.pod.node, e.address, e.pod.port, e.pod.container) == (
        "dcgm-a",
        "gpu-node-1",
        "127.20.0.1",
        9400,
        "exporter",
    )
    assert [n.name for n in t.desired().nodes] == ["gpu-node-1", "gpu-node-2"]
