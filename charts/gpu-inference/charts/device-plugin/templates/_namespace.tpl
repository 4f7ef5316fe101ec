{{/* Namespace of the DaemonSet: .Values.namespace or <release namespace>-gpu-agents. */}}
{{- define "device-plugin.namespace" -}}
{{- .Values.namespace | default (printf "%s-gpu-agents" .Release.Namespace) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
