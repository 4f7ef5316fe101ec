{{/* Standard helpers of the gpu-inference (parent) chart. */}}

{{- define "gpu-inference.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gpu-inference.fullname" -}}
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

{{- define "gpu-inference.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of the parent's objects; component names the part an object belongs to. */}}
{{- define "gpu-inference.labels" -}}
helm.sh/chart: {{ include "gpu-inference.chart" . }}
{{ include "gpu-inference.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: gpu-inference
{{- end -}}

{{- define "gpu-inference.selectorLabels" -}}
app.kubernetes.io/name: {{ include "gpu-inference.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The parent creates no ServiceAccount; its only pod (the helm test) runs as `default` without a token. */}}
{{- define "gpu-inference.serviceAccountName" -}}
default
{{- end -}}

{{/* Image reference for the parent's own pods: (dict "ctx" . "image" <dict> "path" "tests.image"). */}}
{{- define "gpu-inference.image" -}}
{{- $img := .image -}}
{{- if not $img.repository -}}
{{- fail (printf "%s.repository is empty. Fix: set %s.repository and %s.tag (or %s.digest)" .path .path .path .path) -}}
{{- end -}}
{{- if and (not $img.tag) (not $img.digest) -}}
{{- fail (printf "%s.tag and %s.digest are both empty. Fix: pin %s.tag or %s.digest" .path .path .path .path) -}}
{{- end -}}
{{- $registry := .ctx.Values.global.imageRegistry | default $img.registry -}}
{{- $ref := $img.repository -}}
{{- if $registry -}}{{- $ref = printf "%s/%s" $registry $img.repository -}}{{- end -}}
{{- if $img.tag -}}{{- $ref = printf "%s:%s" $ref (toString $img.tag) -}}{{- end -}}
{{- if $img.digest -}}{{- $ref = printf "%s@%s" $ref $img.digest -}}{{- end -}}
{{- $ref -}}
{{- end -}}

{{/*
Seconds in a Prometheus/Go duration such as 15s, 1m30s, 2m, 500ms, 1h. Prints -1 when the text
is not a duration, so callers can fail with the setting's name.
*/}}
{{- define "gpu-inference.seconds" -}}
{{- $d := toString . -}}
{{- if not (regexMatch "^([0-9]+(ms|s|m|h))+$" $d) -}}
-1
{{- else -}}
{{- $total := 0.0 -}}
{{- range regexFindAll "[0-9]+(ms|s|m|h)" $d -1 -}}
{{- $n := float64 (regexFind "^[0-9]+" .) -}}
{{- $unit := regexReplaceAll "^[0-9]+" . "" -}}
{{- if eq $unit "ms" -}}{{- $total = addf $total (divf $n 1000.0) -}}
{{- else if eq $unit "s" -}}{{- $total = addf $total $n -}}
{{- else if eq $unit "m" -}}{{- $total = addf $total (mulf $n 60.0) -}}
{{- else -}}{{- $total = addf $total (mulf $n 3600.0) -}}{{- end -}}
{{- end -}}
{{- $total -}}
{{- end -}}
{{- end -}}

{{/* Whether a part (subchart) is on. */}}
{{- define "gpu-inference.enabled" -}}
{{- $v := index .root.Values .part -}}
{{- if and $v $v.enabled -}}true{{- end -}}
{{- end -}}

{{/* The inference Deployment's name (the HPA's target), from the inference chart's own helper. */}}
{{- define "gpu-inference.inferenceName" -}}
{{- include "inference.fullname" (index .Subcharts "inference") -}}
{{- end -}}

{{/*
PromQL: a GPU series with the wiring's label names mapped to pod/namespace/node. Optional
"range" (e.g. rate) and "window" (e.g. 5m) apply a range function to the raw series first.
*/}}
{{- define "gpu-inference.gpuSeries" -}}
{{- $l := .root.Values.wiring.labels -}}
{{- $e := printf "%s%s" .metric (.selector | default "") -}}
{{- if .range -}}{{- $e = printf "%s(%s[%s])" .range $e .window -}}{{- end -}}
{{- range $to, $from := dict "pod" $l.pod "namespace" $l.namespace "node" $l.node -}}
{{- if ne $to $from -}}
{{- $e = printf "label_replace(%s, %q, \"$1\", %q, \"(.+)\")" $e $to $from -}}
{{- end -}}
{{- end -}}
{{- $e -}}
{{- end -}}

{{/*
The wiring, resolved once, as YAML. Every wired object is rendered from this dict; nothing else
reads .Values.wiring. Keys: prometheusUrl, scrapeInterval, scrapeTimeout, relistInterval,
gpu{series,metric,podLabel,namespaceLabel,nodeLabel}, queue{series,metric}, engine, signals, targets, ruleFiles,
rules{recording,alerting}, dashboardsConfigMap.
*/}}
{{- define "gpu-inference.wiring" -}}
{{- $w := .Values.wiring -}}
{{- $ns := .Release.Namespace -}}
{{- $promOn := include "gpu-inference.enabled" (dict "root" . "part" "prometheus") -}}
{{- $infOn := include "gpu-inference.enabled" (dict "root" . "part" "inference") -}}
{{- $dcgmOn := include "gpu-inference.enabled" (dict "root" . "part" "dcgm-exporter") -}}
{{- $url := $w.prometheusUrl -}}
{{- if and (not $url) $promOn -}}
{{- $p := index .Subcharts "prometheus" -}}
{{- $url = printf "http://%s.%s.svc:%v" (include "prometheus.fullname" $p) $ns $p.Values.service.port -}}
{{- end -}}
{{- $scrape := include "gpu-inference.seconds" $w.scrapeInterval | float64 -}}
{{- $timeout := "10s" -}}
{{- if lt $scrape 10.0 -}}{{- $timeout = $w.scrapeInterval -}}{{- end -}}
{{- $queueSeries := $w.queueDepth.series -}}
{{- $metricsPath := "" -}}
{{- if $infOn -}}
{{- $preset := include "inference.preset" (index .Subcharts "inference") | fromYaml -}}
{{- $queueSeries = $queueSeries | default $preset.queueSeries -}}
{{- $metricsPath = $preset.metricsPath -}}
{{- end -}}
{{- $targets := list -}}
{{- if $dcgmOn -}}
{{- $d := index .Subcharts "dcgm-exporter" -}}
{{- $targets = append $targets (dict "job" "dcgm-exporter" "namespace" (include "dcgm-exporter.namespace" $d) "podLabels" (include "dcgm-exporter.selectorLabels" $d | fromYaml) "port" "metrics" "path" "/metrics" "honorLabels" true "podIdentity" false) -}}
{{- else if .Values.wiring.dcgmExporter.namespace -}}
{{- $e := .Values.wiring.dcgmExporter -}}
{{- $targets = append $targets (dict "job" "dcgm-exporter" "namespace" $e.namespace "podLabels" $e.podLabels "port" $e.port "path" "/metrics" "honorLabels" true "podIdentity" false) -}}
{{- end -}}
{{- if and $infOn $metricsPath -}}
{{- $i := index .Subcharts "inference" -}}
{{- $targets = append $targets (dict "job" "inference" "namespace" $ns "podLabels" (include "inference.selectorLabels" $i | fromYaml) "port" "http" "path" $metricsPath "honorLabels" false "podIdentity" true) -}}
{{- end -}}
prometheusUrl: {{ $url | quote }}
scrapeInterval: {{ $w.scrapeInterval | quote }}
scrapeTimeout: {{ $timeout | quote }}
relistInterval: {{ $w.relistInterval | quote }}
gpu:
  series: {{ $w.gpuMetric | quote }}
  metric: {{ $w.gpuMetric | quote }}
  podLabel: {{ $w.labels.pod | quote }}
  namespaceLabel: {{ $w.labels.namespace | quote }}
  nodeLabel: {{ $w.labels.node | quote }}
queue:
  series: {{ $queueSeries | quote }}
  metric: {{ $w.queueDepth.metric | quote }}
{{- /* The autoscaling signals (templates/_rules.tpl): engine and, per signal, metric and query. */}}
{{- $sig := include "gpu-inference.signals" . | fromYaml }}
engine: {{ $sig.engine | quote }}
signals:
  {{- toYaml $sig.signals | nindent 2 }}
targets:
  {{- toYaml $targets | nindent 2 }}
ruleFiles: [recording_rules.yml, alerting_rules.yml]
rules:
  recording:
    {{- include "gpu-inference.recordingRules" . | nindent 4 }}
  alerting:
    {{- include "gpu-inference.alertingRules" . | nindent 4 }}
dashboardsConfigMap: {{ printf "%s-dashboards" (include "gpu-inference.fullname" .) | quote }}
{{- end -}}
