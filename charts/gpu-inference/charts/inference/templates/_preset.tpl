{{/*
The server a preset runs, as YAML: image defaults, command, args, port, probe and metrics paths,
the queue series, environment and volumes. preset custom takes them from .Values.custom.
Unknown presets fail with the list of known ones.
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
