"""`gpu-inference cost`: estimate from the config, report on a run or a window, manage prices."""

from __future__ import annotations

import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated, cast, get_args

import typer
from rich.console import Console, RenderableType

from gpu_inference.cli.common import user_errors
from gpu_inference.cli.loadtest import resolve_target_options
from gpu_inference.cli.options import TargetOptions, parse_duration, with_option_groups
from gpu_inference.domain.cost_models import PullSizes as PullSizesT
from gpu_inference.domain.stack import LoadBalancerKind
from gpu_inference.errors import ConfigError
from gpu_inference.paths import chart_dir, eksctl_config

cost_app = typer.Typer(help="What the stack costs: estimates, run reports, prices.", no_args_is_help=True)
prices_app = typer.Typer(
    help="Price data (versioned files with their date and region).", no_args_is_help=True
)
cost_app.add_typer(prices_app, name="prices")

FormatOpt = Annotated[str, typer.Option("--format", "-o", help="table, json or csv.")]
OutputOpt = Annotated[
    Path | None, typer.Option("--output", help="Write to this file instead of the terminal.")
]
PricesOpt = Annotated[
    Path | None, typer.Option("--prices", help="Price file (whole or partial) laid over the newest.")
]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config", help="eksctl ClusterConfig (default: eksctl/cluster.yaml).")
]
ChartOpt = Annotated[
    Path | None, typer.Option("--chart", help="Chart directory (default: charts/gpu-inference).")
]
ImageGbOpt = Annotated[
    float | None,
    typer.Option("--image-gb", min=0, help="GB of the inference image a new GPU node pulls (default 10)."),
]
ModelGbOpt = Annotated[
    float | None, typer.Option("--model-gb", min=0, help="GB of the model a new pod downloads (default 3.1).")
]
ValuesOpt = Annotated[
    list[Path] | None, typer.Option("--values", "-f", help="Values files laid over the chart's (as helm -f).")
]


def _emit(fmt: str, output: Path | None, table: RenderableType, as_json: str, as_csv: str) -> None:
    if fmt not in ("table", "json", "csv"):
        raise ConfigError("--format", f"unknown format '{fmt}'", "use table, json or csv")
    if fmt == "table":
        with output.open("w") if output else nullcontext(None) as f:
            Console(file=f, width=None if f is None and sys.stdout.isatty() else 140).print(table)
        return
    text = as_json if fmt == "json" else as_csv
    if output:
        output.write_text(text)
    else:
        typer.echo(text, nl=False)


def _chart(chart: Path | None) -> Path | None:
    """The chart whose values (subcharts' defaults included) the stack is read from."""
    if chart is not None:
        if not (chart / "values.yaml").is_file():
            raise ConfigError("--chart", f"{chart} has no values.yaml", "pass the chart directory")
        return chart
    default = chart_dir()
    return default if (default / "values.yaml").is_file() else None


