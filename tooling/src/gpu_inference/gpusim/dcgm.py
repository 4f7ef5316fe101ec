"""dcgm-exporter's text exposition, rendered for simulated GPUs.

The layout follows dcgm-exporter's GPU template: per field a ``# HELP`` and ``# TYPE`` line,
then one series per GPU with the labels, in this order::

    gpu, UUID, pci_bus_id, device, modelName, Hostname, [container, namespace, pod]

The pod labels name the pod that holds the GPU (kubelet pod-resources) and are left out when
no pod holds it, as current dcgm-exporter releases do. Values print like the exporter's:
integers plainly, the power reading (a double field) with six decimals.

The label carrying the node name is ``Hostname`` up to dcgm-exporter 4.8.x and ``hostname``
after it (NVIDIA/dcgm-exporter#655); pick it with `hostname_label`.

No label on these series says "simulated" (the real exporter has none, and queries must match
it exactly); instead every endpoint also serves the gauge `gpu_inference_simulated 1`.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gpu_inference.gpusim.model import GpuSample, GpuSpec

SIMULATED_METRIC = "gpu_inference_simulated"
SIMULATED_HELP = (
    "1 means every GPU and inference figure on this endpoint comes from the gpu-inference GPU "
    "simulator, not from hardware."
)
HOSTNAME_LABELS = ("Hostname", "hostname")


@dataclass(frozen=True)
class Field:
    name: str
    prom_type: str
    help: str
    value: Callable[[GpuSample], str]


def _int_field(name: str, prom_type: str, help_text: str, attr: str) -> Field:
    """A field that prints the sample's integer attribute `attr`."""
    get = operator.attrgetter(attr)
    return Field(name, prom_type, help_text, lambda s: str(int(get(s))))


def _fields(rows: Iterable[tuple[str, str, str, str]]) -> tuple[Field, ...]:
    """(name after DCGM_FI_DEV_, type, sample attribute, help) rows as fields; the power reading
    prints with six decimals, everything else as an integer."""
    return tuple(
        Field(f"DCGM_FI_DEV_{name}", kind, text, lambda s: f"{s.power_w:f}")
        if attr == "power_w"
        else _int_field(f"DCGM_FI_DEV_{name}", kind, text, attr)
        for name, kind, attr, text in rows
    )


#: The fields served: those the chart's exporter collects (charts/.../dcgm-exporter/values.yaml
#: `counters`), in that order, with dcgm-exporter's help texts. DCGM_FI_DEV_MEMORY_TEMP is left
#: out: a T4's GDDR6 has no memory temperature sensor, so there is nothing to report.
FIELDS: tuple[Field, ...] = _fields(
    [
        ("GPU_UTIL", "gauge", "util_pct", "GPU utilization (in %)."),
        ("MEM_COPY_UTIL", "gauge", "mem_copy_util_pct", "Memory utilization (in %)."),
        ("FB_USED", "gauge", "fb_used_mib", "Framebuffer memory used (in MiB)."),
        ("FB_FREE", "gauge", "fb_free_mib", "Framebuffer memory free (in MiB)."),
        ("GPU_TEMP", "gauge", "temp_c", "GPU temperature (in C)."),
        ("POWER_USAGE", "gauge", "power_w", "Power draw (in W)."),
        ("TOTAL_ENERGY_CONSUMPTION", "counter", "energy_mj", "Total energy consumption since boot (in mJ)."),
        ("SM_CLOCK", "gauge", "sm_clock_mhz", "SM clock frequency (in MHz)."),
        ("MEM_CLOCK", "gauge", "mem_clock_mhz", "Memory clock frequency (in MHz)."),
        ("XID_ERRORS", "gauge", "xid_errors", "Value of the last XID error encountered."),
        ("THERMAL_VIOLATION", "counter", "thermal_violation_us",
         "Throttling duration due to thermal constraints (in us)."),
        ("POWER_VIOLATION", "counter", "power_violation_us",
         "Throttling duration due to power constraints (in us)."),
        ("PCIE_REPLAY_COUNTER", "counter", "pcie_replays", "Total number of PCIe retries."),
    ]
)  # fmt: skip

METRIC_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)


@dataclass(frozen=True)
class GpuIdentity:
    """The per-GPU labels of a series."""

    index: int
    uuid: str
    pci_bus_id: str
    device: str
    model_name: str
    hostname: str


@dataclass(frozen=True)
class PodRef:
    """The pod/namespace/container that kubelet reports as holding a GPU."""

    pod: str
    namespace: str
    container: str


@dataclass(frozen=True)
class GpuReading:
    identity: GpuIdentity
    sample: GpuSample
    holder: PodRef | None


def gpu_uuid(node: str, index: int) -> str:
    """A stable, UUID-shaped GPU id derived from the node name and index."""
    h = hashlib.sha256(f"gpu-inference-sim/{node}/{index}".encode()).hexdigest()
    return f"GPU-{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def identity_for(spec: GpuSpec, node: str, index: int) -> GpuIdentity:
    return GpuIdentity(
        index=index,
        uuid=gpu_uuid(node, index),
        pci_bus_id=f"00000000:00:{spec.pci_device_base + index:02X}.0",
        device=f"nvidia{index}",
        model_name=spec.model_name,
        hostname=node,
    )


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(r: GpuReading, hostname_label: str) -> str:
    ident = r.identity
    pairs: list[tuple[str, str]] = [
        ("gpu", str(ident.index)),
        ("UUID", ident.uuid),
        ("pci_bus_id", ident.pci_bus_id),
        ("device", ident.device),
        ("modelName", ident.model_name),
        (hostname_label, ident.hostname),
    ]
    if r.holder is not None:
        pairs += [
            ("container", r.holder.container),
            ("namespace", r.holder.namespace),
            ("pod", r.holder.pod),
        ]
    return ",".join(f'{k}="{escape_label_value(v)}"' for k, v in pairs)


def render(readings: Iterable[GpuReading], hostname_label: str = "Hostname") -> str:
    """The /metrics body of one dcgm-exporter (one node's GPUs), plus the simulated marker."""
    if hostname_label not in HOSTNAME_LABELS:
        raise ValueError(f"hostname_label must be one of {HOSTNAME_LABELS}")
    rows = sorted(readings, key=lambda r: r.identity.index)
    lines: list[str] = []
    for f in FIELDS:
        lines.append(f"# HELP {f.name} {f.help}")
        lines.append(f"# TYPE {f.name} {f.prom_type}")
        lines.extend(f"{f.name}{{{_labels(r, hostname_label)}}} {f.value(r.sample)}" for r in rows)
    lines.append(simulated_marker())
    return "\n".join(lines) + "\n"


def simulated_marker() -> str:
    """The `gpu_inference_simulated 1` gauge in text format (no trailing newline)."""
    return (
        f"# HELP {SIMULATED_METRIC} {SIMULATED_HELP}\n# TYPE {SIMULATED_METRIC} gauge\n{SIMULATED_METRIC} 1"
    )
