{{/*
Recording and alerting rule groups, as YAML lists. Used by the chart's Prometheus (rule files in
its ConfigMap) and by the optional PrometheusRule for an existing kube-prometheus-stack. GPU series
are read with the wiring's label names and mapped to pod/namespace/node (label_replace), so the
recorded series look the same whichever Prometheus scraped the exporter.
*/}}

{{- define "gpu-inference.recordingRules" -}}
{{- $w := .Values.wiring -}}
{{- $l := $w.labels -}}
{{- $withPod := printf "{%s!=\"\"}" $l.pod -}}
{{- $util := include "gpu-inference.gpuSeries" (dict "root" . "metric" $w.gpuMetric "selector" $withPod) -}}
{{- $fbUsedPod := include "gpu-inference.gpuSeries" (dict "root" . "metric" "DCGM_FI_DEV_FB_USED" "selector" $withPod) -}}
{{- $fbUsed := include "gpu-inference.gpuSeries" (dict "root" . "metric" "DCGM_FI_DEV_FB_USED") -}}
{{- $fbFree := include "gpu-inference.gpuSeries" (dict "root" . "metric" "DCGM_FI_DEV_FB_FREE") -}}
{{- $temp := include "gpu-inference.gpuSeries" (dict "root" . "metric" "DCGM_FI_DEV_GPU_TEMP") -}}
{{- $power := include "gpu-inference.gpuSeries" (dict "root" . "metric" "DCGM_FI_DEV_POWER_USAGE" "selector" $withPod) -}}
{{- $infOn := include "gpu-inference.enabled" (dict "root" . "part" "inference") -}}
- name: gpu-inference.gpu
  rules:
    - record: gpu_inference:gpu_utilization:avg
      expr: {{ printf "avg by (namespace, pod) (%s)" $util | quote }}
    - record: gpu_inference:gpu_memory_used_mib:sum
      expr: {{ printf "sum by (namespace, pod) (%s)" $fbUsedPod | quote }}
    - record: gpu_inference:gpu_memory_used:ratio
      expr: {{ printf "max by (node, gpu) (%s / (%s + %s))" $fbUsed $fbUsed $fbFree | quote }}
    - record: gpu_inference:gpu_temperature_celsius:max
      expr: {{ printf "max by (node) (%s)" $temp | quote }}
    - record: gpu_inference:gpu_power_watts:sum
      expr: {{ printf "sum by (namespace, pod) (%s)" $power | quote }}
    - record: gpu_inference:gpu_nodes:count
      expr: {{ printf "count(count by (node) (%s))" $temp | quote }}
    - record: gpu_inference:cost_usd_per_hour:sum
      expr: {{ printf "gpu_inference:gpu_nodes:count * %v" .Values.cost.gpuNodeHourlyUsd | quote }}
{{- if $infOn }}
{{- $name := include "gpu-inference.inferenceName" . }}
- name: gpu-inference.server
  rules:
    - record: gpu_inference:requests:rate1m
      expr: {{ printf "sum(rate(vllm:e2e_request_latency_seconds_count{namespace=%q}[1m]))" .Release.Namespace | quote }}
    - record: gpu_inference:request_latency_seconds:p95
      expr: {{ printf "histogram_quantile(0.95, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket{namespace=%q}[5m])))" .Release.Namespace | quote }}
    {{- if $w.kubeStateMetrics }}
    - record: gpu_inference:ready_replicas:sum
      expr: {{ printf "sum(kube_deployment_status_replicas_ready{namespace=%q, deployment=%q})" .Release.Namespace $name | quote }}
    - record: gpu_inference:desired_replicas:sum
      expr: {{ printf "sum(kube_deployment_spec_replicas{namespace=%q, deployment=%q})" .Release.Namespace $name | quote }}
    {{- else }}
    - record: gpu_inference:ready_replicas:sum
      expr: {{ printf "count(up{job=\"inference\", namespace=%q} == 1)" .Release.Namespace | quote }}
    {{- end }}
{{- end }}
{{- end -}}

