"""eksctl, kubectl and helm command lines: built in one adapter each, asserted exactly.

Two ways: a recording runner (the argument list the adapter hands to process.run) and fake
executables on PATH (the argv the real process.run / pyhelm3 actually executes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_testkit import FakeBin, Recorder

from gpu_inference.adapters.eksctl import INSTALL_HINT, Eksctl
from gpu_inference.adapters.kubectl import Kubectl
from gpu_inference.adapters.process import parse_version
from gpu_inference.domain import eksctl_config as ec
from gpu_inference.domain import versions
from gpu_inference.errors import ToolFailedError, ToolNotFoundError
from gpu_inference.services.eks import addons

pytestmark = pytest.mark.unit


# --------------------------------------------------------------------------- eksctl


def test_create_cluster_command_line(recorder: Recorder, tmp_path: Path) -> None:
    Eksctl(recorder).create_cluster(tmp_path / "c.yaml", kubeconfig=tmp_path / "kc")
    assert recorder.calls == [
        (
            "eksctl",
            [
                "create",
                "cluster",
                "--config-file",
                str(tmp_path / "c.yaml"),
                "--install-nvidia-plugin=false",
                "--kubeconfig",
                str(tmp_path / "kc"),
                "--timeout",
                "40m",
            ],
        )
    ]


def test_create_nodegroups_command_line(recorder: Recorder, tmp_path: Path) -> None:
    Eksctl(recorder).create_nodegroups(tmp_path / "c.yaml", include=["gpu-spot"])
    assert recorder.lines() == [
        f"eksctl create nodegroup --config-file {tmp_path / 'c.yaml'} --include gpu-spot "
        "--install-nvidia-plugin=false --timeout 40m"
    ]
    with pytest.raises(ValueError, match="at least one"):
        Eksctl(recorder).create_nodegroups(tmp_path / "c.yaml", include=[])


def test_delete_cluster_waits_and_skips_eviction(recorder: Recorder) -> None:
    Eksctl(recorder).delete_cluster(cluster="gpu-inference", region="us-east-1")
    assert recorder.lines() == [
        "eksctl delete cluster --name gpu-inference --region us-east-1 --wait "
        "--disable-nodegroup-eviction --timeout 40m"
    ]


def test_write_kubeconfig_command_line(recorder: Recorder, tmp_path: Path) -> None:
    Eksctl(recorder).write_kubeconfig(cluster="c", region="eu-west-1", kubeconfig=tmp_path / "d" / "kc")
    assert recorder.lines() == [
        f"eksctl utils write-kubeconfig --cluster c --region eu-west-1 --kubeconfig {tmp_path / 'd' / 'kc'}"
    ]
    assert (tmp_path / "d").is_dir()


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.215.0", (0, 215, 0)), ("v0.204.1-dev+abc", (0, 204, 1)), ('{"Version": "0.220.0"}', (0, 220, 0))],
)
def test_parse_version(text: str, expected: tuple[int, int, int]) -> None:
    assert parse_version(text) == expected


def test_real_process_path_with_fake_eksctl(fake_bin: FakeBin, tmp_path: Path) -> None:
    fake_bin.add("eksctl", "print('0.215.0')")
    e = Eksctl()
    assert e.version() == (0, 215, 0)
    e.create_cluster(tmp_path / "c.yaml", kubeconfig=tmp_path / "kc")
    assert fake_bin.calls("eksctl")[-1][:4] == [
        "create",
        "cluster",
        "--config-file",
        str(tmp_path / "c.yaml"),
    ]
    assert "--install-nvidia-plugin=false" in fake_bin.calls("eksctl")[-1]


def test_missing_eksctl_is_a_clear_error(fake_bin: FakeBin) -> None:
    with pytest.raises(ToolNotFoundError) as info:
        Eksctl().version()
    assert "eksctl" in str(info.value)
    assert INSTALL_HINT in str(info.value)


def test_failing_eksctl_raises_with_its_output(fake_bin: FakeBin, tmp_path: Path) -> None:
    fake_bin.add(
        "eksctl", "print('AlreadyExistsException: stack eksctl-x-cluster', file=sys.stderr)", exit_code=1
    )
    with pytest.raises(ToolFailedError, match="AlreadyExistsException") as info:
        Eksctl().create_cluster(tmp_path / "c.yaml", kubeconfig=tmp_path / "kc")
    assert info.value.returncode == 1


# --------------------------------------------------------------------------- kubectl


def test_kubectl_command_lines(recorder: Recorder, tmp_path: Path) -> None:
    kc = tmp_path / "kc"
    recorder.handlers.append(
        lambda tool, args: '{"items": []}' if "get" in args and "--raw" not in args else None
    )
    k = Kubectl(kc, runner=recorder)
    assert k.get("services", all_namespaces=True) == {"items": []}
    k.get("hpa", namespace="ns", selector="app=x")
    k.get_raw("/apis/custom.metrics.k8s.io/v1beta2")
    k.delete("service", "web", namespace="ns", timeout=60)
    k.delete("persistentvolumeclaims", all_namespaces=True, timeout=120)
    k.wait("deployment/x", condition="condition=Available", namespace="ns", timeout=30)
    k.apply("kind: Namespace", namespace=None)
    base = f"kubectl --kubeconfig {kc}"
    assert recorder.lines() == [
        f"{base} get services --all-namespaces --output json",
        f"{base} get hpa --namespace ns --selector app=x --output json",
        f"{base} get --raw /apis/custom.metrics.k8s.io/v1beta2",
        f"{base} delete service web --namespace ns --ignore-not-found --wait=true --timeout=60s",
        f"{base} delete persistentvolumeclaims --all-namespaces --all --ignore-not-found --wait=true "
        "--timeout=120s",
        f"{base} wait deployment/x --namespace ns --for=condition=Available --timeout=30s",
        f"{base} apply -f -",
    ]


def test_kubectl_non_json_output_is_an_error(recorder: Recorder) -> None:
    recorder.handlers.append(lambda tool, args: "error: not json")
    with pytest.raises(ToolFailedError, match="not JSON"):
        Kubectl(None, runner=recorder).get("pods")


def test_kubectl_real_process_path(fake_bin: FakeBin, tmp_path: Path) -> None:
    fake_bin.add(
        "kubectl",
        """
