"""Policy scan of the rendered manifests with checkov; accepted findings live, with their
reasons, in policy/exceptions.yaml and nowhere else."""

from __future__ import annotations

import fnmatch
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpu_inference.adapters.process import run

from .conftest import SCENARIOS, render

pytestmark = pytest.mark.unit

POLICY = Path(__file__).parent / "policy"
CANARY = "policy-canary"

# A pod that breaks the basics on purpose: proves the scanner runs and can fail.
CANARY_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": CANARY, "namespace": "canary"},
    "spec": {
        "hostNetwork": True,
        "containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}],
    },
}


@pytest.fixture(scope="module")
def checkov() -> str:
    result = run("bash", [str(POLICY / "ensure-checkov.sh")], timeout=900)
    path = result.stdout.strip().splitlines()[-1]
    assert Path(path).is_file(), result.stderr
    return path


@pytest.fixture(scope="module")
def findings(checkov: str, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    out_dir = tmp_path_factory.mktemp("policy")
    for name, values in SCENARIOS.items():
        # One namespace per scenario, so a NetworkPolicy of one scenario cannot cover another's pods.
        r = render((str(values),), namespace=f"policy-{name[:2]}")
        (out_dir / f"{name}.yaml").write_text(yaml.safe_dump_all(r.objects))
    (out_dir / "zz-canary.yaml").write_text(yaml.safe_dump(CANARY_POD))
    result = run(
        checkov,
        [
            "--framework",
            "kubernetes",
            "--directory",
            str(out_dir),
            "--skip-download",
            "--quiet",
            "--compact",
            "--output",
            "json",
        ],
        timeout=600,
        check=False,
        env={
            "BC_SKIP_MAPPING": "TRUE",
            "CHECKOV_NO_OUTPUT_TRUNCATION": "1",
            "HOME": os.environ.get("HOME", "/tmp"),
        },
    )
    # Exit code 1 means "findings"; anything else is a scanner failure.
    assert result.returncode in (0, 1), result.stderr[-3000:]
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed: list[dict[str, Any]] = []
    for report in reports:
        assert report["summary"]["parsing_errors"] == 0, report["summary"]
        failed += report["results"]["failed_checks"]
    return failed


def _object(finding: dict[str, Any]) -> str:
    kind, _namespace, name = finding["resource"].split(".")[:3]
    return f"{kind}/{name}"


def _exceptions() -> list[dict[str, Any]]:
    data = yaml.safe_load((POLICY / "exceptions.yaml").read_text())
    entries: list[dict[str, Any]] = data["exceptions"]
    for e in entries:
        assert {"check", "resources", "reason"} <= set(e), e
        assert len(e["reason"].split()) >= 8, f"{e['check']}: the reason must explain the exception"
    return entries


def test_scanner_flags_the_canary(findings: list[dict[str, Any]]) -> None:
    canary = {f["check_id"] for f in findings if _object(f) == f"Pod/{CANARY}"}
    assert {"CKV_K8S_16", "CKV_K8S_19"} <= canary, canary  # privileged container, hostNetwork


def test_every_finding_is_an_accepted_exception(findings: list[dict[str, Any]]) -> None:
    entries = _exceptions()
    unexplained = sorted(
        {
            f"{f['check_id']} {_object(f)} ({Path(f['file_path']).name}): {f['check_name']}"
            for f in findings
            if _object(f) != f"Pod/{CANARY}"
            and not any(
                e["check"] == f["check_id"] and any(fnmatch.fnmatch(_object(f), p) for p in e["resources"])
                for e in entries
            )
        }
    )
    assert not unexplained, "findings without an entry in tests/chart/policy/exceptions.yaml:\n" + "\n".join(
        unexplained
    )


def test_no_stale_exceptions(findings: list[dict[str, Any]]) -> None:
    stale = [
        f"{e['check']} {pattern}"
        for e in _exceptions()
        for pattern in e["resources"]
        if not any(f["check_id"] == e["check"] and fnmatch.fnmatch(_object(f), pattern) for f in findings)
    ]
    assert not stale, f"exceptions that match no finding any more (remove them): {stale}"
