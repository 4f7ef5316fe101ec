"""$/hour and $/month of the stack at minimum, typical and maximum scale, item by item.

Inputs: eksctl/cluster.yaml and the chart values (through cost.stack), a price book, and
stated assumptions for what no config file says (traffic volumes, LCUs, the typical size).
It also checks the design's "about $1.50 per hour" claim: which GPU node counts give it.
"""

from __future__ import annotations

from gpu_inference.domain.cost_items import NAT_PULLS_ITEM, overhead_items, usage_items
from gpu_inference.domain.cost_models import (
    Assumptions,
    ClaimCheck,
    ClaimRow,
    CostEstimate,
    CostItem,
    NatPullFix,
    Scenario,
)
from gpu_inference.domain.prices import HOURS_PER_MONTH, PriceBook
from gpu_inference.domain.stack import NodeGroupCost, StackInputs
from gpu_inference.errors import ConfigError


def _fill(groups: tuple[NodeGroupCost, ...], total: int, sizes: dict[str, int]) -> dict[str, int]:
    """Spread `total` nodes over groups: each starts at its given size, extra goes in order up to max."""
    out = dict(sizes)
    extra = total - sum(out.values())
    for g in groups:
        if extra <= 0:
            break
        add = min(extra, g.max_size - out[g.name])
        out[g.name] += add
        extra -= add
    return out


def _items(
    stack: StackInputs,
    prices: PriceBook,
    counts: dict[str, int],
    a: Assumptions,
    *,
    nat_gb_month: float,
    gpu_min: int,
) -> list[CostItem]:
    """$ per hour at the given node counts: the overhead, then nodes, volumes, traffic.

    Every scenario gets the same items in the same order (quantities may be 0), so they line up.
    """
    items = overhead_items(stack, prices, a.lcu_per_hour)
    node_gib = 0.0
    public_nodes = 0
    for g in stack.node_groups:
        n = counts[g.name]
        price, note = prices.node_hourly(g.instance_type, g.capacity_type)
        kind = "GPU nodes" if g.is_gpu else "system nodes"
        items.append(
            CostItem(
                name=f"{kind} ({g.name}: {g.instance_type} {g.capacity_type})",
                quantity=n,
                unit="node",
                unit_usd=price,
                cost_usd=None if price is None else n * price,
                note=note,
            )
        )
        node_gib += n * g.volume_gib
        public_nodes += n if g.public_ip else 0
    starts = _gpu_node_starts_per_day(stack, counts, gpu_min, a)
    items += usage_items(
        stack,
        prices,
        volume_gib_hours=node_gib,
        public_node_hours=public_nodes,
        egress_gb=a.egress_gb_month / HOURS_PER_MONTH,
        traffic="assumed",
        nat_other_gb=nat_gb_month / HOURS_PER_MONTH,
        nat_pull_gb=starts / 24 * _gb_per_start(stack, a),
        pull_note=f"assumed {starts:g} private GPU node start(s)/day x {_gb_per_start(stack, a):g} GB",
        per_hour=True,
    )
    return items


