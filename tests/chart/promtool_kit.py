"""promtool helpers for the chart tests: run it, the adapter's query, expected samples, Prometheus files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gpu_inference.adapters.process import run

from .conftest import NAMESPACE, Rendered


def promtool_out(*args: str, cwd: Path) -> str:
    """Run promtool in `cwd`, assert it succeeded, return its stdout and stderr."""
    result = run("promtool", list(args), timeout=60, cwd=cwd, check=False)
    assert result.returncode == 0, f"promtool {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


def adapter_query(r: Rendered, pods: list[str], metric: str | None = None) -> tuple[str, str]:
    """The query prometheus-adapter sends for `pods/*/<metric>` in NAMESPACE, and its group-by label.

    `metric` names the adapter rule (its ``name.as``); None takes the first rule.
    """
    rules = yaml.safe_load(r.one("ConfigMap", "prometheus-adapter")["data"]["config.yaml"])["rules"]
    (rule,) = rules[:1] if metric is None else [x for x in rules if x["name"]["as"] == metric]
    overrides = rule["resources"]["overrides"]
    pod_label = next(k for k, v in overrides.items() if v["resource"] == "pod")
    ns_label = next(k for k, v in overrides.items() if v["resource"] == "namespace")
    matchers = f'{ns_label}="{NAMESPACE}",{pod_label}=~"{"|".join(pods)}"'
    query = (
        rule["metricsQuery"]
        .replace("<<.Series>>", rule["seriesQuery"].split("{", 1)[0])
        .replace("<<.LabelMatchers>>", matchers)
        .replace("<<.GroupBy>>", pod_label)
    )
    return query, pod_label


def expected(expr: str, *samples: tuple[str, float], eval_time: str) -> dict[str, Any]:
    """A promtool promql_expr_test: `expr` at `eval_time` gives these (labels, value) samples."""
    return {
        "expr": expr,
        "eval_time": eval_time,
        "exp_samples": [{"labels": labels, "value": value} for labels, value in samples],
    }


def pod_sample(pod: str, value: float, label: str = "pod") -> tuple[str, float]:
    """An expected sample of a query grouped by the pod `label`: ({label="pod"}, value)."""
    return f'{{{label}="{pod}"}}', value


def write_prometheus_files(r: Rendered, tmp: Path) -> dict[str, Any]:
    """The chart's Prometheus ConfigMap as files in `tmp` (rule_files pointed there); the parsed config."""
    cm = r.one("ConfigMap", "prometheus")
    for name, text in cm["data"].items():
        # rule_files point at the mount directory; here the files sit in tmp.
        content = text.replace("/etc/prometheus/", f"{tmp}/") if name == "prometheus.yml" else text
        (tmp / name).write_text(content)
    return dict(yaml.safe_load((tmp / "prometheus.yml").read_text()))
