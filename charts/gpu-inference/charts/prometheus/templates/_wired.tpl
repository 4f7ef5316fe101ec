{{/*
Objects of this part that depend on the wiring. The parent chart renders them with
(dict "part" <this chart's scope, from .Subcharts.prometheus> "wiring" <resolved wiring>);
see the parent's templates/wired-prometheus.yaml. Wiring keys used here:
  scrapeInterval, scrapeTimeout, targets (job, namespace, podLabels, port, path, honorLabels,
  podIdentity), rules.recording / rules.alerting (rule groups), ruleFiles (file names).
*/}}

{{/* prometheus.yml. Jobs discover pods (role: pod) and keep the ones the wiring names. */}}
{{- define "prometheus.wired.prometheusYml" -}}
{{- $w := .wiring -}}
{{- $am := .part.Values.alertmanager -}}
global:
  scrape_interval: {{ $w.scrapeInterval }}
  scrape_timeout: {{ $w.scrapeTimeout }}
  evaluation_interval: {{ $w.scrapeInterval }}
  {{- with .part.Values.externalLabels }}
  external_labels:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- if $am.targets }}
# Where firing alerts go (prometheus.alertmanager). Without targets the alerts are evaluated and
# visible on /alerts, but nobody is notified.
alerting:
  alertmanagers:
    - scheme: {{ $am.scheme }}
      {{- with $am.pathPrefix }}
      path_prefix: {{ . }}
      {{- end }}
      api_version: v2
      timeout: {{ $am.timeout }}
      static_configs:
        - targets: {{ toJson $am.targets }}
{{- end }}
rule_files:
  {{- range $w.ruleFiles }}
  - /etc/prometheus/{{ . }}
  {{- end }}
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["localhost:9090"]
  {{- range $w.targets }}
  - job_name: {{ .job }}
    metrics_path: {{ .path }}
    {{- if .honorLabels }}
    # The pod/namespace/container labels the exporter puts on each GPU series name the pod that
    # holds the GPU: keep them as they are (never renamed exported_*).
    {{- end }}
    honor_labels: {{ .honorLabels }}
    kubernetes_sd_configs:
      - role: pod
        namespaces:
          names: [{{ .namespace | quote }}]
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_phase]
        regex: Running
        action: keep
      {{- $src := list }}
      {{- range $k := keys .podLabels | sortAlpha }}
      {{- $src = append $src (printf "__meta_kubernetes_pod_label_%s" (regexReplaceAll "[^a-zA-Z0-9_]" $k "_")) }}
      {{- end }}
      - source_labels: [{{ join ", " $src }}]
        regex: {{ include "prometheus.wired.joinValues" . | quote }}
        action: keep
      - source_labels: [__meta_kubernetes_pod_container_port_name]
        regex: {{ .port }}
        action: keep
      - source_labels: [__meta_kubernetes_pod_node_name]
        target_label: node
      {{- if .podIdentity }}
      - source_labels: [__meta_kubernetes_namespace]
        target_label: namespace
      - source_labels: [__meta_kubernetes_pod_name]
        target_label: pod
      - source_labels: [__meta_kubernetes_pod_container_name]
        target_label: container
      {{- else }}
      # No pod/namespace target labels here: they would clash with the series' own.
      - source_labels: [__meta_kubernetes_pod_name]
        target_label: exporter_pod
      {{- end }}
  {{- end }}
{{- end -}}

{{/* Values of a target's podLabels, in key order, joined with ";" (relabel regex). */}}
{{- define "prometheus.wired.joinValues" -}}
{{- $vals := list -}}
{{- range $k := keys .podLabels | sortAlpha -}}
{{- $vals = append $vals (regexQuoteMeta (index $.podLabels $k)) -}}
{{- end -}}
{{- join ";" $vals -}}
{{- end -}}

{{/* ConfigMap with prometheus.yml and the rule files (mounted at /etc/prometheus). */}}
{{- define "prometheus.wired.configmap" -}}
{{- $p := .part -}}
{{- $w := .wiring -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "prometheus.fullname" $p }}
  namespace: {{ $p.Release.Namespace }}
  labels:
    {{- include "prometheus.labels" $p | nindent 4 }}
data:
  prometheus.yml: |
    {{- include "prometheus.wired.prometheusYml" . | nindent 4 }}
  recording_rules.yml: |
    {{- toYaml (dict "groups" $w.rules.recording) | nindent 4 }}
  alerting_rules.yml: |
    {{- toYaml (dict "groups" $w.rules.alerting) | nindent 4 }}
{{- end -}}

{{/* Least privilege for service discovery: read pods, only in the namespaces it scrapes. */}}
{{- define "prometheus.wired.rbac" -}}
{{- $p := .part -}}
{{- $namespaces := list -}}
{{- range .wiring.targets -}}{{- $namespaces = append $namespaces .namespace -}}{{- end -}}
{{- range $ns := $namespaces | uniq | sortAlpha }}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ include "prometheus.fullname" $p }}-discovery
  namespace: {{ $ns }}
  labels:
    {{- include "prometheus.labels" $p | nindent 4 }}
rules:
  - apiGroups: [""]
    resources: [pods]
    verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ include "prometheus.fullname" $p }}-discovery
  namespace: {{ $ns }}
  labels:
    {{- include "prometheus.labels" $p | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ include "prometheus.fullname" $p }}-discovery
subjects:
  - kind: ServiceAccount
    name: {{ include "prometheus.serviceAccountName" $p }}
    namespace: {{ $p.Release.Namespace }}
{{- end }}
{{- end -}}
