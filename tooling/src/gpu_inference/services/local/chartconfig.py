"""The chart's own Prometheus and prometheus-adapter configuration, taken from the rendered
release and adapted to run as host processes of the local cluster.

What changes, and only this: Kubernetes service discovery gets the local kubeconfig (there is
no in-cluster service account on the host), rule file paths point into the work directory, and
jobs that need in-cluster credentials are dropped. Relabeling, scrape intervals, recording
rules, alerts and adapter rules are used exactly as the chart renders them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gpu_inference.errors import ConfigError

log = logging.getLogger(__name__)

PROMETHEUS_COMPONENT = "prometheus"
ADAPTER_COMPONENT = "prometheus-adapter"
DCGM_COMPONENT = "dcgm-exporter"
_IN_CLUSTER = "/var/run/secrets/kubernetes.io/serviceaccount"
# Adapter flags that the host process sets itself (ports, TLS, credentials, Prometheus address).
_HOST_FLAGS = (
    "--secure-port",
    "--bind-address",
    "--cert-dir",
    "--tls-cert-file",
    "--tls-private-key-file",
    "--prometheus-url",
    "--config",
    "--lister-kubeconfig",
    "--authentication-kubeconfig",
    "--authorization-kubeconfig",
    "--kubeconfig",
    "--client-ca-file",
    "--requestheader-client-ca-file",
)


@dataclass
class HostConfigs:
    prometheus_yml: dict[str, Any]
    rule_files: dict[str, str] = field(default_factory=dict)
    adapter_rules: str = ""
    adapter_args: list[str] = field(default_factory=list)
    dropped_jobs: list[str] = field(default_factory=list)
    #: The DCGM exporter's collection interval (DCGM_EXPORTER_INTERVAL), which the simulator uses.
    dcgm_collect_interval_s: float = 30.0


def _component(obj: dict[str, Any]) -> str:
    return str(((obj.get("metadata") or {}).get("labels") or {}).get("app.kubernetes.io/component", ""))


def _find(objs: list[dict[str, Any]], kind: str, component: str) -> list[dict[str, Any]]:
    return [o for o in objs if o.get("kind") == kind and _component(o) == component]


def _uses_in_cluster_credentials(job: dict[str, Any]) -> bool:
    text = yaml.safe_dump({k: v for k, v in job.items() if k != "kubernetes_sd_configs"})
    return _IN_CLUSTER in text


def extract(objs: list[dict[str, Any]], kubeconfig: Path, rules_dir: Path) -> HostConfigs:
    """Build the host configuration from the release's rendered objects."""
    prom_cms = [
        cm for cm in _find(objs, "ConfigMap", PROMETHEUS_COMPONENT) if "prometheus.yml" in cm.get("data", {})
    ]
    if len(prom_cms) != 1:
        raise ConfigError(
            "prometheus.enabled",
            f"expected one component=prometheus ConfigMap with prometheus.yml, found {len(prom_cms)}",
            "the local cluster needs the chart's Prometheus configuration: keep prometheus.enabled=true",
        )
    data: dict[str, str] = prom_cms[0]["data"]
    cfg = yaml.safe_load(data["prometheus.yml"]) or {}

    # Rule files: every other key of the Prometheus ConfigMap(s) that is a rules document.
    rule_files: dict[str, str] = {}
    for cm in _find(objs, "ConfigMap", PROMETHEUS_COMPONENT):
        for key, text in (cm.get("data") or {}).items():
            if (
                key != "prometheus.yml"
                and (key.endswith((".yml", ".yaml")))
                and "groups" in (yaml.safe_load(text) or {})
            ):
                rule_files[key] = text
    cfg["rule_files"] = [str(rules_dir / k) for k in sorted(rule_files)]

    kept, dropped = [], []
    for job in cfg.get("scrape_configs") or []:
        if _uses_in_cluster_credentials(job):
            dropped.append(job.get("job_name", "?"))
            continue
        for sd in job.get("kubernetes_sd_configs") or []:
            sd.pop("api_server", None)
            sd["kubeconfig_file"] = str(kubeconfig)
        kept.append(job)
    cfg["scrape_configs"] = kept
    for name in dropped:
        log.info("prometheus job %s needs in-cluster credentials; not run on the host", name)

    adapter_rules = ""
    adapter_args: list[str] = []
    adapter_cms = [
        cm for cm in _find(objs, "ConfigMap", ADAPTER_COMPONENT) if "config.yaml" in cm.get("data", {})
    ]
    if adapter_cms:
        adapter_rules = adapter_cms[0]["data"]["config.yaml"]
        for dep in _find(objs, "Deployment", ADAPTER_COMPONENT):
            for c in dep["spec"]["template"]["spec"]["containers"]:
                adapter_args = [a for a in c.get("args") or [] if not a.startswith(_HOST_FLAGS)]
    interval_s = 30.0  # dcgm-exporter's own default
    for ds in _find(objs, "DaemonSet", DCGM_COMPONENT):
        for c in ds["spec"]["template"]["spec"]["containers"]:
            for e in c.get("env") or []:
                if e.get("name") == "DCGM_EXPORTER_INTERVAL":
                    interval_s = int(e["value"]) / 1000
    return HostConfigs(cfg, rule_files, adapter_rules, adapter_args, dropped, interval_s)


def write(configs: HostConfigs, prometheus_dir: Path) -> Path:
    """Write prometheus.yml and rule files; returns the prometheus.yml path."""
    prometheus_dir.mkdir(parents=True, exist_ok=True)
    for name, text in configs.rule_files.items():
        (prometheus_dir / name).write_text(text)
    path = prometheus_dir / "prometheus.yml"
    path.write_text(yaml.safe_dump(configs.prometheus_yml, sort_keys=False))
    return path
