"""Decisions of the node group scaler (SIMULATED Cluster Autoscaler) on a fake API and a hand clock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from local_testkit import Clock, FakeCoreApi, gpu_pod

from gpu_inference.domain.cluster_spec import load_cluster_spec
from gpu_inference.paths import eksctl_config
from gpu_inference.services.local.nodescaler import NodeGroupScaler, main

pytestmark = pytest.mark.unit

SPEC = load_cluster_spec(eksctl_config())  # system: min 1 max 2; gpu: min 1 max 4, 1 T4 per node
GPU_MAX = next(g.max_size for g in SPEC.node_groups if g.name == "gpu")


def scaler(api: FakeCoreApi, clock: Clock, **kw: object) -> NodeGroupScaler:
    opts: dict[str, object] = {"provision_delay_s": 30.0, "scale_down_unneeded_s": 600.0, "clock": clock}
    s = NodeGroupScaler(api, SPEC, **{**opts, **kw})  # type: ignore[arg-type]
    s.ensure_minimum()
    return s


def busy_gpu_node(api: FakeCoreApi) -> str:
    node = api.group_nodes("gpu")[0]
    api.pods.append(gpu_pod("running-0", node=node))
    return node


def test_minimum_nodes_of_every_group() -> None:
    api = FakeCoreApi()
    scaler(api, Clock())
    assert len(api.group_nodes("system")) == 1
    assert len(api.group_nodes("gpu")) == 1


def test_pending_gpu_pod_gets_a_node_after_the_provisioning_delay() -> None:
    api, clock = FakeCoreApi(), Clock()
    s = scaler(api, clock)
    busy_gpu_node(api)
    api.pods.append(gpu_pod("pending-0"))
    s.step()
    assert len(api.group_nodes("gpu")) == 1, "a node joined before its provisioning delay"
    clock.advance(29)
    s.step()
    assert len(api.group_nodes("gpu")) == 1
    clock.advance(1)
    s.step()
    assert len(api.group_nodes("gpu")) == 2
    assert s.stats.nodes_added == 3  # two minimum nodes and the new one


def test_one_node_per_pending_gpu_pod_and_none_twice() -> None:
    api, clock = FakeCoreApi(), Clock()
    s = scaler(api, clock)
    busy_gpu_node(api)
    api.pods += [gpu_pod("pending-0"), gpu_pod("pending-1")]
    s.step()
    s.step()  # nodes still provisioning are counted: no second order
    assert sum(len(g.provisioning) for g in s.groups.values()) == 2
    clock.advance(30)
    s.step()
    assert len(api.group_nodes("gpu")) == 3


def test_scale_up_stops_at_the_group_maximum() -> None:
    api, clock = FakeCoreApi(), Clock()
    s = scaler(api, clock)
    busy_gpu_node(api)
    api.pods += [gpu_pod(f"pending-{i}") for i in range(10)]
    s.step()
    clock.advance(30)
    s.step()
    assert len(api.group_nodes("gpu")) == GPU_MAX


def test_pod_that_fits_free_room_needs_no_node() -> None:
    api, clock = FakeCoreApi(), Clock()
    s = scaler(api, clock)
    api.pods.append(gpu_pod("pending-0"))  # the minimum GPU node is still free
    s.step()
    assert not s.groups["gpu"].provisioning


def test_pod_without_the_gpu_toleration_gets_no_gpu_node() -> None:
    api, clock = FakeCoreApi(), Clock()
    s = scaler(api, clock)
    busy_gpu_node(api)
    pod = gpu_pod("pending-0")
    pod["spec"]["tolerations"] = []
    api.pods.append(pod)
    s.step()
    assert not s.groups["gpu"].provisioning


def test_unneeded_node_is_removed_after_the_unneeded_time_down_to_the_minimum() -> None:
    api, clock = FakeCoreApi(), Clock()
    s = scaler(api, clock, scale_down_unneeded_s=600.0)
    busy_gpu_node(api)
    api.pods.append(gpu_pod("pending-0"))
    s.step()
    clock.advance(30)
    s.step()
    assert len(api.group_nodes("gpu")) == 2
    api.pods = []  # load gone: both GPU nodes empty
    s.step()
    clock.advance(599)
    s.step()
    assert len(api.group_nodes("gpu")) == 2, "removed before the unneeded time"
    clock.advance(1)
    s.step()
    assert len(api.group_nodes("gpu")) == 1, "kept an unneeded node or went below the minimum"
    clock.advance(3600)
    s.step()
    assert len(api.group_nodes("gpu")) == 1
    assert s.stats.nodes_removed == 1


def test_node_with_a_workload_pod_is_never_removed() -> None:
    api, clock = FakeCoreApi(), Clock()
    s = scaler(api, clock, scale_down_unneeded_s=10.0)
    api.nodes.clear()
    s.ensure_minimum()
    s.groups["gpu"].spec = s.groups["gpu"].spec.model_copy(update={"min_size": 0})
    busy_gpu_node(api)
    s.step()
    clock.advance(100)
    s.step()
    assert len(api.group_nodes("gpu")) == 1


def _delays(seed: int) -> list[float]:
    api, clock = FakeCoreApi(), Clock()
    s = scaler(api, clock, provision_delay_s=100.0, provision_jitter_s=20.0, seed=seed)
    busy_gpu_node(api)
    api.pods += [gpu_pod(f"pending-{i}") for i in range(3)]
    s.step()
    return [p.ready_at - clock.now for p in s.groups["gpu"].provisioning]


def test_provisioning_jitter_comes_from_the_seed() -> None:
    first, again, other = _delays(7), _delays(7), _delays(8)
    assert first == again
    assert first != other
    assert all(80 <= d <= 120 for d in first + other)
    assert len(set(first)) == 3, "every node draws its own delay"


def test_node_that_fails_to_provision_never_joins_and_is_given_up(tmp_path: Path) -> None:
    api, clock = FakeCoreApi(), Clock()
    faults, status = tmp_path / "faults.json", tmp_path / "status.json"
    s = scaler(api, clock, provision_timeout_s=90.0, faults_file=faults, status_file=status)
    busy_gpu_node(api)
    faults.write_text(json.dumps({"fail_provisions": 1}))
    api.pods.append(gpu_pod("pending-0"))
    s.step()
    assert not faults.exists(), "the fault file is consumed"
    clock.advance(60)
    s.step()
    assert len(api.group_nodes("gpu")) == 1, "a failed node joined"
    assert len(s.groups["gpu"].provisioning) == 1, "the scaler forgot the node too early (CA waits)"
    clock.advance(30)
    s.step()  # gives up on the failed node, and orders a new one for the pod still pending
    assert json.loads(status.read_text())["failed_provisions"] == 1
    clock.advance(30)
    s.step()
    assert len(api.group_nodes("gpu")) == 2


def test_main_with_a_bad_kubeconfig_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "kubeconfig"
    bad.write_text("this: is not\n  a kubeconfig: [")
    rc = main(["--kubeconfig", str(bad), "--cluster-config", str(eksctl_config())])
    err = capsys.readouterr().err
    assert rc == 2
    assert err.startswith("Error: "), err
    assert "(--kubeconfig)" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_main_with_a_missing_kubeconfig_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["--kubeconfig", str(tmp_path / "nope"), "--cluster-config", str(eksctl_config())])
    err = capsys.readouterr().err
    assert rc == 2
    assert "(--kubeconfig)" in err
    assert "Traceback" not in err


def test_main_with_an_unreachable_api_server_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kc = tmp_path / "kubeconfig"
    kc.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    rc = main(["--kubeconfig", str(kc), "--cluster-config", str(eksctl_config())])
    err = capsys.readouterr().err
    assert rc == 2
    assert "did not answer" in err
    assert "Traceback" not in err
