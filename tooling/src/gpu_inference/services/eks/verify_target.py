"""The load-test target of a deployed EKS stack, from what `deploy` recorded (deploy.json).

verify-scaleup --eks reaches the inference Service and Prometheus through `kubectl port-forward`
on loopback (the chart's Ingress is internal by default), and reads the HPA through the recorded
kubeconfig and context. Nothing is guessed: a record without what is needed is an error naming
the fix.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from kubernetes import client

from gpu_inference.adapters.kube import api_client
from gpu_inference.adapters.portforward import port_forward
from gpu_inference.domain.deployment_state import DeploymentState, load_state, state_path
from gpu_inference.domain.timeline import Target
from gpu_inference.errors import ConfigError

log = logging.getLogger(__name__)

#: The chart labels its inference Service with this component (charts/gpu-inference/charts/inference).
INFERENCE_COMPONENT = "inference"


def deployed_state(cluster: str, work_dir: Path) -> DeploymentState:
    """The deploy record of `cluster`, checked for what verify-scaleup needs."""
    state = load_state(work_dir, cluster)
    where = str(state_path(work_dir, cluster))
    if state is None:
        raise ConfigError(
            "--eks", f"no deploy record at {where}", "run `make deploy` (or pass --cluster/--work-dir of it)"
        )
    if state.status != "deployed":
        raise ConfigError(
            "--eks",
            f"cluster {cluster} is {state.status}, not deployed ({where})",
            "finish `make deploy` first",
        )
    if state.prometheus is None:
        raise ConfigError(
            "--eks",
            f"the deploy record {where} says no in-cluster Prometheus",
            "pass --target/--prometheus-url/--kubeconfig/--hpa for an external Prometheus",
        )
    return state


def inference_service(state: DeploymentState) -> tuple[str, int]:
    """(name, port) of the release's inference Service, read from the cluster."""
    api = api_client(state.kubeconfig, state.context, setting="--eks")
    try:
        services = client.CoreV1Api(api).list_namespaced_service(
            state.namespace,
            label_selector=(
                f"app.kubernetes.io/instance={state.release},app.kubernetes.io/component={INFERENCE_COMPONENT}"
            ),
        )
    finally:
        api.close()
    if len(services.items) != 1:
        raise ConfigError(
            "--eks",
            f"expected one inference Service of release {state.release} in {state.namespace}, "
            f"found {len(services.items)}",
            "check `kubectl get svc -n " + state.namespace + "`",
        )
    svc = services.items[0]
    return str(svc.metadata.name), int(svc.spec.ports[0].port)


def _container_port(pod: Any, target_port: Any, default: int) -> int:
    """The pod's port a Service targetPort (a number or a container port name) points at."""
    if target_port is None:
        return default
    if isinstance(target_port, int) or str(target_port).isdigit():
        return int(target_port)
    for c in pod.spec.containers or []:
        for cp in c.ports or []:
            if cp.name == target_port:
                return int(cp.container_port)
    raise ConfigError("--eks", f"pod {pod.metadata.name} has no port named {target_port}", "check the chart")


@contextmanager
def one_replica(cluster: str, work_dir: Path) -> Iterator[str]:
    """A port-forward to ONE Ready inference pod of the deployed stack (for calibration); yields its URL."""
    state = deployed_state(cluster, work_dir)
    name, port = inference_service(state)
    api = api_client(state.kubeconfig, state.context, setting="--eks")
    try:
        core = client.CoreV1Api(api)
        svc = core.read_namespaced_service(name, state.namespace)
        selector = ",".join(f"{k}={v}" for k, v in (svc.spec.selector or {}).items())
        pods = core.list_namespaced_pod(state.namespace, label_selector=selector).items
    finally:
        api.close()
    ready = [
        p for p in pods if any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))
    ]
    if not ready:
        raise ConfigError("--eks", f"no Ready inference pod behind svc/{name}", "wait for the rollout")
    pod = ready[0]
    pod_port = _container_port(pod, svc.spec.ports[0].target_port, port)
    with port_forward(
        Path(state.kubeconfig), state.context, state.namespace, f"pod/{pod.metadata.name}", pod_port
    ) as url:
        yield url


@contextmanager
def eks_target(cluster: str, work_dir: Path, api: str = "openai") -> Iterator[Target]:
    """A Target for the deployed stack, with port-forwards to the inference Service and Prometheus."""
    state = deployed_state(cluster, work_dir)
    prometheus = state.prometheus
    assert prometheus is not None
    kubeconfig = Path(state.kubeconfig)
    name, port = inference_service(state)
    with ExitStack() as stack:
        url = stack.enter_context(port_forward(kubeconfig, state.context, state.namespace, name, port))
        prom = stack.enter_context(
            port_forward(
                kubeconfig,
                state.context,
                prometheus.namespace,
                prometheus.service,
                prometheus.port,
            )
        )
        log.info(
            "verify-scaleup --eks: %s (%s), inference %s, Prometheus %s", cluster, state.region, url, prom
        )
        yield Target(
            url=url,
            prometheus_url=prom,
            kubeconfig=kubeconfig,
            kube_context=state.context,
            namespace=state.namespace,
            hpa_name=state.hpa or state.release,
            api=api,
            name=cluster,
        )
