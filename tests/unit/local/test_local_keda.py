"""KEDA on the local cluster without a cluster: the not-built error, --autoscaler against the chart
values, the certificate both binaries use (checked by real TLS handshakes), the values the local
cluster sets for the keda engine, the readiness verdict on a ScaledObject, and the stop order."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID
from local_testkit import free_port, free_ports
from typer.testing import CliRunner

from gpu_inference.cli.main import app
from gpu_inference.errors import ConfigError
from gpu_inference.services.local import hostprocs, keda
from gpu_inference.services.local.cluster import LocalCluster
from gpu_inference.services.local.config import LocalClusterConfig

pytestmark = pytest.mark.unit

NOT_BUILT = "run `make keda` (about 17 min cold)"


@pytest.fixture
def keda_bin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    d = tmp_path / "keda-bin"
    d.mkdir()
    monkeypatch.setenv(keda.BIN_ENV, str(d))
    return d


def _fake_binary(path: Path) -> None:
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)


# ------------------------------------------------------------------ not built
def test_binaries_missing_names_make_keda(keda_bin: Path) -> None:
    _fake_binary(keda_bin / "keda-operator")
    with pytest.raises(ConfigError) as err:
        keda.binaries()
    assert err.value.problem == f"KEDA is not built: no keda-adapter in {keda_bin}"
    assert err.value.fix == NOT_BUILT


def test_binaries_found_when_both_are_built(keda_bin: Path) -> None:
    for name in ("keda-operator", "keda-adapter"):
        _fake_binary(keda_bin / name)
    assert keda.binaries() == {n: keda_bin / n for n in ("keda-operator", "keda-adapter")}


def test_a_file_that_is_not_executable_is_not_built(keda_bin: Path) -> None:
    _fake_binary(keda_bin / "keda-operator")
    (keda_bin / "keda-adapter").write_text("")
    with pytest.raises(ConfigError, match="no keda-adapter"):
        keda.binaries()


def test_local_up_keda_unbuilt_is_one_line_exit_2_and_creates_nothing(keda_bin: Path) -> None:
    r = CliRunner().invoke(app, ["local", "up", "--name", "kk", "--autoscaler", "keda"])
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("Error: KEDA is not built: no keda-operator, keda-adapter in ")
    assert lines[0].endswith(f"(--autoscaler keda): {NOT_BUILT}")
    assert "Traceback" not in r.output
    assert not LocalClusterConfig(name="kk").workdir.exists()


def test_crd_dir_without_crds_names_make_keda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(keda.CRDS_ENV, str(tmp_path))
    with pytest.raises(ConfigError) as err:
        keda.crd_dir()
    assert err.value.fix == NOT_BUILT
    (tmp_path / "keda.sh_scaledobjects.yaml").write_text("kind: CustomResourceDefinition\n")
    assert keda.crd_dir() == tmp_path


def test_autoscaler_must_be_hpa_or_keda() -> None:
    r = CliRunner().invoke(app, ["local", "up", "--name", "kk", "--autoscaler", "kedaa"])
    assert r.exit_code == 2
    assert "(--autoscaler)" in r.stderr
    assert "use hpa" in r.stderr


# ------------------------------------------------------------------ --autoscaler vs the values
def test_engine_from_values_last_one_wins(tmp_path: Path) -> None:
    f = tmp_path / "v.yaml"
    f.write_text("autoscaling:\n  engine: keda\n")
    assert keda.engine_in_values([f], []) == ("keda", str(f))
    assert keda.engine_in_values([f], ["autoscaling.engine=hpa"]) == ("hpa", "--set autoscaling.engine=hpa")
    assert keda.engine_in_values([], ["autoscaling.maxReplicas=3"]) is None


def test_values_asking_for_keda_without_the_option_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "v.yaml"
    f.write_text("autoscaling:\n  engine: keda\nprometheus-adapter:\n  enabled: false\n")
    with pytest.raises(ConfigError) as err:
        keda.check_engine("hpa", [f], [])
    assert err.value.setting == "--autoscaler"
    assert "pass --autoscaler keda" in err.value.fix
    keda.check_engine("keda", [f], [])  # agreeing: fine
    keda.check_engine("keda", [], [])  # the local cluster sets the engine itself


def test_cli_refuses_set_engine_keda_without_autoscaler_keda() -> None:
    r = CliRunner().invoke(app, ["local", "up", "--name", "kk", "--set", "autoscaling.engine=keda"])
    assert r.exit_code == 2
    assert "autoscaling.engine=keda (--set autoscaling.engine=keda)" in r.stderr
    assert "pass --autoscaler keda" in r.stderr


# ------------------------------------------------------------------ values and ports
def test_keda_overlay_sets_engine_adapter_off_and_host_prometheus() -> None:
    cfg = LocalClusterConfig(name="kk", autoscaler="keda", prometheus_port=39190)
    values = LocalCluster(cfg).overlay_values()
    assert values["autoscaling"]["engine"] == "keda"
    assert values["autoscaling"]["behavior"]  # the settings' own values are kept
    assert values["prometheus-adapter"] == {"enabled": False}
    assert values["wiring"] == {"scrapeInterval": "5s", "prometheusUrl": "http://127.0.0.1:39190"}
    hpa = LocalCluster(LocalClusterConfig(name="kk")).overlay_values()
    assert "engine" not in hpa["autoscaling"]
    assert "prometheus-adapter" not in hpa
    assert "prometheusUrl" not in hpa["wiring"]


def test_grpc_port_is_checked_only_with_keda() -> None:
    port = free_port()
    clash = {"prometheus_port": port, "keda_grpc_port": port, **free_ports("front_door_port", "adapter_port")}
    with pytest.raises(ConfigError) as err:
        LocalCluster(LocalClusterConfig(name="kk", autoscaler="keda", **clash)).check_ports()
    assert err.value.setting == "--keda-grpc-port"
    LocalCluster(LocalClusterConfig(name="kk", **clash)).check_ports()  # hpa: the port is not used


def test_command_lines_share_one_cert_dir_and_the_grpc_port(tmp_path: Path) -> None:
    k = keda.LocalKeda(tmp_path, tmp_path / "kubeconfig", metrics_port=36443, grpc_port=39666)
    op, ad = k.operator_args(), k.adapter_args()
    cert_dir = f"--cert-dir={k.certs.directory}"
    assert cert_dir in op
    assert cert_dir in ad  # the metrics server's gRPC client certificate is read from --cert-dir
    assert "--metrics-service-bind-address=127.0.0.1:39666" in op
    assert "--metrics-service-address=127.0.0.1:39666" in ad
    assert "--secure-port=36443" in ad
    assert "--port=0" in ad
    assert keda.LocalKeda.env()["WATCH_NAMESPACE"] == ""


# ------------------------------------------------------------------ certificates
def test_certificate_names_uses_and_key_mode(tmp_path: Path) -> None:
    certs = keda.make_certs(tmp_path / "certs")
    cert = x509.load_pem_x509_certificate(certs.crt.read_bytes())
    ca = x509.load_pem_x509_certificate(certs.ca.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "keda-metrics-apiserver.keda.svc" in san.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    cert.verify_directly_issued_by(ca)
    other = keda.make_certs(tmp_path / "other")
    with pytest.raises(InvalidSignature):
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(other.ca.read_bytes()))
    assert certs.key.stat().st_mode & 0o777 == 0o600
    assert not list(certs.directory.glob("ca.key"))
    assert isinstance(cert.public_key(), ec.EllipticCurvePublicKey)


def _handshake(server_certs: keda.Certs, client_certs: keda.Certs, server_name: str) -> str | None:
    """mTLS handshake on loopback, as operator and metrics server do; None if it worked, else the error."""
    srv = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv.load_cert_chain(server_certs.crt, server_certs.key)
    srv.load_verify_locations(server_certs.ca)
    srv.verify_mode = ssl.CERT_REQUIRED
    cli = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    cli.load_verify_locations(client_certs.ca)
    cli.load_cert_chain(client_certs.crt, client_certs.key)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    errors: list[str] = []

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with srv.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError) as exc:
            errors.append(f"server: {exc}")

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
            cli.wrap_socket(raw, server_hostname=server_name) as tls,
        ):
            tls.sendall(b"x")
    except (ssl.SSLError, OSError) as exc:
        errors.append(f"client: {exc}")
    t.join(timeout=5)
    listener.close()
    return "; ".join(errors) or None


def test_certificate_works_for_grpc_by_ip_and_for_the_aggregator_by_service_name(tmp_path: Path) -> None:
    certs = keda.make_certs(tmp_path / "certs")
    assert _handshake(certs, certs, "127.0.0.1") is None  # operator <-> metrics server (gRPC)
    assert _handshake(certs, certs, "keda-metrics-apiserver.keda.svc") is None  # aggregator
    assert _handshake(certs, certs, "keda-metrics-apiserver.other.svc") is not None  # wrong name
    stranger = keda.make_certs(tmp_path / "stranger")
    assert _handshake(certs, stranger, "127.0.0.1") is not None  # another CA: refused


# ------------------------------------------------------------------ readiness verdict
def _so(
    *, ready: str = "True", hpa: str | None = "keda-hpa-x", health: dict[str, Any] | None = None
) -> dict[str, Any]:
    ready_condition = {"type": "Ready", "status": ready, "reason": "R", "message": "m"}
    status: dict[str, Any] = {"conditions": [ready_condition]}
    if hpa:
        status["hpaName"] = hpa
    if health is not None:
        status["health"] = health
    return {"status": status}


HPA = {"spec": {"metrics": [{"type": "External", "external": {"metric": {"name": "s0-prometheus"}}}]}}


def test_scaling_problems_empty_only_when_ready_and_every_trigger_happy() -> None:
    happy = {"s0-prometheus": {"status": "Happy", "numberOfFailures": 0}}
    assert keda.scaling_problems(_so(health=happy), HPA) == []
    failing = {"s0-prometheus": {"status": "Failing", "numberOfFailures": 4}}
    assert keda.scaling_problems(_so(health=failing), HPA) == ["s0-prometheus: Failing (4 failures in a row)"]
    assert keda.scaling_problems(_so(health={}), HPA) == ["s0-prometheus: not read yet"]
    assert keda.scaling_problems(_so(ready="False", health=happy), HPA) == ["ScaledObject not Ready (R: m)"]
    assert keda.scaling_problems(_so(hpa=None), None) == ["KEDA has not created the HPA yet"]
    assert keda.scaling_problems(_so(health=happy), None) == ["HPA keda-hpa-x not found"]
    assert keda.scaling_problems(_so(health=happy), {"spec": {"metrics": []}}) == [
        "HPA keda-hpa-x has no external metrics"
    ]


# ------------------------------------------------------------------ stop order
def test_down_stops_the_metrics_server_before_the_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, float]] = []

    def fake_stop(workdir: Path, name: str, grace_s: float = 10.0) -> bool:
        calls.append((name, grace_s))
        return True

    monkeypatch.setattr(hostprocs, "stop", fake_stop)
    monkeypatch.setattr(hostprocs, "names", lambda workdir: ["gpu-simulator", "prometheus"])
    LocalCluster(LocalClusterConfig(name="kk", autoscaler="keda")).down()
    assert [n for n, _ in calls[:2]] == ["keda-adapter", "keda-operator"]
    assert calls[0][1] > 15  # it ignores SIGTERM for 15 s while the operator is unreachable
