"""A fake Kubernetes core API for the node group scaler: nodes and pods in memory, as the typed
client objects the real API returns."""

from __future__ import annotations

import datetime as dt
import socket
from dataclasses import dataclass, field
from typing import Any

from clock_testkit import Clock  # noqa: F401 (re-exported: the scaler tests take it from here)
from kubernetes import client

from gpu_inference.domain.constants import GPU_RESOURCE

_DESERIALIZE = client.ApiClient()


def free_port() -> int:
    """A loopback port nothing listens on now (the OS's pick), so a test never meets a running cluster."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_ports(*settings: str) -> dict[str, int]:
    """{setting: a free port} for LocalClusterConfig's port fields a test does not set itself."""
    return {name: free_port() for name in settings}


def typed(data: dict[str, Any], kind: str) -> Any:
    """A dict as the API returns it, turned into the kubernetes client's model object."""
    return _DESERIALIZE._ApiClient__deserialize(data, kind)  # type: ignore[attr-defined]


@dataclass
class ObjectList:
    items: list[Any]


@dataclass
class FakeCoreApi:
    """list/create/delete Nodes and list Pods, nothing else."""

    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    pods: list[dict[str, Any]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    _serial: int = 0

    def create_node(self, manifest: dict[str, Any]) -> None:
        self._serial += 1
        stamp = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=self._serial)
        node = {**manifest, "metadata": {**manifest["metadata"], "creationTimestamp": stamp.isoformat()}}
        self.nodes[manifest["metadata"]["name"]] = node
        self.created.append(manifest["metadata"]["name"])

    def delete_node(self, name: str) -> None:
        del self.nodes[name]
        self.deleted.append(name)

    def list_node(self, label_selector: str | None = None) -> ObjectList:
        out = []
        for node in self.nodes.values():
            if label_selector:
                key, _, value = label_selector.partition("=")
                if node["metadata"]["labels"].get(key) != value:
                    continue
            out.append(typed(node, "V1Node"))
        return ObjectList(out)

    def list_pod_for_all_namespaces(self) -> ObjectList:
        return ObjectList([typed(p, "V1Pod") for p in self.pods])

    def group_nodes(self, group: str) -> list[str]:
        return [
            n
            for n, o in self.nodes.items()
            if o["metadata"]["labels"].get("eks.amazonaws.com/nodegroup") == group
        ]


def gpu_pod(name: str, node: str | None = None, gpus: int = 1) -> dict[str, Any]:
    """An inference pod as the chart makes it: GPU limit, GPU toleration, gpu node pool selector."""
    status: dict[str, Any] = {"phase": "Running" if node else "Pending"}
    if not node:
        status["conditions"] = [
            {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "no GPU"}
        ]
    return {
        "metadata": {"name": name, "namespace": "gpu-inference", "ownerReferences": []},
        "spec": {
            "nodeName": node,
            "nodeSelector": {"gpu-inference.io/node-pool": "gpu"},
            "tolerations": [{"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}],
            "containers": [
                {
                    "name": "server",
                    "image": "vllm/vllm-openai",
                    "resources": {"limits": {GPU_RESOURCE: str(gpus)}, "requests": {"cpu": "1"}},
                }
            ],
        },
        "status": status,
    }
