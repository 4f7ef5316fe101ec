"""eksctl/cluster.yaml: eksctl's structure, this project's rules, and that each rule fails loudly."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_testkit import CLUSTER_YAML, SPOT_YAML, TODAY

from gpu_inference.domain import eksctl_config as ec
from gpu_inference.domain import versions
from gpu_inference.domain.cluster_spec import load_cluster_spec
from gpu_inference.errors import ClusterConfigError

pytestmark = pytest.mark.unit


def raw() -> dict[str, Any]:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def problems_of(doc: dict[str, Any]) -> list[str]:
    """Structural errors or rule violations, as 'setting: problem' strings."""
    try:
        cfg = ec.parse_cluster_config(doc, "test")
    except ClusterConfigError as exc:
        return [f"{p.setting}: {p.problem}" for p in exc.problems]
    return [f"{p.setting}: {p.problem}" for p in ec.project_rules(cfg, today=TODAY)]


def ng(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(g for g in doc["managedNodeGroups"] if g["name"] == name)


# --------------------------------------------------------------------------- the shipped files


def test_shipped_config_is_valid() -> None:
    _, cfg = ec.load_and_check(CLUSTER_YAML, today=TODAY)
    assert cfg.metadata.name == "gpu-inference"
    assert [g.name for g in cfg.managedNodeGroups] == ["system", "gpu"]


def test_shipped_config_with_spot_overlay_is_valid() -> None:
    _, cfg = ec.load_and_check(CLUSTER_YAML, overlays=[SPOT_YAML], today=TODAY)
    spot, gpu = cfg.node_group("gpu-spot"), cfg.node_group("gpu")
    assert spot is not None
    assert gpu is not None
    assert spot.spot
    assert not gpu.spot
    assert spot.labels == gpu.labels, "spot must accept the same pods"
    assert spot.taints == gpu.taints, "spot must accept the same pods"
    assert spot.minSize == 0, "spot scales from zero"
    assert spot.propagateASGTags, "spot scales from zero"


def test_contract_with_chart_and_local_cluster() -> None:
    """The labels, taint and names other parts of the project select on (do not change them)."""
    _, cfg = ec.load_and_check(CLUSTER_YAML, today=TODAY)
    system, gpu = cfg.node_group("system"), cfg.node_group("gpu")
    assert system is not None
    assert gpu is not None
    assert system.labels == {"gpu-inference.io/node-pool": "system"}
    assert gpu.labels == {
        "gpu-inference.io/node-pool": "gpu",
        "k8s.amazonaws.com/accelerator": "nvidia-tesla-t4",
    }
    assert [(t.key, t.value, t.effect) for t in gpu.taints] == [("nvidia.com/gpu", "true", "NoSchedule")]
    assert gpu.instance_types == ["g4dn.xlarge"]
    assert gpu.gpus_per_node == 1
    assert gpu.amiFamily == "AmazonLinux2023"
    assert gpu.propagateASGTags
    assert gpu.tags["k8s.io/cluster-autoscaler/enabled"] == "true"
    assert "k8s.io/cluster-autoscaler/gpu-inference" in gpu.tags
    assert gpu.tags["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"] == "1"
    assert (gpu.minSize, gpu.maxSize) == (1, 4)


def test_iam_uses_pod_identity_for_both_controllers() -> None:
    _, cfg = ec.load_and_check(CLUSTER_YAML, today=TODAY)
    assocs = {(a.namespace, a.serviceAccountName): a for a in cfg.iam.podIdentityAssociations}
    ca = assocs[("kube-system", versions.CLUSTER_AUTOSCALER_SERVICE_ACCOUNT)]
    lbc = assocs[("kube-system", versions.AWS_LB_CONTROLLER_SERVICE_ACCOUNT)]
    assert ca.wellKnownPolicies.autoScaler
    assert lbc.wellKnownPolicies.awsLoadBalancerController
    assert "eks-pod-identity-agent" in {a.name for a in cfg.addons}


def test_version_is_in_standard_support_today() -> None:
    _, cfg = ec.load_and_check(CLUSTER_YAML, today=TODAY)
    end = versions.EKS_STANDARD_SUPPORT_END[cfg.metadata.version]
    assert end - TODAY >= versions.STANDARD_SUPPORT_MARGIN


def test_cluster_spec_still_reads_it() -> None:
    """cost and local read node groups through cluster_spec; the refined file must stay readable."""
    spec = load_cluster_spec(CLUSTER_YAML)
    assert {g.name for g in spec.node_groups} == {"system", "gpu"}


def test_cluster_tag_matches_everywhere() -> None:
    doc = raw()
    name = doc["metadata"]["name"]
    assert doc["metadata"]["tags"][versions.CLUSTER_TAG] == name
    ebs = next(a for a in doc["addons"] if a["name"] == "aws-ebs-csi-driver")
    assert f'"{versions.CLUSTER_TAG}":"{name}"' in ebs["configurationValues"]


# --------------------------------------------------------------------------- rendering


def test_render_overrides_region_and_version_without_touching_the_file(tmp_path: Path) -> None:
    before = CLUSTER_YAML.read_text()
    doc = ec.render(CLUSTER_YAML, region="eu-west-1", version="1.35")
    assert doc["metadata"]["region"] == "eu-west-1"
    assert doc["metadata"]["version"] == "1.35"
    out = ec.write_rendered(doc, tmp_path / "r.yaml")
    assert yaml.safe_load(out.read_text())["metadata"]["region"] == "eu-west-1"
    assert CLUSTER_YAML.read_text() == before


def test_overlay_may_only_add_node_groups(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"metadata": {"region": "x"}, "managedNodeGroups": []}))
    with pytest.raises(ClusterConfigError, match="may only add managedNodeGroups"):
        ec.render(CLUSTER_YAML, overlays=[bad])
    dup = tmp_path / "dup.yaml"
    dup.write_text(yaml.safe_dump({"managedNodeGroups": [{"name": "gpu"}]}))
    with pytest.raises(ClusterConfigError, match="already in the base config"):
        ec.render(CLUSTER_YAML, overlays=[dup])


def test_missing_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(ClusterConfigError, match="--config"):
        ec.load_and_check(tmp_path / "nope.yaml")


# --------------------------------------------------------------------------- each rule fails loudly


def _mut_typo(d: dict[str, Any]) -> None:
    ng(d, "gpu")["propagateAsgTags"] = True


def _mut_effect(d: dict[str, Any]) -> None:
    ng(d, "gpu")["taints"][0]["effect"] = "NoScheduleX"


def _mut_ami(d: dict[str, Any]) -> None:
    ng(d, "gpu")["amiFamily"] = "AmazonLinux2024"


def _mut_no_gpu(d: dict[str, Any]) -> None:
    d["managedNodeGroups"] = [g for g in d["managedNodeGroups"] if g["name"] != "gpu"]


def _mut_no_system(d: dict[str, Any]) -> None:
    d["managedNodeGroups"] = [g for g in d["managedNodeGroups"] if g["name"] != "system"]


def _mut_accel(d: dict[str, Any]) -> None:
    del ng(d, "gpu")["labels"]["k8s.amazonaws.com/accelerator"]


def _mut_pool(d: dict[str, Any]) -> None:
    ng(d, "gpu")["labels"]["gpu-inference.io/node-pool"] = "gpus"


def _mut_taint(d: dict[str, Any]) -> None:
    ng(d, "gpu")["taints"] = []


def _mut_propagate(d: dict[str, Any]) -> None:
    ng(d, "gpu")["propagateASGTags"] = False


def _mut_gpu_template(d: dict[str, Any]) -> None:
    del ng(d, "gpu")["tags"]["k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu"]


def _mut_ca_enabled(d: dict[str, Any]) -> None:
    del ng(d, "gpu")["tags"]["k8s.io/cluster-autoscaler/enabled"]


def _mut_ca_owner(d: dict[str, Any]) -> None:
    tags = ng(d, "system")["tags"]
    tags["k8s.io/cluster-autoscaler/other-cluster"] = tags.pop("k8s.io/cluster-autoscaler/gpu-inference")


def _mut_sizes(d: dict[str, Any]) -> None:
    ng(d, "gpu")["minSize"] = 5


def _mut_ubuntu(d: dict[str, Any]) -> None:
    ng(d, "gpu")["amiFamily"] = "Ubuntu2204"


def _mut_cpu_gpu_type(d: dict[str, Any]) -> None:
    ng(d, "system")["instanceType"] = "g4dn.xlarge"


def _mut_cluster_tag(d: dict[str, Any]) -> None:
    d["metadata"]["tags"][versions.CLUSTER_TAG] = "someone-else"


def _mut_no_lbc_iam(d: dict[str, Any]) -> None:
    d["iam"]["podIdentityAssociations"] = [
        a
        for a in d["iam"]["podIdentityAssociations"]
        if a["serviceAccountName"] != "aws-load-balancer-controller"
    ]


def _mut_no_ca_iam(d: dict[str, Any]) -> None:
    d["iam"]["podIdentityAssociations"][0]["wellKnownPolicies"] = {"autoScaler": False, "imageBuilder": True}


def _mut_no_agent(d: dict[str, Any]) -> None:
    d["addons"] = [a for a in d["addons"] if a["name"] != "eks-pod-identity-agent"]


def _mut_role_and_policy(d: dict[str, Any]) -> None:
    d["iam"]["podIdentityAssociations"][0]["roleARN"] = "arn:aws:iam::123456789012:role/x"


def _mut_bad_json(d: dict[str, Any]) -> None:
    next(a for a in d["addons"] if a["name"] == "aws-ebs-csi-driver")["configurationValues"] = "{not json"


def _mut_ebs_tag(d: dict[str, Any]) -> None:
    d["metadata"]["name"] = "renamed"
    d["metadata"]["tags"][versions.CLUSTER_TAG] = "renamed"


def _mut_old_version(d: dict[str, Any]) -> None:
    d["metadata"]["version"] = "1.34"  # standard support ends 2026-12-02, three days after TODAY


def _mut_unknown_version(d: dict[str, Any]) -> None:
    d["metadata"]["version"] = "1.40"


def _mut_self_managed(d: dict[str, Any]) -> None:
    d["nodeGroups"] = [{"name": "x"}]


def _mut_spot_base(d: dict[str, Any]) -> None:
    ng(d, "gpu")["spot"] = True


def _mut_mixed_ami(d: dict[str, Any]) -> None:
    extra = copy.deepcopy(ng(d, "gpu"))
    extra["name"] = "gpu-br"
    extra["amiFamily"] = "Bottlerocket"
    d["managedNodeGroups"].append(extra)


def _mut_policy_doc(d: dict[str, Any]) -> None:
    d["iam"]["podIdentityAssociations"][1]["permissionPolicy"]["Statement"][0].pop("Effect")


def _ebs(d: dict[str, Any]) -> dict[str, Any]:
    return next(a for a in d["addons"] if a["name"] == "aws-ebs-csi-driver")


def _mut_no_default_sc(d: dict[str, Any]) -> None:
    values = json.loads(_ebs(d)["configurationValues"])
    values.pop("defaultStorageClass")
    _ebs(d)["configurationValues"] = json.dumps(values)


def _mut_old_ebs_addon(d: dict[str, Any]) -> None:
    _ebs(d)["version"] = "v1.30.0-eksbuild.1"


def _mut_no_ebs_addon(d: dict[str, Any]) -> None:
    d["addons"] = [a for a in d["addons"] if a["name"] != "aws-ebs-csi-driver"]


MUTATIONS = [
    (_mut_no_default_sc, "addons[4].configurationValues", "defaultStorageClass is not enabled"),
    (_mut_old_ebs_addon, "addons[4].version", "cannot create a default StorageClass"),
    (_mut_no_ebs_addon, "addons", "no StorageClass is the default"),
    (_mut_typo, "managedNodeGroups[1].propagateAsgTags", "unknown field"),
    (_mut_effect, "managedNodeGroups[1].taints[0].effect", "NoSchedule"),
    (_mut_ami, "managedNodeGroups[1].amiFamily", "AmazonLinux2023"),
    (_mut_no_gpu, "managedNodeGroups", "'gpu'"),
    (_mut_no_system, "managedNodeGroups", "'system'"),
    (_mut_accel, "managedNodeGroups.gpu.labels", "k8s.amazonaws.com/accelerator"),
    (_mut_pool, "managedNodeGroups.gpu.labels", "gpu-inference.io/node-pool: gpu"),
    (_mut_taint, "managedNodeGroups.gpu.taints", "nvidia.com/gpu=true:NoSchedule"),
    (_mut_propagate, "managedNodeGroups.gpu.propagateASGTags", "scale this group up from zero"),
    (_mut_gpu_template, "managedNodeGroups.gpu.tags", "node-template/resources/nvidia.com/gpu"),
    (_mut_ca_enabled, "managedNodeGroups.gpu.tags", "k8s.io/cluster-autoscaler/enabled"),
    (_mut_ca_owner, "managedNodeGroups.system.tags", "another cluster"),
    (
        _mut_sizes,
        "managedNodeGroups.gpu.minSize/desiredCapacity/maxSize",
        "minSize <= desiredCapacity <= maxSize",
    ),
    (_mut_ubuntu, "managedNodeGroups.gpu.amiFamily", "not a supported GPU AMI family"),
    (_mut_cpu_gpu_type, "managedNodeGroups.system.instanceType", "CPU-only"),
    (_mut_cluster_tag, "metadata.tags.gpu-inference.io/cluster", "must equal metadata.name"),
    (_mut_no_lbc_iam, "iam.podIdentityAssociations", "aws-load-balancer-controller"),
    (_mut_no_ca_iam, "iam.podIdentityAssociations", "kube-system/cluster-autoscaler"),
    (_mut_no_agent, "addons", "eks-pod-identity-agent"),
    (_mut_role_and_policy, "iam.podIdentityAssociations[0]", "roleARN cannot be combined"),
    (_mut_bad_json, "addons[4].configurationValues", "not valid JSON"),
    (_mut_ebs_tag, "addons[4].configurationValues", "teardown audit would miss its volumes"),
    (_mut_old_version, "metadata.version", "leaves EKS standard support on 2026-12-02"),
    (_mut_unknown_version, "metadata.version", "not in this tool's EKS calendar"),
    (_mut_self_managed, "nodeGroups", "not supported"),
    (_mut_spot_base, "managedNodeGroups.gpu.spot", "on-demand"),
    (_mut_mixed_ami, "managedNodeGroups[*].amiFamily", "two device plugins or none"),
    (_mut_policy_doc, "iam.podIdentityAssociations[1].permissionPolicy.Statement[0]", "Effect"),
]


@pytest.mark.parametrize(
    ("mutate", "setting", "message"), MUTATIONS, ids=[m[0].__name__[5:] for m in MUTATIONS]
)
def test_each_rule_fails_loudly_naming_the_setting(mutate: Any, setting: str, message: str) -> None:
    doc = raw()
    assert problems_of(doc) == [], "the shipped file must be clean before mutating it"
    mutate(doc)
    found = problems_of(doc)
    assert any(f.startswith(f"{setting}:") and message in f for f in found), found


def test_errors_carry_a_fix(tmp_path: Path) -> None:
    doc = raw()
    _mut_propagate(doc)
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ClusterConfigError) as info:
        ec.load_and_check(path, today=TODAY)
    assert "Fix: set propagateASGTags: true" in str(info.value)


# --------------------------------------------------------------------------- one device plugin


@pytest.mark.parametrize(
    ("ami", "eksctl_installs", "chart_plugins", "expected"),
    [
        ("AmazonLinux2023", False, 1, 1),  # this project's choice
        ("AmazonLinux2023", True, 1, 2),  # eksctl's default would add a second one
        ("AmazonLinux2023", False, 0, 0),  # chart plugin off: GPUs never advertised
        ("Bottlerocket", False, 1, 2),  # Bottlerocket bundles its own
        ("Bottlerocket", True, 0, 1),  # eksctl skips Bottlerocket-only clusters
    ],
)
def test_device_plugin_count(ami: str, eksctl_installs: bool, chart_plugins: int, expected: int) -> None:
    doc = raw()
    ng(doc, "gpu")["amiFamily"] = ami
    cfg = ec.parse_cluster_config(doc, "test")
    assert (
        ec.device_plugin_count(
            cfg, eksctl_installs_plugin=eksctl_installs, chart_device_plugins=chart_plugins
        )
        == expected
    )
