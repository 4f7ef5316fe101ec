"""Which pods the rendered scrape configurations actually scrape, and with which target labels.

`promtool check service-discovery` runs Prometheus's own Kubernetes service discovery and
relabeling against a stand-in API server on loopback that serves pod objects shaped like the
real ones: the NVIDIA GPU Operator's dcgm-exporter DaemonSet pod (NVIDIA/gpu-operator
assets/state-dcgm-exporter/0800_daemonset.yaml: label app=nvidia-dcgm-exporter, namespace
gpu-operator, container port `metrics` 9400; `gpu-metrics` is only the port name of its Service,
0400_service.yaml) and the chart's own exporter pod. The pod objects are hand-written fixtures,
not captured from a cluster."""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml

from gpu_inference.adapters.process import find_binary, run

from .conftest import NAMESPACE, SCENARIOS, Rendered, render

pytestmark = pytest.mark.unit

AGENTS_NS = f"{NAMESPACE}-gpu-agents"
NODE = "ip-10-0-1-23.ec2.internal"


def pod(
    name: str, namespace: str, labels: dict[str, str], container: str, ports: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "resourceVersion": "1",
            "labels": labels,
        },
        "spec": {
            "nodeName": NODE,
            "containers": [{"name": container, "image": "img", "ports": ports}],
        },
        "status": {
            "phase": "Running",
            "podIP": "10.0.1.5",
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


# The GPU Operator's exporter pod: the DaemonSet's pod template labels and container port.
GPU_OPERATOR_EXPORTER = pod(
    "nvidia-dcgm-exporter-7xk2p",
    "gpu-operator",
    {"app": "nvidia-dcgm-exporter", "controller-revision-hash": "6d8f7c9b4", "pod-template-generation": "1"},
    "nvidia-dcgm-exporter",
    [{"name": "metrics", "containerPort": 9400, "protocol": "TCP"}],
)


def chart_exporter(r: Rendered) -> dict[str, Any]:
    """A pod of the chart's own exporter DaemonSet, from its rendered template."""
    ds = r.one("DaemonSet", "dcgm-exporter")
    c = ds["spec"]["template"]["spec"]["containers"][0]
    return pod(
        f"{ds['metadata']['name']}-q8r4t",
        ds["metadata"]["namespace"],
        dict(ds["spec"]["template"]["metadata"]["labels"]),
        c["name"],
        c["ports"],
    )


class _FakeAPI:
    """Serves GET list/watch of pods per namespace, as much of the API as pod discovery uses."""

    def __init__(self, pods: list[dict[str, Any]]) -> None:
        self.pods = pods
        self.stop = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _json(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                m = re.fullmatch(r"/api/v1(?:/namespaces/([^/]+))?/pods", url.path)
                if not m:
                    self._json(404, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404})
                    return
                if query.get("watch") == ["true"]:
                    if "sendInitialEvents" in query:  # no streaming lists here: client-go falls back to LIST
                        self._json(
                            400, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 400}
                        )
                        return
                    # An open watch that never sends an event, until the test ends.
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    self.wfile.flush()
                    api.stop.wait(60)
                    return
                items = [p for p in api.pods if m.group(1) in (None, p["metadata"]["namespace"])]
                self._json(
                    200,
                    {
                        "apiVersion": "v1",
                        "kind": "PodList",
                        "metadata": {"resourceVersion": "1"},
                        "items": items,
                    },
                )

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def kubeconfig(self, path: Path) -> Path:
        port = self.server.server_address[1]
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                    "users": [{"name": "u", "user": {}}],
                    "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                    "current-context": "x",
                }
            )
        )
        return path


@contextmanager
def fake_api(pods: list[dict[str, Any]]) -> Iterator[_FakeAPI]:
    api = _FakeAPI(pods)
    api.thread.start()
    try:
        yield api
    finally:
        api.stop.set()
        api.server.shutdown()
        api.server.server_close()
        api.thread.join(timeout=10)


@pytest.fixture(scope="module")
def promtool() -> str:
    return find_binary("promtool", hint="Run `make tools` (builds promtool with Prometheus).")


