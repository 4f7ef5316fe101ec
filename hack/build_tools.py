#!/usr/bin/env python3
"""Put the pinned tools into the versioned tool cache.

Two sources (TOOLS_SOURCE):

* ``build`` (default, what CI runs): every tool is built from source with Go, from the module proxy.
* ``release``: the official release binaries are downloaded and checked against the checksum file
  each project publishes next to them; tools without a published binary or checksum file are still
  built with Go (kwok, kwokctl, prometheus-adapter).

hack/build-tools.sh works out the cache directory (it is keyed by the pins and by the source, so
built and downloaded binaries never share a directory) and runs this file. Standard library only:
it runs before the project's virtual environment exists.

Go's own output goes to a log file in the cache; the terminal gets one line per tool with the time
its cold build took when it was measured (hack/tools/build-times.txt). On a failure the tail of the
log is printed and the exit status is 1; bad settings exit with status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
TOOLS_SRC = HERE / "tools"
BUILD_TIMES = TOOLS_SRC / "build-times.txt"

# Build order: helm first (the chart tests need only helm), the Kubernetes binaries last (the first
# of them compiles the shared libraries the others reuse).
ALL_TOOLS = (
    "helm",
    "kwok",
    "kwokctl",
    "prometheus",
    "promtool",
    "prometheus-adapter",
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubectl",
)
KUBERNETES_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl")

# Tools the release source still builds, and why.
NO_RELEASE = {
    "kwok": "kwok publishes its release binaries without a checksum file",
    "kwokctl": "kwok publishes its release binaries without a checksum file",
    "prometheus-adapter": "prometheus-adapter publishes no release binaries",
}

# Official download locations; each can be pointed elsewhere (a mirror, a test server) by its variable.
RELEASE_BASES = {
    "TOOLS_URL_KUBERNETES": "https://dl.k8s.io/release",
    "TOOLS_URL_HELM": "https://get.helm.sh",
    "TOOLS_URL_ETCD": "https://github.com/etcd-io/etcd/releases/download",
    "TOOLS_URL_PROMETHEUS": "https://github.com/prometheus/prometheus/releases/download",
}

TAIL_LINES = 30
HTTP_TIMEOUT_S = 60
CHUNK = 1 << 20
SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")


class ToolsError(Exception):
    """A failure to report on one line (plus optional detail lines) with an exit status."""

    def __init__(self, message: str, code: int = 1, detail: list[str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.detail = detail or []


# --------------------------------------------------------------------------- pins


def read_env(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a shell env file (comments and blank lines skipped)."""
    out: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        out[key.strip()] = value.strip().strip("'\"")
    return out


def go_mod_version(path: Path, module: str) -> str:
    """The version a go.mod requires for one module."""
    for raw in path.read_text().splitlines():
        parts = raw.split("//")[0].split()
        if parts[:1] == ["require"]:
            parts = parts[1:]
        if len(parts) >= 2 and parts[0] == module:
            return parts[1]
    raise ToolsError(f"{path} does not require {module}", code=2)


@dataclass(frozen=True)
class Pins:
    """The versions of every tool, from hack/tools/versions.env and the wrapper modules' go.mod."""

    helm: str
    kwok: str
    prometheus_module: str
    prometheus_release: str
    kubernetes: str
    etcd: str

    @classmethod
    def load(cls) -> Pins:
        """Read the pins from hack/tools."""
        env = read_env(TOOLS_SRC / "versions.env")
        try:
            return cls(
                helm=env["HELM_VERSION"],
                kwok=env["KWOK_VERSION"],
                prometheus_module=env["PROMETHEUS_VERSION"],
                prometheus_release=env["PROMETHEUS_RELEASE"],
                kubernetes=env["KUBERNETES_VERSION"],
                etcd=go_mod_version(TOOLS_SRC / "etcd" / "go.mod", "go.etcd.io/etcd/server/v3"),
            )
        except KeyError as e:
            raise ToolsError(f"hack/tools/versions.env lacks {e.args[0]}", code=2) from None


# --------------------------------------------------------------------------- how each tool is made


@dataclass(frozen=True)
class GoBuild:
    """One `go install pkg@version` (module_dir None) or `go build` inside a wrapper module."""

    package: str
    args: tuple[str, ...] = ()
    module_dir: Path | None = None

    def describe(self) -> str:
        """The go command, for the log and the sources file."""
        verb = "install" if self.module_dir is None else f"build (in {self.module_dir.name}/)"
        return f"go {verb} {self.package}"


