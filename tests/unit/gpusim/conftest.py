"""Shared builders for the GPU simulator's unit tests: plain V1Pod/V1Node objects, loopback hosts."""

from __future__ import annotations

import datetime as dt
import random
import socket
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client


def _bindable(host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, 0))
        except OSError:
            return False
    return True


@pytest.fixture
def loopback_host() -> Callable[[], str]:
    """A fresh random address in 127.200.0.0-127.250.255.254, so parallel workers don't collide."""
    used: set[str] = set()

    def pick() -> str:
        for _ in range(100):
            host = f"127.{random.randint(200, 250)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
            if host not in used and _bindable(host):
                used.add(host)
                return host
        raise RuntimeError("no bindable loopback address")

    return pick


@pytest.fixture
def make_pod() -> Callable[..., client.V1Pod]:
    counter = iter(range(1, 10_000))

    def build(
        name: str,
        *,
        namespace: str = "default",
        node: str | None = "gpu-node-1",
        pod_ip: str | None = None,
        ready: bool = True,
        phase: str = "Running",
        gpus: int = 1,
        container: str = "vllm",
        port: int | None = 8000,
        port_name: str = "http",
        args: list[str] | None = None,
        uid: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> client.V1Pod:
        n = next(counter)
        resources = client.V1ResourceRequirements(
            limits={"nvidia.com/gpu": str(gpus), "cpu": "2"} if gpus else {"cpu": "2"}
        )
        ports = [client.V1ContainerPort(container_port=port, name=port_name)] if port else None
        sidecar = client.V1Container(name="sidecar", image="busybox")
        main = client.V1Container(
            name=container, image="vllm/vllm-openai", resources=resources, ports=ports, args=args
        )
        return client.V1Pod(
            metadata=client.V1ObjectMeta(
                name=name,
                namespace=namespace,
                uid=uid or f"uid-{name}",
                labels=labels or {"app.kubernetes.io/name": "inference"},
                creation_timestamp=dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=n),
            ),
            spec=client.V1PodSpec(node_name=node, containers=[sidecar, main]),
            status=client.V1PodStatus(
                phase=phase,
                pod_ip=pod_ip,
                conditions=[client.V1PodCondition(type="Ready", status="True" if ready else "False")],
            ),
        )

    return build


@pytest.fixture
def make_node() -> Callable[..., client.V1Node]:
    def build(name: str, gpus: int = 1, labels: dict[str, str] | None = None) -> client.V1Node:
        default_labels = {
            "k8s.amazonaws.com/accelerator": "nvidia-tesla-t4",
            "node.kubernetes.io/instance-type": "g4dn.xlarge",
        }
        capacity: dict[str, Any] = {"cpu": "4", "memory": "16Gi"}
        if gpus:
            capacity["nvidia.com/gpu"] = str(gpus)
        return client.V1Node(
            metadata=client.V1ObjectMeta(name=name, labels=default_labels if labels is None else labels),
            status=client.V1NodeStatus(capacity=capacity, allocatable=capacity),
        )

    return build
