"""Fixture files for the cost tests: an eksctl config and a chart whose numbers the hand-computed
cases below rely on (independent of how eksctl/cluster.yaml and the chart evolve)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import yaml

from gpu_inference.domain.prices import bundled_dir

#: The dated price file the hand-computed cases were worked out with.
PRICES_2026_11_29 = bundled_dir() / "aws-us-east-1-2026-11-29.json"

EKSCTL = {
    "apiVersion": "eksctl.io/v1alpha5",
    "kind": "ClusterConfig",
    "metadata": {"name": "costs", "region": "us-east-1", "version": "1.36"},
    "vpc": {"nat": {"gateway": "Single"}},
    "managedNodeGroups": [
        {
            "name": "system",
            "instanceType": "m6i.large",
            "minSize": 1,
            "maxSize": 2,
            "desiredCapacity": 1,
            "volumeSize": 40,
            "privateNetworking": True,
            "labels": {"gpu-inference.io/node-pool": "system"},
        },
        {
            "name": "gpu",
            "instanceType": "g4dn.xlarge",
            "minSize": 1,
            "maxSize": 4,
            "desiredCapacity": 1,
            "volumeSize": 80,
            "privateNetworking": True,
            "labels": {"gpu-inference.io/node-pool": "gpu"},
        },
    ],
}
#: Umbrella values: HPA 1..3; the inference subchart's defaults carry an Ingress (ALB) turned on.
CHART_VALUES = {
    "autoscaling": {"enabled": True, "minReplicas": 1, "maxReplicas": 3},
    "inference": {"enabled": True},
    "prometheus": {"enabled": True},
}
INFERENCE_VALUES = {"replicaCount": None, "service": {"type": "ClusterIP"}, "ingress": {"enabled": True}}
PROMETHEUS_VALUES = {"persistence": {"enabled": False, "size": "20Gi"}}


def write_eksctl(path: Path, **changes: object) -> Path:
    path.write_text(yaml.safe_dump({**EKSCTL, **changes}))
    return path


def write_chart(folder: Path) -> Path:
    (folder / "charts" / "inference").mkdir(parents=True)
    (folder / "charts" / "prometheus").mkdir(parents=True)
    (folder / "values.yaml").write_text(yaml.safe_dump(CHART_VALUES))
    (folder / "charts" / "inference" / "values.yaml").write_text(yaml.safe_dump(INFERENCE_VALUES))
    (folder / "charts" / "prometheus" / "values.yaml").write_text(yaml.safe_dump(PROMETHEUS_VALUES))
    return folder


RECORDED = Path(__file__).parents[1] / "loadtest" / "data" / "prometheus-2.42-recorded.json"


class RecordedPrometheus:
    """Prometheus 2.42's recorded answers, served on 127.0.0.1 by query text. Close it."""

    def __init__(self) -> None:
        recorded = json.loads(RECORDED.read_text())
        self.answers = {entry["query"]: entry["status"] for entry in recorded.values()}
        self.vllm_empty = recorded["no_vllm"]["status"]
        self.unknown: list[str] = []
        outer = self

        class _H(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlparse(self.path).query).get("query", [""])[0]
                if query.startswith("sum(increase(vllm:"):
                    status, body = outer.vllm_empty
                elif query in outer.answers:
                    status, body = outer.answers[query]
                else:
                    outer.unknown.append(query)
                    status, body = 400, {"status": "error", "errorType": "bad_data", "error": "not recorded"}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _H)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)
