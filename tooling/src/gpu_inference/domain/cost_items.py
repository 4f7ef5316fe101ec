"""Bill items shared by the estimate and the run report, so both price the stack the same way."""

from __future__ import annotations

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