def _gb_per_start(stack: StackInputs, a: Assumptions) -> float:
    """GB one GPU node start pulls: the image once per node, the model once per replica on it."""
    per_node = max(1, stack.gpu_groups[0].gpus_per_node // max(1, stack.gpus_per_replica))
    return a.pulls.image_gb + per_node * a.pulls.model_gb


def _gpu_node_starts_per_day(
    stack: StackInputs, counts: dict[str, int], gpu_min: int, a: Assumptions
) -> float:
    """Private GPU nodes above the minimum, each started scale_cycles_per_day times a day."""
    private = sum(counts[g.name] for g in stack.gpu_groups if not g.public_ip)
    above = max(0, sum(counts[g.name] for g in stack.gpu_groups) - gpu_min)
    return min(above, private) * a.scale_cycles_per_day


def nat_pull_fix(
    stack: StackInputs, prices: PriceBook, a: Assumptions, typical: Scenario
) -> NatPullFix | None:
    """Price the pulls through the NAT gateway against the fix: an ECR pull-through cache reached
    through VPC endpoints (ecr.api and ecr.dkr interface endpoints in every AZ; the S3 gateway
    endpoint, free, carries the image layers) and the model from an in-region S3 cache."""
    if not stack.nat_gateways or all(g.public_ip for g in stack.gpu_groups):
        return None
    gb = _gb_per_start(stack, a)
    per_start = gb * prices.nat_gateway_gb.usd
    pulls = next((i for i in typical.items if i.name == NAT_PULLS_ITEM), None)
    typical_usd = (pulls.cost_usd or 0.0) if pulls else 0.0
    starts = typical_usd / per_start * 24 if per_start else 0.0
    endpoints = 2 * stack.availability_zones
    fix = (
        f"ECR pull-through cache for the images via {endpoints} interface endpoint-AZs (ecr.api, ecr.dkr in "
        f"{stack.availability_zones} AZs) + the free S3 gateway endpoint (image layers), the model from an "
        "in-region S3 cache (also through the gateway endpoint)"
    )
    hour, storage = prices.vpc_interface_endpoint_hour, prices.ecr_storage_gb_month
    if hour is None or storage is None:
        return NatPullFix(
            gb_per_gpu_node_start=gb, nat_usd_per_gpu_node_start=per_start,
            typical_gpu_node_starts_per_day=starts, typical_nat_usd_per_hour=typical_usd, fix=fix,
            fix_usd_per_hour=None, breakeven_starts_per_day=None,
            recommendation="the price file has no VPC endpoint or ECR storage price: the fix is not priced",
        )  # fmt: skip
    fix_usd = endpoints * hour.usd + a.pulls.image_gb * storage.usd / HOURS_PER_MONTH
    breakeven = fix_usd * 24 / per_start if per_start else None
    if breakeven is not None and starts >= breakeven:
        advice = (
            f"do it: at {starts:g} GPU node start(s)/day the pulls cost ${typical_usd:.4f}/h through the "
            f"NAT, the fix ${fix_usd:.4f}/h"
        )
    else:
        advice = (
            f"worth it above {breakeven:.1f} GPU node starts/day (now {starts:g}); below that, a model "
            "cache on the node (or baked into the AMI) is the cheaper half of the fix"
        )
    return NatPullFix(
        gb_per_gpu_node_start=gb,
        nat_usd_per_gpu_node_start=per_start,
        typical_gpu_node_starts_per_day=starts,
        typical_nat_usd_per_hour=typical_usd,
        fix=fix,
        fix_usd_per_hour=fix_usd,
        breakeven_starts_per_day=breakeven,
        recommendation=advice,
    )


def _total(items: list[CostItem]) -> float:
    return sum(i.cost_usd or 0.0 for i in items)


def estimate_cost(
    stack: StackInputs, prices: PriceBook, assumptions: Assumptions | None = None
) -> CostEstimate:
    a = assumptions or Assumptions()
    if prices.region != stack.region:
        raise ConfigError(
            "--prices / region",
            f"the price file is for {prices.region}, the cluster runs in {stack.region}",
            f"pass a price file for {stack.region} (or refresh prices for it)",
        )
    gpu_groups = stack.gpu_groups
    gpu_min = max(sum(g.min_size for g in gpu_groups), stack.gpu_nodes_for_replicas(stack.hpa_min_replicas))
    gpu_cap = sum(g.max_size for g in gpu_groups)
    gpu_max = min(gpu_cap, stack.gpu_nodes_for_replicas(stack.hpa_max_replicas))
    notes: list[str] = []
    if stack.gpu_nodes_for_replicas(stack.hpa_max_replicas) > gpu_cap:
        notes.append(
            f"HPA maxReplicas {stack.hpa_max_replicas} needs "
            f"{stack.gpu_nodes_for_replicas(stack.hpa_max_replicas)} GPU nodes but the GPU node groups allow "
            f"{gpu_cap}: pods beyond that stay Pending "
            "(raise maxSize in eksctl/cluster.yaml or lower maxReplicas)"
        )
    typical = a.typical_gpu_nodes if a.typical_gpu_nodes is not None else min(gpu_min + 1, gpu_max)
    if not gpu_min <= typical <= gpu_max:
        raise ConfigError(
            "--typical-gpu-nodes",
            f"{typical} is outside {gpu_min}..{gpu_max}",
            f"give a value between {gpu_min} and {gpu_max}",
        )
    all_public = all(g.public_ip for g in stack.node_groups)
    nat_gb = a.nat_gb_month if a.nat_gb_month is not None else (0.0 if all_public else 100.0)
    gpu_start = {g.name: g.min_size for g in gpu_groups}

    def scenario(name: str, gpu_nodes: int, system: str, st: StackInputs = stack) -> Scenario:
        counts = _fill(gpu_groups, gpu_nodes, gpu_start)
        for g in st.system_groups:
            counts[g.name] = {"min": g.min_size, "desired": g.desired, "max": g.max_size}[system]
        items = _items(st, prices, counts, a, nat_gb_month=nat_gb, gpu_min=gpu_min)
        hourly = _total(items)
        return Scenario(
            name=name,
            gpu_nodes=gpu_nodes,
            system_nodes=sum(counts[g.name] for g in st.system_groups),
            items=items,
            usd_per_hour=hourly,
            usd_per_month=hourly * HOURS_PER_MONTH,
        )

    scenarios = [
        scenario("minimum", gpu_min, "min"),
        scenario("typical", typical, "desired"),
        scenario("maximum", gpu_max, "max"),
    ]
    variants = [("as configured", stack)]
    if stack.load_balancer != "alb":
        with_alb = stack.model_copy(
            update={"load_balancer": "alb", "load_balancer_public_ips": stack.availability_zones}
        )
        variants.append(("with the design's internet-facing ALB", with_alb))
    rows = []
    for label, st in variants:
        for n in range(gpu_min, gpu_max + 1):
            usd = scenario(f"{n} GPU nodes", n, "min", st).usd_per_hour
            rows.append(
                ClaimRow(
                    variant=label,
                    gpu_nodes=n,
                    usd_per_hour=usd,
                    matches=abs(usd - a.claim_usd_per_hour) <= a.claim_tolerance * a.claim_usd_per_hour,
                )
            )
    claim = ClaimCheck(
        claim_usd_per_hour=a.claim_usd_per_hour,
        tolerance=a.claim_tolerance,
        rows=rows,
        verdict=_claim_verdict(rows, a, gpu_groups[0].instance_type),
    )
    stated = [
        f"{HOURS_PER_MONTH:g} hours per month",
        f"typical scale: {typical} GPU node(s)"
        + (
            " (--typical-gpu-nodes)"
            if a.typical_gpu_nodes is not None
            else " (default: minimum + 1, one scale-up)"
        ),
        f"load balancer: {a.lcu_per_hour:g} LCU per hour",
        f"data transfer out to the internet: {a.egress_gb_month:g} GB/month",
        f"NAT gateway data processed: {nat_gb:g} GB/month"
        + (
            " (nodes in public subnets send their traffic past the NAT)"
            if a.nat_gb_month is None and all_public
            else ""
        ),
        "system node groups at minSize (minimum), desiredCapacity (typical), maxSize (maximum)",
        "free tiers ignored; taxes, support plans, CloudWatch and ECR storage not included",
        f"image and model pulls through the NAT: {a.pulls.image_gb:g} GB image per new GPU node "
        f"({a.pulls.image_source}); {a.pulls.model_gb:g} GB model per new pod ({a.pulls.model_source}); "
        f"each GPU node above the minimum starts {a.scale_cycles_per_day:g} time(s) a day",
    ]
    return CostEstimate(
        cluster=stack.cluster_name,
        region=stack.region,
        prices=prices.info,
        stack=stack,
        assumptions=stated,
        scenarios=scenarios,
        claim=claim,
        nat_pulls=nat_pull_fix(stack, prices, a, scenarios[1]),
        notes=[*notes, *stack.notes, *prices.notes],
    )


def _claim_verdict(rows: list[ClaimRow], a: Assumptions, gpu_type: str) -> str:
    lo, hi = a.claim_usd_per_hour * (1 - a.claim_tolerance), a.claim_usd_per_hour * (1 + a.claim_tolerance)
    band = f"${a.claim_usd_per_hour:.2f}/h +/-{a.claim_tolerance:.0%} (${lo:.2f}-${hi:.2f})"
    hit = [r for r in rows if r.matches]
    miss = [r for r in rows if not r.matches]

    def listing(rs: list[ClaimRow]) -> str:
        return "; ".join(f"{r.gpu_nodes} x {gpu_type} {r.variant}: ${r.usd_per_hour:.2f}/h" for r in rs)

    if not hit:
        return f"No configuration of this cluster costs {band}: {listing(rows)}."
    return (
        f"{band} holds for: {listing(hit)}. It does not for: {listing(miss)}. "
        "Everything but the GPU nodes is at its minimum in these rows."
    )
