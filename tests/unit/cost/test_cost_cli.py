"""`gpu-inference cost ...` on the command line: formats, files and errors."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from cost_testkit import PRICES_2026_11_29
from typer.testing import CliRunner

from gpu_inference.cli.main import app

pytestmark = pytest.mark.unit


def run(*args: str) -> tuple[int, str]:
    """Exit code and standard output (logs go to standard error)."""
    result = CliRunner().invoke(app, ["cost", *args])
    return result.exit_code, result.stdout


def fixture_args(eksctl: Path, chart: Path) -> list[str]:
    return ["--config", str(eksctl), "--chart", str(chart), "--prices", str(PRICES_2026_11_29)]


def test_estimate_as_json_csv_and_table(eksctl: Path, chart: Path, tmp_path: Path) -> None:
    code, out = run("estimate", *fixture_args(eksctl, chart), "-o", "json")
    assert code == 0, out
    e = json.loads(out)
    assert [s["name"] for s in e["scenarios"]] == ["minimum", "typical", "maximum"]
    assert e["scenarios"][0]["usd_per_hour"] == pytest.approx(0.833048, abs=1e-6)
    assert e["prices"]["as_of"] == "2026-11-29"
    code, out = run(
        "estimate", *fixture_args(eksctl, chart), "-o", "csv", "--output", str(tmp_path / "e.csv")
    )
    assert code == 0
    assert out == ""
    rows = list(csv.DictReader(io.StringIO((tmp_path / "e.csv").read_text())))
    totals = {r["scenario"]: float(r["usd_per_hour"]) for r in rows if r["item"] == "TOTAL"}
    assert totals["minimum"] == pytest.approx(0.833048, abs=1e-6)
    assert float(next(r for r in rows if r["item"] == "TOTAL")["usd_per_month"]) == pytest.approx(
        608.125, abs=1e-3
    )
    code, out = run("estimate", *fixture_args(eksctl, chart))
    assert code == 0
    assert "$0.8330" in out
    assert "holds for: 2 x g4dn.xlarge as configured: $1.39/h" in " ".join(out.split())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["estimate", "-o", "yaml"], "unknown format 'yaml' (--format)"),
        (["estimate", "--load-balancer", "f5"], "unknown 'f5' (--load-balancer)"),
        (["estimate", "--config", "/nonexistent/cluster.yaml"], "file not found"),
        (["report"], "nothing to report on (--run/--prometheus-url)"),
        (["report", "--run", "/nonexistent"], "/nonexistent not found (--run)"),
    ],
)
def test_bad_input_exits_2_naming_the_setting(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["cost", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_prices_show_lists_sources() -> None:
    code, out = run("prices", "show", "--prices", str(PRICES_2026_11_29))
    assert code == 0
    assert "ec2_on_demand.g4dn.xlarge: $0.526 per hour (github.com/aws/karpenter-provider-aws" in out
    assert "nat_gateway_gb: $0.045 per GB" in out


@pytest.mark.parametrize(
    ("change", "setting", "fix"),
    [
        ({"vpc": {"nat": {"gateway": "Double"}}}, "vpc.nat.gateway", "use 'HighlyAvailable', 'Single' or"),
        ({"metadata": {"name": "costs", "region": "us-east-1"}}, "metadata.version", "add it"),
        ({"managedNodeGroups": [{"name": "gpu", "instanceType": "g4dn.xlarge", "minSize": "two"}]},
         "managedNodeGroups[0].minSize", "use a value eksctl accepts"),
        ({"managedNodeGroups": [{"name": "gpu", "minSize": 1}]}, "managedNodeGroups.gpu.instanceType",
         "set instanceType"),
        ({"managedNodeGroups": [{"name": "gpu", "instanceType": "g4dn.xlarge", "taints": [{"key": "k"}]}]},
         "managedNodeGroups[0].taints[0].effect", "add it"),
        ({"managedNodeGroup": []}, "managedNodeGroup", "fix the spelling or remove it"),
    ],
)  # fmt: skip
def test_malformed_cluster_config_is_one_line_exit_2(
    tmp_path: Path, chart: Path, change: dict[str, object], setting: str, fix: str
) -> None:
    """The strict eksctl model reads the config for the estimate too: a bad file is one line naming the
    setting and the fix (before, a missing name or a non-numeric size was a Python traceback)."""
    from cost_testkit import write_eksctl

    bad = write_eksctl(tmp_path / "bad.yaml", **change)
    result = CliRunner().invoke(app, ["cost", "estimate", *fixture_args(bad, chart)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert setting in lines[0], lines[0]
    assert fix in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_estimate_prices_the_nat_pulls_from_the_sizes_given(eksctl: Path, chart: Path) -> None:
    code, out = run(
        "estimate", *fixture_args(eksctl, chart), "-o", "json", "--image-gb", "8", "--model-gb", "2"
    )
    assert code == 0, out
    e = json.loads(out)
    assert e["nat_pulls"]["gb_per_gpu_node_start"] == pytest.approx(10.0)
    typical = {i["name"]: i for i in e["scenarios"][1]["items"]}
    assert typical["NAT gateway data processed: image and model pulls"]["cost_usd"] == pytest.approx(
        10 / 24 * 0.045
    )
    code, out = run("estimate", *fixture_args(eksctl, chart))
    assert "Image and model pulls through the NAT gateway" in out
