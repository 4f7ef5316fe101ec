"""Test doubles for the load-test tests: real HTTP servers on 127.0.0.1, no mocks of our own code.

- RouteServer: a threaded http.server answering from a function; always closed by its fixture.
- openai_routes: a tiny OpenAI-compatible API (the vLLM preset's routes), optionally broken.
- ClusterBackend: Prometheus' query API and the Kubernetes API paths the sampler reads, answering
  with the recorded responses in data/ (Prometheus 2.42 answers; Kubernetes objects that validate
  against the 1.36 schema) adjusted to a scripted state.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from gpu_inference.domain.timeline import Target

DATA = Path(__file__).parent / "data"
NAMESPACE = "gpu-inference"
HPA = "gpu-inference"
MODEL = "Qwen/Qwen2.5-1.5B-Instruct"

Handler = Callable[[str, str, dict[str, list[str]], bytes], tuple[int, Any]]


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((DATA / name).read_text())
    return data


class RouteServer:
    """HTTP server on 127.0.0.1 (ephemeral port) whose answers come from `handler`."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.calls: list[tuple[str, str]] = []
        outer = self

        class _H(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                url = urlparse(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.calls.append((self.command, url.path))
                status, payload = outer.handler(self.command, url.path, parse_qs(url.query), body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, *_: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


# ---------------------------------------------------------------- OpenAI-compatible API


@dataclass
class OpenAIState:
    """What the fake API served; `broken_every` > 0 makes every n-th completion malformed."""

    latency_s: float = 0.02
    broken_every: int = 0
    completions: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    first_request_at: float | None = None
    last_request_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def openai_routes(state: OpenAIState) -> Handler:
    def handle(method: str, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any]:
        if method == "GET" and path == "/v1/models":
            return 200, {
                "object": "list",
                "data": [{"id": MODEL, "object": "model", "created": 1, "owned_by": "vllm"}],
            }
        if method == "GET" and path == "/health":
            return 200, {}
        if method != "POST" or path not in ("/v1/completions", "/v1/chat/completions"):
            return 404, {"error": "not found"}
        req = json.loads(body)
        if req.get("model") != MODEL:
            return 404, {"object": "error", "message": f"model {req.get('model')} does not exist"}
        time.sleep(state.latency_s)
        completion = int(req.get("max_tokens", 16))
        prompt = 12 if path == "/v1/completions" else 30
        with state.lock:
            now = time.time()
            state.first_request_at = state.first_request_at or now
            state.last_request_at = now
            state.completions += 1
            n = state.completions
            if state.broken_every and n % state.broken_every == 0:
                return 200, {"id": f"cmpl-{n}", "object": "text_completion", "choices": []}
            state.prompt_tokens += prompt
            state.completion_tokens += completion
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if path == "/v1/completions":
            choice: dict[str, Any] = {
                "index": 0,
                "text": "lorem " * 3,
                "finish_reason": "length",
                "logprobs": None,
            }
            obj = "text_completion"
        else:
            choice = {
                "index": 0,
                "message": {"role": "assistant", "content": "lorem"},
                "finish_reason": "length",
            }
            obj = "chat.completion"
        return 200, {
            "id": f"cmpl-{n}",
            "object": obj,
            "created": int(now),
            "model": MODEL,
            "choices": [choice],
            "usage": usage,
        }

    return handle


# ---------------------------------------------------------------- Prometheus + Kubernetes API


@dataclass
class ClusterState:
    """What the scripted cluster shows at one moment."""

    desired: int = 1
    current: int = 1
    ready: int = 1
    utils: list[float] = field(default_factory=lambda: [30.0])
    gpu_nodes: int = 1
    conditions: list[dict[str, str]] | None = None
    hpa_value: str | None = "30"


def _recorded_prom(name: str) -> dict[str, Any]:
    status, body = load("prometheus-2.42-recorded.json")[name]["status"]
    assert status == 200
    return copy.deepcopy(body)


def pod_name(i: int) -> str:
    return f"gpu-inference-inference-7d9f8b6c5-p{i:04d}"


def gpu_node_name(i: int) -> str:
    return f"ip-192-168-{10 + i}-11.ec2.internal"


class ClusterBackend:
    """Serves /api/v1/query* (Prometheus) and the HPA/Deployment/Pod/Node reads (Kubernetes)."""

    def __init__(self, script: Callable[[], ClusterState]) -> None:
        self.script = script
        self.prometheus_down = False
        self.hpa_missing = False
        self.queries: list[str] = []
        #: Completed samples: a sample reads the nodes last, so each node read ends one.
        self.samples_served = 0

    def __call__(self, method: str, path: str, query: dict[str, list[str]], body: bytes) -> tuple[int, Any]:
        st = self.script()
        if path.startswith("/api/v1/query"):
            return self._prometheus(path, query, st)
        if path == f"/apis/autoscaling/v2/namespaces/{NAMESPACE}/horizontalpodautoscalers/{HPA}":
            if self.hpa_missing:
                return 404, {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "status": "Failure",
                    "reason": "NotFound",
                    "code": 404,
                    "message": f'horizontalpodautoscalers.autoscaling "{HPA}" not found',
                }
            return 200, self.hpa(st)
        if path == f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/gpu-inference-inference":
            dep = load("deployment.json")
            dep["status"].update(
                {"replicas": st.current, "readyReplicas": st.ready, "availableReplicas": st.ready}
            )
            return 200, dep
        if path == f"/api/v1/namespaces/{NAMESPACE}/pods":
            return 200, {
                "apiVersion": "v1",
                "kind": "PodList",
                "metadata": {"resourceVersion": "1"},
                "items": [self.pod(i, st) for i in range(st.current)],
            }
        if path == "/api/v1/nodes":
            self.samples_served += 1
            return 200, {
                "apiVersion": "v1",
                "kind": "NodeList",
                "metadata": {"resourceVersion": "1"},
                "items": [load("node-system.json"), *(self.gpu_node(i) for i in range(st.gpu_nodes))],
            }
        return 404, {"kind": "Status", "code": 404, "message": f"{path} not served"}

    def _prometheus(self, path: str, query: dict[str, list[str]], st: ClusterState) -> tuple[int, Any]:
        if self.prometheus_down:
            return 503, b"Service Unavailable"
        q = query.get("query", [""])[0]
        self.queries.append(q)
        if q == "vector(1)":
            return 200, _recorded_prom("vector1")
        if "DCGM_FI_DEV_GPU_UTIL" in q:
            values = st.utils
        elif "DCGM_FI_DEV_FB_USED" in q:
            values = [14000.0 + i for i in range(len(st.utils))]
        elif "DCGM_FI_DEV_GPU_TEMP" in q:
            values = [60.0 + i for i in range(len(st.utils))]
        else:
            return 200, _recorded_prom("empty")
        body = _recorded_prom("util")
        template = body["data"]["result"][0]
        ts = template["value"][0]
        body["data"]["result"] = [
            {"metric": {**template["metric"], "pod": pod_name(i)}, "value": [ts, f"{v:g}"]}
            for i, v in enumerate(values)
        ]
        return 200, body

    def hpa(self, st: ClusterState) -> dict[str, Any]:
        hpa = load("hpa.json")
        hpa["status"]["currentReplicas"] = st.current
        hpa["status"]["desiredReplicas"] = st.desired
        if st.hpa_value is None:
            hpa["status"].pop("currentMetrics")
        else:
            hpa["status"]["currentMetrics"][0]["pods"]["current"]["averageValue"] = st.hpa_value
        if st.conditions is not None:
            hpa["status"]["conditions"] = [
                {"lastTransitionTime": "2026-11-29T12:01:00Z", **c} for c in st.conditions
            ]
        return hpa

    def pod(self, i: int, st: ClusterState) -> dict[str, Any]:
        pod = load("pod.json")
        pod["metadata"]["name"] = pod_name(i)
        pod["spec"]["nodeName"] = gpu_node_name(i)
        ready = "True" if i < st.ready else "False"
        for c in pod["status"]["conditions"]:
            if c["type"] in ("Ready", "ContainersReady"):
                c["status"] = ready
        return pod

    def gpu_node(self, i: int) -> dict[str, Any]:
        node = load("node-gpu.json")
        node["metadata"]["name"] = gpu_node_name(i)
        node["metadata"]["labels"]["kubernetes.io/hostname"] = gpu_node_name(i)
        return node


def write_kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "fake", "cluster": {"server": server}}],
                "users": [{"name": "fake", "user": {"token": "not-a-secret"}}],
                "contexts": [
                    {"name": "fake", "context": {"cluster": "fake", "user": "fake", "namespace": NAMESPACE}}
                ],
                "current-context": "fake",
            }
        )
    )
    return path


def fake_target(url: str, cluster_url: str, kubeconfig: Path, *, simulated: bool = False) -> Target:
    """verify-scaleup's target: the API at `url`, the fake cluster's Prometheus at `cluster_url` and its
    Kubernetes API through `kubeconfig`, the workload's namespace and HPA."""
    return Target(
        url=url,
        prometheus_url=cluster_url,
        kubeconfig=kubeconfig,
        namespace=NAMESPACE,
        hpa_name=HPA,
        simulated=simulated,
    )
