{{/*
The server a preset runs, as YAML: image defaults, command, args, port, probe and metrics paths,
the queue series, environment and volumes. preset custom takes them from .Values.custom.
Unknown presets fail with the list of known ones.

`signals` says which autoscaling signals the server can feed (the parent's autoscaling.signals):
`series` maps each server signal to the series the server exports on its metrics path (a signal
missing there is one the server does not export; the parent's validation rejects it), and
`recommended` is the set `autoscaling.signals: [preset]` expands to (reasons in docs/chart.md).
gpuUtilization comes from the DCGM exporter, not from the server, so every preset supports it.
*/}}
{{- define "inference.preset" -}}
{{- $v := .Values -}}
{{- if eq (toString $v.preset) "vllm" -}}
{{- $m := $v.model -}}
{{- $cache := $v.modelCache.mountPath -}}
image:
  registry: docker.io
  repository: vllm/vllm-openai
  # vLLM v0.11.2: V1 engine with the Triton attention backend on Turing (sm_75); fp16 only.
  tag: v0.11.2
command: ["vllm", "serve"]
args:
  - {{ $m.name | quote }}
  - "--host=0.0.0.0"
  - "--port=8000"
  - "--served-model-name={{ $m.servedName | default $m.name }}"
  - "--dtype={{ $m.dtype }}"
  - "--max-model-len={{ int $m.maxModelLen }}"
  - "--gpu-memory-utilization={{ $m.gpuMemoryUtilization }}"
  - "--download-dir={{ $cache }}/huggingface/hub"
  {{- with $m.revision }}
  - "--revision={{ . }}"
  {{- end }}
port: 8000
healthPath: /health
metricsPath: /metrics
queueSeries: "vllm:num_requests_waiting"
signals:
  # vLLM V1 gauges (docs.vllm.ai, Production Metrics), one series per engine, label model_name.
  series:
    runningRequests: "vllm:num_requests_running"
    requestRate: "vllm:request_success_total"
    queueDepth: "vllm:num_requests_waiting"
    # 0-1. vllm:gpu_cache_usage_perc before the rename (vllm-project/vllm#18354); v0.11 exports this one.
    kvCacheUsage: "vllm:kv_cache_usage_perc"
  # The batch (running requests) sets vLLM's time per output token: it is the signal the HPA can
  # divide. KV-cache usage stays low for short chats on a small model (the KV cache of a 1.5B model
  # on a T4 holds far more tokens than 256 short sequences need) and waiting requests appear only
  # once the server is saturated; GPU utilization reads ~100 % with one sequence decoding.
  # docs/benchmarks.md has the measured comparison.
  recommended: [runningRequests]
preStopSleepSeconds: 10
env:
  # Non-root with a read-only root filesystem: every cache lives on a mounted volume.
  - {name: HOME, value: /tmp/home}
  - {name: USER, value: vllm}
  - {name: LOGNAME, value: vllm}
  - {name: XDG_CACHE_HOME, value: /tmp/home/.cache}
  - {name: XDG_CONFIG_HOME, value: /tmp/home/.config}
  - {name: HF_HOME, value: "{{ $cache }}/huggingface"}
  - {name: VLLM_CACHE_ROOT, value: "{{ $cache }}/vllm"}
  - {name: TRITON_CACHE_DIR, value: "{{ $cache }}/triton"}
  - {name: VLLM_NO_USAGE_STATS, value: "1"}
  - {name: DO_NOT_TRACK, value: "1"}
  {{- if $m.hfTokenSecret.name }}
  - name: HF_TOKEN
    valueFrom:
      secretKeyRef:
        name: {{ $m.hfTokenSecret.name }}
        key: {{ $m.hfTokenSecret.key }}
  {{- end }}
{{- else if eq (toString $v.preset) "custom" -}}
{{- $c := $v.custom -}}
image: {}
command: {{ $c.command | toJson }}
args: {{ $c.args | toJson }}
port: {{ int $c.port }}
healthPath: {{ $c.healthPath | quote }}
metricsPath: {{ $c.metricsPath | quote }}
queueSeries: {{ $c.queueSeries | quote }}
signals:
  # Only what custom.* declares; more series can be named in the parent's wiring.<signal>.series.
  series:
    {{- if $c.queueSeries }}
    queueDepth: {{ $c.queueSeries | quote }}
    {{- else }} {}
    {{- end }}
  # The GPU is the one signal known to exist; a declared queue series is added beside it.
  recommended: {{ ternary (list "gpuUtilization" "queueDepth") (list "gpuUtilization") (not (empty $c.queueSeries)) | toJson }}
preStopSleepSeconds: 0
env:
  - {name: HOME, value: /tmp/home}
{{- else -}}
{{- fail (printf "inference.preset: unknown preset %q. Fix: set inference.preset to vllm or custom (custom: also set inference.image and inference.custom.*)" (toString $v.preset)) -}}
{{- end -}}
{{- end -}}

{{/* The image dict after preset defaults: non-empty .Values.image fields win. */}}
{{- define "inference.imageSpec" -}}
{{- $preset := include "inference.preset" . | fromYaml -}}
{{- $img := deepCopy $preset.image -}}
{{- range $k, $val := .Values.image -}}
{{- if $val -}}{{- $_ := set $img $k $val -}}{{- end -}}
{{- end -}}
{{- toYaml $img -}}
{{- end -}}