def kubernetes_ldflags(version: str) -> str:
    """Version stamps like upstream's build, so `--version` does not say v0.0.0-master."""
    major, minor = version.lstrip("v").split(".")[:2]
    flags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    return " ".join(flags)


def go_builds(pins: Pins) -> dict[str, GoBuild]:
    """How each tool is built from source."""
    # Like helm's own Makefile: the default Kubernetes version of `helm template`/lint follows the
    # client-go it is built with (1.37 for helm v3.22); without the stamp helm says v1.20.
    helm_kube = " ".join(
        f"-X helm.sh/helm/v3/pkg/{p}.k8sVersion{part}={n}"
        for p in ("chartutil", "lint/rules")
        for part, n in (("Major", "1"), ("Minor", "37"))
    )
    kwok_ld = f"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version={pins.kwok}"
    # Only Kubernetes service discovery is compiled in (Prometheus' own build tags): the other
    # discovery plugins pull in every cloud SDK and triple the build time.
    prom = ("-tags", "remove_all_sd,enable_kubernetes_sd")
    prom_ld = f"-s -w -X github.com/prometheus/common/version.Version={pins.prometheus_release}"
    k8s = ("-tags", "selinux,notest", "-ldflags", kubernetes_ldflags(pins.kubernetes))
    builds = {
        "helm": GoBuild(
            f"helm.sh/helm/v3/cmd/helm@{pins.helm}",
            ("-ldflags", f"-s -w -X helm.sh/helm/v3/internal/version.version={pins.helm} {helm_kube}"),
        ),
        "kwok": GoBuild(f"sigs.k8s.io/kwok/cmd/kwok@{pins.kwok}", ("-ldflags", kwok_ld)),
        "kwokctl": GoBuild(f"sigs.k8s.io/kwok/cmd/kwokctl@{pins.kwok}", ("-ldflags", kwok_ld)),
        "prometheus": GoBuild(
            f"github.com/prometheus/prometheus/cmd/prometheus@{pins.prometheus_module}",
            (*prom, "-ldflags", prom_ld),
        ),
        "promtool": GoBuild(
            f"github.com/prometheus/prometheus/cmd/promtool@{pins.prometheus_module}",
            (*prom, "-ldflags", prom_ld),
        ),
        "prometheus-adapter": GoBuild(
            "sigs.k8s.io/prometheus-adapter/cmd/adapter",
            ("-ldflags", "-s -w"),
            TOOLS_SRC / "prometheus-adapter",
        ),
        "etcd": GoBuild("go.etcd.io/etcd/server/v3", ("-ldflags", "-s -w"), TOOLS_SRC / "etcd"),
    }
    for name in KUBERNETES_BINARIES:
        builds[name] = GoBuild(f"k8s.io/kubernetes/cmd/{name}", k8s, TOOLS_SRC / "kubernetes")
    return builds


@dataclass(frozen=True)
class Release:
    """One official download: a bare binary or a .tar.gz, and the checksum file published with it.

    checksum_format "bare": the file holds only the hex digest (dl.k8s.io's NAME.sha256);
    "list": `HEX  FILENAME` lines, as written by sha256sum (helm, etcd, Prometheus).
    members: tool -> path inside the archive; None means the download is the binary itself.
    """

    url: str
    checksum_url: str
    checksum_format: str
    members: dict[str, str | None] = field(default_factory=dict)

    @property
    def filename(self) -> str:
        """The downloaded file's name, as the checksum list names it."""
        return self.url.rsplit("/", 1)[-1]


def release_platform() -> tuple[str, str]:
    """(os, arch) in the release files' spelling; only Linux has server binaries."""
    system = platform.system().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower()
    )
    if system != "linux" or arch is None:
        raise ToolsError(
            f"TOOLS_SOURCE=release: no official server binaries for {system}/{platform.machine()} "
            "(only linux/amd64 and linux/arm64); unset TOOLS_SOURCE to build from source",
            code=2,
        )
    return system, arch


