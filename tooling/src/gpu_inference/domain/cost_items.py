"""Bill items shared by the estimate and the run report, so both price the stack the same way."""

from __future__ import annotations

from typing import Literal

from gpu_inference.domain.cost_models import CostItem
from gpu_inference.domain.prices import HOURS_PER_MONTH, PriceBook
from gpu_inference.domain.stack import StackInputs


def priced(name: str, quantity: float, unit: str, unit_usd: float, note: str = "") -> CostItem:
    """One bill line: quantity x unit price."""
    return CostItem(
        name=name, quantity=quantity, unit=unit, unit_usd=unit_usd, cost_usd=quantity * unit_usd, note=note
    )


def overhead_items(stack: StackInputs, prices: PriceBook, lcu_per_hour: float) -> list[CostItem]:
    """What the stack costs per hour whatever the load: quantities and $ per hour.

    EKS control plane, NAT gateways, the load balancer (hourly and its capacity units, an
    assumption), their public IPv4 addresses, and the chart's persistent volumes.
    """
    eks = prices.eks_extended_support_cluster_hour if stack.extended_support else prices.eks_cluster_hour
    out = [priced("EKS control plane", 1, "cluster", eks.usd)]
    if stack.nat_gateways:
        out.append(priced("NAT gateway", stack.nat_gateways, "gateway", prices.nat_gateway_hour.usd))
    if stack.load_balancer != "none":
        hour = {"alb": prices.alb_hour, "nlb": prices.nlb_hour, "clb": prices.clb_hour}[stack.load_balancer]
        lb = stack.load_balancer.upper()
        out.append(priced(lb, 1, "load balancer", hour.usd))
        if stack.load_balancer in ("alb", "nlb"):
            lcu = prices.alb_lcu_hour if stack.load_balancer == "alb" else prices.nlb_lcu_hour
            out.append(priced(f"{lb} capacity units", lcu_per_hour, "LCU", lcu.usd, "assumed load"))
    ips = stack.nat_gateways + stack.load_balancer_public_ips
    if ips:
        out.append(priced("public IPv4: NAT and load balancer", ips, "address", prices.public_ipv4_hour.usd))
    pvc = sum(g for _, g in stack.pvc_gib)
    if pvc:
        gb_hour = prices.ebs_gp3_gb_month.usd / HOURS_PER_MONTH
        out.append(priced("EBS gp3: persistent volumes (chart)", pvc, "GiB", gb_hour))
    return out


TrafficKind = Literal["assumed", "measured"]
_TRAFFIC_NAMES: dict[TrafficKind, tuple[str, str, str]] = {
    # (CLB data name, data transfer out name, note)
    "assumed": ("CLB data processed", "data transfer out to the internet", "assumed traffic"),
    "measured": (
        "CLB data processed (response bodies)",
        "data transfer out (response bodies)",
        "measured by the load generator",
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
    gp3 = prices.ebs_gp3_gb_month.usd
    out = [
        priced("EBS gp3: node root volumes", volume_gib_hours, "GiB", gp3 / HOURS_PER_MONTH)
        if per_hour
        else priced("EBS gp3: node root volumes", volume_gib_hours / HOURS_PER_MONTH, "GiB-months", gp3)
    ]
    if per_hour or public_node_hours:
        out.append(
            priced(
                "public IPv4: nodes",
                public_node_hours,
                "address" if per_hour else "address-hours",
                prices.public_ipv4_hour.usd,
                "nodes in public subnets (privateNetworking unset)" if per_hour else "",
            )
        )
    if stack.load_balancer == "clb":
        out.append(priced(clb_name, egress_gb, "GB", prices.clb_gb.usd, note))
    if stack.nat_gateways and nat_other_gb is not None:
        out.append(priced("NAT gateway data processed", nat_other_gb, "GB", prices.nat_gateway_gb.usd, note))
    if stack.nat_gateways and nat_pull_gb is not None:
        out.append(priced(NAT_PULLS_ITEM, nat_pull_gb, "GB", prices.nat_gateway_gb.usd, pull_note))
    out.append(priced(egress_name, egress_gb, "GB", prices.data_transfer_out_gb.usd, note))
    return out
