"""TOOLS_SOURCE=release: official binaries checked against the checksum files their projects publish,
served here by a loopback server in the official layouts; the rest built with Go; a separate cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from tools_testkit import (
    KUBERNETES,
    ReleaseServer,
    arch,
    fake_binary,
    go_calls,
    load_build_tools,
    make,
    make_echo,
    pins,
    print_bin,
    run_tools,
    sha256,
    targz,
    tool_lines,
    tools_env,
)

pytestmark = pytest.mark.unit

DOWNLOADABLE = ["helm", "prometheus", "promtool", "etcd", *KUBERNETES]


def release_env(tmp_path: Path, fake_go: Path, server: ReleaseServer, tools: str) -> dict[str, str]:
    return tools_env(tmp_path, fake_go, TOOLS=tools, TOOLS_SOURCE="release", **server.published.bases)


def test_release_installs_the_official_binaries_without_go(
    tmp_path: Path, fake_go: Path, release_server: ReleaseServer
) -> None:
    env = release_env(tmp_path, fake_go, release_server, " ".join(DOWNLOADABLE))
    proc = run_tools(env)
    assert proc.returncode == 0, proc.stderr

    bin_dir = print_bin(env)
    assert proc.stdout.strip().splitlines()[-1] == str(bin_dir)
    for name in DOWNLOADABLE:
        assert (bin_dir / name).read_bytes() == fake_binary(name)
        assert (bin_dir / name).stat().st_mode & 0o111
    assert sorted(p.name for p in bin_dir.iterdir()) == sorted(DOWNLOADABLE)  # nothing else, no temp files
    assert go_calls(tmp_path) == []
    # Its own cache directory: a built binary and a downloaded one never share one.
    built_bin = print_bin(tools_env(tmp_path, fake_go))
    assert built_bin != bin_dir
    assert built_bin.parent.name + "-release" == bin_dir.parent.name
    assert not built_bin.exists()

    header = proc.stderr.splitlines()[0]
    assert header.startswith(
        "[tools] TOOLS_SOURCE=release: downloading 8 official binaries (checksum-verified)"
    )
    assert "Unset TOOLS_SOURCE to build everything from source" in header
    assert len(tool_lines(proc.stderr)) == len(DOWNLOADABLE)
    assert "[tools] 3/8 promtool: from the same archive" in proc.stderr
    assert (
        release_server.requests.count(
            f"/prometheus/v{pins().prometheus}/{release_server.published.prometheus_archive.name}"
        )
        == 1
    )
    sources = dict(line.split("\t", 1) for line in (bin_dir.parent / "sources.txt").read_text().splitlines())
    helm = release_server.published.helm_archive
    assert sources["helm"].startswith(
        f"release\t{env['TOOLS_URL_HELM']}/{helm.name}\tsha256:{sha256(helm.read_bytes())}"
    )


def test_release_builds_what_publishes_no_checksummed_binary(
    tmp_path: Path, fake_go: Path, release_server: ReleaseServer
) -> None:
    env = release_env(tmp_path, fake_go, release_server, "helm kwok kwokctl prometheus-adapter")
    proc = run_tools(env)
    assert proc.returncode == 0, proc.stderr
    header = proc.stderr.splitlines()[0]
    assert "downloading 1 official binary" in header
    assert "building 3 from source with Go (kwok kwokctl prometheus-adapter:" in header
    assert "kwok publishes its release binaries without a checksum file" in header
    assert "prometheus-adapter publishes no release binaries" in header
    assert [call.split()[-1].split("@")[0] for call in go_calls(tmp_path)] == [
        "sigs.k8s.io/kwok/cmd/kwok",
        "sigs.k8s.io/kwok/cmd/kwokctl",
        "sigs.k8s.io/prometheus-adapter/cmd/adapter",
    ]
    assert not any("kwok" in path for path in release_server.requests)
    sources = (print_bin(env).parent / "sources.txt").read_text()
    assert "kwok\tbuild\tgo install sigs.k8s.io/kwok/cmd/kwok@" in sources
    assert "helm\trelease\t" in sources


@pytest.mark.parametrize("tool", ["helm", "kubectl", "etcd"])
def test_a_checksum_mismatch_fails_and_installs_nothing(
    tmp_path: Path, fake_go: Path, release_server: ReleaseServer, tool: str
) -> None:
    published = release_server.published
    wrong = sha256(b"something else")
    if tool == "helm":  # `HEX  FILE` in FILE.sha256sum
        checksum = published.helm_checksum
        checksum.write_text(f"{wrong}  {published.helm_archive.name}\n")
        url = f"{published.bases['TOOLS_URL_HELM']}/{published.helm_archive.name}"
    elif tool == "kubectl":  # a bare digest in NAME.sha256
        checksum = published.kubernetes("kubectl").with_name("kubectl.sha256")
        checksum.write_text(wrong + "\n")
        url = f"{published.bases['TOOLS_URL_KUBERNETES']}/{pins().kubernetes}/bin/linux/{arch()}/kubectl"
    else:  # one line of SHA256SUMS
        checksum = published.etcd_sums
        checksum.write_text(checksum.read_text().replace(sha256(published.etcd_archive.read_bytes()), wrong))
        url = f"{published.bases['TOOLS_URL_ETCD']}/{pins().etcd}/{published.etcd_archive.name}"

    env = release_env(tmp_path, fake_go, release_server, tool)
    proc = run_tools(env)
    bin_dir = print_bin(env)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert f"[tools] {tool}: checksum mismatch for {url}: the download's sha256 is" in proc.stderr
    assert f"says {wrong}" in proc.stderr
    assert "nothing was installed" in proc.stderr
    assert f"[tools] full log: {bin_dir.parent / 'build.log'}" in proc.stderr
    assert list(bin_dir.iterdir()) == []
    assert go_calls(tmp_path) == []


def test_redirects_are_followed(tmp_path: Path, fake_go: Path, release_server: ReleaseServer) -> None:
    env = release_env(tmp_path, fake_go, release_server, "etcd")
    env["TOOLS_URL_ETCD"] = env["TOOLS_URL_ETCD"].replace("/etcd", "/moved/etcd")
    proc = run_tools(env)
    assert proc.returncode == 0, proc.stderr
    assert (print_bin(env) / "etcd").read_bytes() == fake_binary("etcd")
    assert f"/moved/etcd/{pins().etcd}/SHA256SUMS" in release_server.requests
    assert f"/etcd/{pins().etcd}/SHA256SUMS" in release_server.requests


def test_a_missing_release_file_fails_with_the_url(
    tmp_path: Path, fake_go: Path, release_server: ReleaseServer
) -> None:
    published = release_server.published
    published.etcd_archive.unlink()
    env = release_env(tmp_path, fake_go, release_server, "etcd kubectl")
    proc = run_tools(env)
    url = f"{published.bases['TOOLS_URL_ETCD']}/{pins().etcd}/{published.etcd_archive.name}"
    assert proc.returncode == 1
    assert f"[tools] etcd: download failed: HTTP 404 File not found for {url}" in proc.stderr
    assert not (print_bin(env) / "etcd").exists()


def test_a_missing_checksum_file_or_entry_fails(
    tmp_path: Path, fake_go: Path, release_server: ReleaseServer
) -> None:
    published = release_server.published
    published.kubernetes("kube-scheduler").with_name("kube-scheduler.sha256").unlink()
    published.prometheus_sums.write_text(
        f"{sha256(b'x')}  prometheus-{pins().prometheus}.darwin-arm64.tar.gz\n"
    )

    proc = run_tools(release_env(tmp_path, fake_go, release_server, "kube-scheduler"))
    assert proc.returncode == 1
    assert "[tools] kube-scheduler: download failed: HTTP 404" in proc.stderr
    assert "kube-scheduler.sha256" in proc.stderr

    proc = run_tools(release_env(tmp_path, fake_go, release_server, "promtool"))
    assert proc.returncode == 1
    assert f"sha256sums.txt has no line for {published.prometheus_archive.name}" in proc.stderr
    assert list(print_bin(release_env(tmp_path, fake_go, release_server, "")).iterdir()) == []


def test_a_checksum_file_without_a_digest_fails(
    tmp_path: Path, fake_go: Path, release_server: ReleaseServer
) -> None:
    checksum = release_server.published.kubernetes("kubectl").with_name("kubectl.sha256")
    checksum.write_text("<html><body>Sign in to continue</body></html>\n")  # what a captive portal serves
    env = release_env(tmp_path, fake_go, release_server, "kubectl")
    proc = run_tools(env)
    assert proc.returncode == 1
    assert "kubectl.sha256 does not hold a sha256 digest for kubectl" in proc.stderr
    assert list(print_bin(env).iterdir()) == []


def test_an_archive_without_the_binary_fails(
    tmp_path: Path, fake_go: Path, release_server: ReleaseServer
) -> None:
    published = release_server.published
    published.helm_archive.write_bytes(targz({"README.md": b"no binary here\n"}))
    published.helm_checksum.write_text(
        f"{sha256(published.helm_archive.read_bytes())}  {published.helm_archive.name}\n"
    )
    env = release_env(tmp_path, fake_go, release_server, "helm")
    proc = run_tools(env)
    assert proc.returncode == 1
    assert f"does not contain linux-{arch()}/helm" in proc.stderr
    assert list(print_bin(env).iterdir()) == []


def test_without_internet_it_says_what_the_release_path_needs(tmp_path: Path, fake_go: Path) -> None:
    env = tools_env(
        tmp_path, fake_go, TOOLS="helm", TOOLS_SOURCE="release", TOOLS_URL_HELM="http://127.0.0.1:9"
    )
    proc = run_tools(env)
    assert proc.returncode == 1
    assert "TOOLS_SOURCE=release needs HTTPS access to dl.k8s.io, get.helm.sh and github.com" in proc.stderr
    assert "unset TOOLS_SOURCE to build from source with Go" in proc.stderr


def test_default_download_locations_are_the_official_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("TOOLS_URL_KUBERNETES", "TOOLS_URL_HELM", "TOOLS_URL_ETCD", "TOOLS_URL_PROMETHEUS"):
        monkeypatch.delenv(var, raising=False)
    bt = load_build_tools()
    p = pins()
    rel = bt.releases(bt.Pins.load(), "linux", "amd64")
    k8s = f"https://dl.k8s.io/release/{p.kubernetes}/bin/linux/amd64/kube-apiserver"
    etcd = f"https://github.com/etcd-io/etcd/releases/download/{p.etcd}"
    prom = f"https://github.com/prometheus/prometheus/releases/download/v{p.prometheus}"
    assert (rel["kube-apiserver"].url, rel["kube-apiserver"].checksum_url) == (k8s, f"{k8s}.sha256")
    assert (rel["helm"].url, rel["helm"].checksum_url) == (
        f"https://get.helm.sh/helm-{p.helm}-linux-amd64.tar.gz",
        f"https://get.helm.sh/helm-{p.helm}-linux-amd64.tar.gz.sha256sum",
    )
    assert (rel["etcd"].url, rel["etcd"].checksum_url) == (
        f"{etcd}/etcd-{p.etcd}-linux-amd64.tar.gz",
        f"{etcd}/SHA256SUMS",
    )
    assert (rel["promtool"].url, rel["promtool"].checksum_url) == (
        f"{prom}/prometheus-{p.prometheus}.linux-amd64.tar.gz",
        f"{prom}/sha256sums.txt",
    )
    assert sorted(rel) == sorted(DOWNLOADABLE)


def test_make_tools_and_the_makefile_path_agree_on_the_release_cache(
    tmp_path: Path, fake_go: Path, release_server: ReleaseServer
) -> None:
    env = release_env(tmp_path, fake_go, release_server, "helm")
    del env["TOOLS_SOURCE"], env["TOOLS_CACHE"]
    cache = tmp_path / "make-cache"
    settings = [f"TOOLS_CACHE={cache}", "TOOLS_SOURCE=release"]
    proc = make("tools", *settings, env=env, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    shown = make_echo("$(TOOLS_BIN)", *settings, env=env)
    assert Path(shown) == print_bin({**env, "TOOLS_CACHE": str(cache), "TOOLS_SOURCE": "release"})
    assert (Path(shown) / "helm").read_bytes() == fake_binary("helm")