@cost_app.command("estimate")
def estimate(
    *,
    config: ConfigOpt = None,
    chart: ChartOpt = None,
    values: ValuesOpt = None,
    prices: PricesOpt = None,
    min_replicas: Annotated[
        int | None, typer.Option("--min-replicas", min=1, help="Override the HPA minimum.")
    ] = None,
    max_replicas: Annotated[
        int | None, typer.Option("--max-replicas", min=1, help="Override the HPA maximum.")
    ] = None,
    load_balancer: Annotated[
        str | None,
        typer.Option("--load-balancer", help="alb, nlb, clb or none (default: from the chart values)."),
    ] = None,
    typical_gpu_nodes: Annotated[
        int | None,
        typer.Option("--typical-gpu-nodes", min=0, help="GPU nodes at typical load (default min + 1)."),
    ] = None,
    lcu: Annotated[float, typer.Option("--lcu", min=0, help="Load balancer capacity units per hour.")] = 1.0,
    egress_gb_month: Annotated[
        float, typer.Option("--egress-gb-month", min=0, help="Internet egress GB/month.")
    ] = 10.0,
    nat_gb_month: Annotated[
        float | None, typer.Option("--nat-gb-month", min=0, help="GB/month through the NAT gateway.")
    ] = None,
    extended_support: Annotated[
        bool, typer.Option("--extended-support", help="Price the control plane in EKS extended support.")
    ] = False,
    image_gb: ImageGbOpt = None,
    model_gb: ModelGbOpt = None,
    scale_cycles_per_day: Annotated[
        float,
        typer.Option(
            "--scale-cycles-per-day", min=0, help="Starts per day of each GPU node above the minimum."
        ),
    ] = 1.0,
    fmt: FormatOpt = "table",
    output: OutputOpt = None,
) -> None:
    """$/hour and $/month at minimum, typical and maximum scale, item by item, from the config."""
    from gpu_inference.domain.cost_models import Assumptions
    from gpu_inference.domain.prices import load_price_book
    from gpu_inference.domain.stack import load_stack
    from gpu_inference.rendering import cost_tables as render
    from gpu_inference.services.cost.estimate import estimate_cost

    with user_errors():
        lb: LoadBalancerKind | None = None
        if load_balancer is not None:
            if load_balancer not in get_args(LoadBalancerKind):
                raise ConfigError(
                    "--load-balancer", f"unknown '{load_balancer}'", "use alb, nlb, clb or none"
                )
            lb = cast(LoadBalancerKind, load_balancer)
        stack = load_stack(
            config or eksctl_config(),
            _chart(chart),
            values or [],
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            load_balancer=lb,
            extended_support=extended_support,
        )
        book = load_price_book(stack.region, prices)
        e = estimate_cost(
            stack,
            book,
            Assumptions(
                typical_gpu_nodes=typical_gpu_nodes,
                lcu_per_hour=lcu,
                egress_gb_month=egress_gb_month,
                nat_gb_month=nat_gb_month,
                pulls=_pull_sizes(PullSizesT(), image_gb, model_gb),
                scale_cycles_per_day=scale_cycles_per_day,
            ),
        )
        _emit(fmt, output, render.estimate_table(e), render.estimate_json(e), render.estimate_csv(e))


def _pull_sizes(default: PullSizesT, image_gb: float | None, model_gb: float | None) -> PullSizesT:
    """The pull sizes with --image-gb/--model-gb laid over the defaults (and named as their source)."""
    update: dict[str, object] = {}
    if image_gb is not None:
        update |= {"image_gb": image_gb, "image_source": "--image-gb"}
    if model_gb is not None:
        update |= {"model_gb": model_gb, "model_source": "--model-gb"}
    return default.model_copy(update=update)


@cost_app.command("report")
@with_option_groups(omit=("target", "api"))
def report(
    *,
    run: Annotated[
        Path | None, typer.Option("--run", help="Output directory of a loadtest/verify-scaleup run.")
    ] = None,
    where: TargetOptions,
    since: Annotated[
        str | None, typer.Option("--since", help="Window on a live cluster ending now (e.g. 2h).")
    ] = None,
    start: Annotated[float | None, typer.Option("--start", help="Window start (unix seconds).")] = None,
    end: Annotated[
        float | None, typer.Option("--end", help="Window end (unix seconds, default now).")
    ] = None,
    step: Annotated[
        float, typer.Option("--step", min=1, help="Seconds between points of the window.")
    ] = 30.0,
    target_util: Annotated[
        float | None, typer.Option("--utilization-target", help="Idle threshold (default: read from --hpa).")
    ] = None,
    config: ConfigOpt = None,
    chart: ChartOpt = None,
    values: ValuesOpt = None,
    prices: PricesOpt = None,
    fmt: FormatOpt = "table",
    output: OutputOpt = None,
    ca_unneeded: Annotated[
        str,
        typer.Option(
            "--scale-down-unneeded", help="Cluster Autoscaler's scale-down-unneeded-time (tail projection)."
        ),
    ] = "10m",
    no_write: Annotated[
        bool, typer.Option("--no-write", help="With --run: don't write cost.* or update report.*")
    ] = False,
    image_gb: ImageGbOpt = None,
    model_gb: ModelGbOpt = None,
) -> None:
    """Node-hours, total, per 1k requests and per 1M tokens, idle GPU cost and the scale-down tail."""
    from gpu_inference.adapters.kube import ClusterReader
    from gpu_inference.adapters.prometheus import Prometheus
    from gpu_inference.domain.prices import load_price_book
    from gpu_inference.domain.stack import load_stack
    from gpu_inference.rendering import cost_tables as render
    from gpu_inference.services.cost.report import cost_report_from_run, to_csv, to_json
    from gpu_inference.services.cost.window import PromWindow, cost_report_from_window

    with user_errors():
        stack = load_stack(config or eksctl_config(), _chart(chart), values or [])
        book = load_price_book(stack.region, prices)
        pulls = _pull_sizes(PullSizesT(), image_gb, model_gb)
        if run is not None:
            cost = cost_report_from_run(
                run,
                prices=book,
                stack=stack,
                write=not no_write,
                ca_unneeded_s=parse_duration(ca_unneeded) or 0.0,
                pulls=pulls,
            )
        else:
            if where.local:
                t = resolve_target_options(where)
                prometheus_url, kubeconfig, kube_context = t.prometheus_url, t.kubeconfig, t.kube_context
                namespace, hpa, simulated = t.namespace, t.hpa_name, t.simulated
            else:
                prometheus_url, kubeconfig, kube_context = (
                    where.prometheus_url,
                    where.kubeconfig,
                    where.kube_context,
                )
                namespace, hpa, simulated = where.namespace, where.hpa, where.simulated
            if prometheus_url is None:
                raise ConfigError(
                    "--run/--prometheus-url",
                    "nothing to report on",
                    "pass --run DIR, or --prometheus-url with --since/--start (or --local)",
                )
            stop = end if end is not None else time.time()
            begin = start if start is not None else stop - (parse_duration(since) or 0.0)
            if begin >= stop:
                raise ConfigError(
                    "--since/--start", "the window is empty", "pass --since 1h or --start before --end"
                )
            cluster = (
                ClusterReader(kubeconfig, namespace, hpa or "", context=kube_context) if kubeconfig else None
            )
            util = target_util
            if util is None and cluster is not None and hpa:
                util = cluster.hpa_spec(where.metric).target_value
            if util is None:
                raise ConfigError(
                    "--utilization-target", "unknown", "pass --hpa (read from the HPA) or the value"
                )
            with Prometheus(prometheus_url) as prom:
                window = PromWindow(namespace, start=begin, end=stop, step_s=step, metric=where.metric)
                cost = cost_report_from_window(
                    prom,
                    window,
                    stack=stack,
                    prices=book,
                    cluster=cluster,
                    simulated=simulated,
                    utilization_target=util,
                    pulls=pulls,
                )
            if cluster is not None:
                cluster.close()
        _emit(fmt, output, render.report_table(cost), to_json(cost), to_csv(cost))


