"""Helpers for the tool-cache tests: a fake `go`, the script's environment, fake official releases."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import platform
import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[3]
SCRIPT = REPO / "hack" / "build-tools.sh"
TOOLS_SRC = REPO / "hack" / "tools"


def load_build_tools() -> ModuleType:
    """hack/build_tools.py, freshly executed as the module `build_tools`."""
    spec = importlib.util.spec_from_file_location("build_tools", REPO / "hack" / "build_tools.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_tools"] = module
    spec.loader.exec_module(module)
    return module


# The tools, and the Kubernetes binaries among them, as the script lists them.
_BUILD_TOOLS = load_build_tools()
ALL_TOOLS = list(_BUILD_TOOLS.ALL_TOOLS)
KUBERNETES = list(_BUILD_TOOLS.KUBERNETES_BINARIES)

# A stand-in for the Go toolchain: logs its arguments, sleeps $FAKE_GO_SLEEP seconds, prints
# module-download noise like a cold build, writes a small executable where `go install` or
# `go build -o` would, and fails for a package containing $FAKE_GO_FAIL after printing 60 numbered
# error lines (leaving half an output file behind for `go build -o`).
FAKE_GO = r"""#!/usr/bin/env bash
echo "$*" >> "$FAKE_GO_CALLS"
sleep "${FAKE_GO_SLEEP:-0}"
for i in $(seq 1 50); do echo "go: downloading example.com/noise$i v0.0.$i" >&2; done
pkg="${*: -1}"
out=""; prev=""
for a in "$@"; do [[ "$prev" == "-o" ]] && out="$a"; prev="$a"; done
if [[ -n "${FAKE_GO_FAIL:-}" && "$pkg" == *"$FAKE_GO_FAIL"* ]]; then
  for i in $(seq 1 60); do echo "fake compile error $i" >&2; done
  if [[ -n "$out" ]]; then echo "half a binary" > "$out"; fi  # as if the linker was cut short
  exit 3
fi
if [[ "$1" == install ]]; then name="${pkg%@*}"; out="$GOBIN/${name##*/}"; fi
printf '#!/bin/sh\necho built %s\n' "$pkg" > "$out"
chmod +x "$out"
"""


def write_fake_go(directory: Path) -> Path:
    """Put the fake `go` into directory (to go first on PATH)."""
    directory.mkdir(parents=True, exist_ok=True)
    go = directory / "go"
    go.write_text(FAKE_GO)
    go.chmod(0o755)
    return directory


def tools_env(tmp_path: Path, fake_bin: Path | None, **extra: str) -> dict[str, str]:
    """The script's environment: a temp cache, no real `go` on PATH, the fake one first if given."""
    path = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and not (Path(d) / "go").exists()]
    if fake_bin is not None:
        path.insert(0, str(fake_bin))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOOLS") and k != "FAKE_GO_FAIL"}
    env.update(
        PATH=os.pathsep.join(path),
        TOOLS_CACHE=str(tmp_path / "cache"),
        FAKE_GO_CALLS=str(tmp_path / "go-calls.txt"),
    )
    env.update(extra)
    return env


