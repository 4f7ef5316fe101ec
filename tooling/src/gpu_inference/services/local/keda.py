"""KEDA on the local cluster (`gpu-inference local up --autoscaler keda`).

KEDA's operator and its metrics API server (`keda-operator`, `keda-adapter`, built by `make keda`)
run as host processes, like prometheus-adapter does for the HPA engine:

    chart's ScaledObject -> keda-operator (host, Prometheus trigger -> host Prometheus) --gRPC,
    mTLS--> keda-adapter (host) <- APIService v1beta1.external.metrics.k8s.io (ExternalName
    127.0.0.1, caBundle) <- real HPA controller -> HPA keda-hpa-<name> (made by the operator)

One CA-signed certificate, generated in the cluster's state directory, serves the three TLS uses:
the operator's gRPC server, the metrics server's gRPC client certificate, and the metrics
server's HTTPS (SANs keda-metrics-apiserver.keda.svc for the aggregator, IP 127.0.0.1 for gRPC).
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any, TypeVar

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubernetes import client
from kubernetes.client.rest import ApiException

from gpu_inference import paths
from gpu_inference.adapters import process
from gpu_inference.adapters.kube import NotYet, api_client, wait_until
from gpu_inference.adapters.kubectl import Kubectl
from gpu_inference.errors import ConfigError, GpuInferenceError, ToolFailedError, ToolNotFoundError
from gpu_inference.services.local import hostprocs

log = logging.getLogger(__name__)

T = TypeVar("T")

VERSION = "v2.21.0"
MODULE = "github.com/kedacore/keda/v2"
OPERATOR = "keda-operator"
ADAPTER = "keda-adapter"
#: In the order `local down` stops them: the metrics server first. Waiting for an operator that
#: is gone, it ignores SIGTERM for about 15 s.
PROCESSES = (ADAPTER, OPERATOR)
NAMESPACE = "keda"
SERVICE = "keda-metrics-apiserver"
APISERVICE = "v1beta1.external.metrics.k8s.io"
SCALEDOBJECT_LABEL = "scaledobject.keda.sh/name"
#: The CLI setting errors name, and the fix when the binaries or KEDA's module are missing.
SETTING = "--autoscaler keda"
BUILD_FIX = "run `make keda` (about 17 min cold)"
#: Environment overrides: the bin directory holding both binaries, and the CRD directory.
BIN_ENV = "GPU_INFERENCE_KEDA_BIN"
CRDS_ENV = "GPU_INFERENCE_KEDA_CRDS"
SANS_DNS = (f"{SERVICE}.{NAMESPACE}.svc", f"keda-operator.{NAMESPACE}.svc", "localhost")
ADAPTER_STOP_GRACE_S = 20.0


class KedaError(GpuInferenceError):
    """KEDA did not come up on the local cluster, or does not scale."""


# ------------------------------------------------------------------ where KEDA is
def keda_dir() -> Path:
    """hack/keda: the wrapper module and its build script."""
    return paths.project_root() / "hack" / "keda"


def bin_dir() -> Path:
    """Where `make keda` puts the binaries: $GPU_INFERENCE_KEDA_BIN, else `hack/keda/build.sh --print-bin`."""
    override = os.environ.get(BIN_ENV)
    if override:
        return Path(override)
    script = keda_dir() / "build.sh"
    if not script.is_file():
        raise ConfigError(SETTING, f"KEDA is not built: {script} is missing", BUILD_FIX)
    out = process.run("bash", [str(script), "--print-bin"], timeout=30)
    return Path(out.stdout.strip().splitlines()[-1])


def binaries() -> dict[str, Path]:
    """Both KEDA binaries; a ConfigError naming `make keda` when either is not built."""
    d = bin_dir()
    missing = [n for n in (OPERATOR, ADAPTER) if not os.access(d / n, os.X_OK)]
    if missing:
        raise ConfigError(SETTING, f"KEDA is not built: no {', '.join(missing)} in {d}", BUILD_FIX)
    return {n: d / n for n in (OPERATOR, ADAPTER)}


def crd_dir() -> Path:
    """KEDA's CRDs (config/crd/bases) from its Go module in the module cache, found offline with
    `go list -m` in hack/keda; $GPU_INFERENCE_KEDA_CRDS overrides."""
    override = os.environ.get(CRDS_ENV)
    if override:
        d = Path(override)
    else:
        try:
            out = process.run(
                "go",
                ["list", "-m", "-f", "{{.Dir}}", MODULE],
                timeout=60,
                cwd=keda_dir(),
                env={"GOPROXY": "off", "GOFLAGS": "-mod=mod"},
            )
        except (ToolNotFoundError, ToolFailedError) as exc:
            first = str(exc).strip().splitlines()[0]
            problem = f"KEDA's module is not in the Go module cache ({first})"
            raise ConfigError(SETTING, problem, BUILD_FIX) from exc
        d = Path(out.stdout.strip()) / "config" / "crd" / "bases"
    if not d.is_dir() or not any(d.glob("*.yaml")):
        raise ConfigError(SETTING, f"KEDA's CRDs are not in {d}", BUILD_FIX)
    return d


# ------------------------------------------------------------------ chart values
def overlay_values(prometheus_port: int) -> dict[str, Any]:
    """What the local cluster sets on the chart for the KEDA engine: KEDA instead of the adapter, and
    the triggers' Prometheus at its host address, which the operator (a host process) reaches."""
    return {
        "autoscaling": {"engine": "keda"},
        "prometheus-adapter": {"enabled": False},
        "wiring": {"prometheusUrl": f"http://127.0.0.1:{prometheus_port}"},
    }


