"""The local cluster: a real control plane (kwokctl, binary runtime), simulated GPU nodes, the
chart installed by helm, and the parts whose pods cannot run on simulated nodes (Prometheus,
prometheus-adapter, the DCGM exporter's data) run as host processes from the chart's own
rendered configuration.

    GPU simulator (pod IPs on loopback) -> Prometheus (host) -> prometheus-adapter (host,
    behind the chart's APIService) -> real HPA controller -> Deployment -> scheduler ->
    Pending pods -> node group scaler (SIMULATED Cluster Autoscaler) -> new kwok nodes
"""

from __future__ import annotations

import base64
import logging
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from kubernetes.utils import parse_quantity

from gpu_inference import paths
from gpu_inference.adapters.helm import Helm
from gpu_inference.adapters.kube import api_client, wait_until
from gpu_inference.adapters.kwokctl import Kwokctl
from gpu_inference.domain.cluster_spec import load_cluster_spec
from gpu_inference.domain.timeline import Target
from gpu_inference.errors import ConfigError, GpuInferenceError, ToolNotFoundError
from gpu_inference.services.local import chartconfig, hostprocs, keda, stages
from gpu_inference.services.local.config import LocalClusterConfig
from gpu_inference.services.local.nodescaler import NodeGroupScaler

log = logging.getLogger(__name__)

VALUES_OVERLAY = Path(__file__).with_name("values-local.yaml")
GPU_METRIC = "DCGM_FI_DEV_GPU_UTIL"
PROCESSES = ("gpu-simulator", "prometheus", "prometheus-adapter", "node-scaler")


class LocalClusterError(GpuInferenceError):
    """The local cluster could not be brought up or is unhealthy."""


@dataclass(frozen=True)
class Endpoints:
    kubeconfig: Path
    front_door_url: str
    prometheus_url: str
    namespace: str
    release: str


