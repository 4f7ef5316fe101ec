{{/* Standard helpers of the inference chart. */}}

{{/* Chart name, or nameOverride. */}}
{{- define "inference.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-qualified name, at most 63 characters. */}}
{{- define "inference.fullname" -}}
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
{{- define "inference.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "inference.labels" -}}
helm.sh/chart: {{ include "inference.chart" . }}
{{ include "inference.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: inference
app.kubernetes.io/part-of: gpu-inference
{{- end -}}

{{/* Selector labels: name and instance only (immutable in selectors). */}}
{{- define "inference.selectorLabels" -}}
app.kubernetes.io/name: {{ include "inference.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Service account name. */}}
{{- define "inference.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "inference.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
Image reference from .Values.image: [registry/]repository[:tag][@digest]. global.imageRegistry
replaces the registry. Fails with the value to set when repository or both tag and digest are empty.
Call with the chart context, or with (dict "ctx" . "image" <image dict>) for another image.
*/}}
{{- define "inference.image" -}}
{{- $ctx := . -}}
{{- $img := dict -}}
{{- $path := "inference.image" -}}
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
{{- define "inference.imagePullSecrets" -}}
{{- with .Values.global.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
Container resources with the GPU under global.gpu.resourceName. A `nvidia.com/gpu` key in
requests/limits is renamed to it (values written for the default keep working when the cluster
advertises its GPUs under another name, e.g. nvidia.com/gpu.shared or nvidia.com/mig-1g.5gb).
*/}}
{{- define "inference.resources" -}}
{{- $rn := .Values.global.gpu.resourceName | default "nvidia.com/gpu" -}}
{{- $out := dict -}}
{{- range $section, $vals := .Values.resources -}}
{{- $m := dict -}}
{{- range $k, $v := $vals -}}
{{- if and (eq $k "nvidia.com/gpu") (ne $rn "nvidia.com/gpu") -}}
{{- if not (hasKey $vals $rn) -}}{{- $_ := set $m $rn $v -}}{{- end -}}
{{- else -}}
{{- $_ := set $m $k $v -}}
{{- end -}}
{{- end -}}
{{- $_ := set $out $section $m -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* Seconds the startup probe allows: periodSeconds x failureThreshold. */}}
{{- define "inference.startupBudgetSeconds" -}}
{{- $s := .Values.probes.startup -}}
{{- mul (int $s.periodSeconds) (int $s.failureThreshold) -}}
{{- end -}}

{{/*
Deployment progressDeadlineSeconds: the value set, or the startup probe's budget plus
coldStartMarginSeconds (a new GPU node joining and pulling the image before the probe starts).
Kubernetes' default of 600 s would mark a cold start that the probe still allows as failed.
*/}}
{{- define "inference.progressDeadlineSeconds" -}}
{{- if not (kindIs "invalid" .Values.progressDeadlineSeconds) -}}
{{- int .Values.progressDeadlineSeconds -}}
{{- else -}}
{{- add (include "inference.startupBudgetSeconds" . | int) (int .Values.coldStartMarginSeconds) -}}
{{- end -}}
{{- end -}}