def discover(
    promtool: str, job: dict[str, Any], pods: list[dict[str, Any]], tmp: Path
) -> list[dict[str, str]]:
    """Target label sets Prometheus keeps for `job` (a scrape_configs entry) given these pods."""
    with fake_api(pods) as api:
        kubeconfig = api.kubeconfig(tmp / "kubeconfig")
        job = json.loads(json.dumps(job))
        for sd in job["kubernetes_sd_configs"]:
            sd.pop("api_server", None)
            sd["kubeconfig_file"] = str(kubeconfig)
        (tmp / "prometheus.yml").write_text(yaml.safe_dump({"scrape_configs": [job]}))
        result = run(
            promtool,
            ["check", "service-discovery", "--timeout=2s", str(tmp / "prometheus.yml"), job["job_name"]],
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    targets = json.loads(result.stdout)
    # Dropped targets come back with no labels.
    return [
        {k: v for k, v in t["labels"].items() if not k.startswith("__")}
        for t in targets
        if t.get("labels") and not t.get("error")
    ]


def scrape_job(r: Rendered, name: str) -> dict[str, Any]:
    cfg = yaml.safe_load(r.one("ConfigMap", "prometheus")["data"]["prometheus.yml"])
    return dict(next(j for j in cfg["scrape_configs"] if j["job_name"] == name))


# --- the chart's Prometheus ----------------------------------------------------------------


def test_gpu_operator_exporter_is_scraped(promtool: str, tmp_path: Path) -> None:
    job = scrape_job(render((str(SCENARIOS["07-gpu-operator-own-prometheus"]),)), "dcgm-exporter")
    targets = discover(promtool, job, [GPU_OPERATOR_EXPORTER], tmp_path)
    assert targets == [
        {
            "instance": "10.0.1.5:9400",
            "job": "dcgm-exporter",
            "node": NODE,
            "exporter_pod": "nvidia-dcgm-exporter-7xk2p",
        }
    ]


def test_the_service_port_name_finds_nothing(promtool: str, tmp_path: Path) -> None:
    # Control: the port name the scenario used before (the operator's Service port) keeps no
    # target, so the check above can fail.
    job = scrape_job(render((str(SCENARIOS["07-gpu-operator-own-prometheus"]),)), "dcgm-exporter")
    for rc in job["relabel_configs"]:
        if rc.get("source_labels") == ["__meta_kubernetes_pod_container_port_name"]:
            rc["regex"] = "gpu-metrics"
    assert discover(promtool, job, [GPU_OPERATOR_EXPORTER], tmp_path) == []


def test_chart_exporter_is_scraped_without_pod_target_labels(promtool: str, tmp_path: Path) -> None:
    r = render((str(SCENARIOS["01-default"]),))
    other = pod("unrelated", AGENTS_NS, {"app": "other"}, "c", [{"name": "metrics", "containerPort": 9100}])
    targets = discover(promtool, scrape_job(r, "dcgm-exporter"), [chart_exporter(r), other], tmp_path)
    assert len(targets) == 1
    # No pod/namespace target labels: the exporter's own (the pod holding the GPU) are stored as is.
    assert not {"pod", "namespace", "container"} & set(targets[0])
    assert targets[0]["node"] == NODE


# --- kube-prometheus-stack with the chart's exporter (PodMonitor) ---------------------------


def operator_scrape_config(pm: dict[str, Any], override_honor_labels: bool) -> dict[str, Any]:
    """The scrape job prometheus-operator generates for a PodMonitor with one endpoint, in its order:
    keep on the selector's labels and on the container port name, add namespace/container/pod,
    job and endpoint target labels, then the endpoint's own relabelings. overrideHonorLabels (a
    Prometheus CR setting) forces honor_labels false. A model written for this test of what the
    operator's config generator produces (its default namespace/container/pod/job/endpoint target
    labels come before the endpoint's relabelings), kept to what the chart's PodMonitor uses."""
    ep = pm["spec"]["podMetricsEndpoints"][0]
    relabel: list[dict[str, Any]] = []
    for key, value in pm["spec"]["selector"]["matchLabels"].items():
        clean = re.sub(r"[^a-zA-Z0-9_]", "_", key)
        relabel.append(
            {
                "action": "keep",
                "source_labels": [
                    f"__meta_kubernetes_pod_label_{clean}",
                    f"__meta_kubernetes_pod_labelpresent_{clean}",
                ],
                "regex": f"({re.escape(value)});true",
            }
        )
    relabel += [
        {
            "action": "keep",
            "source_labels": ["__meta_kubernetes_pod_container_port_name"],
            "regex": ep["port"],
        },
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"target_label": "job", "replacement": f"{pm['metadata']['namespace']}/{pm['metadata']['name']}"},
        {"target_label": "endpoint", "replacement": ep["port"]},
    ]
    for rl in ep.get("relabelings", []):
        relabel.append(
            {
                {"sourceLabels": "source_labels", "targetLabel": "target_label"}.get(k, k): v
                for k, v in rl.items()
            }
        )
    return {
        "job_name": f"podMonitor/{pm['metadata']['namespace']}/{pm['metadata']['name']}/0",
        "honor_labels": False if override_honor_labels else bool(ep.get("honorLabels", False)),
        "metrics_path": ep.get("path", "/metrics"),
        "kubernetes_sd_configs": [
            {"role": "pod", "namespaces": {"names": pm["spec"]["namespaceSelector"]["matchNames"]}}
        ],
        "relabel_configs": relabel,
    }


@pytest.mark.parametrize("override_honor_labels", [False, True], ids=["honor", "override-honor-labels"])
def test_pod_monitor_keeps_the_series_pod_labels(
    override_honor_labels: bool, promtool: str, tmp_path: Path
) -> None:
    r = render((str(SCENARIOS["10-kube-prometheus-stack-own-exporter"]),))
    pm = next(
        m
        for m in r.of_kind("PodMonitor")
        if m["metadata"]["labels"]["app.kubernetes.io/component"] == "dcgm-exporter"
    )
    job = operator_scrape_config(pm, override_honor_labels)
    targets = discover(promtool, job, [chart_exporter(r)], tmp_path)
    assert len(targets) == 1
    # The exporter labels each GPU series with the pod/namespace/container holding it. With none
    # of those as target labels nothing is renamed exported_*, whatever honor_labels is.
    assert not {"pod", "namespace", "container"} & set(targets[0]), targets[0]
    assert targets[0]["node"] == NODE
    assert targets[0]["exporter_pod"].startswith(r.one("DaemonSet", "dcgm-exporter")["metadata"]["name"])


def test_pod_monitor_without_the_labeldrop_would_clash(promtool: str, tmp_path: Path) -> None:
    # Control: the operator's defaults alone put pod/namespace on the target, which is what renames
    # the series' own labels to exported_pod/exported_namespace under honor_labels false.
    r = render((str(SCENARIOS["10-kube-prometheus-stack-own-exporter"]),))
    pm = next(
        m
        for m in r.of_kind("PodMonitor")
        if m["metadata"]["labels"]["app.kubernetes.io/component"] == "dcgm-exporter"
    )
    pm = copy.deepcopy(pm)  # the render is cached for the whole session
    pm["spec"]["podMetricsEndpoints"][0]["relabelings"] = []
    targets = discover(promtool, operator_scrape_config(pm, True), [chart_exporter(r)], tmp_path)
    assert {"pod", "namespace"} <= set(targets[0])
