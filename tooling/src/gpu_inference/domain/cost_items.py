"""Bill items shared by the estimate and the run report, so both price the stack the same way."""

from __future__ import annotations

from typing import Literal

from gpu_inference.domain.cost_models import CostItem
from gpu_inference.domain.prices import HOURS_PER_MONTH, PriceBook
from gpu_inference.domain.stack import StackInputs


def overhead_items(stack: StackInputs, prices: PriceBook, lcu_per_hour: float) -> list[CostItem]:
    """What the stack costs per hour whatever the load: quantities and $ per hour.

    EKS control plane, NAT gateways, the load balancer (hourly and its capacity units, an
    assumption), their public IPv4 addresses, and the chart's persistent volumes.
    """
    eks = prices.eks_extended_support_cluster_hour if stack.extended_support else prices.eks_cluster_hour
    out = [CostItem(name="EKS control plane", quantity=1, unit="cluster", unit_usd=eks.usd, cost_usd=eks.usd)]
    if stack.nat_gateways:
        n = stack.nat_gateways
        out.append(
            CostItem(
                name="NAT gateway",
                quantity=n,
                unit="gateway",
                unit_usd=prices.nat_gateway_hour.usd,
                cost_usd=n * prices.nat_gateway_hour.usd,
            )
        )
    if stack.load_balancer != "none":
        hour = {"alb": prices.alb_hour, "nlb": prices.nlb_hour, "clb": prices.clb_hour}[stack.load_balancer]
        lb = stack.load_balancer.upper()
        out.append(CostItem(name=lb, quantity=1, unit="load balancer", unit_usd=hour.usd, cost_usd=hour.usd))
        if stack.load_balancer in ("alb", "nlb"):
            lcu = prices.alb_lcu_hour if stack.load_balancer == "alb" else prices.nlb_lcu_hour
            out.append(
                CostItem(
                    name=f"{lb} capacity units",
                    quantity=lcu_per_hour,
                    unit="LCU",
                    unit_usd=lcu.usd,
                    cost_usd=lcu_per_hour * lcu.usd,
                    note="assumed load",
                )
            )
    ips = stack.nat_gateways + stack.load_balancer_public_ips
    if ips:
        out.append(
            CostItem(
                name="public IPv4: NAT and load balancer",
                quantity=ips,
                unit="address",
                unit_usd=prices.public_ipv4_hour.usd,
                cost_usd=ips * prices.public_ipv4_hour.usd,
            )
        )
    pvc = sum(g for _, g in stack.pvc_gib)
    if pvc:
        gb_hour = prices.ebs_gp3_gb_month.usd / HOURS_PER_MONTH
        out.append(
            CostItem(
                name="EBS gp3: persistent volumes (chart)",
                quantity=pvc,
                unit="GiB",
                unit_usd=gb_hour,
                cost_usd=pvc * gb_hour,
            )
        )
    return out


TrafficKind = Literal["assumed", "measured"]
_TRAFFIC_NAMES: dict[TrafficKind, tuple[str, str, str]] = {
    # (CLB data name, data transfer out name, note)
    "assumed": ("CLB data processed", "data transfer out to the internet", "assumed traffic"),
    "measured": (
        "CLB data processed (response bodies)",
        "data transfer out (response bodies)",
        "measured by locust",
    ),
}
NAT_PULLS_ITEM = "NAT gateway data processed: image and model pulls"


def usage_items(
    stack: StackInputs,
    prices: PriceBook,
    *,
    volume_gib_hours: float,
    public_node_hours: float,
    egress_gb: float,
    traffic: TrafficKind,
    nat_other_gb: float | None = None,
    nat_pull_gb: float | None = None,
    pull_note: str = "",
    per_hour: bool,
) -> list[CostItem]:
    """The items that follow the nodes and the traffic, for the estimate (per_hour: quantities are
    per hour) and for a run or window report (quantities are totals): node root volumes, node public
    IPv4, CLB data, NAT data (other traffic; image and model pulls), data transfer out."""
    clb_name, egress_name, note = _TRAFFIC_NAMES[traffic]
    out: list[CostItem] = []
    if per_hour:
        gb_hour = prices.ebs_gp3_gb_month.usd / HOURS_PER_MONTH
        out.append(
            CostItem(
                name="EBS gp3: node root volumes",
                quantity=volume_gib_hours,
                unit="GiB",
                unit_usd=gb_hour,
                cost_usd=volume_gib_hours * gb_hour,
            )
        )
    else:
        gib_months = volume_gib_hours / HOURS_PER_MONTH
        out.append(
            CostItem(
                name="EBS gp3: node root volumes",
                quantity=gib_months,
                unit="GiB-months",
                unit_usd=prices.ebs_gp3_gb_month.usd,
                cost_usd=gib_months * prices.ebs_gp3_gb_month.usd,
            )
        )
    if per_hour or public_node_hours:
        out.append(
            CostItem(
                name="public IPv4: nodes",
                quantity=public_node_hours,
                unit="address" if per_hour else "address-hours",
                unit_usd=prices.public_ipv4_hour.usd,
                cost_usd=public_node_hours * prices.public_ipv4_hour.usd,
                note="nodes in public subnets (privateNetworking unset)" if per_hour else "",
            )
        )
    if stack.load_balancer == "clb":
        out.append(_gb_item(clb_name, egress_gb, prices.clb_gb.usd, note))
    if stack.nat_gateways and nat_other_gb is not None:
        out.append(_gb_item("NAT gateway data processed", nat_other_gb, prices.nat_gateway_gb.usd, note))
    if stack.nat_gateways and nat_pull_gb is not None:
        out.append(_gb_item(NAT_PULLS_ITEM, nat_pull_gb, prices.nat_gateway_gb.usd, pull_note))
    out.append(_gb_item(egress_name, egress_gb, prices.data_transfer_out_gb.usd, note))
    return out


def _gb_item(name: str, gb: float, usd_per_gb: float, note: str) -> CostItem:
    return CostItem(
        name=name, quantity=gb, unit="GB", unit_usd=usd_per_gb, cost_usd=gb * usd_per_gb, note=note
    )
