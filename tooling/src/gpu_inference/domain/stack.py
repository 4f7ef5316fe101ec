"""What the stack is made of, for costing: eksctl/cluster.yaml plus the chart values.

Every value carries where it came from (a file and key, a default, or a command-line
option), so an estimate can be checked line by line.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field

from gpu_inference.domain.eksctl_config import load_cluster_config
from gpu_inference.domain.models import FrozenModel
from gpu_inference.errors import ConfigError
from gpu_inference.paths import project_root

log = logging.getLogger(__name__)

LoadBalancerKind = Literal["alb", "nlb", "clb", "none"]
EKSCTL_DOCS = "docs.aws.amazon.com/eks/latest/eksctl/vpc-configuration.html"


class NodeGroupCost(FrozenModel):
    name: str
    instance_type: str
    spot: bool
    min_size: int
    desired: int
    max_size: int
    volume_gib: int
    gpus_per_node: int
    public_ip: bool

    @property
    def is_gpu(self) -> bool:
        return self.gpus_per_node > 0

    @property
    def capacity_type(self) -> str:
        return "SPOT" if self.spot else "ON_DEMAND"


class StackInputs(FrozenModel):
    """The billable parts of one deployment, with the source of every value."""

    cluster_name: str
    region: str
    node_groups: tuple[NodeGroupCost, ...]
    availability_zones: int
    nat_gateways: int
    load_balancer: LoadBalancerKind
    load_balancer_public_ips: int
    hpa_min_replicas: int
    hpa_max_replicas: int
    gpus_per_replica: int = 1
    pvc_gib: tuple[tuple[str, float], ...] = ()
    extended_support: bool = False
    sources: dict[str, str] = Field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def gpu_groups(self) -> tuple[NodeGroupCost, ...]:
        return tuple(g for g in self.node_groups if g.is_gpu)

    @property
    def system_groups(self) -> tuple[NodeGroupCost, ...]:
        return tuple(g for g in self.node_groups if not g.is_gpu)

    def group_for_pool(self, pool: str | None, is_gpu: bool) -> NodeGroupCost | None:
        """The node group a node belongs to: by its node-pool label, else the first of its kind."""
        for g in self.node_groups:
            if pool is not None and g.name == pool:
                return g
        kind = self.gpu_groups if is_gpu else self.system_groups
        return kind[0] if kind else None

    def gpu_nodes_for_replicas(self, replicas: int) -> int:
        per_node = max(1, self.gpu_groups[0].gpus_per_node) if self.gpu_groups else 1
        return math.ceil(replicas * self.gpus_per_replica / per_node)


def _walk(node: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, (*path, str(k)))


def _gib(size: Any) -> float | None:
    """Kubernetes quantity like 50Gi / 100G / 1Ti to GiB."""
    s = str(size).strip()
    units = {
        "Ki": 1 / 1024**2,
        "Mi": 1 / 1024,
        "Gi": 1,
        "Ti": 1024,
        "K": 1e3 / 1024**3,
        "M": 1e6 / 1024**3,
        "G": 1e9 / 1024**3,
        "T": 1e12 / 1024**3,
    }
    for suffix in sorted(units, key=len, reverse=True):
        if s.endswith(suffix):
            try:
                return float(s[: -len(suffix)]) * units[suffix]
            except ValueError:
                return None
    try:
        return float(s) / 1024**3
    except ValueError:
        return None


class ChartFacts(BaseModel):
    min_replicas: int | None = None
    max_replicas: int | None = None
    load_balancer: LoadBalancerKind | None = None
    pvc_gib: tuple[tuple[str, float], ...] = ()
    sources: dict[str, str] = Field(default_factory=dict)
    notes: tuple[str, ...] = ()


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError as exc:
        raise ConfigError("--values", f"{path} not found", "pass an existing values file") from exc
    except yaml.YAMLError as exc:
        raise ConfigError("--values", f"{path} is not YAML: {exc}", "fix the file") from exc
    if not isinstance(data, dict):
        raise ConfigError("--values", f"{path} is not a YAML mapping", "pass a chart values file")
    return data


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _shown(path: Path) -> str:
    """A path as the sources list shows it: relative to the checkout when inside it."""
    try:
        return str(path.resolve().relative_to(project_root()))
    except (ValueError, ConfigError):
        return str(path)


def load_chart_values(chart: Path | None, extra: list[Path]) -> tuple[dict[str, Any], str]:
    """Values as helm would compute them: subchart defaults under their names, the chart's values.yaml
    over them, then each extra file (-f) in order. Returns the values and a description of the files."""
    values: dict[str, Any] = {}
    where: list[str] = []
    if chart is not None:
        for sub in sorted((chart / "charts").glob("*/values.yaml")):
            values[sub.parent.name] = _read_yaml(sub)
        values = _deep_merge(values, _read_yaml(chart / "values.yaml"))
        where.append(_shown(chart / "values.yaml"))
    for f in extra:
        values = _deep_merge(values, _read_yaml(f))
        where.append(_shown(f))
    return values, " + ".join(where)


def read_chart_values(values: dict[str, Any], where: str) -> ChartFacts:
    """Pull what costs money out of chart values.

    Looked for anywhere in the values tree (subcharts turned off with enabled=false skipped): a
    mapping with minReplicas and maxReplicas (the HPA; a path with 'autoscaling' or 'hpa'
    preferred; replicaCount when it is disabled), an enabled ingress (ALB via the AWS Load
    Balancer Controller), a Service of type LoadBalancer (NLB when annotated for the controller,
    else a classic ELB), and enabled persistence with a size (EBS gp3).
    """
    live = {
        k: v
        for k, v in values.items()
        if not (isinstance(v, dict) and v.get("enabled") is False and "minReplicas" not in v)
    }
    facts = ChartFacts()
    hpa_candidates: list[tuple[int, tuple[str, ...], dict[str, Any]]] = []
    ingress: tuple[str, ...] | None = None
    lb_service: tuple[tuple[str, ...], dict[str, Any]] | None = None
    pvcs: list[tuple[str, float]] = []
    replica_count: tuple[tuple[str, ...], int] | None = None
    for path, node in _walk(live):
        if "minReplicas" in node and "maxReplicas" in node:
            score = 0 if any(p.lower() in {"autoscaling", "hpa"} for p in path) else 1
            hpa_candidates.append((score, path, node))
        if isinstance(node.get("replicaCount"), int) and replica_count is None:
            replica_count = (path, int(node["replicaCount"]))
        if path and path[-1] == "ingress" and node.get("enabled") is True and ingress is None:
            ingress = path
        if (
            path
            and path[-1] == "service"
            and str(node.get("type", "")) == "LoadBalancer"
            and lb_service is None
        ):
            lb_service = (path, node)
        if path and path[-1] in {"persistence", "persistentVolume"} and node.get("enabled") is True:
            gib = _gib(node.get("size", ""))
            if gib is not None:
                pvcs.append((".".join(path), gib))
    if hpa_candidates:
        _, path, node = sorted(hpa_candidates, key=lambda c: (c[0], len(c[1])))[0]
        key = ".".join(path)
        if node.get("enabled", True) is False:
            n = replica_count[1] if replica_count else 1
            facts.min_replicas = facts.max_replicas = n
            src = f"{where}: {key}.enabled=false, " + (
                f"{'.'.join(replica_count[0])}.replicaCount={n}" if replica_count else "1 replica"
            )
            facts.sources["hpa_min_replicas"] = facts.sources["hpa_max_replicas"] = src
        else:
            facts.min_replicas = int(node["minReplicas"])
            facts.max_replicas = int(node["maxReplicas"])
            facts.sources["hpa_min_replicas"] = f"{where}: {key}.minReplicas"
            facts.sources["hpa_max_replicas"] = f"{where}: {key}.maxReplicas"
    if ingress is not None:
        facts.load_balancer = "alb"
        facts.sources["load_balancer"] = (
            f"{where}: {'.'.join(ingress)}.enabled=true (AWS Load Balancer Controller: ALB)"
        )
    elif lb_service is not None:
        path, node = lb_service
        annotations = " ".join(f"{k}={v}" for k, v in (node.get("annotations") or {}).items())
        facts.load_balancer = "nlb" if ("nlb" in annotations or "external" in annotations) else "clb"
        facts.sources["load_balancer"] = (
            f"{where}: {'.'.join(path)}.type=LoadBalancer ({facts.load_balancer})"
        )
    elif values:
        facts.load_balancer = "none"
        facts.sources["load_balancer"] = (
            f"{where}: no Ingress enabled and no Service of type LoadBalancer, so no load balancer is billed "
            "(--load-balancer alb prices the design's ALB)"
        )
    facts.pvc_gib = tuple(pvcs)
    if pvcs:
        facts.sources["pvc_gib"] = f"{where}: " + ", ".join(f"{k}.size" for k, _ in pvcs)
    cache = (live.get("inference") or {}).get("modelCache") or {}
    if cache.get("type") == "pvc":
        facts.notes = ("inference.modelCache.type=pvc: the shared ReadWriteMany volume (EFS) is not priced",)
    return facts


def load_stack(
    eksctl_config: Path,
    chart: Path | None,
    values_files: list[Path],
    *,
    min_replicas: int | None = None,
    max_replicas: int | None = None,
    load_balancer: LoadBalancerKind | None = None,
    extended_support: bool = False,
) -> StackInputs:
    """Read eksctl/cluster.yaml (the strict model) and chart values; explicit arguments win over both."""
    spec = load_cluster_config(eksctl_config)
    cfg = _shown(eksctl_config)
    sources: dict[str, str] = {"node_groups": f"{cfg}: managedNodeGroups"}
    groups = tuple(
        NodeGroupCost(
            name=ng.name,
            instance_type=ng.instance_types[0],
            spot=ng.spot,
            min_size=ng.min_nodes,
            desired=ng.desired_nodes,
            max_size=ng.max_nodes,
            volume_gib=ng.volumeSize,
            gpus_per_node=ng.gpus_per_node,
            public_ip=not ng.privateNetworking,
        )
        for ng in spec.managedNodeGroups
    )
    sources["public_ip"] = (
        f"{cfg}: privateNetworking per node group (unset = public subnets, eksctl's default; {EKSCTL_DOCS})"
    )
    region = spec.metadata.region
    if spec.availabilityZones:
        n_azs = len(spec.availabilityZones)
        sources["availability_zones"] = f"{cfg}: availabilityZones"
    else:
        n_azs = 2 if region == "us-east-1" else 3
        sources["availability_zones"] = f"eksctl default for {region} ({EKSCTL_DOCS})"
    nat_mode = spec.vpc.nat.gateway
    nat = {"Single": 1, "HighlyAvailable": n_azs, "Disable": 0}[nat_mode]
    nat_set = "vpc" in spec.model_fields_set and "nat" in spec.vpc.model_fields_set
    sources["nat_gateways"] = f"{cfg}: vpc.nat.gateway={nat_mode}" + ("" if nat_set else " (eksctl default)")
    sources["eks_support"] = (
        f"Kubernetes {spec.metadata.version} assumed in EKS standard support "
        "(pass --extended-support once it is past it)"
    )

    values, where = load_chart_values(chart, values_files)
    facts = read_chart_values(values, where) if values else ChartFacts()
    sources.update(facts.sources)
    gpu_groups = [g for g in groups if g.is_gpu]
    if not gpu_groups:
        raise ConfigError(
            "managedNodeGroups", "no GPU node group", "add a node group with a GPU instance type"
        )
    if min_replicas is not None:
        sources["hpa_min_replicas"] = "--min-replicas"
    elif facts.min_replicas is None:
        sources["hpa_min_replicas"] = (
            "default: the GPU node group's minSize (no HPA found in the chart values)"
        )
    if max_replicas is not None:
        sources["hpa_max_replicas"] = "--max-replicas"
    elif facts.max_replicas is None:
        sources["hpa_max_replicas"] = (
            "default: the GPU node group's maxSize (no HPA found in the chart values)"
        )
    hpa_min = min_replicas if min_replicas is not None else facts.min_replicas or gpu_groups[0].min_size
    hpa_max = max_replicas if max_replicas is not None else facts.max_replicas or gpu_groups[0].max_size
    if hpa_min < 1 or hpa_max < hpa_min:
        raise ConfigError(
            "minReplicas/maxReplicas", f"need 1 <= min <= max, got {hpa_min}/{hpa_max}", "fix the HPA values"
        )
    if load_balancer is not None:
        lb: LoadBalancerKind = load_balancer
        sources["load_balancer"] = "--load-balancer"
    elif facts.load_balancer is not None:
        lb = facts.load_balancer
    else:
        lb = "alb"
        sources["load_balancer"] = (
            "default: one internet-facing ALB (the design's client -> load balancer path)"
        )
    lb_ips = 0 if lb == "none" else n_azs
    sources["load_balancer_public_ips"] = (
        "none (no load balancer)"
        if lb == "none"
        else "one public IPv4 per AZ for an internet-facing load balancer"
    )
    return StackInputs(
        cluster_name=spec.metadata.name,
        region=region,
        node_groups=groups,
        availability_zones=n_azs,
        nat_gateways=nat,
        load_balancer=lb,
        load_balancer_public_ips=lb_ips,
        hpa_min_replicas=hpa_min,
        hpa_max_replicas=hpa_max,
        pvc_gib=facts.pvc_gib,
        extended_support=extended_support,
        sources=sources,
        notes=facts.notes,
    )
