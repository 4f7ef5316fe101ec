"""`make tools` building from source: one line per tool with its measured time, Go's output in a log
file in the cache, the log's tail and the tool's name on failure, clear errors for bad settings."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from tools_testkit import (
    ALL_TOOLS,
    SCRIPT,
    go_calls,
    measured_times,
    print_bin,
    run_tools,
    tool_lines,
    tools_env,
)

pytestmark = pytest.mark.unit


def test_cold_build_shows_one_line_per_tool_and_keeps_go_output_in_the_log(
    tmp_path: Path, fake_go: Path
) -> None:
    env = tools_env(tmp_path, fake_go, TOOLS="helm kwok etcd kubectl")
    proc = run_tools(env)
    assert proc.returncode == 0, proc.stderr
    bin_dir = print_bin(env)
    log = bin_dir.parent / "build.log"

    lines = proc.stderr.splitlines()
    # The first line says which path this run takes, how long it takes, where the log is, and the other path.
    times = measured_times()
    minutes = round(sum(times[t] for t in ("helm", "kwok", "etcd", "kubectl")) / 60)
    assert lines[0].startswith("[tools] building 4 tools from source with Go")
    assert f"about {minutes} min on 2 cores" in lines[0]
    assert f"log: {log}" in lines[0]
    assert "TOOLS_SOURCE=release downloads the official binaries" in lines[0]
    # One line per tool, in build order, with the measured time and the result.
    per_tool = tool_lines(proc.stderr)
    assert [re.match(r"\[tools\] (\d/4) (\S+):", line).groups() for line in per_tool] == [  # type: ignore[union-attr]
        ("1/4", "helm"),
        ("2/4", "kwok"),
        ("3/4", "etcd"),
        ("4/4", "kubectl"),
    ]
    for line, tool in zip(per_tool, ("helm", "kwok", "etcd", "kubectl"), strict=True):
        expected = f"{times[tool]} s" if times[tool] < 90 else f"{round(times[tool] / 60)} min"
        assert re.fullmatch(
            rf"\[tools\] \d/4 {tool}: building from source \(measured {expected}\) \.\.\. built in \d+ s",
            line,
        )
    # Go's chatter is in the log, not on the terminal.
    assert "go: downloading" not in proc.stderr
    text = log.read_text()
    assert text.count("go: downloading example.com/noise1 ") == 4
    assert re.search(r"^\[tools\] kwok: built in \d+s$", text, re.M)
    assert len(lines) == 1 + 4 + 1  # header, one per tool, summary
    assert proc.stdout.strip().splitlines()[-1] == str(bin_dir)
    assert sorted(p.name for p in bin_dir.iterdir()) == ["etcd", "helm", "kubectl", "kwok"]
    sources = (bin_dir.parent / "sources.txt").read_text().splitlines()
    assert "kubectl\tbuild\tgo build (in kubernetes/) k8s.io/kubernetes/cmd/kubectl" in sources


@pytest.mark.parametrize(
    ("failing", "package", "verb"),
    [("kwokctl", "cmd/kwokctl@", "install"), ("kube-scheduler", "cmd/kube-scheduler", "build")],
)
def test_a_failed_build_prints_the_log_tail_names_the_tool_and_stops(
    tmp_path: Path, fake_go: Path, failing: str, package: str, verb: str
) -> None:
    env = tools_env(tmp_path, fake_go, TOOLS=f"helm {failing} kubectl", FAKE_GO_FAIL=package)
    proc = run_tools(env)
    bin_dir = print_bin(env)
    log = bin_dir.parent / "build.log"

    assert proc.returncode == 1
    assert proc.stdout == ""
    assert f"[tools] 2/3 {failing}: building from source" in proc.stderr
    assert re.search(rf"{failing}: .* FAILED after \d+ s", proc.stderr)
    assert f"[tools] {failing}: `go {verb}` failed (exit 3); the last lines of {log}:" in proc.stderr
    printed = set(re.findall(r"^  fake compile error (\d+)$", proc.stderr, re.M))
    assert printed == {str(i) for i in range(31, 61)}  # the tail, not the whole output
    assert f"[tools] full log: {log}" in proc.stderr
    assert "fake compile error 1\n" in log.read_text()
    # helm was built before; nothing half-built is left; kubectl was not attempted.
    assert sorted(p.name for p in bin_dir.iterdir()) == ["helm"]
    assert not any("kubectl" in call for call in go_calls(tmp_path))


def test_a_warm_cache_runs_no_go_and_prints_one_line(tmp_path: Path, fake_go: Path) -> None:
    env = tools_env(tmp_path, fake_go, TOOLS="helm promtool")
    assert run_tools(env).returncode == 0
    calls = go_calls(tmp_path)
    env["FAKE_GO_FAIL"] = "/"  # any go call would now fail
    proc = run_tools(env)
    assert proc.returncode == 0, proc.stderr
    assert go_calls(tmp_path) == calls
    assert proc.stderr.splitlines() == [f"[tools] 2 tools already in {print_bin(env)} (built from source)"]


def test_only_missing_tools_are_built_and_counted(tmp_path: Path, fake_go: Path) -> None:
    assert run_tools(tools_env(tmp_path, fake_go, TOOLS="helm")).returncode == 0
    proc = run_tools(tools_env(tmp_path, fake_go, TOOLS="helm kwok"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("[tools] building 1 tool from source")
    assert "1 already in the cache" in proc.stderr.splitlines()[0]
    assert [line.split(":")[0] for line in tool_lines(proc.stderr)] == ["[tools] 1/1 kwok"]


def test_without_go_it_says_how_to_get_the_tools(tmp_path: Path) -> None:
    proc = run_tools(tools_env(tmp_path, None, TOOLS="helm"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "go is not on PATH" in proc.stderr
    assert "TOOLS_SOURCE=release" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"TOOLS": "helm kubelet"}, "TOOLS names unknown tool(s) kubelet: choose from helm"),
        (
            {"TOOLS_SOURCE": "binaries"},
            "TOOLS_SOURCE=binaries is not a source: use build (the default) or release",
        ),
    ],
)
def test_bad_settings_fail_with_one_line_and_status_2(
    tmp_path: Path, fake_go: Path, setting: dict[str, str], message: str
) -> None:
    proc = run_tools(tools_env(tmp_path, fake_go, **setting))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert message in proc.stderr
    assert go_calls(tmp_path) == []


def test_every_tool_has_a_measured_build_time() -> None:
    times = measured_times()
    assert sorted(times) == sorted(ALL_TOOLS)
    assert all(seconds > 0 for seconds in times.values())


def test_concurrent_runs_build_each_tool_once(tmp_path: Path, fake_go: Path) -> None:
    env = tools_env(tmp_path, fake_go, TOOLS="helm", FAKE_GO_SLEEP="2")
    first = subprocess.Popen(
        [str(SCRIPT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 10
        while not go_calls(tmp_path) and time.monotonic() < deadline:  # the first run holds the lock
            time.sleep(0.05)
        second = run_tools(env)
        first_err = first.communicate(timeout=30)[1]
    finally:
        first.kill()
        first.wait()
    assert first.returncode == 0, first_err
    assert second.returncode == 0, second.stderr
    assert "[tools] waiting for another tools run to finish" in second.stderr
    assert second.stderr.splitlines()[-1] == f"[tools] 1 tool already in {print_bin(env)} (built from source)"
    assert len(go_calls(tmp_path)) == 1
