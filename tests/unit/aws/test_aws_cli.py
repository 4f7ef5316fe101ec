"""The `gpu-inference deploy|destroy` commands: help documents every step, exit codes are honest."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aws_testkit import CLUSTER_YAML, REGION, FakeBin
from typer.testing import CliRunner

from gpu_inference.cli.main import app
from gpu_inference.domain import versions
from gpu_inference.services.eks.teardown import STEPS

pytestmark = pytest.mark.unit


@pytest.fixture
def fast_clients(boto_session: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands build AwsClients themselves; give them the test session (shared model loader)."""
    import gpu_inference.cli.deploy as deploy_cli
    import gpu_inference.cli.destroy as destroy_cli
    from gpu_inference.adapters.aws import AwsClients

    def make(region: str, profile: str | None = None) -> AwsClients:
        return AwsClients(region, session=boto_session)

    monkeypatch.setattr(destroy_cli, "AwsClients", make)
    monkeypatch.setattr(deploy_cli, "AwsClients", make)


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The commands configure root logging (console + log file); put it back after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in root.handlers:
        if h not in handlers:
            h.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def plain(text: str) -> str:
    return " ".join(re.sub(r"\x1b\[[0-9;]*m|[│╭╮╰╯─]", " ", text).split())


def test_deploy_help_documents_every_step() -> None:
    out = plain(CliRunner().invoke(app, ["deploy", "--help"], terminal_width=200).output)
    steps = [
        "config",
        "preflight",
        "cluster",
        "kubeconfig",
        "cluster-autoscaler",
        "aws-load-balancer-controller",
    ]
    for step in [*steps, "chart", "custom-metrics", "hpa", "endpoint"]:
        assert re.search(rf"\d\. {step}\b|/ {step}:", out), f"deploy --help does not document step {step!r}"
    texts = ["--install-nvidia-plugin=false", "vCPU quota for G instances", "helm lint --strict", "BILLABLE"]
    for text in [
        *texts,
        "--region",
        "--kubernetes-version",
        "--spot",
        "--dry-run",
        "log file",
        "cost estimate",
    ]:
        assert text in out, text


def test_destroy_help_documents_every_step() -> None:
    out = plain(CliRunner().invoke(app, ["destroy", "--help"], terminal_width=200).output)
    for name, _ in STEPS:
        assert name in out, f"destroy --help does not document step {name!r}"
    for text in ("Exit 1", "idempotent", "--dry-run", "--audit-only", "NAT gateways", "Elastic IPs"):
        assert text in out, text


def test_audit_only_exits_0_on_a_clean_account(fast_clients: None, tmp_path: Path) -> None:
    r = CliRunner().invoke(
        app, ["destroy", "--config", str(CLUSTER_YAML), "--audit-only", "--work-dir", str(tmp_path)]
    )
    assert r.exit_code == 0, r.output
    assert "nothing billable left for cluster gpu-inference in us-east-1" in r.output


def test_audit_only_exits_1_and_lists_leftovers(fast_clients: None, tmp_path: Path) -> None:
    import boto3

    ec2 = boto3.client("ec2", region_name=REGION)
    tags = [{"Key": versions.CLUSTER_TAG, "Value": "gpu-inference"}]
    vol = ec2.create_volume(
        AvailabilityZone=f"{REGION}a", Size=10, TagSpecifications=[{"ResourceType": "volume", "Tags": tags}]
    )["VolumeId"]
    r = CliRunner().invoke(
        app, ["destroy", "--config", str(CLUSTER_YAML), "--audit-only", "--work-dir", str(tmp_path)]
    )
    assert r.exit_code == 1, r.output
    assert f"ebs-volume {vol}" in r.output
    assert f"aws ec2 delete-volume --volume-id {vol} --region {REGION}" in r.output


