{{/* Standard helpers of the grafana chart. */}}

{{/* Chart name, or nameOverride. */}}
{{- define "grafana.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-qualified name, at most 63 characters. */}}
{{- define "grafana.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Chart name and version for the helm.sh/chart label. */}}
{{- define "grafana.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "grafana.labels" -}}
helm.sh/chart: {{ include "grafana.chart" . }}
{{ include "grafana.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: grafana
app.kubernetes.io/part-of: gpu-inference
{{- end -}}

{{/* Selector labels: name and instance only (immutable in selectors). */}}
{{- define "grafana.selectorLabels" -}}
app.kubernetes.io/name: {{ include "grafana.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Service account name. */}}
{{- define "grafana.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "grafana.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
Image reference from .Values.image: [registry/]repository[:tag][@digest]. global.imageRegistry
replaces the registry. Fails with the value to set when repository or both tag and digest are empty.
Call with the chart context, or with (dict "ctx" . "image" <image dict>) for another image.
*/}}
{{- define "grafana.image" -}}
{{- $ctx := . -}}
{{- $img := dict -}}
{{- $path := "grafana.image" -}}
{{- if hasKey . "ctx" -}}
{{- $ctx = .ctx -}}
{{- $img = .image -}}
{{- $path = .path -}}
{{- else -}}
{{- $img = .Values.image -}}
{{- end -}}
{{- if not $img.repository -}}
{{- fail (printf "%s.repository is empty. Fix: set %s.repository (and %s.tag or %s.digest) to a pinned image" $path $path $path $path) -}}
{{- end -}}
{{- if and (not $img.tag) (not $img.digest) -}}
{{- fail (printf "%s.tag and %s.digest are both empty for %s. Fix: pin %s.tag (never latest) or %s.digest" $path $path $img.repository $path $path) -}}
{{- end -}}
{{- $registry := $ctx.Values.global.imageRegistry | default $img.registry -}}
{{- $ref := $img.repository -}}
{{- if $registry -}}{{- $ref = printf "%s/%s" $registry $img.repository -}}{{- end -}}
{{- if $img.tag -}}{{- $ref = printf "%s:%s" $ref (toString $img.tag) -}}{{- end -}}
{{- if $img.digest -}}{{- $ref = printf "%s@%s" $ref $img.digest -}}{{- end -}}
{{- $ref -}}
{{- end -}}

{{/* imagePullSecrets from global.imagePullSecrets. */}}
{{- define "grafana.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
