"""`hack/build-tools.sh --print-bin`: fast, one line, keyed by the pins and the source, and the same
directory the Makefile puts on PATH whichever way the settings are given."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from tools_testkit import REPO, make_echo, print_bin, run_tools, tools_env

pytestmark = pytest.mark.unit


def test_print_bin_prints_one_line_quickly(tmp_path: Path) -> None:
    env = tools_env(tmp_path, None)
    start = time.monotonic()
    proc = run_tools(env, "--print-bin")
    took = time.monotonic() - start
    assert proc.returncode == 0
    assert proc.stderr == ""
    assert re.fullmatch(rf"{re.escape(str(tmp_path / 'cache'))}/[0-9a-f]{{12}}/bin\n", proc.stdout)
    assert took < 2, f"--print-bin took {took:.2f} s; the Makefile runs it on every make"
    assert not (tmp_path / "cache").exists()  # it only prints


def test_the_source_is_part_of_the_cache_key(tmp_path: Path) -> None:
    built = print_bin(tools_env(tmp_path, None))
    released = print_bin(tools_env(tmp_path, None, TOOLS_SOURCE="release"))
    assert released == built.parent.with_name(built.parent.name + "-release") / "bin"


def copy_of_hack(tmp_path: Path) -> Path:
    hack = tmp_path / "hack"
    shutil.copytree(REPO / "hack", hack, ignore=shutil.ignore_patterns("__pycache__"))
    return hack


def test_only_the_pins_decide_the_key(tmp_path: Path) -> None:
    hack = copy_of_hack(tmp_path)
    env = tools_env(tmp_path, None)

    def key() -> str:
        out = subprocess.run(
            [str(hack / "build-tools.sh"), "--print-bin"], env=env, capture_output=True, text=True, check=True
        ).stdout
        return Path(out.strip()).parent.name

    original = key()
    assert original == print_bin(env).parent.name
    versions = hack / "tools" / "versions.env"
    versions.write_text(versions.read_text() + "# a comment does not rebuild anything\n\n")
    (hack / "tools" / "build-times.txt").write_text("helm 1\n")  # nor do the measured times
    assert key() == original
    versions.write_text(versions.read_text().replace("KWOK_VERSION=", "KWOK_VERSION=v9.9.9\n#"))
    assert key() != original


@pytest.mark.parametrize("how", ["command line", "environment"])
def test_the_makefile_uses_the_directory_the_script_fills(tmp_path: Path, how: str) -> None:
    cache = tmp_path / "somewhere"
    settings = {"TOOLS_CACHE": str(cache), "TOOLS_SOURCE": "release"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLS")}
    args = [f"{k}={v}" for k, v in settings.items()] if how == "command line" else []
    if how == "environment":
        env.update(settings)
    show = "$(TOOLS_BIN) $(GPU_INFERENCE_TOOLS_BIN) $(firstword $(subst :, ,$(PATH)))"
    out = make_echo(show, *args, env=env).split()
    expected = str(print_bin({**env, **settings}))
    assert expected.startswith(str(cache))
    assert out == [expected, expected, expected]