def test_destroy_region_override_audits_that_region(fast_clients: None, tmp_path: Path) -> None:
    r = CliRunner().invoke(
        app,
        [
            "destroy",
            "--config",
            str(CLUSTER_YAML),
            "--region",
            "eu-west-1",
            "--audit-only",
            "--work-dir",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "in eu-west-1" in r.output


def test_destroy_dry_run_on_an_empty_account(fast_clients: None, fake_bin: FakeBin, tmp_path: Path) -> None:
    r = CliRunner().invoke(
        app, ["destroy", "--config", str(CLUSTER_YAML), "--dry-run", "--work-dir", str(tmp_path)]
    )
    assert r.exit_code == 0, r.output
    assert "skip helm-uninstall-chart: the cluster does not exist" in r.output
    assert fake_bin.calls() == [], "a dry run runs no tool"


def test_destroy_with_a_bad_config_exits_2_naming_the_file(tmp_path: Path) -> None:
    r = CliRunner().invoke(
        app, ["destroy", "--config", str(tmp_path / "missing.yaml"), "--work-dir", str(tmp_path)]
    )
    assert r.exit_code == 2
    assert "missing.yaml" in r.output


def _fake_helm(fake_bin: FakeBin, objects: list[dict[str, Any]]) -> None:
    fake_bin.add(
        "helm",
        f"""
if argv[:1] == ['version']:
    print('v3.22.0+g1234')
elif argv[:1] == ['template']:
    print('\\n---\\n'.join(json.dumps(o) for o in {objects!r}))
""",
    )


def test_deploy_without_eksctl_exits_2_and_creates_nothing(
    fast_clients: None, fake_bin: FakeBin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_helm(fake_bin, [])
    fake_bin.add("kubectl", "print(json.dumps({'clientVersion': {'gitVersion': 'v1.36.3'}}))")
    log = tmp_path / "deploy.log"
    r = CliRunner().invoke(
        app,
        [
            "deploy",
            "--config",
            str(CLUSTER_YAML),
            "--skip-quota-check",
            "--work-dir",
            str(tmp_path),
            "--log-file",
            str(log),
        ],
    )
    assert r.exit_code == 2, r.output
    assert "eksctl is not installed" in r.output
    assert "https://eksctl.io/installation/" in r.output
    assert f"log: {log}" in r.output
    assert "eksctl is not installed" in log.read_text(), "the log file has the whole story"
    assert not [c for c in fake_bin.calls("helm") if c[:1] == ["upgrade"]]
    assert json.loads(json.dumps(fake_bin.calls("kubectl")))[0][:2] == ["version", "--client"]


def test_rich_reporter_records_steps_and_reraises() -> None:
    from gpu_inference.services.eks.progress import RichReporter

    r = RichReporter()
    with r.step("one", "first"):
        pass
    with pytest.raises(RuntimeError), r.step("two", "second"):
        raise RuntimeError("boom")
    r.skip("three", "third", "not needed")
    assert [(x.name, x.ok, x.skipped) for x in r.records] == [
        ("one", True, ""),
        ("two", False, ""),
        ("three", True, "not needed"),
    ]


def _record(work: Path, **kw: Any) -> None:
    from gpu_inference.domain.deployment_state import DeploymentState, save_state

    fields = {"cluster": "gpu-inference", "region": REGION, "account": "123456789012", "kubeconfig": "k",
              "namespace": "gpu-inference", "release": "gpu-inference", "status": "deployed"}  # fmt: skip
    save_state(DeploymentState(**{**fields, **kw}), work)


def test_destroy_refuses_another_account_than_the_deploy_used(fast_clients: None, tmp_path: Path) -> None:
    """Before, destroy searched whatever account the shell's credentials pointed at and called it clean."""
    _record(tmp_path, account="999999999999", profile="prod")
    r = CliRunner().invoke(
        app, ["destroy", "--config", str(CLUSTER_YAML), "--audit-only", "--work-dir", str(tmp_path)]
    )
    assert r.exit_code == 2, r.output
    assert "act in account 123456789012" in r.output
    assert "deployed to account 999999999999" in r.output
    assert "--profile prod" in r.output
    assert "nothing billable" not in r.output


def test_destroy_refuses_another_region_and_defaults_to_the_recorded_one(
    fast_clients: None, tmp_path: Path
) -> None:
    _record(tmp_path, region="eu-west-1")
    args = ["destroy", "--config", str(CLUSTER_YAML), "--audit-only", "--work-dir", str(tmp_path)]
    r = CliRunner().invoke(app, [*args, "--region", "us-east-1"])
    assert r.exit_code == 2, r.output
    assert "was deployed to eu-west-1" in r.output
    r = CliRunner().invoke(app, args)  # no --region: the recorded one, not the config's us-east-1
    assert r.exit_code == 0, r.output
    assert "in eu-west-1, account 123456789012" in r.output


def test_a_corrupt_deploy_record_is_one_line_exit_2(fast_clients: None, tmp_path: Path) -> None:
    (tmp_path / "gpu-inference").mkdir()
    (tmp_path / "gpu-inference" / "deploy.json").write_text('{"cluster": 3}')
    r = CliRunner().invoke(
        app, ["destroy", "--config", str(CLUSTER_YAML), "--audit-only", "--work-dir", str(tmp_path)]
    )
    assert r.exit_code == 2, r.output
    assert "not a deployment record" in r.output


@pytest.mark.parametrize("target", ["deploy", "destroy"])
def test_make_passes_region_and_profile(target: str) -> None:
    import shutil
    import subprocess

    from aws_testkit import REPO

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    run = subprocess.run(
        ["make", "-n", target, "REGION=eu-west-1", "PROFILE=lab"],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    line = " ".join(run.stdout.replace("\\\n", " ").split())
    assert f"gpu-inference {target} --config eksctl/cluster.yaml" in line
    assert "--region eu-west-1 --profile lab" in line
    plain_run = subprocess.run(
        ["make", "-n", target], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    assert "--region" not in plain_run.stdout  # unset: the config's region (or the recorded one)
