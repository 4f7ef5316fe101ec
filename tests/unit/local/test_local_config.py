"""Settings of the local cluster: bad input named by option, saved settings read back, timings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gpu_inference.errors import ConfigError
from gpu_inference.services.local import timing
from gpu_inference.services.local.cluster import LocalCluster, profile_for_preset
from gpu_inference.services.local.config import LocalClusterConfig

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("settings", "option", "fix"),
    [
        ({"name": "Bad_Name"}, "--name", "lower-case letters"),
        ({"name": "x" * 41}, "--name", "at most 40"),
        ({"profile": "gpu"}, "--profile", "auto, classic, llm"),
        ({"timing": "slow"}, "--timing", "fast or eks"),
        ({"time_scale": 0}, "--time-scale", "above 0"),
        ({"front_door_port": 80}, "--front-door-port", "1024-65535"),
        ({"values_files": (Path("/no/such/values.yaml"),)}, "--values", "existing YAML file"),
        ({"set_values": ("autoscaling.maxReplicas",)}, "--set", "KEY=VALUE"),
    ],
)
def test_bad_settings_name_their_option_and_fix(settings: dict[str, object], option: str, fix: str) -> None:
    with pytest.raises(ConfigError) as exc:
        LocalClusterConfig.from_options(**settings)
    assert exc.value.setting == option
    assert fix in exc.value.fix


def test_settings_saved_by_up_are_what_status_down_and_local_read(tmp_path: Path) -> None:
    values = tmp_path / "v.yaml"
    values.write_text("autoscaling: {maxReplicas: 3}\n")
    cfg = LocalClusterConfig.from_options(
        name="other",
        front_door_port=18100,
        prometheus_port=19190,
        adapter_port=16543,
        profile="llm",
        timing="eks",
        time_scale=10,
        values_files=(values,),
        set_values=("inference.preset=custom",),
    )
    path = cfg.save()
    assert path == cfg.workdir / "settings.json"
    assert json.loads(path.read_text())["front_door_port"] == 18100
    again = LocalCluster.named("other")
    assert again.cfg == cfg
    assert again.endpoints.front_door_url == "http://127.0.0.1:18100"
    assert again.endpoints.prometheus_url == "http://127.0.0.1:19190"
    assert LocalCluster.named("never-started").cfg == LocalClusterConfig(name="never-started")


def test_saved_settings_survive_a_values_file_removed_later(tmp_path: Path) -> None:
    values = tmp_path / "v.yaml"
    values.write_text("{}\n")
    LocalClusterConfig.from_options(name="gone", values_files=(values,)).save()
    values.unlink()
    assert LocalClusterConfig.for_name("gone").values_files == (values.resolve(),)


def test_broken_saved_settings_are_a_config_error() -> None:
    cfg = LocalClusterConfig(name="broken")
    cfg.workdir.mkdir(parents=True)
    (cfg.workdir / "settings.json").write_text("{not json")
    with pytest.raises(ConfigError) as exc:
        LocalCluster.named("broken")
    assert "local down --name broken" in exc.value.fix


def test_bad_name_is_checked_before_it_becomes_a_path() -> None:
    with pytest.raises(ConfigError) as exc:
        LocalCluster.named("../../etc")
    assert exc.value.setting == "--name"


@pytest.mark.parametrize(("preset", "profile"), [("vllm", "llm"), ("custom", "classic"), (None, "classic")])
def test_simulator_profile_follows_the_chart_preset(preset: str | None, profile: str) -> None:
    assert profile_for_preset(preset) == profile


def test_every_figure_has_a_source_and_eks_is_slower_than_fast() -> None:
    for name in timing.profile_names():
        figures = timing.figures(name)
        assert set(figures) == set(timing.FIGURES)
        assert all(f.source for f in figures.values())
    fast, eks = timing.timings("fast"), timing.timings("eks")
    assert eks.node_ready.low > fast.node_ready.high
    assert (eks.scan_interval_s, eks.scale_down_unneeded_s) == (10, 600)  # Cluster Autoscaler defaults


def test_eks_intervals_are_derived_from_sizes_bandwidths_and_jitter() -> None:
    f = timing.figures("eks")
    t = timing.timings("eks")
    node_mean = f["ec2_boot_s"].value + f["gpu_driver_s"].value + f["device_plugin_s"].value
    assert t.node_ready.mean == pytest.approx(node_mean)
    assert t.image_pull.low == pytest.approx(f["image_size_mb"].value / f["pull_mb_per_s"].high)
    assert t.image_pull.high == pytest.approx(f["image_size_mb"].value / f["pull_mb_per_s"].low)
    assert t.model_load.low == pytest.approx(
        f["model_size_mb"].value / f["download_mb_per_s"].high + f["load_to_gpu_s"].low
    )


def test_time_scale_divides_every_interval() -> None:
    one, ten = timing.timings("eks"), timing.timings("eks", 10)
    for a, b in [
        (one.node_ready.low, ten.node_ready.low),
        (one.node_ready.high, ten.node_ready.high),
        (one.image_pull.high, ten.image_pull.high),
        (one.model_load.low, ten.model_load.low),
        (one.scan_interval_s, ten.scan_interval_s),
        (one.scale_down_unneeded_s, ten.scale_down_unneeded_s),
    ]:
        assert b == pytest.approx(a / 10)


def test_explicit_overrides_win_over_the_profile() -> None:
    t = LocalClusterConfig(timing="eks", time_scale=10, model_load_s=8, scale_down_unneeded_s=30).timings()
    assert (t.model_load.low, t.model_load.high) == (8, 8)
    assert t.scale_down_unneeded_s == 30
    assert t.node_ready.mean == pytest.approx(timing.timings("eks", 10).node_ready.mean)


def test_node_scaler_runs_with_the_profile_timings() -> None:
    cluster = LocalCluster(LocalClusterConfig(name="t", timing="eks", time_scale=5, seed=42))
    args = cluster.node_scaler_args()
    got = {args[i]: args[i + 1] for i in range(0, len(args), 2)}
    t = timing.timings("eks", 5)
    assert float(got["--scan-interval"]) == pytest.approx(2.0)
    assert float(got["--scale-down-unneeded"]) == pytest.approx(120.0)
    assert float(got["--provision-delay"]) == pytest.approx(t.node_ready.mean)
    assert float(got["--provision-jitter"]) == pytest.approx((t.node_ready.high - t.node_ready.low) / 2)
    assert got["--seed"] == "42"
