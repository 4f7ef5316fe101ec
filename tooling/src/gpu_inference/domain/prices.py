"""Prices as versioned data: one JSON file per provider, region and date.

Bundled files live in gpu_inference/domain/data/ (aws-<region>-<YYYY-MM-DD>.json); refreshed
ones (`gpu-inference cost prices refresh`) in the user state dir. The newest file for a region
wins; `--prices FILE` overrides it, whole or in part (a partial file is laid over the newest).
Every price names its source and date, and every report names the file it used.
"""

from __future__ import annotations

import json
import logging
import re
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError

from gpu_inference.domain.cost_models import PriceBookInfo
from gpu_inference.domain.models import FrozenModel
from gpu_inference.errors import ConfigError
from gpu_inference.paths import state_dir

log = logging.getLogger(__name__)

HOURS_PER_MONTH = 730.0
_FILE_RE = re.compile(r"^aws-(?P<region>[a-z0-9-]+)-(?P<date>\d{4}-\d{2}-\d{2})\.json$")


class Price(FrozenModel):
    usd: float = Field(ge=0)
    unit: str
    source: str
    source_date: str
    retrieved: str = ""


class PriceBook(FrozenModel):
    schema_version: int = 1
    provider: Literal["aws"] = "aws"
    region: str
    currency: Literal["USD"] = "USD"
    as_of: str
    generated_by: str = ""
    notes: tuple[str, ...] = ()
    ec2_on_demand: dict[str, Price]
    ec2_spot: dict[str, Price] = Field(default_factory=dict)
    eks_cluster_hour: Price
    eks_extended_support_cluster_hour: Price
    nat_gateway_hour: Price
    nat_gateway_gb: Price
    alb_hour: Price
    alb_lcu_hour: Price
    nlb_hour: Price
    nlb_lcu_hour: Price
    clb_hour: Price
    clb_gb: Price
    ebs_gp3_gb_month: Price
    public_ipv4_hour: Price
    data_transfer_out_gb: Price
    #: What the fix for NAT-processed pulls costs (optional: older price files lack them).
    vpc_interface_endpoint_hour: Price | None = None
    vpc_interface_endpoint_gb: Price | None = None
    ecr_storage_gb_month: Price | None = None
    #: Where this book was read from (not part of the file).
    path: str = Field(default="", exclude=True)

    @property
    def info(self) -> PriceBookInfo:
        return PriceBookInfo(path=self.path, region=self.region, as_of=self.as_of)

    def node_hourly(self, instance_type: str, capacity_type: str | None) -> tuple[float | None, str]:
        """$/hour of one node and a note on how it was priced (None when it can't be)."""
        on_demand = self.ec2_on_demand.get(instance_type)
        if (capacity_type or "ON_DEMAND").upper() == "SPOT":
            spot = self.ec2_spot.get(instance_type)
            if spot is not None:
                return spot.usd, f"spot price from {spot.source_date}"
            if on_demand is not None:
                return on_demand.usd, "no spot price in the price file: charged at on-demand (upper bound)"
        elif on_demand is not None:
            return on_demand.usd, ""
        return None, (
            f"no price for {instance_type} in {self.path or 'the price file'}: add it with --prices FILE "
            "or `gpu-inference cost prices refresh`"
        )


def bundled_dir() -> Path:
    return Path(str(resources.files("gpu_inference.domain") / "data"))


def user_dir() -> Path:
    """Where `cost prices refresh` writes."""
    return state_dir() / "prices"


def available(region: str) -> list[tuple[str, Path]]:
    """(date, path) of every price file for a region, oldest first."""
    found: list[tuple[str, Path]] = []
    for folder in (bundled_dir(), user_dir()):
        if not folder.is_dir():
            continue
        for f in folder.iterdir():
            m = _FILE_RE.match(f.name)
            if m and m.group("region") == region:
                found.append((m.group("date"), f))
    return sorted(found)


def _read(path: Path, setting: str) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(setting, f"{path} not found", "pass an existing price file") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(
            setting, f"{path} is not JSON ({exc})", "fix the file or start from a bundled one"
        ) from exc
    if not isinstance(raw, dict):
        raise ConfigError(setting, f"{path} is not a JSON object", "start from a bundled price file")
    return raw


def _validate(raw: dict[str, Any], path: Path, setting: str) -> PriceBook:
    try:
        return PriceBook.model_validate({**raw, "path": str(path)})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"{setting} {path}: {where}", first["msg"], "see docs/cost-analysis.md for the format"
        ) from exc


def _merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key.startswith("ec2_"):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out


def load_price_book(region: str = "us-east-1", override: Path | None = None) -> PriceBook:
    """The newest price book for `region`, with `override` (whole or partial) laid over it."""
    top = _read(override, "--prices") if override else None
    if top is not None and "region" in top:
        region = str(top["region"])
    files = available(region)
    if not files:
        if top is None:
            raise ConfigError(
                "region",
                f"no price data for {region}",
                f"run `gpu-inference cost prices refresh --region {region}` with AWS credentials, "
                "or pass --prices FILE",
            )
        return _validate(top, override or Path(), "--prices")
    _, newest = files[-1]
    base = _read(newest, "price file")
    if top is None:
        return _validate(base, newest, "price file")
    merged = _merge(base, top)
    merged.setdefault("notes", [])
    merged["notes"] = [*base.get("notes", []), f"overrides from {override} laid over {newest.name}"]
    book = _validate(merged, override or newest, "--prices")
    log.debug("prices: %s over %s", override, newest)
    return book


def write_price_book(book: PriceBook, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"aws-{book.region}-{book.as_of}.json"
    path.write_text(book.model_dump_json(indent=2) + "\n")
    return path