if argv[:2] == ['version', '--client']:
    print(json.dumps({'clientVersion': {'gitVersion': 'v1.36.3'}}))
else:
    print(json.dumps({'items': [{'metadata': {'name': 'x'}}]}))
""",
    )
    k = Kubectl(tmp_path / "kc", context="ctx")
    assert k.client_version() == "v1.36.3"
    assert k.get("pods", namespace="n")["items"][0]["metadata"]["name"] == "x"
    assert fake_bin.calls("kubectl")[-1] == [
        "--kubeconfig", str(tmp_path / "kc"), "--context", "ctx",
        "get", "pods", "--namespace", "n", "--output", "json",
    ]  # fmt: skip


def test_kubectl_missing_is_a_clear_error(fake_bin: FakeBin) -> None:
    with pytest.raises(ToolNotFoundError, match="kubectl"):
        Kubectl(None)


# --------------------------------------------------------------------------- helm (through pyhelm3)

FAKE_HELM = """
import datetime
if argv[:1] == ['version']:
    print('v3.22.0', end='')
elif argv[:2] == ['show', 'chart']:
    name = argv[2]
    version = argv[argv.index('--version') + 1] if '--version' in argv else '0.1.0'
    print(f'apiVersion: v2\\nname: {name}\\nversion: {version}\\n')
elif argv[:1] == ['upgrade']:
    values = sys.stdin.read()
    with open(LOG.replace('calls.jsonl', 'values-' + argv[1] + '.json'), 'w') as f:
        f.write(values)
    ns = argv[argv.index('--namespace') + 1]
    print(json.dumps({'name': argv[1], 'namespace': ns, 'version': 1, 'manifest': '',
                      'info': {'status': 'deployed', 'last_deployed': '2026-11-29T12:00:00Z'}}))
elif argv[:1] == ['uninstall']:
    if argv[1] == 'missing':
        print('Error: uninstall: Release not loaded: missing: release: not found', file=sys.stderr)
        code = 1
