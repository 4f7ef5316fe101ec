"""Refreshing prices from the AWS Price List API and EC2 Spot price history, both stubbed with
botocore's Stubber: only the AWS APIs are mocked."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from gpu_inference.adapters.aws_pricing import SIMPLE_PRICES, aws_clients, refresh_price_book
from gpu_inference.domain.prices import PriceBook
from gpu_inference.errors import ConfigError

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _fake_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)


def product(usagetype: str, usd: str) -> str:
    """One Price List API product, in the API's own JSON-string form."""
    return json.dumps({
        "product": {"attributes": {"usagetype": usagetype, "regionCode": "us-east-1"}},
        "terms": {"OnDemand": {"SKU.TERM": {"priceDimensions": {"SKU.TERM.DIM": {
            "unit": "Hrs", "pricePerUnit": {"USD": usd}, "description": "x"}}}}},
    })  # fmt: skip


ANSWERS: dict[str, list[str]] = {
    "eks_cluster_hour": [
        product("USE1-AmazonEKS-Hours:perCluster", "0.1000000000"),
        product("USE1-AmazonEKS-Hours:extendedSupport", "0.6000000000"),
    ],
    "nat_gateway_hour": [product("USE1-NatGateway-Hours", "0.0450000000")],
    "alb_hour": [product("USE1-LoadBalancerUsage", "0.0225000000")],
    "alb_lcu_hour": [product("USE1-LCUUsage", "0.0080000000")],
    "ebs_gp3_gb_month": [product("EBS:VolumeUsage.gp3", "0.0800000000")],
    "public_ipv4_hour": [product("USE1-PublicIPv4:InUseAddress", "0.0050000000")],
}


def expect_calls(stubber: Stubber, answers: dict[str, list[str]], instance_prices: dict[str, str]) -> None:
    for _, usd in sorted(instance_prices.items()):
        stubber.add_response(
            "get_products",
            {"PriceList": [product("BoxUsage:g4dn.xlarge", usd)], "FormatVersion": "aws_v1"},
            {"ServiceCode": "AmazonEC2", "Filters": ANY, "FormatVersion": "aws_v1"},
        )
    for field in SIMPLE_PRICES:
        stubber.add_response(
            "get_products",
            {"PriceList": answers.get(field, []), "FormatVersion": "aws_v1"},
            {"ServiceCode": ANY, "Filters": ANY, "FormatVersion": "aws_v1"},
        )


NOW = datetime(2027, 2, 1, 12, 0, tzinfo=UTC)
SPOT_HISTORY = [  # two AZs; us-east-1a moved during the hour: its latest price counts
    {
        "AvailabilityZone": "us-east-1a",
        "InstanceType": "g4dn.xlarge",
        "ProductDescription": "Linux/UNIX",
        "SpotPrice": "0.250000",
        "Timestamp": datetime(2027, 2, 1, 11, 10, tzinfo=UTC),
    },
    {
        "AvailabilityZone": "us-east-1a",
        "InstanceType": "g4dn.xlarge",
        "ProductDescription": "Linux/UNIX",
        "SpotPrice": "0.210000",
        "Timestamp": datetime(2027, 2, 1, 11, 40, tzinfo=UTC),
    },
    {
        "AvailabilityZone": "us-east-1b",
        "InstanceType": "g4dn.xlarge",
        "ProductDescription": "Linux/UNIX",
        "SpotPrice": "0.230000",
        "Timestamp": datetime(2027, 2, 1, 11, 0, tzinfo=UTC),
    },
]


def refresh(prices: PriceBook, answers: dict[str, list[str]], instance_prices: dict[str, str]) -> PriceBook:
    pricing = boto3.client("pricing", region_name="us-east-1")
    ec2 = boto3.client("ec2", region_name="us-east-1")
    with Stubber(pricing) as stub, Stubber(ec2) as ec2_stub:
        expect_calls(stub, answers, instance_prices)
        for _ in instance_prices:
            ec2_stub.add_response("describe_spot_price_history", {"SpotPriceHistory": SPOT_HISTORY}, {
                "InstanceTypes": ["g4dn.xlarge"], "ProductDescriptions": ["Linux/UNIX"], "StartTime": ANY,
                "EndTime": NOW})  # fmt: skip
        book = refresh_price_book(prices, instance_prices, pricing_client=pricing, ec2_client=ec2, today=NOW)
        stub.assert_no_pending_responses()
        ec2_stub.assert_no_pending_responses()
    return book


def test_refresh_takes_every_price_the_api_returns(prices: PriceBook) -> None:
    book = refresh(prices, ANSWERS, {"g4dn.xlarge": "0.5010000000"})
    assert book.as_of == "2027-02-01"
    assert book.region == "us-east-1"
    od = book.ec2_on_demand["g4dn.xlarge"]
    assert (od.usd, od.source_date) == (0.501, "2027-02-01")
    assert "Price List API" in od.source
    assert book.ec2_on_demand["m6i.large"] == prices.ec2_on_demand["m6i.large"]  # not asked: kept
    spot = book.ec2_spot["g4dn.xlarge"]
    assert spot.usd == pytest.approx((0.21 + 0.23) / 2)
    assert "mean of 2 AZs" in spot.source
    price, note = book.node_hourly("g4dn.xlarge", "SPOT")
    assert price == pytest.approx(0.22)
    assert note == "spot price from 2027-02-01"
    assert book.eks_cluster_hour.usd == 0.1
    assert book.eks_extended_support_cluster_hour.usd == 0.6
    assert book.public_ipv4_hour.source_date == "2027-02-01"
    assert not any("No Spot prices are bundled" in n for n in book.notes)


def test_prices_the_api_does_not_return_are_kept_and_listed(prices: PriceBook) -> None:
    book = refresh(prices, {}, {"g4dn.xlarge": "0.5010000000"})
    assert book.nat_gateway_hour == prices.nat_gateway_hour
    kept = [n for n in book.notes if n.startswith("kept from 2026-11-29")]
    assert len(kept) == len(SIMPLE_PRICES)
    assert any("nat_gateway_hour: the Price List API returned no price" in n for n in kept)


def test_no_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    with pytest.raises(ConfigError, match="AWS credentials: none found"):
        aws_clients("us-east-1")
