"""The chart's Prometheus and adapter configuration, adapted to run on the host."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gpu_inference.errors import ConfigError
from gpu_inference.services.local import chartconfig

pytestmark = pytest.mark.unit


def _obj(kind: str, component: str, **body: Any) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"labels": {"app.kubernetes.io/component": component}}, **body}


PROM_YML = {
    "global": {"scrape_interval": "5s"},
    "scrape_configs": [
        {
            "job_name": "dcgm",
            "kubernetes_sd_configs": [{"role": "pod", "api_server": "https://kubernetes.default"}],
            "relabel_configs": [{"action": "keep", "source_labels": ["__meta_kubernetes_pod_label_x"]}],
        },
        {
            "job_name": "kubelet",
            "bearer_token_file": "/var/run/secrets/kubernetes.io/serviceaccount/token",
            "kubernetes_sd_configs": [{"role": "node"}],
        },
    ],
}


def _release() -> list[dict[str, Any]]:
    return [
        _obj(
            "ConfigMap",
            "prometheus",
            data={
                "prometheus.yml": yaml.safe_dump(PROM_YML),
                "rules.yml": yaml.safe_dump({"groups": [{"name": "g", "rules": []}]}),
                "notes.txt": "not a rule file",
            },
        ),
        _obj("ConfigMap", "prometheus-adapter", data={"config.yaml": "rules: []\n"}),
        _obj(
            "Deployment",
            "prometheus-adapter",
            spec={
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "args": [
                                    "--secure-port=6443",
                                    "--prometheus-url=http://prometheus:9090",
                                    "--metrics-relist-interval=10s",
                                    "--cert-dir=/tmp",
                                ]
                            }
                        ]
                    }
                }
            },
        ),
        _obj(
            "DaemonSet",
            "dcgm-exporter",
            spec={
                "template": {
                    "spec": {"containers": [{"env": [{"name": "DCGM_EXPORTER_INTERVAL", "value": "2000"}]}]}
                }
            },
        ),
    ]


def test_host_config_keeps_the_charts_jobs_and_rules_with_the_local_kubeconfig(tmp_path: Path) -> None:
    kc = tmp_path / "kubeconfig"
    configs = chartconfig.extract(_release(), kc, tmp_path / "prom")
    jobs = {j["job_name"]: j for j in configs.prometheus_yml["scrape_configs"]}
    assert set(jobs) == {"dcgm"}, "a job needing in-cluster credentials was kept"
    assert configs.dropped_jobs == ["kubelet"]
    sd = jobs["dcgm"]["kubernetes_sd_configs"][0]
    assert sd == {"role": "pod", "kubeconfig_file": str(kc)}
    assert jobs["dcgm"]["relabel_configs"] == PROM_YML["scrape_configs"][0]["relabel_configs"]
    assert configs.prometheus_yml["rule_files"] == [str(tmp_path / "prom" / "rules.yml")]
    assert configs.adapter_args == ["--metrics-relist-interval=10s"]
    assert configs.adapter_rules == "rules: []\n"
    assert configs.dcgm_collect_interval_s == 2.0
    path = chartconfig.write(configs, tmp_path / "prom")
    assert yaml.safe_load(path.read_text())["global"] == {"scrape_interval": "5s"}
    assert (tmp_path / "prom" / "rules.yml").is_file()


def test_without_the_charts_prometheus_the_error_names_the_value(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        chartconfig.extract(_release()[1:], tmp_path / "kc", tmp_path)
    assert exc.value.setting == "prometheus.enabled"