{{- define "gpu-inference.alertingRules" -}}
{{- $w := .Values.wiring -}}
{{- $a := .Values.alerts -}}
{{- $l := $w.labels -}}
{{- $infOn := include "gpu-inference.enabled" (dict "root" . "part" "inference") -}}
{{- $thermal := include "gpu-inference.gpuSeries" (dict "root" . "metric" "DCGM_FI_DEV_THERMAL_VIOLATION" "range" "rate" "window" "5m") -}}
{{- $xid := include "gpu-inference.gpuSeries" (dict "root" . "metric" "DCGM_FI_DEV_XID_ERRORS" "range" "max_over_time" "window" "5m") -}}
- name: gpu-inference.alerts
  rules:
    - alert: GPUUtilizationHighSustained
      expr: {{ printf "gpu_inference:gpu_utilization:avg > %v" $a.gpuUtilizationHigh | quote }}
      for: {{ $a.gpuUtilizationHighFor }}
      labels: {severity: warning}
      annotations:
        summary: "GPU of {{"{{"}} $labels.namespace {{"}}"}}/{{"{{"}} $labels.pod {{"}}"}} above {{ $a.gpuUtilizationHigh }} % for {{ $a.gpuUtilizationHighFor }}"
        description: "The GPU stays saturated. If the HPA is at maxReplicas too, raise autoscaling.maxReplicas and the GPU node group's maxSize."
    - alert: GPUMemoryNearFull
      expr: {{ printf "gpu_inference:gpu_memory_used:ratio > %v" $a.vramUsedRatio | quote }}
      for: 10m
      labels: {severity: warning}
      annotations:
        summary: "VRAM on {{"{{"}} $labels.node {{"}}"}} GPU {{"{{"}} $labels.gpu {{"}}"}} above {{ mulf $a.vramUsedRatio 100.0 }} %"
        description: "Near-full VRAM risks out-of-memory errors; lower inference.model.gpuMemoryUtilization or maxModelLen."
    - alert: GPUTemperatureHigh
      expr: {{ printf "gpu_inference:gpu_temperature_celsius:max > %v" $a.gpuTemperatureCelsius | quote }}
      for: 5m
      labels: {severity: warning}
      annotations:
        summary: "GPU on {{"{{"}} $labels.node {{"}}"}} at {{"{{"}} $value {{"}}"}} C"
        description: "The T4 slows its clocks when hot; check the node's cooling and power draw."
    - alert: GPUThermalThrottling
      expr: {{ printf "max by (node) (%s) > 0" $thermal | quote }}
      for: 5m
      labels: {severity: warning}
      annotations:
        summary: "GPU on {{"{{"}} $labels.node {{"}}"}} is throttling for heat"
        description: "DCGM_FI_DEV_THERMAL_VIOLATION grows: the GPU runs below its clocks."
    - alert: GPUXidError
      expr: {{ printf "max by (node, gpu) (%s) > 0" $xid | quote }}
      labels: {severity: critical}
      annotations:
        summary: "XID error {{"{{"}} $value {{"}}"}} on {{"{{"}} $labels.node {{"}}"}} GPU {{"{{"}} $labels.gpu {{"}}"}}"
        description: "The driver reported an XID error; the GPU may need a reset or the node a replacement."
{{- if and $infOn .Values.autoscaling.enabled }}
{{- $name := include "gpu-inference.inferenceName" . }}
{{- $ns := .Release.Namespace }}
- name: gpu-inference.autoscaling
  rules:
    - alert: InferenceHPAAtMaxReplicas
      {{- if $w.kubeStateMetrics }}
      expr: {{ printf "kube_horizontalpodautoscaler_status_current_replicas{namespace=%q, horizontalpodautoscaler=%q} >= kube_horizontalpodautoscaler_spec_max_replicas{namespace=%q, horizontalpodautoscaler=%q}" $ns $name $ns $name | quote }}
      {{- else }}
      expr: {{ printf "count(up{job=\"inference\", namespace=%q}) >= %v" $ns .Values.autoscaling.maxReplicas | quote }}
      {{- end }}
      for: {{ $a.hpaAtMaxFor }}
      labels: {severity: warning}
      annotations:
        summary: "{{ $ns }}/{{ $name }} has run at maxReplicas ({{ .Values.autoscaling.maxReplicas }}) for {{ $a.hpaAtMaxFor }}"
        description: "The HPA wants more GPUs than allowed: raise autoscaling.maxReplicas and the GPU node group's maxSize, or expect queueing."
    - alert: InferenceCustomMetricMissing
      {{- $absent := printf "absent(%s{%s=%q, %s=~%q})" $w.gpuMetric $l.namespace $ns $l.pod (printf "%s-.+" $name) }}
      {{- if $w.kubeStateMetrics }}
      expr: {{ printf "%s or (kube_horizontalpodautoscaler_status_condition{namespace=%q, horizontalpodautoscaler=%q, condition=\"ScalingActive\", status=\"false\"} == 1)" $absent $ns $name | quote }}
      {{- else }}
      expr: {{ $absent | quote }}
      {{- end }}
      for: {{ $a.metricMissingFor }}
      labels: {severity: critical}
      annotations:
        summary: "{{ $w.gpuMetric }} is missing for {{ $ns }}/{{ $name }}: the HPA cannot scale"
        description: "No GPU series carries the inference pods in labels {{ $l.namespace }}/{{ $l.pod }}. Check the DCGM exporter (pod-resources mount), the scrape job (honor_labels) and wiring.labels; `kubectl describe hpa` shows FailedGetPodsMetric."
{{- end }}
{{- end -}}
