"""dcgm-exporter's exposition format, parsed back with prometheus_client's parser."""

from __future__ import annotations

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gpu_inference.gpusim import dcgm
from gpu_inference.gpusim.model import TESLA_T4, GpuSample

pytestmark = pytest.mark.unit

SAMPLE = GpuSample(util_pct=87, fb_used_mib=5120, fb_free_mib=10240, temp_c=61, power_w=55.5,
                   sm_clock_mhz=1590, mem_clock_mhz=5001, mem_copy_util_pct=40, energy_mj=123456)  # fmt: skip
HELD = dcgm.PodRef(pod="inference-7d9f-abcde", namespace="serving", container="vllm")
GPU_LABELS = {"gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname"}
POD_LABELS = {"pod", "namespace", "container"}
GAUGES = {
    f"DCGM_FI_DEV_{name}"
    for name in ("GPU_UTIL", "MEM_COPY_UTIL", "FB_USED", "FB_FREE", "GPU_TEMP", "POWER_USAGE", "SM_CLOCK",
                 "MEM_CLOCK", "XID_ERRORS")
}  # fmt: skip
COUNTERS = {
    f"DCGM_FI_DEV_{name}"
    for name in ("TOTAL_ENERGY_CONSUMPTION", "THERMAL_VIOLATION", "POWER_VIOLATION", "PCIE_REPLAY_COUNTER")
}
EXPECTED_NAMES = GAUGES | COUNTERS


def _reading(node: str, index: int, holder: dcgm.PodRef | None) -> dcgm.GpuReading:
    return dcgm.GpuReading(dcgm.identity_for(TESLA_T4, node, index), SAMPLE, holder)


def test_series_names_labels_and_values_parse_back() -> None:
    text = dcgm.render([_reading("ip-10-0-1-5.ec2.internal", 0, HELD)])
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(families) == EXPECTED_NAMES | {dcgm.SIMULATED_METRIC}
    for name in EXPECTED_NAMES:
        fam = families[name]
        assert fam.type == ("counter" if name in COUNTERS else "gauge")
        (series,) = fam.samples
        assert set(series.labels) == GPU_LABELS | POD_LABELS
        assert series.labels["gpu"] == "0"
        assert series.labels["device"] == "nvidia0"
        assert series.labels["modelName"] == "Tesla T4"
        assert series.labels["Hostname"] == "ip-10-0-1-5.ec2.internal"
        assert series.labels["pci_bus_id"] == "00000000:00:1E.0"
        assert (series.labels["pod"], series.labels["namespace"], series.labels["container"]) == (
            "inference-7d9f-abcde",
            "serving",
            "vllm",
        )
        assert "simulated" not in {k.lower() for k in series.labels}
    values = {n: families[n].samples[0].value for n in EXPECTED_NAMES}
    assert values == {
        "DCGM_FI_DEV_GPU_UTIL": 87,
        "DCGM_FI_DEV_MEM_COPY_UTIL": 40,
        "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": 123456,
        "DCGM_FI_DEV_THERMAL_VIOLATION": 0,
        "DCGM_FI_DEV_POWER_VIOLATION": 0,
        "DCGM_FI_DEV_PCIE_REPLAY_COUNTER": 0,
        "DCGM_FI_DEV_FB_USED": 5120,
        "DCGM_FI_DEV_FB_FREE": 10240,
        "DCGM_FI_DEV_GPU_TEMP": 61,
        "DCGM_FI_DEV_POWER_USAGE": 55.5,
        "DCGM_FI_DEV_SM_CLOCK": 1590,
        "DCGM_FI_DEV_MEM_CLOCK": 5001,
        "DCGM_FI_DEV_XID_ERRORS": 0,
    }
    (marker,) = families[dcgm.SIMULATED_METRIC].samples
    assert marker.value == 1
    assert marker.labels == {}


def test_raw_lines_follow_the_exporters_layout() -> None:
    text = dcgm.render([_reading("node-a", 0, HELD)])
    lines = text.splitlines()
    util = lines.index("# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).")
    assert lines[util + 1] == "# TYPE DCGM_FI_DEV_GPU_UTIL gauge"
    pattern = (
        r'DCGM_FI_DEV_GPU_UTIL\{gpu="0",UUID="GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",'
        r'pci_bus_id="00000000:00:1E\.0",device="nvidia0",modelName="Tesla T4",Hostname="node-a",'
        r'container="vllm",namespace="serving",pod="inference-7d9f-abcde"\} 87'
    )
    assert re.fullmatch(pattern, lines[util + 2])
    power = next(ln for ln in lines if ln.startswith("DCGM_FI_DEV_POWER_USAGE{"))
    assert power.endswith(" 55.500000")  # a double field prints with six decimals
    # counters keep the DCGM field name, no _total (prometheus_client's parser adds one when reading)
    assert "# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter" in lines
    energy = next(ln for ln in lines if ln.startswith("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{"))
    assert energy.endswith("} 123456")
    assert not any(ln.startswith("DCGM_FI_DEV_MEMORY_TEMP") for ln in lines)  # no sensor on a T4
    assert text.endswith("gpu_inference_simulated 1\n")


def test_gpu_without_pod_has_no_pod_labels() -> None:
    text = dcgm.render([_reading("node-a", 1, None), _reading("node-a", 0, HELD)])
    util = next(f for f in text_string_to_metric_families(text) if f.name == "DCGM_FI_DEV_GPU_UTIL")
    by_gpu = {s.labels["gpu"]: s.labels for s in util.samples}
    assert set(by_gpu["0"]) == GPU_LABELS | POD_LABELS
    assert set(by_gpu["1"]) == GPU_LABELS
    assert [s.labels["gpu"] for s in util.samples] == ["0", "1"]


def test_lowercase_hostname_label_for_newer_exporters() -> None:
    text = dcgm.render([_reading("node-a", 0, None)], hostname_label="hostname")
    fam = next(f for f in text_string_to_metric_families(text) if f.name == "DCGM_FI_DEV_FB_USED")
    assert fam.samples[0].labels["hostname"] == "node-a"
    assert "Hostname" not in fam.samples[0].labels
    with pytest.raises(ValueError, match="hostname_label"):
        dcgm.render([], hostname_label="host")


def test_uuid_is_stable_per_node_and_index() -> None:
    assert dcgm.gpu_uuid("a", 0) == dcgm.gpu_uuid("a", 0)
    assert len({dcgm.gpu_uuid("a", 0), dcgm.gpu_uuid("a", 1), dcgm.gpu_uuid("b", 0)}) == 3


def test_label_values_are_escaped() -> None:
    odd = dcgm.PodRef(pod='p"q', namespace="n\\s", container="c\nd")
    text = dcgm.render([_reading("node-a", 0, odd)])
    fam = next(f for f in text_string_to_metric_families(text) if f.name == "DCGM_FI_DEV_GPU_UTIL")
    labels = fam.samples[0].labels
    assert (labels["pod"], labels["namespace"], labels["container"]) == ('p"q', "n\\s", "c\nd")
