"""kwok Stages: how simulated nodes and pods move through their lifecycle.

Pods that request a GPU model an inference server: scheduled -> (image pull) -> Running but
not Ready -> (model load) -> Ready. Everything else becomes Ready at once. Once any Stage is
configured kwok uses no default, so node stages are defined here too.
"""

from __future__ import annotations

from typing import Any

from gpu_inference.domain.constants import GPU_RESOURCE
from gpu_inference.services.local.timing import Interval

_NOT_DELETING = {"key": ".metadata.deletionTimestamp", "operator": "DoesNotExist"}
_REQUESTS_GPU = f'.spec.containers.[] | .resources.limits["{GPU_RESOURCE}"]'
_READY_STATUS = '.status.conditions.[] | select( .type == "Ready" ) | .status'


def _stage(
    name: str,
    kind: str,
    match: list[dict[str, Any]],
    nxt: dict[str, Any],
    *,
    delay_ms: int = 0,
    jitter_ms: int = 0,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "resourceRef": {"apiGroup": "v1", "kind": kind},
        "selector": {"matchExpressions": match},
        "next": nxt,
    }
    if delay_ms or jitter_ms:
        spec["delay"] = {
            "durationMilliseconds": delay_ms,
            "jitterDurationMilliseconds": max(jitter_ms, delay_ms),
        }
    return {"apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Stage", "metadata": {"name": name}, "spec": spec}


_NODE_CONDITIONS = """
{{ $now := Now }}
conditions:
{{ range NodeConditions }}
- lastHeartbeatTime: {{ $now | Quote }}
  lastTransitionTime: {{ $now | Quote }}
  message: {{ .message | Quote }}
  reason: {{ .reason | Quote }}
  status: {{ .status | Quote }}
  type: {{ .type | Quote }}
{{ end }}
"""

_NODE_INIT = (
    _NODE_CONDITIONS
    + """
addresses:
- address: {{ NodeIP | Quote }}
  type: InternalIP
- address: {{ NodeName | Quote }}
  type: Hostname
allocatable:
{{ YAML .status.allocatable 1 }}
capacity:
{{ YAML .status.capacity 1 }}
nodeInfo:
  architecture: amd64
  operatingSystem: linux
  kubeletVersion: {{ printf "kwok-%s" Version | Quote }}
  kubeProxyVersion: {{ printf "kwok-%s" Version | Quote }}
phase: Running
"""
)


def _ip_fields(kind: str, source: str) -> str:
    """kwok template for status.<kind>IP and <kind>IPs (kind: pod or host) from kwok's `source`."""
    return (
        f"{{{{ ${kind}IPs := {source} }}}}\n{{{{ with ${kind}IPs }}}}\n"
        f"{kind}IP: {{{{ index . 0 | Quote }}}}\n{kind}IPs:\n"
        "{{ range . }}\n- ip: {{ . | Quote }}\n{{ end }}\n{{ end }}\n"
    )


def _pod_status(ready: bool, with_ips: bool) -> str:
    flag = "true" if ready else "false"
    state = '"True"' if ready else '"False"'
    ips = (
        "\n"
        + _ip_fields(
            "pod",
            'PodIPsWith .spec.nodeName ( or .spec.hostNetwork false ) ( or .metadata.uid "" ) '
            '( or .metadata.name "" ) ( or .metadata.namespace "" )',
        )
        + _ip_fields("host", "NodeIPsWith .spec.nodeName")
        + "startTime: {{ Now | Quote }}\n"
        if with_ips
        else ""
    )
    return (
        f"""
{{{{ $now := Now }}}}
conditions:
- lastTransitionTime: {{{{ $now | Quote }}}}
  status: "True"
  type: PodScheduled
- lastTransitionTime: {{{{ $now | Quote }}}}
  status: "True"
  type: Initialized
- lastTransitionTime: {{{{ $now | Quote }}}}
  status: {state}
  type: Ready
- lastTransitionTime: {{{{ $now | Quote }}}}
  status: {state}
  type: ContainersReady
containerStatuses:
{{{{ range .spec.containers }}}}
- image: {{{{ .image | Quote }}}}
  name: {{{{ .name | Quote }}}}
  ready: {flag}
  started: true
  restartCount: 0
  state:
    running:
      startedAt: {{{{ $now | Quote }}}}
{{{{ end }}}}
phase: Running
"""
        + ips
    )


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _gpu_pod_stage(
    name: str, select: list[dict[str, Any]], wait: Interval, *, ready: bool, with_ips: bool
) -> dict[str, Any]:
    """A GPU pod's step that takes `wait` (kwok draws each pod's delay between its low and high)."""
    return _stage(
        name,
        "Pod",
        [_NOT_DELETING, *select],
        {"statusTemplate": _pod_status(ready=ready, with_ips=with_ips)},
        delay_ms=_ms(wait.low),
        jitter_ms=_ms(wait.high),
    )


def stages(image_pull: Interval | float, model_load: Interval | float) -> list[dict[str, Any]]:
    """All Stages for the local cluster; GPU pods wait for the image pull, then the model load.

    An Interval [low, high] becomes kwok's delay window: each pod waits a time drawn by kwok
    between low and high (kwok's own random choice, not seeded).
    """
    pull = image_pull if isinstance(image_pull, Interval) else Interval(image_pull, image_pull)
    load = model_load if isinstance(model_load, Interval) else Interval(model_load, model_load)
    pending = {"key": ".status.phase", "operator": "In", "values": ["Pending"]}
    running = {"key": ".status.phase", "operator": "In", "values": ["Running"]}
    not_ready = {"key": _READY_STATUS, "operator": "NotIn", "values": ["True"]}
    no_ip = {"key": ".status.podIP", "operator": "DoesNotExist"}
    gpu = {"key": _REQUESTS_GPU, "operator": "Exists"}
    no_gpu = {"key": _REQUESTS_GPU, "operator": "DoesNotExist"}
    long_running = {"key": ".spec.restartPolicy", "operator": "In", "values": ["Always"]}
    return [
        _stage(
            "node-initialize",
            "Node",
            [{"key": _READY_STATUS, "operator": "NotIn", "values": ["True"]}],
            {"statusTemplate": _NODE_INIT},
        ),
        _stage(
            "node-heartbeat",
            "Node",
            [
                {"key": ".status.phase", "operator": "In", "values": ["Running"]},
                {"key": _READY_STATUS, "operator": "In", "values": ["True"]},
            ],
            {"statusTemplate": _NODE_CONDITIONS},
            delay_ms=20_000,
            jitter_ms=25_000,
        ),
        # GPU pods: image pull, then Running but not Ready while the model loads.
        _gpu_pod_stage("gpu-pod-start", [pending, no_ip, gpu], pull, ready=False, with_ips=True),
        _gpu_pod_stage("gpu-pod-ready", [running, not_ready, gpu], load, ready=True, with_ips=False),
        # Everything else is Ready at once.
        _stage(
            "pod-ready",
            "Pod",
            [_NOT_DELETING, pending, not_ready, no_gpu, long_running],
            {"statusTemplate": _pod_status(ready=True, with_ips=True)},
        ),
        # Pods that run to completion (e.g. helm test hooks) are left Pending: nothing really runs them.
        _stage(
            "pod-delete",
            "Pod",
            [{"key": ".metadata.deletionTimestamp", "operator": "Exists"}],
            {"finalizers": {"empty": True}, "delete": True},
        ),
    ]