def run_tools(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run hack/build-tools.sh."""
    return subprocess.run(
        [str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120, check=False, cwd=REPO
    )


def make(
    *args: str, env: dict[str, str], timeout: float = 60, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run `make --no-print-directory ARGS` in the repository."""
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def make_echo(expression: str, *settings: str, env: dict[str, str]) -> str:
    """What the Makefile's `expression` (e.g. `$(TOOLS_BIN)`) expands to with these command-line settings."""
    return make("-s", "--eval", f"show: ; @echo {expression}", "show", *settings, env=env).stdout.strip()


def print_bin(env: dict[str, str]) -> Path:
    """What `hack/build-tools.sh --print-bin` says for this environment."""
    proc = run_tools(env, "--print-bin")
    assert proc.returncode == 0, proc.stderr
    return Path(proc.stdout.strip())


def go_calls(tmp_path: Path) -> list[str]:
    """The fake go's invocations so far."""
    calls = tmp_path / "go-calls.txt"
    return calls.read_text().splitlines() if calls.exists() else []


def tool_lines(stderr: str) -> list[str]:
    """The per-tool progress lines (`[tools] 3/11 NAME: ...`)."""
    return [line for line in stderr.splitlines() if re.match(r"\[tools\] \d+/\d+ ", line)]


def measured_times() -> dict[str, int]:
    """hack/tools/build-times.txt, read independently of the script."""
    out: dict[str, int] = {}
    for line in (TOOLS_SRC / "build-times.txt").read_text().splitlines():
        fields = line.split("#")[0].split()
        if fields:
            out[fields[0]] = int(fields[1])
    return out


# --------------------------------------------------------------------------- fake official releases


@dataclass(frozen=True)
class Pins:
    """The versions the release files are named after, read from hack/tools."""

    helm: str
    prometheus: str
    kubernetes: str
    etcd: str


def pins() -> Pins:
    """Read the pins the way a person would: versions.env and the etcd wrapper's go.mod."""
    env = dict(
        line.split("=", 1)
        for line in (TOOLS_SRC / "versions.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    etcd = re.search(r"go\.etcd\.io/etcd/server/v3 (v\S+)", (TOOLS_SRC / "etcd" / "go.mod").read_text())
    assert etcd is not None
    return Pins(env["HELM_VERSION"], env["PROMETHEUS_RELEASE"], env["KUBERNETES_VERSION"], etcd.group(1))


def arch() -> str:
    """This machine's architecture as release files spell it."""
    return {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine().lower()]


def fake_binary(name: str) -> bytes:
    """A tiny executable standing in for an official binary."""
    return f"#!/bin/sh\necho official {name}\n".encode()


def sha256(data: bytes) -> str:
    """Hex digest."""
    return hashlib.sha256(data).hexdigest()


def targz(members: dict[str, bytes]) -> bytes:
    """A .tar.gz holding the given files (mode 0755)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@dataclass(frozen=True)
class Published:
    """Where the fake releases lie under the server root (official layouts) and their base URLs."""

    root: Path
    bases: dict[str, str]
    helm_archive: Path
    helm_checksum: Path
    etcd_archive: Path
    etcd_sums: Path
    prometheus_archive: Path
    prometheus_sums: Path

    def kubernetes(self, name: str) -> Path:
        """One Kubernetes binary (its .sha256 lies next to it)."""
        p = pins()
        return self.root / "k8s" / p.kubernetes / "bin" / "linux" / arch() / name


def publish(root: Path, base_url: str) -> Published:
    """Lay out fake official releases the way each project publishes them."""
    p, a = pins(), arch()
    for name in KUBERNETES:
        path = root / "k8s" / p.kubernetes / "bin" / "linux" / a / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(fake_binary(name))
        path.with_name(f"{name}.sha256").write_text(sha256(fake_binary(name)))  # dl.k8s.io: digest only

    helm = root / "helm" / f"helm-{p.helm}-linux-{a}.tar.gz"
    helm.parent.mkdir(parents=True)
    helm.write_bytes(targz({f"linux-{a}/helm": fake_binary("helm"), f"linux-{a}/LICENSE": b"license\n"}))
    helm_sum = helm.with_name(helm.name + ".sha256sum")
    helm_sum.write_text(f"{sha256(helm.read_bytes())}  {helm.name}\n")

    etcd_stem = f"etcd-{p.etcd}-linux-{a}"
    etcd = root / "etcd" / p.etcd / f"{etcd_stem}.tar.gz"
    etcd.parent.mkdir(parents=True)
    etcd.write_bytes(
        targz({f"{etcd_stem}/etcd": fake_binary("etcd"), f"{etcd_stem}/etcdctl": fake_binary("etcdctl")})
    )
    etcd_sums = etcd.with_name("SHA256SUMS")
    etcd_sums.write_text(
        f"{sha256(b'other')}  etcd-{p.etcd}-darwin-arm64.zip\n{sha256(etcd.read_bytes())}  {etcd.name}\n"
    )

    prom_stem = f"prometheus-{p.prometheus}.linux-{a}"
    prom = root / "prometheus" / f"v{p.prometheus}" / f"{prom_stem}.tar.gz"
    prom.parent.mkdir(parents=True)
    prom.write_bytes(
        targz(
            {
                f"{prom_stem}/prometheus": fake_binary("prometheus"),
                f"{prom_stem}/promtool": fake_binary("promtool"),
            }
        )
    )
    prom_sums = prom.with_name("sha256sums.txt")
    prom_sums.write_text(
        f"{sha256(prom.read_bytes())}  {prom.name}\n"
        f"{sha256(b'x')}  prometheus-{p.prometheus}.windows-amd64.zip\n"
    )
    bases = {
        "TOOLS_URL_KUBERNETES": f"{base_url}/k8s",
        "TOOLS_URL_HELM": f"{base_url}/helm",
        "TOOLS_URL_ETCD": f"{base_url}/etcd",
        "TOOLS_URL_PROMETHEUS": f"{base_url}/prometheus",
    }
    return Published(root, bases, helm, helm_sum, etcd, etcd_sums, prom, prom_sums)


@dataclass
class ReleaseServer:
    """A loopback HTTP server of fake official releases; `requests` lists the paths asked for."""

    published: Published
    requests: list[str] = field(default_factory=list)