def releases(pins: Pins, os_name: str, arch: str) -> dict[str, Release]:
    """Tool -> its official download (tools that share an archive share the Release)."""

    def base(var: str) -> str:
        return (os.environ.get(var) or RELEASE_BASES[var]).rstrip("/")

    out: dict[str, Release] = {}
    k8s = base("TOOLS_URL_KUBERNETES")
    for name in KUBERNETES_BINARIES:
        url = f"{k8s}/{pins.kubernetes}/bin/{os_name}/{arch}/{name}"
        out[name] = Release(url, f"{url}.sha256", "bare", {name: None})
    helm = f"{base('TOOLS_URL_HELM')}/helm-{pins.helm}-{os_name}-{arch}.tar.gz"
    out["helm"] = Release(helm, f"{helm}.sha256sum", "list", {"helm": f"{os_name}-{arch}/helm"})
    etcd_dir = f"{base('TOOLS_URL_ETCD')}/{pins.etcd}"
    etcd_stem = f"etcd-{pins.etcd}-{os_name}-{arch}"
    out["etcd"] = Release(
        f"{etcd_dir}/{etcd_stem}.tar.gz", f"{etcd_dir}/SHA256SUMS", "list", {"etcd": f"{etcd_stem}/etcd"}
    )
    prom_dir = f"{base('TOOLS_URL_PROMETHEUS')}/v{pins.prometheus_release}"
    prom_stem = f"prometheus-{pins.prometheus_release}.{os_name}-{arch}"
    prom = Release(
        f"{prom_dir}/{prom_stem}.tar.gz",
        f"{prom_dir}/sha256sums.txt",
        "list",
        {"prometheus": f"{prom_stem}/prometheus", "promtool": f"{prom_stem}/promtool"},
    )
    out["prometheus"] = out["promtool"] = prom
    return out


def expected_seconds() -> dict[str, int]:
    """Measured cold build time per tool (hack/tools/build-times.txt: `NAME SECONDS` lines)."""
    out: dict[str, int] = {}
    if not BUILD_TIMES.is_file():
        return out
    for raw in BUILD_TIMES.read_text().splitlines():
        parts = raw.split("#")[0].split()
        if len(parts) >= 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def human(seconds: float) -> str:
    """Short duration: `45 s`, `12 min`."""
    if seconds < 90:
        return f"{round(seconds)} s"
    return f"{round(seconds / 60)} min"


# --------------------------------------------------------------------------- output


def say(message: str) -> None:
    """One complete line on stderr."""
    sys.stderr.write(f"[tools] {message}\n")
    sys.stderr.flush()


def begin(message: str) -> None:
    """Start a tool's line; `finish` completes it when the work is done."""
    sys.stderr.write(f"[tools] {message} ... ")
    sys.stderr.flush()


def finish(message: str) -> None:
    """Complete the line `begin` started."""
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()