"""


def test_addon_installs_through_pyhelm3_command_lines(fake_bin: FakeBin, tmp_path: Path) -> None:
    """The argv pyhelm3 runs for the pinned add-ons: repo, version, namespace, --wait, values on stdin."""
    from gpu_inference.adapters.helm import Helm

    fake_bin.add("helm", f"LOG = {str(fake_bin.log)!r}\n" + FAKE_HELM)
    cfg = ec.load_and_check(
        Path(__file__).resolve().parents[3] / "eksctl" / "cluster.yaml", check_version=False
    )[1]
    kc = tmp_path / "kc"
    helm = Helm(kubeconfig=kc)
    for rel in (addons.cluster_autoscaler(cfg), addons.aws_load_balancer_controller(cfg, "vpc-123")):
        helm.install(rel, timeout_s=600)
    helm.uninstall("missing", namespace="kube-system")  # absent release: not an error (re-runs)
    calls = [c for c in fake_bin.calls("helm") if c[0] in ("show", "upgrade", "uninstall")]
    ca_show, ca_up, lbc_show, lbc_up, un = calls
    assert ca_show[:3] == ["show", "chart", "cluster-autoscaler"]
    assert ca_show[ca_show.index("--repo") + 1] == versions.CLUSTER_AUTOSCALER_REPO
    assert ca_show[ca_show.index("--version") + 1] == versions.CLUSTER_AUTOSCALER_CHART_VERSION
    assert ca_up[:3] == ["upgrade", "cluster-autoscaler", "cluster-autoscaler"]
    for flag in ("--install", "--wait", "--create-namespace"):
        assert flag in ca_up
    assert ca_up[ca_up.index("--namespace") + 1] == "kube-system"
    assert ca_up[ca_up.index("--repo") + 1] == versions.CLUSTER_AUTOSCALER_REPO
    assert ca_up[ca_up.index("--version") + 1] == versions.CLUSTER_AUTOSCALER_CHART_VERSION
    assert ca_up[ca_up.index("--kubeconfig") + 1] == str(kc)
    assert lbc_up[lbc_up.index("--version") + 1] == versions.AWS_LB_CONTROLLER_CHART_VERSION
    assert lbc_up[lbc_up.index("--repo") + 1] == versions.AWS_LB_CONTROLLER_REPO
    assert lbc_show[2] == "aws-load-balancer-controller"
    assert un[:2] == ["uninstall", "missing"]
    values = json.loads((tmp_path / "values-cluster-autoscaler.json").read_text())
    assert values["autoDiscovery"]["clusterName"] == "gpu-inference"
    assert values["awsRegion"] == "us-east-1"
    assert values["image"]["tag"] == versions.CLUSTER_AUTOSCALER_IMAGE_TAGS["1.36"]
    assert values["nodeSelector"] == {"gpu-inference.io/node-pool": "system"}
    assert values["rbac"]["serviceAccount"]["name"] == "cluster-autoscaler"
    # the autoscaler defaults the design (field notes) relies on, stated explicitly
    args = values["extraArgs"]
    assert args["scan-interval"] == "10s"
    assert args["max-node-provision-time"] == "15m"
    assert args["scale-down-unneeded-time"] == "10m"
    assert args["scale-down-delay-after-add"] == "10m"
    assert args["scale-down-gpu-utilization-threshold"] == "0.5"
    assert args["expander"] == "priority,least-waste"
    assert ".*-gpu-spot-.*" in values["expanderPriorities"]
    lbc = json.loads((tmp_path / "values-aws-load-balancer-controller.json").read_text())
    assert lbc["vpcId"] == "vpc-123"
    assert lbc["clusterName"] == "gpu-inference"
    assert lbc["defaultTags"] == {versions.CLUSTER_TAG: "gpu-inference"}
    assert lbc["serviceAccount"]["name"] == "aws-load-balancer-controller"


def test_eksctl_progress_is_streamed_while_it_runs(fake_bin: FakeBin, tmp_path: Path) -> None:
    """The fake eksctl prints a line, then waits until the caller has seen it: with output handed over
    only at exit (as before) this would never finish its first step and exit 1."""
    seen = tmp_path / "seen"
    fake_bin.add(
        "eksctl",
        f"""
import os, time
print('2026-11-29 building cluster stack "eksctl-gpu-inference-cluster"', flush=True)
deadline = time.monotonic() + 10
while not os.path.exists({str(seen)!r}):
    if time.monotonic() > deadline:
        sys.exit(1)
    time.sleep(0.02)
print('2026-11-29 all EKS cluster resources for "gpu-inference" have been created', flush=True)
""",
    )
    lines: list[str] = []

    def on_line(line: str) -> None:
        lines.append(line)
        seen.touch()

    Eksctl().create_cluster(tmp_path / "c.yaml", kubeconfig=tmp_path / "kc", on_line=on_line)
    assert [line.split(" ", 1)[1] for line in lines] == [
        'building cluster stack "eksctl-gpu-inference-cluster"',
        'all EKS cluster resources for "gpu-inference" have been created',
    ]


def test_streamed_eksctl_failure_raises_with_its_output(fake_bin: FakeBin, tmp_path: Path) -> None:
    fake_bin.add("eksctl", "print('creating CloudFormation stack', flush=True)\ncode = 3")
    with pytest.raises(ToolFailedError, match="exited 3") as info:
        Eksctl().delete_cluster(cluster="c", region="us-east-1", on_line=lambda line: None)
    assert "creating CloudFormation stack" in info.value.output


def test_supported_kubernetes_versions_from_eksctl_json(fake_bin: FakeBin) -> None:
    fake_bin.add(
        "eksctl",
        "print(json.dumps({'Version': '0.215.0', 'EKSServerSupportedVersions': ['1.33', '1.34', '1.35']}))",
    )
    assert Eksctl().supported_kubernetes_versions() == ["1.33", "1.34", "1.35"]
    assert fake_bin.calls("eksctl")[-1] == ["version", "-o", "json"]
