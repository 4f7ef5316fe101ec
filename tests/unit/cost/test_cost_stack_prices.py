"""What costs money in the config (eksctl + chart values), and price files as versioned data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from cost_testkit import PRICES_2026_11_29, write_eksctl

from gpu_inference.domain.prices import available, load_price_book, user_dir, write_price_book
from gpu_inference.domain.stack import load_chart_values, load_stack
from gpu_inference.errors import ConfigError
from gpu_inference.paths import chart_dir, eksctl_config

pytestmark = pytest.mark.unit


def values_file(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / "extra.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_charts_own_values_are_read_with_subchart_defaults() -> None:
    stack = load_stack(eksctl_config(), chart_dir(), [])
    values, _ = load_chart_values(chart_dir(), [])
    assert stack.hpa_min_replicas == values["autoscaling"]["minReplicas"]
    assert stack.hpa_max_replicas == values["autoscaling"]["maxReplicas"]
    assert "inference" in values
    assert "ingress" in values["inference"]
    lb_on = (
        values["inference"]["ingress"]["enabled"] or values["inference"]["service"]["type"] == "LoadBalancer"
    )
    assert (stack.load_balancer != "none") == lb_on


def test_fixture_stack(eksctl: Path, chart: Path) -> None:
    stack = load_stack(eksctl, chart, [])
    assert (stack.hpa_min_replicas, stack.hpa_max_replicas, stack.load_balancer) == (1, 3, "alb")
    assert stack.nat_gateways == 1
    assert stack.availability_zones == 2
    assert stack.load_balancer_public_ips == 2
    assert [(g.name, g.public_ip, g.gpus_per_node) for g in stack.node_groups] == [
        ("system", False, 0),
        ("gpu", False, 1),
    ]
    assert stack.sources["load_balancer"].endswith(
        "inference.ingress.enabled=true (AWS Load Balancer Controller: ALB)"
    )
    assert stack.pvc_gib == ()


def test_values_files_lay_over_the_chart_like_helm(eksctl: Path, chart: Path, tmp_path: Path) -> None:
    extra = values_file(
        tmp_path,
        {
            "inference": {
                "ingress": {"enabled": False},
                "service": {
                    "type": "LoadBalancer",
                    "annotations": {"service.beta.kubernetes.io/aws-load-balancer-type": "external"},
                },
            },
            "prometheus": {"persistence": {"enabled": True}},
        },
    )
    stack = load_stack(eksctl, chart, [extra])
    assert stack.load_balancer == "nlb"
    assert stack.pvc_gib == (("prometheus.persistence", 20.0),)


def test_disabled_subcharts_and_hpa(eksctl: Path, chart: Path, tmp_path: Path) -> None:
    extra = values_file(
        tmp_path,
        {
            "autoscaling": {"enabled": False},
            "inference": {"replicaCount": 2},
            "prometheus": {"enabled": False, "persistence": {"enabled": True}},
        },
    )
    stack = load_stack(eksctl, chart, [extra])
    assert (stack.hpa_min_replicas, stack.hpa_max_replicas) == (2, 2)
    assert "autoscaling.enabled=false, inference.replicaCount=2" in stack.sources["hpa_min_replicas"]
    assert stack.pvc_gib == ()  # a turned-off Prometheus claims no volume


def test_no_chart_falls_back_to_the_node_group_and_says_so(eksctl: Path) -> None:
    stack = load_stack(eksctl, None, [])
    assert (stack.hpa_min_replicas, stack.hpa_max_replicas, stack.load_balancer) == (1, 4, "alb")
    assert "no HPA found" in stack.sources["hpa_max_replicas"]


def test_bad_config_names_the_setting(tmp_path: Path, eksctl: Path, chart: Path) -> None:
    with pytest.raises(ConfigError, match=r"vpc\.nat\.gateway: unknown value 'Double'"):
        load_stack(write_eksctl(tmp_path / "c.yaml", vpc={"nat": {"gateway": "Double"}}), None, [])
    with pytest.raises(ConfigError, match=r"--values: .* not found"):
        load_stack(eksctl, chart, [tmp_path / "missing.yaml"])
    with pytest.raises(ConfigError, match="minReplicas/maxReplicas: need 1 <= min <= max, got 3/2"):
        load_stack(eksctl, chart, [], min_replicas=3, max_replicas=2)
    (tmp_path / "list.yaml").write_text("- a\n")
    with pytest.raises(ConfigError, match="not a YAML mapping"):
        load_stack(eksctl, chart, [tmp_path / "list.yaml"])


# ----------------------------------------------------------------- prices


def test_every_bundled_price_names_its_source_and_date() -> None:
    book = load_price_book("us-east-1", PRICES_2026_11_29)
    assert (book.region, book.as_of) == ("us-east-1", "2026-11-29")
    raw = json.loads(PRICES_2026_11_29.read_text())
    entries = [v for k, v in raw.items() if isinstance(v, dict) and "usd" in v]
    entries += list(raw["ec2_on_demand"].values())
    assert len(entries) > 20
    for e in entries:
        assert e["source"]
        assert e["source_date"].startswith(("2024", "2026"))
        assert e["retrieved"] == "2026-11-29"


def test_newest_file_wins_and_partial_overrides_lay_over_it(tmp_path: Path) -> None:
    newest = load_price_book("us-east-1")
    assert newest.as_of == max(d for d, _ in available("us-east-1"))
    override = tmp_path / "mine.json"
    override.write_text(json.dumps({
        "ec2_on_demand": {"g4dn.xlarge": {"usd": 0.4, "unit": "hour", "source": "our EDP discount",
                                          "source_date": "2026-12"}},
        "ec2_spot": {"g4dn.xlarge": {"usd": 0.21, "unit": "hour", "source": "spot history",
                                     "source_date": "2026-12-01"}},
    }))  # fmt: skip
    book = load_price_book("us-east-1", override)
    assert book.ec2_on_demand["g4dn.xlarge"].usd == 0.4
    assert book.ec2_on_demand["m6i.large"].usd == newest.ec2_on_demand["m6i.large"].usd
    assert book.node_hourly("g4dn.xlarge", "SPOT") == (0.21, "spot price from 2026-12-01")
    assert book.path == str(override)
    assert any("overrides from" in n for n in book.notes)


def test_refreshed_files_in_the_state_dir_are_newer_versions(tmp_path: Path) -> None:
    base = load_price_book("us-east-1", PRICES_2026_11_29)
    path = write_price_book(base.model_copy(update={"as_of": "2027-01-15"}), user_dir())
    assert path.name == "aws-us-east-1-2027-01-15.json"
    assert load_price_book("us-east-1").as_of == "2027-01-15"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not JSON"),
        ("[]", "is not a JSON object"),
        (
            '{"nat_gateway_hour": {"usd": -1, "unit": "hour", "source": "x", "source_date": "y"}}',
            "nat_gateway_hour.usd",
        ),
    ],
)
def test_bad_price_files_name_the_setting(tmp_path: Path, content: str, message: str) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    with pytest.raises(ConfigError, match="--prices") as exc:
        load_price_book("us-east-1", bad)
    assert message in str(exc.value)


def test_unknown_region_says_how_to_get_prices() -> None:
    with pytest.raises(
        ConfigError, match=r"no price data for ap-south-2.*cost prices refresh --region ap-south-2"
    ):
        load_price_book("ap-south-2")


def test_unpriced_instance_type_is_reported_not_guessed() -> None:
    book = load_price_book("us-east-1", PRICES_2026_11_29)
    price, note = book.node_hourly("p5.48xlarge", "ON_DEMAND")
    assert price is None
    assert "no price for p5.48xlarge" in note
