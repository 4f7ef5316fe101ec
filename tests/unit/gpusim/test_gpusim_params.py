"""The data file: every parameter has a source, the figures match the chart, lengths are seeded."""

from __future__ import annotations

import copy
import statistics
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpu_inference.errors import ConfigError
from gpu_inference.gpusim.lengths import FINISH_LENGTH, FINISH_STOP, OutputLengths
from gpu_inference.gpusim.params import (
    CLASSIC_DEFAULT,
    LLM_DEFAULT,
    load_catalog,
    parse_catalog,
    profile_document,
)

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[3]
INFERENCE_CHART = REPO / "charts" / "gpu-inference" / "charts" / "inference"


def raw_data_file() -> dict[str, Any]:
    text = resources.files("gpu_inference.gpusim").joinpath("data", "profiles.yaml").read_text("utf-8")
    doc = yaml.safe_load(text)
    assert isinstance(doc, dict)
    return doc


def parameters(doc: dict[str, Any]) -> list[tuple[str, Any]]:
    grouped = [
        (f"{section}.{group}.{name}", entry)
        for section in ("gpus", "models", "profiles")
        for group, body in doc[section].items()
        for name, entry in body.items()
    ]
    return grouped + [(f"api.{name}", entry) for name, entry in doc["api"].items()]


def test_every_parameter_in_the_data_file_has_a_source() -> None:
    params = parameters(raw_data_file())
    assert len(params) > 50
    missing = [
        path
        for path, entry in params
        if not isinstance(entry, dict)
        or "value" not in entry
        or not isinstance(entry.get("source"), str)
        or not entry["source"].strip()
    ]
    assert missing == []


@pytest.mark.parametrize("broken", ["no-source", "empty-source", "bare-value"])
@pytest.mark.parametrize(
    "path", [("profiles", "llm", "max_num_seqs"), ("gpus", "tesla-t4", "tdp_w"), ("api", "bytes_per_token")]
)
def test_a_parameter_without_a_source_is_refused(broken: str, path: tuple[str, ...]) -> None:
    doc = copy.deepcopy(raw_data_file())
    *parents, name = path
    holder = doc
    for key in parents:
        holder = holder[key]
    entry = holder[name]
    if broken == "no-source":
        del entry["source"]
    elif broken == "empty-source":
        entry["source"] = "  "
    else:
        holder[name] = entry["value"]
    with pytest.raises(ValueError, match=name):
        parse_catalog(doc)


def test_the_llm_profile_matches_the_charts_server_and_model() -> None:
    values = yaml.safe_load((INFERENCE_CHART / "values.yaml").read_text())
    chart = yaml.safe_load((INFERENCE_CHART / "Chart.yaml").read_text())
    assert LLM_DEFAULT.model == values["model"]["name"]
    assert LLM_DEFAULT.max_model_len == values["model"]["maxModelLen"]
    assert LLM_DEFAULT.memory_fraction == float(values["model"]["gpuMemoryUtilization"])
    assert LLM_DEFAULT.server.endswith(chart["appVersion"])
    assert values["model"]["dtype"] == "half"  # the KV and weight sizes assume 2-byte values
    assert LLM_DEFAULT.model in load_catalog().models


def test_profile_document_names_a_source_for_every_value() -> None:
    for profile in (CLASSIC_DEFAULT, LLM_DEFAULT):
        doc = profile_document(profile)
        assert doc["simulated"] is True
        assert doc["profile"] == profile.name
        assert all(v["source"] for v in doc["parameters"].values())
        assert "capacity_tps" in doc["parameters"]
        assert ("prefill_speedup" in doc["parameters"]) is (profile is CLASSIC_DEFAULT)
    changed = LLM_DEFAULT.with_overrides(max_batch=64, source="pod flag --max-num-seqs")
    doc = profile_document(changed)
    assert doc["parameters"]["max_batch"] == {"value": 64, "source": "pod flag --max-num-seqs"}
    assert doc["derived"]["kv_capacity_tokens"] == changed.kv_capacity_tokens()


def test_single_stream_and_capacity_options_refit_the_step_model() -> None:
    p = LLM_DEFAULT.with_overrides(single_stream_tps=30.0, capacity_tps=300.0, max_batch=16)
    assert 1 / p.step_s(1, 0) == pytest.approx(30.0)
    assert 16 / p.step_s(16, 0) == pytest.approx(300.0)
    with pytest.raises(ConfigError) as err:
        LLM_DEFAULT.with_overrides(max_batch=4096).validate()
    assert err.value.setting == "--max-batch"  # more sequences than tokens per step


# ---------------------------------------------------------------------------------------------
# reply lengths


def test_output_lengths_are_seeded_and_reproducible() -> None:
    a = [OutputLengths(LLM_DEFAULT, "ns/pod-a").natural() for _ in range(1)]
    gen_a, gen_b = OutputLengths(LLM_DEFAULT, "ns/pod-a"), OutputLengths(LLM_DEFAULT, "ns/pod-a")
    seq_a = [gen_a.natural() for _ in range(2000)]
    seq_b = [gen_b.natural() for _ in range(2000)]
    assert seq_a == seq_b
    assert a[0] == seq_a[0]
    other = OutputLengths(LLM_DEFAULT, "ns/pod-b")
    assert [other.natural() for _ in range(2000)] != seq_a
    assert statistics.mean(seq_a) == pytest.approx(LLM_DEFAULT.output_length_mean, rel=0.15)
    assert min(seq_a) >= 1
    # a request's own seed gives the same length wherever and whenever it is drawn
    assert gen_a.natural(request_seed=42) == other.natural(request_seed=42)


def test_budget_ignore_eos_and_finish_reasons() -> None:
    gen = OutputLengths(LLM_DEFAULT, "x")
    assert gen.length(50, ignore_eos=True) == (50, FINISH_LENGTH)
    outcomes = [gen.length(300, ignore_eos=False) for _ in range(500)]
    assert all(n <= 300 for n, _ in outcomes)
    assert {r for _, r in outcomes} == {FINISH_STOP, FINISH_LENGTH}
    assert all((r == FINISH_LENGTH) == (n == 300) for n, r in outcomes)
    classic = OutputLengths(CLASSIC_DEFAULT, "x")
    assert not classic.draws
    assert classic.length(64, ignore_eos=False) == (64, FINISH_LENGTH)