def engine_in_values(values_files: Sequence[Path], set_values: Sequence[str]) -> tuple[str, str] | None:
    """autoscaling.engine as the user's -f files and --set pairs set it (helm's order: files, then
    --set; the last one wins), with where it was set; None when they leave it alone."""
    found: tuple[str, str] | None = None
    for f in values_files:
        try:
            data = yaml.safe_load(f.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue  # helm reports an unreadable file itself
        autoscaling = data.get("autoscaling") if isinstance(data, dict) else None
        if isinstance(autoscaling, dict) and "engine" in autoscaling:
            found = (str(autoscaling["engine"]), str(f))
    for pair in set_values:
        key, _, value = pair.partition("=")
        if key.strip() == "autoscaling.engine":
            found = (value.strip(), f"--set {pair}")
    return found


def check_engine(autoscaler: str, values_files: Sequence[Path], set_values: Sequence[str]) -> None:
    """The user's values and --autoscaler must agree: KEDA's processes and CRDs come with
    --autoscaler keda only, and the chart's engine decides what the chart renders."""
    found = engine_in_values(values_files, set_values)
    if found is None or found[0] == autoscaler:
        return
    engine, where = found
    raise ConfigError(
        "--autoscaler",
        f"the chart values set autoscaling.engine={engine} ({where}) but the local cluster runs {autoscaler}",
        f"pass --autoscaler {engine}, or remove autoscaling.engine from {where}",
    )


# ------------------------------------------------------------------ certificates
@dataclass(frozen=True)
class Certs:
    """ca.crt, tls.crt and tls.key in one directory: the layout both KEDA binaries read."""

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def crt(self) -> Path:
        return self.directory / "tls.crt"

    @property
    def key(self) -> Path:
        return self.directory / "tls.key"


def make_certs(directory: Path, *, days: int = 365, now: dt.datetime | None = None) -> Certs:
    """A throwaway CA and one certificate it signs for both server and client use (gRPC mTLS both
    ways, and the metrics server's HTTPS). The CA key is not kept."""
    now = now or dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gpu-inference local KEDA CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in SANS_DNS]
    sans.append(x509.IPAddress(IPv4Address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "keda")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    certs = Certs(directory)
    directory.mkdir(parents=True, exist_ok=True)
    certs.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    certs.crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    certs.key.touch(mode=0o600)
    certs.key.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return certs


# ------------------------------------------------------------------ ScaledObject health
def scaling_problems(scaledobject: Mapping[str, Any], hpa: Mapping[str, Any] | None) -> list[str]:
    """What still keeps a ScaledObject from driving its HPA (empty: it does). Needs: condition
    Ready=True, the HPA KEDA named in status.hpaName, and every external metric of that HPA healthy
    in status.health (KEDA records health when fallback is set, as the chart sets it). A trigger
    whose Prometheus cannot be queried shows as Failing there, even while fallback replicas hide it."""
    status = scaledobject.get("status") or {}
    problems: list[str] = []
    ready = [c for c in status.get("conditions") or [] if c.get("type") == "Ready"]
    if not ready or ready[0].get("status") != "True":
        why = f"{ready[0].get('reason')}: {ready[0].get('message')}" if ready else "no Ready condition yet"
        problems.append(f"ScaledObject not Ready ({why})")
    hpa_name = status.get("hpaName")
    if not hpa_name:
        problems.append("KEDA has not created the HPA yet")
        return problems
    if hpa is None:
        problems.append(f"HPA {hpa_name} not found")
        return problems
    metrics = [
        m["external"]["metric"]["name"]
        for m in (hpa.get("spec") or {}).get("metrics") or []
        if m.get("type") == "External"
    ]
    if not metrics:
        problems.append(f"HPA {hpa_name} has no external metrics")
    health = status.get("health") or {}
    for name in metrics:
        h = health.get(name)
        if h is None:
            problems.append(f"{name}: not read yet")
        elif h.get("status") != "Happy":
            problems.append(f"{name}: {h.get('status')} ({h.get('numberOfFailures')} failures in a row)")
    return problems


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Does something accept connections on host:port?"""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


# ------------------------------------------------------------------ the processes and objects
class LocalKeda:
    """KEDA of one local cluster: CRDs, certificates, the two host processes and the APIService."""

    def __init__(self, workdir: Path, kubeconfig: Path, *, metrics_port: int, grpc_port: int) -> None:
        self.workdir = workdir
        self.kubeconfig = kubeconfig
        self.metrics_port = metrics_port
        self.grpc_port = grpc_port
        self.certs = Certs(workdir / "keda" / "certs")

    def _api(self) -> client.ApiClient:
        return api_client(self.kubeconfig)

    # ---------------------------------------------------------------- command lines
    @staticmethod
    def env() -> dict[str, str]:
        """Off-cluster settings both binaries need: WATCH_NAMESPACE set (empty: all namespaces)
        and the namespace of KEDA's own objects (no service account file on the host)."""
        return {"WATCH_NAMESPACE": "", "KEDA_CLUSTER_OBJECT_NAMESPACE": NAMESPACE, "POD_NAMESPACE": NAMESPACE}

    def operator_args(self) -> list[str]:
        return [
            f"--kubeconfig={self.kubeconfig}",
            f"--cert-dir={self.certs.directory}",
            f"--metrics-service-bind-address=127.0.0.1:{self.grpc_port}",
            "--metrics-bind-address=0",  # its own /metrics: off
            "--health-probe-bind-address=0",  # probes: off (no kubelet here)
            "--zap-encoder=console",
        ]

    def adapter_args(self) -> list[str]:
        kc = str(self.kubeconfig)
        return [
            f"--kubeconfig={kc}",
            f"--lister-kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}",
            f"--secure-port={self.metrics_port}",
            "--bind-address=127.0.0.1",
            # Its gRPC client certificate comes from --cert-dir even with --tls-cert-file given.
            f"--cert-dir={self.certs.directory}",
            f"--tls-cert-file={self.certs.crt}",
            f"--tls-private-key-file={self.certs.key}",
            f"--metrics-service-address=127.0.0.1:{self.grpc_port}",
            # Its own /metrics listens on ":PORT" (no address flag); 0 takes a free port, no clash.
            "--port=0",
            "--zap-encoder=console",
        ]

    # ---------------------------------------------------------------- up
    def install_crds(self) -> None:
        """KEDA's namespace and CRDs (server-side apply: the ScaledJob CRD is larger than client-side
        apply's annotation limit); the chart's ScaledObject needs them before helm installs it."""
        crds = crd_dir()
        self._namespace()
        log.info("applying KEDA %s CRDs from %s (server-side)", VERSION, crds)
        Kubectl(self.kubeconfig).apply(crds, server_side=True, timeout=120)
        self._wait_established("scaledobjects.keda.sh", timeout_s=60)

    def _wait_established(self, crd: str, timeout_s: float) -> None:
        # Polled here: `kubectl wait` fails on a CRD whose status has no conditions yet.
        ext = client.ApiextensionsV1Api(self._api())

        def established() -> bool:
            conditions = ext.read_custom_resource_definition(crd).status.conditions or []
            return any(c.type == "Established" and c.status == "True" for c in conditions)

        self._wait(established, f"CRD {crd} to be Established", timeout_s, 0.5, watch=())

    def start(self, timeout_s: float = 90) -> None:
        """Certificates, operator, metrics server, Service and APIService; returns once the API
        server reports the external metrics API Available. Start it once the triggers' Prometheus
        runs: every failed query counts towards the ScaledObject's fallback threshold."""
        bins = binaries()
        self.stop()  # a second `local up`: the old pair, in order, before new certificates
        make_certs(self.certs.directory)
        log.info("starting keda-operator (gRPC 127.0.0.1:%d)", self.grpc_port)
        hostprocs.start(self.workdir, OPERATOR, str(bins[OPERATOR]), self.operator_args(), env=self.env())
        self._wait_port(OPERATOR, self.grpc_port, timeout_s)
        log.info("starting keda-adapter (HTTPS 127.0.0.1:%d)", self.metrics_port)
        hostprocs.start(self.workdir, ADAPTER, str(bins[ADAPTER]), self.adapter_args(), env=self.env())
        self._wait_port(ADAPTER, self.metrics_port, timeout_s)
        self._service_and_apiservice()
        self._wait_available(timeout_s)

    def _namespace(self) -> None:
        core = client.CoreV1Api(self._api())
        try:
            core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=NAMESPACE)))
        except ApiException as exc:
            if exc.status != 409:
                raise

    def _wait(
        self,
        check: Callable[[], T | None],
        what: str,
        timeout_s: float,
        interval_s: float,
        watch: Sequence[str] = PROCESSES,
    ) -> T:
        """wait_until, ending at once with its log's tail when a watched KEDA process dies meanwhile."""

        def alive_and() -> T | None:
            for name in watch:
                if not hostprocs.running(self.workdir, name):
                    raise KedaError(self._died(name))
            return check()

        logs = ", ".join(str(hostprocs.log_file(self.workdir, n)) for n in watch)
        fix = f"see {logs}" if logs else "check the local control plane (`gpu-inference local status`)"
        return wait_until(
            alive_and, timeout_s=timeout_s, what=what, fix=fix, interval_s=interval_s, tolerate=()
        )

    def _wait_port(self, name: str, port: int, timeout_s: float) -> None:
        self._wait(lambda: port_open(port), f"{name} to listen on 127.0.0.1:{port}", timeout_s, 0.3, [name])

    def _died(self, name: str) -> str:
        logf = hostprocs.log_file(self.workdir, name)
        return f"{name} exited; see {logf}:\n{hostprocs.tail(logf)}"

    def _service_and_apiservice(self) -> None:
        """An ExternalName Service to 127.0.0.1 (Endpoints refuse loopback IPs) and the APIService
        through it, with the CA that signed the metrics server's certificate as caBundle."""
        api = self._api()
        core = client.CoreV1Api(api)
        reg = client.ApiregistrationV1Api(api)
        svc = client.V1Service(
            metadata=client.V1ObjectMeta(name=SERVICE, namespace=NAMESPACE),
            spec=client.V1ServiceSpec(
                type="ExternalName",
                external_name="127.0.0.1",
                ports=[client.V1ServicePort(name="https", port=self.metrics_port)],
            ),
        )
        try:
            core.delete_namespaced_service(SERVICE, NAMESPACE)
        except ApiException as exc:
            if exc.status != 404:
                raise
        core.create_namespaced_service(NAMESPACE, svc)
        body = client.V1APIService(
            metadata=client.V1ObjectMeta(name=APISERVICE),
            spec=client.V1APIServiceSpec(
                group="external.metrics.k8s.io",
                version="v1beta1",
                service=client.ApiregistrationV1ServiceReference(
                    name=SERVICE, namespace=NAMESPACE, port=self.metrics_port
                ),
                ca_bundle=base64.b64encode(self.certs.ca.read_bytes()).decode(),
                group_priority_minimum=100,
                version_priority=100,
            ),
        )
        try:
            reg.delete_api_service(APISERVICE)
        except ApiException as exc:
            if exc.status != 404:
                raise
        reg.create_api_service(body)

    def apiservice_available(self) -> tuple[bool, str]:
        reg = client.ApiregistrationV1Api(self._api())
        try:
            aps = reg.read_api_service(APISERVICE)
        except ApiException as exc:
            return False, f"{exc.status} {exc.reason}"
        for c in (aps.status and aps.status.conditions) or []:
            if c.type == "Available":
                return c.status == "True", f"{c.reason}: {c.message}"
        return False, "no Available condition yet"

    def _wait_available(self, timeout_s: float) -> None:
        def available() -> bool:
            ok, why = self.apiservice_available()
            if not ok:
                raise NotYet(why)
            return True

        self._wait(available, f"{APISERVICE} to be Available", timeout_s, 1)
        log.info("%s Available", APISERVICE)

    # ---------------------------------------------------------------- checks
    def scaledobjects(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        objs = client.CustomObjectsApi(self._api()).list_namespaced_custom_object(
            "keda.sh", "v1alpha1", namespace, "scaledobjects", label_selector=label_selector
        )
        return list(objs.get("items") or [])

    def external_metric(self, namespace: str, metric: str, scaledobject: str) -> list[dict[str, Any]]:
        """The external metric as the HPA controller reads it, through the aggregator."""
        api = self._api()
        resp = api.call_api(
            f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{metric}",
            "GET",
            query_params=[("labelSelector", f"{SCALEDOBJECT_LABEL}={scaledobject}")],
            auth_settings=["BearerToken"],
            response_types_map={200: "object"},
            _return_http_data_only=True,
        )
        return list(resp.get("items") or [])

    def wait_scaling(self, namespace: str, label_selector: str, timeout_s: float) -> str:
        """Wait until the release's ScaledObject drives its HPA: every trigger read through the
        external metrics API and healthy. Returns the HPA's name."""
        api = self._api()
        hpas = client.AutoscalingV2Api(api)

        def driving() -> str:
            objs = self.scaledobjects(namespace, label_selector)
            if len(objs) != 1:
                several = f"{len(objs)} ScaledObjects match {label_selector}"
                raise NotYet(several if objs else "no ScaledObject of the release")
            so = objs[0]
            hpa_name = (so.get("status") or {}).get("hpaName")
            hpa: dict[str, Any] | None = None
            if hpa_name:
                try:
                    hpa = api.sanitize_for_serialization(
                        hpas.read_namespaced_horizontal_pod_autoscaler(hpa_name, namespace)
                    )
                except ApiException as exc:
                    if exc.status != 404:
                        raise
            if hpa is not None:
                # Read each metric as the HPA does; this is also what records its health.
                for m in hpa["spec"].get("metrics") or []:
                    if m.get("type") == "External":
                        try:
                            metric = m["external"]["metric"]["name"]
                            self.external_metric(namespace, metric, so["metadata"]["name"])
                        except ApiException as exc:
                            log.debug("external metric not served yet: %s %s", exc.status, exc.reason)
            problems = scaling_problems(so, hpa)
            if problems:
                raise NotYet("; ".join(problems))
            log.info("ScaledObject %s drives HPA %s", so["metadata"]["name"], hpa_name)
            return str(hpa_name)

        return self._wait(driving, "KEDA to drive the release's HPA", timeout_s, 2)

    def running(self) -> dict[str, bool]:
        return {n: hostprocs.running(self.workdir, n) for n in (OPERATOR, ADAPTER)}

    # ---------------------------------------------------------------- down
    def stop(self) -> list[str]:
        """Stop the metrics server, then the operator (see PROCESSES)."""
        stopped = []
        for name in PROCESSES:
            grace = ADAPTER_STOP_GRACE_S if name == ADAPTER else 10.0
            if hostprocs.stop(self.workdir, name, grace_s=grace):
                stopped.append(name)
        return stopped