def profile_for_preset(preset: str | None) -> str:
    """The simulator profile that behaves like the chart's inference server: vLLM batches
    continuously (llm); any other server is taken as one request at a time (classic)."""
    return "llm" if preset == "vllm" else "classic"


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Could a server bind host:port now? Binds the way the servers themselves do: Go's net.Listen
    and Python's asyncio servers set SO_REUSEADDR, so a port whose last connection is still in
    TIME_WAIT counts as free, while a port something listens on does not."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class LocalCluster:
    """One local cluster: brings it up, reports on it and takes it down."""

    def __init__(self, cfg: LocalClusterConfig) -> None:
        self.cfg = cfg
        self.workdir = cfg.workdir
        self.kubeconfig = self.workdir / "kubeconfig"
        self._client: client.ApiClient | None = None

    @classmethod
    def named(cls, name: str) -> LocalCluster:
        """The cluster `local up --name NAME` started, with the settings it saved."""
        return cls(LocalClusterConfig.for_name(name))

    @property
    def kwokctl(self) -> Kwokctl:
        return Kwokctl(self.workdir / "kwok")

    @property
    def local_keda(self) -> keda.LocalKeda:
        """KEDA's host processes and objects (autoscaler keda); its metrics server takes adapter_port."""
        cfg = self.cfg
        return keda.LocalKeda(
            self.workdir, self.kubeconfig, metrics_port=cfg.adapter_port, grpc_port=cfg.keda_grpc_port
        )

    # ---------------------------------------------------------------- info
    @property
    def endpoints(self) -> Endpoints:
        return Endpoints(
            kubeconfig=self.kubeconfig,
            front_door_url=f"http://127.0.0.1:{self.cfg.front_door_port}",
            prometheus_url=f"http://127.0.0.1:{self.cfg.prometheus_port}",
            namespace=self.cfg.namespace,
            release=self.cfg.release,
        )

    def exists(self) -> bool:
        return self.kubeconfig.is_file()

    def _api(self) -> client.ApiClient:
        """One API client per cluster object (opened on first use, after the control plane exists)."""
        if self._client is None:
            self._client = api_client(self.kubeconfig)
        return self._client

    # ---------------------------------------------------------------- up
    def kwokctl_config(self) -> Path:
        t = self.cfg.timings()
        docs = stages.stages(t.image_pull, t.model_load)
        path = self.workdir / "kwokctl.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        return path

    def extra_args(self) -> list[str]:
        return [
            f"kube-controller-manager=horizontal-pod-autoscaler-sync-period={self.cfg.hpa_sync_period_s}s",
            "kube-apiserver=bind-address=127.0.0.1",
            # Pod IPs on loopback: the GPU simulator serves each pod's ports on this host.
            f"kwok-controller=cidr={self.cfg.effective_pod_cidr}",
            "kwok-controller=node-ip=127.0.0.1",
        ]

    def _forget_client(self) -> None:
        """A new (or removed) control plane: the next _api() opens a fresh client."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def create_control_plane(self) -> None:
        if self.exists():
            log.info("cluster %s already exists; reusing it", self.cfg.name)
            return
        cfg_file = self.kwokctl_config()
        self._forget_client()
        log.info("starting control plane %s (kwokctl, binary runtime)", self.cfg.name)
        self.kwokctl.create_cluster(
            self.cfg.name, kubeconfig=self.kubeconfig, config_file=cfg_file, extra_args=self.extra_args()
        )

    def create_nodes(self) -> None:
        spec = load_cluster_spec(self.cfg.eksctl_config)
        scaler = NodeGroupScaler(
            client.CoreV1Api(self._api()),
            spec,
            provision_delay_s=0,
            scale_down_unneeded_s=self.cfg.timings().scale_down_unneeded_s,
        )
        scaler.ensure_minimum()

    @property
    def node_scaler_faults(self) -> Path:
        """Write {"fail_provisions": N} here and the next N nodes fail to provision."""
        return self.workdir / "node-scaler" / "faults.json"

    @property
    def node_scaler_status(self) -> Path:
        """The node group scaler's counters (nodes added, failed provisions, drawn delays)."""
        return self.workdir / "node-scaler" / "status.json"

    def node_scaler_args(self) -> list[str]:
        t = self.cfg.timings()
        return [
            "--kubeconfig",
            str(self.kubeconfig),
            "--cluster-config",
            str(self.cfg.eksctl_config),
            "--scan-interval",
            f"{t.scan_interval_s:g}",
            "--provision-delay",
            f"{t.node_ready.mean:g}",
            "--provision-jitter",
            f"{(t.node_ready.high - t.node_ready.low) / 2:g}",
            "--seed",
            str(self.cfg.seed),
            "--scale-down-unneeded",
            f"{t.scale_down_unneeded_s:g}",
            "--faults-file",
            str(self.node_scaler_faults),
            "--status-file",
            str(self.node_scaler_status),
        ]

    def start_node_scaler(self) -> None:
        self.node_scaler_status.parent.mkdir(parents=True, exist_ok=True)
        hostprocs.start(
            self.workdir,
            "node-scaler",
            "gpu_inference.services.local.nodescaler",
            self.node_scaler_args(),
            python_module=True,
        )

    def overlay_values(self) -> dict[str, Any]:
        """Values the local cluster sets from its settings on top of values-local.yaml."""
        values: dict[str, Any] = {
            "wiring": {"scrapeInterval": f"{self.cfg.scrape_interval_s}s"},
            "autoscaling": {
                "behavior": {"scaleDown": {"stabilizationWindowSeconds": self.cfg.scale_down_window_s}}
            },
        }
        if self.cfg.autoscaler == "keda":
            for key, more in keda.overlay_values(self.cfg.prometheus_port).items():
                values[key] = {**values.get(key, {}), **more}
        return values

    def values_files(self) -> list[Path]:
        """The -f files in helm's order: the local overlay, the cluster's settings, the user's files."""
        settings = self.workdir / "values-settings.yaml"
        settings.parent.mkdir(parents=True, exist_ok=True)
        settings.write_text(yaml.safe_dump(self.overlay_values(), sort_keys=False))
        return [VALUES_OVERLAY, settings, *self.cfg.values_files]

    def install_chart(self) -> None:
        """helm upgrade --install with the overlay, then the user's -f files and --set pairs."""
        Helm(kubeconfig=self.kubeconfig).upgrade_install_files(
            self.cfg.release,
            paths.chart_dir(),
            namespace=self.cfg.namespace,
            values_files=self.values_files(),
            set_values=self.cfg.set_values,
            wait=True,
            timeout_s=240,
        )

    def chart_preset(self) -> str | None:
        """The installed release's inference server preset (inference.preset)."""
        values = Helm(kubeconfig=self.kubeconfig).get_values(self.cfg.release, namespace=self.cfg.namespace)
        inference = values.get("inference") or {}
        preset = inference.get("preset") if isinstance(inference, dict) else None
        return str(preset) if preset else None

    def resolve_profile(self) -> None:
        """profile auto: the simulator profile follows the chart's preset; saved with the settings."""
        if self.cfg.profile != "auto":
            return
        preset = self.chart_preset()
        profile = profile_for_preset(preset)
        log.info("inference preset %s: GPU simulator profile %s", preset, profile)
        self.cfg = self.cfg.model_copy(update={"profile": profile})
        self.cfg.save()

    def _selector(self, component: str) -> str:
        return f"app.kubernetes.io/instance={self.cfg.release},app.kubernetes.io/component={component}"

    def _release_objects(self) -> list[dict[str, Any]]:
        api = self._api()
        core = client.CoreV1Api(api)
        apps = client.AppsV1Api(api)
        sel = f"app.kubernetes.io/instance={self.cfg.release}"
        objs: list[dict[str, Any]] = []
        for cm in core.list_namespaced_config_map(self.cfg.namespace, label_selector=sel).items:
            objs.append({"kind": "ConfigMap", **api.sanitize_for_serialization(cm)})
        for dep in apps.list_namespaced_deployment(self.cfg.namespace, label_selector=sel).items:
            objs.append({"kind": "Deployment", **api.sanitize_for_serialization(dep)})
        for ds in apps.list_daemon_set_for_all_namespaces(label_selector=sel).items:
            objs.append({"kind": "DaemonSet", **api.sanitize_for_serialization(ds)})
        return objs

    def host_configs(self) -> chartconfig.HostConfigs:
        """The chart's Prometheus and adapter configuration, as installed, adapted to the host."""
        return chartconfig.extract(self._release_objects(), self.kubeconfig, self.workdir / "prometheus")

    def start_prometheus(self, configs: chartconfig.HostConfigs) -> None:
        prom_dir = self.workdir / "prometheus"
        cfg_path = chartconfig.write(configs, prom_dir)
        hostprocs.start(
            self.workdir,
            "prometheus",
            "prometheus",
            [
                f"--config.file={cfg_path}",
                f"--storage.tsdb.path={prom_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.cfg.prometheus_port}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=1d",
            ],
        )

    def _adapter_tls(self) -> tuple[Path, Path]:
        """The serving certificate the chart made for the adapter (its APIService caBundle trusts it)."""
        core = client.CoreV1Api(self._api())
        sel = self._selector(chartconfig.ADAPTER_COMPONENT)
        secrets = [
            s
            for s in core.list_namespaced_secret(self.cfg.namespace, label_selector=sel).items
            if s.type == "kubernetes.io/tls"
        ]
        if not secrets:
            raise LocalClusterError("the chart created no TLS Secret for prometheus-adapter")
        tls_dir = self.workdir / "adapter"
        tls_dir.mkdir(parents=True, exist_ok=True)
        crt, key = tls_dir / "tls.crt", tls_dir / "tls.key"
        crt.write_bytes(base64.b64decode(secrets[0].data["tls.crt"]))
        key.write_bytes(base64.b64decode(secrets[0].data["tls.key"]))
        key.chmod(0o600)
        return crt, key

    def start_adapter(self, configs: chartconfig.HostConfigs) -> None:
        adapter_dir = self.workdir / "adapter"
        adapter_dir.mkdir(parents=True, exist_ok=True)
        rules = adapter_dir / "config.yaml"
        rules.write_text(configs.adapter_rules)
        crt, key = self._adapter_tls()
        kc = str(self.kubeconfig)
        hostprocs.start(
            self.workdir,
            "prometheus-adapter",
            "prometheus-adapter",
            [
                *configs.adapter_args,
                f"--secure-port={self.cfg.adapter_port}",
                "--bind-address=127.0.0.1",
                f"--tls-cert-file={crt}",
                f"--tls-private-key-file={key}",
                f"--lister-kubeconfig={kc}",
                f"--authentication-kubeconfig={kc}",
                f"--authorization-kubeconfig={kc}",
                f"--prometheus-url=http://127.0.0.1:{self.cfg.prometheus_port}",
                f"--config={rules}",
            ],
        )
        self._route_apiservice_to_host()

    def _route_apiservice_to_host(self) -> None:
        """Point the chart's adapter Service at the host process: an ExternalName to 127.0.0.1
        (Endpoints reject loopback IPs) and the APIServices at the host port."""
        core = client.CoreV1Api(self._api())
        reg = client.ApiregistrationV1Api(self._api())
        sel = self._selector(chartconfig.ADAPTER_COMPONENT)
        services = core.list_namespaced_service(self.cfg.namespace, label_selector=sel).items
        if not services:
            raise LocalClusterError("the chart created no Service for prometheus-adapter")
        svc = services[0]
        name = svc.metadata.name
        core.delete_namespaced_service(name, self.cfg.namespace)
        body = client.V1Service(
            metadata=client.V1ObjectMeta(
                name=name, labels=svc.metadata.labels, annotations=svc.metadata.annotations
            ),
            spec=client.V1ServiceSpec(
                type="ExternalName",
                external_name="127.0.0.1",
                ports=[client.V1ServicePort(port=self.cfg.adapter_port, name="https")],
            ),
        )
        core.create_namespaced_service(self.cfg.namespace, body)
        for aps in reg.list_api_service().items:
            ref = aps.spec.service
            if ref and ref.name == name and ref.namespace == self.cfg.namespace:
                reg.patch_api_service(
                    aps.metadata.name, {"spec": {"service": {"port": self.cfg.adapter_port}}}
                )

    def start_simulator(self, configs: chartconfig.HostConfigs) -> None:
        hostprocs.start(
            self.workdir,
            "gpu-simulator",
            "gpu_inference.gpusim",
            [
                "--kubeconfig",
                str(self.kubeconfig),
                "--namespace",
                self.cfg.namespace,
                "--front-door",
                f"127.0.0.1:{self.cfg.front_door_port}",
                "--profile",
                self.cfg.profile,
                "--collect-interval",
                str(configs.dcgm_collect_interval_s),
            ],
            python_module=True,
        )

    def check_ports(self) -> None:
        """Fail before creating anything if a host port is taken (e.g. by another local cluster)."""
        ports = (
            ("--front-door-port", self.cfg.front_door_port),
            ("--prometheus-port", self.cfg.prometheus_port),
            ("--adapter-port", self.cfg.adapter_port),
            *((("--keda-grpc-port", self.cfg.keda_grpc_port),) if self.cfg.autoscaler == "keda" else ()),
        )
        seen: dict[int, str] = {}
        for setting, port in ports:
            if port in seen:
                raise ConfigError(
                    setting, f"port {port} is also {seen[port]}", f"pick another port with {setting}"
                )
            seen[port] = setting
            if not port_free(port):
                raise ConfigError(
                    setting,
                    f"127.0.0.1:{port} is already in use (another local cluster?)",
                    f"stop what listens there or pick another port with {setting}",
                )

    def up(self) -> Endpoints:
        start = time.monotonic()
        keda.check_engine(self.cfg.autoscaler, self.cfg.values_files, self.cfg.set_values)
        if self.cfg.autoscaler == "keda":
            keda.binaries()  # "KEDA is not built" before anything is created
        if not self.exists():
            self.check_ports()
        saved = LocalClusterConfig.saved(self.cfg.name)
        if saved is not None and self.cfg.profile == "auto":
            saved = saved.model_copy(update={"profile": "auto"})  # auto was resolved when it came up
        if self.exists() and saved is not None and saved != self.cfg:
            raise ConfigError(
                "--name",
                f"local cluster {self.cfg.name!r} is already running with other settings",
                f"run `gpu-inference local down --name {self.cfg.name}` first, or pick another --name",
            )
        self.cfg.save()
        try:
            self.create_control_plane()
            self.create_nodes()
            self.start_node_scaler()
            if self.cfg.autoscaler == "keda":
                self.local_keda.install_crds()  # the chart's ScaledObject needs them
            self.install_chart()
            self.resolve_profile()
            configs = self.host_configs()
            self.start_simulator(configs)
            self.start_prometheus(configs)
            if self.cfg.autoscaler == "keda":
                self.local_keda.start()  # after Prometheus: failed queries count towards fallback
                self.local_keda.wait_scaling(
                    self.cfg.namespace, f"app.kubernetes.io/instance={self.cfg.release}", timeout_s=120
                )
            else:
                self.start_adapter(configs)
                self.wait_for_custom_metric(timeout_s=120)
        except Exception:
            log.error("local up failed; logs are in %s", self.workdir / "logs")
            raise
        log.info("local cluster %s ready in %.0fs", self.cfg.name, time.monotonic() - start)
        return self.endpoints

    def target(self) -> Target:
        """The load-test target of this running cluster: front door, Prometheus, kubeconfig, HPA."""
        ep = self.endpoints
        return Target(
            url=ep.front_door_url,
            prometheus_url=ep.prometheus_url,
            kubeconfig=ep.kubeconfig,
            namespace=ep.namespace,
            hpa_name=self.hpa_name(),
            simulated=True,
            name=f"local cluster {self.cfg.name}",
        )

    # ---------------------------------------------------------------- checks
    def hpa_name(self) -> str:
        hpas = (
            client.AutoscalingV2Api(self._api())
            .list_namespaced_horizontal_pod_autoscaler(
                self.cfg.namespace, label_selector=f"app.kubernetes.io/instance={self.cfg.release}"
            )
            .items
        )
        if len(hpas) != 1:
            raise LocalClusterError(f"expected one HPA of release {self.cfg.release}, found {len(hpas)}")
        return str(hpas[0].metadata.name)

    def hpa_metric_names(self) -> list[str]:
        """The Pods metrics the release's HPA scales on (what the adapter must serve)."""
        hpas = (
            client.AutoscalingV2Api(self._api())
            .list_namespaced_horizontal_pod_autoscaler(
                self.cfg.namespace, label_selector=f"app.kubernetes.io/instance={self.cfg.release}"
            )
            .items
        )
        return [
            m.pods.metric.name
            for h in hpas
            for m in h.spec.metrics or []
            if m.type == "Pods" and m.pods is not None and m.pods.metric is not None
        ]

    def custom_metric(self, metric: str = GPU_METRIC) -> dict[str, float]:
        """One metric per pod (default: GPU utilization) as the custom metrics API serves it to the HPA."""
        api = self._api()
        path = f"/apis/custom.metrics.k8s.io/v1beta2/namespaces/{self.cfg.namespace}/pods/*/{metric}"
        try:
            resp = api.call_api(
                path,
                "GET",
                auth_settings=["BearerToken"],
                response_types_map={200: "object"},
                _return_http_data_only=True,
            )
        except ApiException as exc:
            raise LocalClusterError(f"custom metrics API: {exc.status} {exc.reason}") from exc
        out: dict[str, float] = {}
        for item in resp.get("items", []):
            out[item["describedObject"]["name"]] = float(parse_quantity(item["value"]))
        return out

    def wait_for_custom_metric(self, timeout_s: float, metric: str | None = None) -> dict[str, float]:
        """Wait until the custom metrics API serves `metric` (default: every metric the HPA scales on)."""
        names = [metric] if metric else (self.hpa_metric_names() or [GPU_METRIC])
        values: dict[str, float] = {}
        for name in names:

            def served(name: str = name) -> dict[str, float] | None:
                return self.custom_metric(name) or None

            values = wait_until(
                served,
                timeout_s=timeout_s,
                what=f"{name} in the custom metrics API",
                fix=f"see the adapter's log in {self.workdir / 'logs'}",
            )
        return values

    def status(self) -> dict[str, Any]:
        """Processes, endpoints and the saved settings of this cluster."""
        names = (*PROCESSES, *keda.PROCESSES) if self.cfg.autoscaler == "keda" else PROCESSES
        procs = {n: hostprocs.running(self.workdir, n) for n in names}
        saved = LocalClusterConfig.saved(self.cfg.name)
        return {
            "name": self.cfg.name,
            "exists": self.exists(),
            "workdir": str(self.workdir),
            "processes": procs,
            **({"endpoints": self.endpoints.__dict__} if self.exists() else {}),
            **({"settings": saved.model_dump(mode="json")} if saved else {}),
        }

    # ---------------------------------------------------------------- down
    def down(self) -> None:
        """Stop every host process, delete the control plane, remove the work directory."""
        self._forget_client()
        stopped = [*self.local_keda.stop(), *hostprocs.stop_all(self.workdir)]  # KEDA's in order first
        if stopped:
            log.info("stopped %s", ", ".join(stopped))
        kwok_dir = self.workdir / "kwok" / "clusters" / self.cfg.name
        if kwok_dir.exists():
            try:
                self.kwokctl.delete_cluster(self.cfg.name, kubeconfig=self.kubeconfig)
            except ToolNotFoundError as exc:
                log.warning("%s; stopping the control plane by its pid files instead", exc)
            # Whatever kwokctl left running (or could not stop without its binary).
            hostprocs.stop_all(kwok_dir)
        shutil.rmtree(self.workdir, ignore_errors=True)
        log.info("local cluster %s removed", self.cfg.name)