class Log:
    """The run's log file in the cache: Go's output and every download."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file: IO[bytes] = path.open("wb")

    def write(self, line: str) -> None:
        """One line of our own."""
        self.file.write(f"{line}\n".encode())
        self.file.flush()

    def offset(self) -> int:
        """Where the next output starts (to print one tool's tail)."""
        self.file.flush()
        return self.file.tell()

    def tail(self, start: int, lines: int = TAIL_LINES) -> list[str]:
        """The last lines written since `start`."""
        self.file.flush()
        with self.path.open("rb") as f:
            f.seek(start)
            text = f.read().decode("utf-8", errors="replace")
        return text.splitlines()[-lines:]

    def close(self) -> None:
        """Close the file."""
        self.file.close()


# --------------------------------------------------------------------------- build


def go_build(name: str, spec: GoBuild, bin_dir: Path, log: Log) -> None:
    """Build one tool with Go into bin_dir; its output goes to the log only."""
    env = {**os.environ, "CGO_ENABLED": "0"}
    tmp = bin_dir / f".{name}.tmp"
    start = log.offset()
    try:
        if spec.module_dir is None:
            with tempfile.TemporaryDirectory(dir=bin_dir.parent, prefix=".gobin-") as gobin:
                cmd = ["go", "install", "-trimpath", *spec.args, spec.package]
                run_go(cmd, cwd=None, env={**env, "GOBIN": gobin}, name=name, log=log, start=start)
                produced = sorted(Path(gobin).iterdir())
                if len(produced) != 1:
                    raise ToolsError(f"{name}: `go install` left {len(produced)} files instead of one binary")
                shutil.move(str(produced[0]), tmp)
        else:
            cmd = ["go", "build", "-trimpath", "-o", str(tmp), *spec.args, spec.package]
            run_go(cmd, cwd=spec.module_dir, env=env, name=name, log=log, start=start)
        os.chmod(tmp, 0o755)  # noqa: S103 (an executable for every user, like go install's)
        os.replace(tmp, bin_dir / name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def run_go(cmd: list[str], *, cwd: Path | None, env: dict[str, str], name: str, log: Log, start: int) -> None:
    """Run one go command with its output in the log; on failure raise with the log's tail."""
    log.write(f"== {name}: {' '.join(cmd)}" + (f"  (in {cwd})" if cwd else ""))
    proc = subprocess.run(
        cmd, check=False, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log.file, stderr=log.file
    )
    if proc.returncode != 0:
        detail = [f"  {line}" for line in log.tail(start)]
        raise ToolsError(
            f"{name}: `go {cmd[1]}` failed (exit {proc.returncode}); the last lines of {log.path}:",
            detail=detail,
        )


# --------------------------------------------------------------------------- download


def http_get(url: str) -> IO[bytes]:
    """Open a URL, turning HTTP and network failures into one-line errors."""
    try:
        resp: IO[bytes] = urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S)  # noqa: S310 (https, or a test's loopback)
    except urllib.error.HTTPError as e:
        raise ToolsError(f"download failed: HTTP {e.code} {e.reason} for {url}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise ToolsError(
            f"cannot download {url} ({reason}). TOOLS_SOURCE=release needs HTTPS access to dl.k8s.io, "
            "get.helm.sh and github.com (and the hosts they redirect to); without it, unset TOOLS_SOURCE "
            "to build from source with Go"
        ) from None
    return resp


def published_sha256(release: Release) -> str:
    """The digest the project published for this download, read from its checksum file."""
    with http_get(release.checksum_url) as resp:
        text = resp.read(1 << 20).decode("utf-8", errors="replace")
    digest = ""
    if release.checksum_format == "bare":
        tokens = text.split()
        digest = tokens[0] if tokens else ""
    else:
        for line in text.splitlines():
            parts = line.strip().split(None, 1)
            if len(parts) == 2 and parts[1].strip().lstrip("*").removeprefix("./") == release.filename:
                digest = parts[0]
                break
        else:
            raise ToolsError(f"{release.checksum_url} has no line for {release.filename}")
    if not SHA256_RE.fullmatch(digest):
        raise ToolsError(f"{release.checksum_url} does not hold a sha256 digest for {release.filename}")
    return digest.lower()


def download(release: Release, dest: Path) -> tuple[str, int]:
    """Stream a download to dest; returns its sha256 and size."""
    digest = hashlib.sha256()
    size = 0
    try:
        with http_get(release.url) as resp, dest.open("wb") as out:
            while chunk := resp.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
                size += len(chunk)
    except (TimeoutError, OSError) as e:
        raise ToolsError(f"download of {release.url} broke off after {size} bytes ({e})") from None
    return digest.hexdigest(), size


def install_release(release: Release, names: list[str], bin_dir: Path, log: Log) -> tuple[str, int]:
    """Download, verify and install the given tools of one release; returns (sha256, size)."""
    expected = published_sha256(release)
    log.write(f"== {', '.join(names)}: {release.url} (published sha256 {expected} in {release.checksum_url})")
    tmp = bin_dir / f".download-{release.filename}"
    try:
        got, size = download(release, tmp)
        if got != expected:
            raise ToolsError(
                f"checksum mismatch for {release.url}: the download's sha256 is {got}, "
                f"{release.checksum_url} says {expected}. The download was deleted and nothing was "
                "installed; retry, and if it persists the file is altered on its way (proxy?): "
                "unset TOOLS_SOURCE to build from source instead"
            )
        log.write(f"   sha256 verified, {size} bytes")
        for name in names:
            member = release.members[name]
            target_tmp = bin_dir / f".{name}.tmp"
            try:
                if member is None:
                    shutil.copyfile(tmp, target_tmp)
                else:
                    extract(tmp, member, target_tmp, release.url)
                os.chmod(target_tmp, 0o755)  # noqa: S103 (an executable, as released)
                os.replace(target_tmp, bin_dir / name)
            finally:
                with contextlib.suppress(FileNotFoundError):
                    target_tmp.unlink()
        return got, size
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def extract(archive: Path, member: str, dest: Path, url: str) -> None:
    """Copy one regular file out of a .tar.gz."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            try:
                info = tar.getmember(member)
            except KeyError:
                raise ToolsError(f"{url} does not contain {member}") from None
            src = tar.extractfile(info) if info.isfile() else None
            if src is None:
                raise ToolsError(f"{member} in {url} is not a regular file")
            with src, dest.open("wb") as out:
                shutil.copyfileobj(src, out)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise ToolsError(f"{url} is not a readable .tar.gz ({e})") from None


# --------------------------------------------------------------------------- main


@contextlib.contextmanager
def locked(cache_dir: Path) -> Iterator[None]:
    """One `make tools` at a time per cache directory."""
    with (cache_dir / ".lock").open("w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"waiting for another tools run to finish (lock: {cache_dir / '.lock'})")
            fcntl.flock(f, fcntl.LOCK_EX)
        yield


def wanted_tools() -> list[str]:
    """The TOOLS subset (default: all), in build order."""
    raw = os.environ.get("TOOLS", "")
    names = raw.split()
    if not names:
        return list(ALL_TOOLS)
    unknown = [n for n in names if n not in ALL_TOOLS]
    if unknown:
        raise ToolsError(
            f"TOOLS names unknown tool(s) {' '.join(unknown)}: choose from {' '.join(ALL_TOOLS)}", code=2
        )
    return [n for n in ALL_TOOLS if n in names]


def is_installed(bin_dir: Path, name: str) -> bool:
    """An executable of that name is in the cache."""
    path = bin_dir / name
    return path.is_file() and os.access(path, os.X_OK)


def record_source(cache_dir: Path, name: str, how: str) -> None:
    """Record where a binary came from in the cache's sources.txt (one `NAME<TAB>HOW` line per tool)."""
    path = cache_dir / "sources.txt"
    lines = path.read_text().splitlines() if path.is_file() else []
    lines = [line for line in lines if line.split("\t", 1)[0] != name] + [f"{name}\t{how}"]
    tmp = path.with_name(".sources.txt.tmp")
    tmp.write_text("".join(f"{line}\n" for line in lines))
    os.replace(tmp, path)


def plural(n: int, word: str, words: str = "") -> str:
    """`1 tool`, `3 tools`."""
    return f"{n} {word}" if n == 1 else f"{n} {words or word + 's'}"


def plan_estimate(names: list[str], times: dict[str, int]) -> str:
    """`about 35 min on 2 cores` from the measured cold build times of the tools to build."""
    known = [n for n in names if n in times]
    unknown = [n for n in names if n not in times]
    if not known:
        return "build time not measured"
    text = f"about {human(sum(times[n] for n in known))} on 2 cores"
    if unknown:
        text += f", plus {' '.join(unknown)} (not measured)"
    return text


def run(bin_dir: Path, source: str) -> int:
    """Make sure every wanted tool is in bin_dir; print bin_dir on stdout."""
    wanted = wanted_tools()
    missing = [n for n in wanted if not is_installed(bin_dir, n)]
    label = "built from source" if source == "build" else "official release binaries where published"
    if not missing:
        say(f"{plural(len(wanted), 'tool')} already in {bin_dir} ({label})")
        print(bin_dir)
        return 0

    pins = Pins.load()
    builds = go_builds(pins)
    rel: dict[str, Release] = {}
    if source == "release":
        rel = releases(pins, *release_platform())
    to_download = [n for n in missing if n in rel]
    to_build = [n for n in missing if n not in rel]
    if to_build and shutil.which("go") is None:
        hint = (
            " (kwok, kwokctl and prometheus-adapter are always built)"
            if source == "release"
            else ", or with internet access set TOOLS_SOURCE=release to download the official binaries"
        )
        raise ToolsError(
            f"go is not on PATH: {' '.join(to_build)} must be built with Go 1.26 (https://go.dev/dl/){hint}",
            code=2,
        )

    cache_dir = bin_dir.parent
    bin_dir.mkdir(parents=True, exist_ok=True)
    with locked(cache_dir):
        missing = [n for n in missing if not is_installed(bin_dir, n)]
        to_download = [n for n in to_download if n in missing]
        to_build = [n for n in to_build if n in missing]
        if not missing:  # another run filled the cache while this one waited for the lock
            say(f"{plural(len(wanted), 'tool')} already in {bin_dir} ({label})")
            print(bin_dir)
            return 0
        log = Log(cache_dir / "build.log")
        try:
            announce(
                source,
                wanted=wanted,
                missing=missing,
                to_download=to_download,
                to_build=to_build,
                log=log.path,
            )
            step = Step(len(missing))
            fetch_all(to_download, rel, bin_dir=bin_dir, cache_dir=cache_dir, log=log, step=step)
            build_all(to_build, builds, bin_dir=bin_dir, cache_dir=cache_dir, log=log, step=step)
        finally:
            log.close()
    say(f"{plural(len(missing), 'tool')} ready in {bin_dir} (sources: {cache_dir / 'sources.txt'})")
    print(bin_dir)
    return 0


@dataclass
class Step:
    """The `3/11` counter of the per-tool lines."""

    total: int
    done: int = 0

    def next(self) -> str:
        """The next counter."""
        self.done += 1
        return f"{self.done}/{self.total}"


def announce(
    source: str,
    *,
    wanted: list[str],
    missing: list[str],
    to_download: list[str],
    to_build: list[str],
    log: Path,
) -> None:
    """The first line: which path this run takes, what it costs, and how to take the other one."""
    times = expected_seconds()
    cached = len(wanted) - len(missing)
    have = f"; {cached} already in the cache" if cached else ""
    if source == "build":
        say(
            f"building {plural(len(to_build), 'tool')} from source with Go "
            f"({plan_estimate(to_build, times)}; "
            f"log: {log}{have}). With internet access, TOOLS_SOURCE=release downloads the official "
            "binaries instead."
        )
        return
    binaries = plural(len(to_download), "official binary", "official binaries")
    text = f"TOOLS_SOURCE=release: downloading {binaries} (checksum-verified)"
    if to_build:
        reasons = sorted({NO_RELEASE.get(n, "no release") for n in to_build})
        text += (
            f" and building {len(to_build)} from source with Go ({' '.join(to_build)}: {'; '.join(reasons)}; "
            f"{plan_estimate(to_build, times)})"
        )
    say(f"{text}; log: {log}{have}. Unset TOOLS_SOURCE to build everything from source instead.")


def fetch_all(
    names: list[str], rel: dict[str, Release], *, bin_dir: Path, cache_dir: Path, log: Log, step: Step
) -> None:
    """Download the tools that have official binaries (an archive shared by two tools once)."""
    done: set[str] = set()
    for name in names:
        if name in done:
            continue
        release = rel[name]
        group = [n for n in names if rel[n] is release]
        begin(f"{step.next()} {name}: downloading {release.url}")
        start = time.monotonic()
        try:
            digest, size = install_release(release, group, bin_dir, log)
        except ToolsError as e:
            finish("FAILED")
            log.write(f"[tools] {name}: {e}")
            raise ToolsError(f"{name}: {e}", e.code, e.detail) from None
        finish(f"{size / 1e6:.1f} MB, sha256 verified in {human(time.monotonic() - start)}")
        for other in group:
            record_source(cache_dir, other, f"release\t{release.url}\tsha256:{digest}")
            if other != name:
                say(f"{step.next()} {other}: from the same archive")
        done.update(group)


def build_all(
    names: list[str], builds: dict[str, GoBuild], *, bin_dir: Path, cache_dir: Path, log: Log, step: Step
) -> None:
    """Build the rest with Go, one line per tool with the time it took when measured."""
    times = expected_seconds()
    for name in names:
        spec = builds[name]
        expect = f"measured {human(times[name])}" if name in times else "not measured yet"
        begin(f"{step.next()} {name}: building from source ({expect})")
        start = time.monotonic()
        try:
            go_build(name, spec, bin_dir, log)
        except (ToolsError, KeyboardInterrupt):
            finish(f"FAILED after {human(time.monotonic() - start)}")
            raise
        took = round(time.monotonic() - start)
        log.write(f"[tools] {name}: built in {took}s")
        finish(f"built in {human(took)}")
        record_source(cache_dir, name, f"build\t{spec.describe()}")


def main(argv: list[str] | None = None) -> int:
    """Entry point; hack/build-tools.sh passes the cache's bin directory and the source."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bin", required=True, type=Path, help="the cache's bin directory")
    parser.add_argument("--source", required=True, choices=("build", "release"))
    args = parser.parse_args(argv)
    try:
        return run(args.bin, args.source)
    except ToolsError as e:
        say(str(e))
        for line in e.detail:
            sys.stderr.write(f"{line}\n")
        log = args.bin.parent / "build.log"
        if e.code == 1 and log.is_file():
            say(f"full log: {log}")
        return e.code
    except KeyboardInterrupt:
        say("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
