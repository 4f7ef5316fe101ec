"""Refresh a price book from the AWS Price List API (and EC2 Spot price history).

Needs AWS credentials (any principal allowed pricing:GetProducts and ec2:DescribeSpotPriceHistory).
Each price found replaces the one in the newest book for the region, with the API as its
source and today as its date; prices the API did not return keep their old entry, and the
new book lists them in its notes. Written as aws-<region>-<today>.json.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from gpu_inference.domain.prices import Price, PriceBook
from gpu_inference.errors import ConfigError, GpuInferenceError

log = logging.getLogger(__name__)

#: The Price List API is served from a few regions only; us-east-1 answers for every region.
PRICING_ENDPOINT_REGION = "us-east-1"


class PricingError(GpuInferenceError):
    """The AWS Price List API refused or returned nothing usable."""


def _filters(**terms: str) -> list[dict[str, str]]:
    return [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in terms.items()]


def _products(client: Any, service: str, **terms: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in client.get_paginator("get_products").paginate(
        ServiceCode=service, Filters=_filters(**terms), FormatVersion="aws_v1"
    ):
        out += [json.loads(p) if isinstance(p, str) else p for p in page["PriceList"]]
    return out


def _on_demand_usd(product: dict[str, Any]) -> list[float]:
    prices = []
    for term in product.get("terms", {}).get("OnDemand", {}).values():
        for dim in term.get("priceDimensions", {}).values():
            usd = float(dim.get("pricePerUnit", {}).get("USD", "nan"))
            if usd > 0:
                prices.append(usd)
    return prices


def _one_price(
    products: Iterable[dict[str, Any]], what: str, keep: Callable[[dict[str, Any]], bool]
) -> float:
    found = sorted({p for prod in products if keep(prod) for p in _on_demand_usd(prod)})
    if not found:
        raise PricingError(f"the Price List API returned no price for {what}")
    if len(found) > 1:
        log.warning("%s: several prices %s, using the lowest", what, found)
    return found[0]


def _usage_endswith(suffix: str) -> Callable[[dict[str, Any]], bool]:
    return lambda prod: str(prod.get("product", {}).get("attributes", {}).get("usagetype", "")).endswith(
        suffix
    )


def _ec2_instance(client: Any, region: str, instance_type: str) -> float:
    products = _products(
        client,
        "AmazonEC2",
        regionCode=region,
        instanceType=instance_type,
        operatingSystem="Linux",
        tenancy="Shared",
        preInstalledSw="NA",
        capacitystatus="Used",
    )
    return _one_price(products, f"EC2 {instance_type} in {region}", lambda _: True)


#: field -> (service code, product filters, usagetype suffix) for the non-EC2-instance prices.
SIMPLE_PRICES: dict[str, tuple[str, dict[str, str], str]] = {
    "eks_cluster_hour": ("AmazonEKS", {}, "AmazonEKS-Hours:perCluster"),
    "eks_extended_support_cluster_hour": ("AmazonEKS", {}, "AmazonEKS-Hours:extendedSupport"),
    "nat_gateway_hour": ("AmazonEC2", {"productFamily": "NAT Gateway"}, "NatGateway-Hours"),
    "nat_gateway_gb": ("AmazonEC2", {"productFamily": "NAT Gateway"}, "NatGateway-Bytes"),
    "alb_hour": ("AWSELB", {"productFamily": "Load Balancer-Application"}, "LoadBalancerUsage"),
    "alb_lcu_hour": ("AWSELB", {"productFamily": "Load Balancer-Application"}, "LCUUsage"),
    "nlb_hour": ("AWSELB", {"productFamily": "Load Balancer-Network"}, "LoadBalancerUsage"),
    "nlb_lcu_hour": ("AWSELB", {"productFamily": "Load Balancer-Network"}, "LCUUsage"),
    "ebs_gp3_gb_month": (
        "AmazonEC2",
        {"productFamily": "Storage", "volumeApiName": "gp3"},
        "VolumeUsage.gp3",
    ),
    "public_ipv4_hour": ("AmazonVPC", {}, "PublicIPv4:InUseAddress"),
}


def _spot(ec2: Any, instance_type: str, now: datetime) -> tuple[float, int]:
    """Mean of the current Spot price across availability zones, and how many zones."""
    history = ec2.describe_spot_price_history(
        InstanceTypes=[instance_type],
        ProductDescriptions=["Linux/UNIX"],
        StartTime=now - timedelta(hours=1),
        EndTime=now,
    )["SpotPriceHistory"]
    latest: dict[str, tuple[datetime, float]] = {}
    for h in history:
        az, ts, price = h["AvailabilityZone"], h["Timestamp"], float(h["SpotPrice"])
        if az not in latest or ts > latest[az][0]:
            latest[az] = (ts, price)
    if not latest:
        raise PricingError(f"no Spot price history for {instance_type}")
    return sum(p for _, p in latest.values()) / len(latest), len(latest)


def refresh_price_book(
    base: PriceBook,
    instance_types: Iterable[str],
    *,
    pricing_client: Any,
    ec2_client: Any,
    today: datetime | None = None,
) -> PriceBook:
    """A new book for base.region: every price the APIs give, the rest kept from `base` (noted)."""
    now = today or datetime.now(tz=UTC)
    date = now.date().isoformat()
    region = base.region
    source = f"AWS Price List API (pricing:GetProducts, regionCode={region})"
    kept: list[str] = []
    update: dict[str, Any] = {}

    def price(usd: float, unit: str, src: str = source) -> Price:
        return Price(usd=usd, unit=unit, source=src, source_date=date, retrieved=date)

    on_demand = dict(base.ec2_on_demand)
    spot = dict(base.ec2_spot)
    for it in sorted(set(instance_types)):
        try:
            on_demand[it] = price(_ec2_instance(pricing_client, region, it), "hour")
        except PricingError as exc:
            kept.append(f"ec2_on_demand.{it}: {exc}")
        try:
            usd, zones = _spot(ec2_client, it, now)
            spot[it] = price(
                usd, "hour", f"AWS EC2 DescribeSpotPriceHistory (Linux/UNIX, mean of {zones} AZs)"
            )
        except PricingError as exc:
            kept.append(f"ec2_spot.{it}: {exc}")
    update["ec2_on_demand"] = on_demand
    update["ec2_spot"] = spot
    for field, (service, terms, suffix) in SIMPLE_PRICES.items():
        old: Price = getattr(base, field)
        try:
            products = _products(pricing_client, service, regionCode=region, **terms)
            update[field] = price(_one_price(products, field, _usage_endswith(suffix)), old.unit)
        except PricingError as exc:
            kept.append(f"{field}: {exc}")
    notes = [n for n in base.notes if "No Spot prices are bundled" not in n or not spot]
    notes += [f"kept from {base.as_of} (not refreshed): {k}" for k in kept]
    notes.append(
        "data_transfer_out_gb, clb_* are not refreshed (tiered or legacy pricing): kept from the base book"
    )
    return base.model_copy(
        update={
            **update,
            "as_of": date,
            "generated_by": f"gpu-inference cost prices refresh on {date}",
            "notes": tuple(notes),
            "path": "",
        }
    )


def aws_clients(region: str) -> tuple[Any, Any]:
    """Pricing and EC2 clients; ConfigError when no AWS credentials are configured."""
    import boto3

    session = boto3.Session(region_name=region)
    if session.get_credentials() is None:
        raise ConfigError(
            "AWS credentials",
            "none found (environment, ~/.aws, SSO or instance profile)",
            "configure credentials (e.g. AWS_PROFILE) or keep using the bundled prices",
        )
    return session.client("pricing", region_name=PRICING_ENDPOINT_REGION), session.client(
        "ec2", region_name=region
    )
