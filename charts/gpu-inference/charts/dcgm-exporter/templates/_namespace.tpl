{{/* Namespace of the DaemonSet: .Values.namespace or <release namespace>-gpu-agents. */}}
{{- define "dcgm-exporter.namespace" -}}
{{- .Values.namespace | default (printf "%s-gpu-agents" .Release.Namespace) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The collectors CSV. */}}
{{- define "dcgm-exporter.counters" -}}
# field, Prometheus type, help (rendered by the gpu-inference chart)
{{- $rows := .Values.counters }}
{{- if .Values.profiling.enabled }}{{ $rows = concat $rows .Values.profiling.counters }}{{ end }}
{{- range $rows }}
{{ index . 0 }}, {{ index . 1 }}, {{ index . 2 }}
{{- end }}
{{- end -}}