@prices_app.command("show")
def prices_show(
    region: Annotated[str, typer.Option("--region", help="AWS region.")] = "us-east-1",
    prices: PricesOpt = None,
) -> None:
    """Print the price book in use, with every source and date."""
    from gpu_inference.domain.prices import available, load_price_book

    with user_errors():
        book = load_price_book(region, prices)
        typer.echo(f"{book.path} (region {book.region}, as of {book.as_of})")
        typer.echo("versions: " + ", ".join(f"{d} {p}" for d, p in available(region)))
        for key, value in book.model_dump(exclude={"ec2_on_demand", "ec2_spot", "notes"}).items():
            if isinstance(value, dict):
                typer.echo(
                    f"  {key}: ${value['usd']} per {value['unit']} "
                    f"({value['source']}, {value['source_date']})"
                )
        for table in ("ec2_on_demand", "ec2_spot"):
            for it, p in sorted(getattr(book, table).items()):
                typer.echo(f"  {table}.{it}: ${p.usd} per {p.unit} ({p.source}, {p.source_date})")
        for n in book.notes:
            typer.echo(f"  note: {n}")


@prices_app.command("refresh")
def prices_refresh(
    region: Annotated[
        str | None, typer.Option("--region", help="AWS region (default: the cluster's).")
    ] = None,
    config: ConfigOpt = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out-dir", help="Where to write (default: user state dir).")
    ] = None,
) -> None:
    """Fetch current prices from the AWS Price List API (needs AWS credentials)."""
    from gpu_inference.adapters.aws_pricing import aws_clients, refresh_price_book
    from gpu_inference.domain.eksctl_config import load_cluster_config
    from gpu_inference.domain.prices import load_price_book, user_dir, write_price_book

    with user_errors():
        cfg = load_cluster_config(config or eksctl_config())
        reg = region or cfg.metadata.region
        base = load_price_book(reg)
        pricing, ec2 = aws_clients(reg)
        types = {t for ng in cfg.managedNodeGroups for t in ng.instance_types} | set(base.ec2_on_demand)
        book = refresh_price_book(base, types, pricing_client=pricing, ec2_client=ec2)
        path = write_price_book(book, out_dir or user_dir())
        typer.echo(f"wrote {path}")
        for n in book.notes:
            typer.echo(f"  note: {n}")


def register(app: typer.Typer) -> None:
    app.add_typer(cost_app, name="cost")
