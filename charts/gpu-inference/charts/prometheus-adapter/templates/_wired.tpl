{{/*
Objects of this part that depend on the wiring. The parent chart renders them with
(dict "part" <this chart's scope> "wiring" <resolved wiring>); see the parent's
templates/wired-prometheus-adapter.yaml. Wiring keys used here:
  prometheusUrl, relistInterval,
  engine, signals[] (series, metric, podLabel, namespaceLabel, query; see the parent's
  templates/_rules.tpl "gpu-inference.signals").
*/}}

{{/* The adapter rules (config.yaml): one per autoscaling signal (wiring.signals), so the metric
names and queries are the ones the HPA reads. Only these are exposed: no default rules that would
attach DCGM series to the exporter's pod. With autoscaling.engine=keda the adapter serves nothing. */}}
{{- define "prometheus-adapter.wired.rules" -}}
{{- $w := .wiring -}}
{{- $rules := list -}}
{{- if ne $w.engine "keda" -}}
{{- range $w.signals -}}
{{- $rules = append $rules (dict
  "seriesQuery" (printf "%s{%s!=\"\",%s!=\"\"}" .series .namespaceLabel .podLabel)
  "resources" (dict "overrides" (dict .namespaceLabel (dict "resource" "namespace") .podLabel (dict "resource" "pod")))
  "name" (dict "matches" (printf "^%s$" (regexQuoteMeta .series)) "as" .metric)
  "metricsQuery" .query) -}}
{{- end -}}
{{- end -}}
# One rule per autoscaling signal (values autoscaling.signals). GPU utilization is averaged over a
# pod's GPUs (avg, not sum: two GPUs at 98 % would read 196); server gauges are summed per pod.
rules:
  {{- if $rules }}
  {{- toYaml $rules | nindent 2 }}
  {{- else }} []
  {{- end }}
{{- end -}}

{{- define "prometheus-adapter.wired.configmap" -}}
{{- $p := .part -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "prometheus-adapter.fullname" $p }}
  namespace: {{ $p.Release.Namespace }}
  labels:
    {{- include "prometheus-adapter.labels" $p | nindent 4 }}
data:
  config.yaml: |
    {{- include "prometheus-adapter.wired.rules" . | nindent 4 }}
{{- end -}}

{{- define "prometheus-adapter.wired.deployment" -}}
{{- $p := .part -}}
{{- $v := $p.Values -}}
{{- $w := .wiring -}}
{{- $fullname := include "prometheus-adapter.fullname" $p -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $fullname }}
  namespace: {{ $p.Release.Namespace }}
  labels:
    {{- include "prometheus-adapter.labels" $p | nindent 4 }}
spec:
  replicas: {{ $v.replicas }}
  revisionHistoryLimit: 3
  selector:
    matchLabels:
      {{- include "prometheus-adapter.selectorLabels" $p | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "prometheus-adapter.labels" $p | nindent 8 }}
      annotations:
        # The adapter reads its rules once at start: roll it when they change.
        checksum/config: {{ include "prometheus-adapter.wired.rules" . | sha256sum }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "prometheus-adapter.serviceAccountName" $p }}
      {{- with (include "prometheus-adapter.imagePullSecrets" $p) }}{{ . | nindent 6 }}{{- end }}
      {{- with $v.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- with $v.runtimeClassName }}
      runtimeClassName: {{ . }}
      {{- end }}
      securityContext:
        {{- toYaml $v.podSecurityContext | nindent 8 }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- if gt (int $v.replicas) 1 }}
      # Replicas on different nodes when there are several (a preference, never a blocker).
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "prometheus-adapter.selectorLabels" $p | nindent 14 }}
      {{- end }}
      containers:
        - name: prometheus-adapter
          image: {{ include "prometheus-adapter.image" $p | quote }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          args:
            - --secure-port={{ $v.securePort }}
            - --tls-cert-file=/var/run/serving-cert/tls.crt
            - --tls-private-key-file=/var/run/serving-cert/tls.key
            - --config=/etc/adapter/config.yaml
            - --prometheus-url={{ $w.prometheusUrl }}
            # >= the scrape interval, or series drop in and out of discovery between scrapes.
            - --metrics-relist-interval={{ $w.relistInterval }}
            - --v={{ $v.logLevel }}
            {{- with $v.extraArgs }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          {{- with $v.extraEnv }}
          env:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          ports:
            - name: https
              containerPort: {{ $v.securePort }}
              protocol: TCP
          readinessProbe:
            httpGet: {path: /readyz, port: https, scheme: HTTPS}
            periodSeconds: 10
            failureThreshold: 3
          livenessProbe:
            httpGet: {path: /livez, port: https, scheme: HTTPS}
            initialDelaySeconds: 30
            periodSeconds: 15
            failureThreshold: 4
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $v.securityContext | nindent 12 }}
          volumeMounts:
            - {name: config, mountPath: /etc/adapter, readOnly: true}
            - {name: serving-cert, mountPath: /var/run/serving-cert, readOnly: true}
            - {name: tmp, mountPath: /tmp}
      volumes:
        - name: config
          configMap:
            name: {{ $fullname }}
        - name: serving-cert
          secret:
            secretName: {{ $v.tls.existingSecret | default (printf "%s-tls" $fullname) }}
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
{{- end -}}


{{/* Let the HPA controller read exactly the custom metrics this adapter serves (pods/<metric>). */}}
{{- define "prometheus-adapter.wired.hpaRbac" -}}
{{- $p := .part -}}
{{- $w := .wiring -}}
{{- $fullname := include "prometheus-adapter.fullname" $p -}}
{{- $resources := list -}}
{{- if ne $w.engine "keda" }}{{ range $w.signals }}{{ $resources = append $resources (printf "pods/%s" .metric) }}{{ end }}{{ end -}}
{{- $resources = uniq $resources -}}
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {{ $fullname }}-custom-metrics-reader
  labels:
    {{- include "prometheus-adapter.labels" $p | nindent 4 }}
rules:
  - apiGroups: [custom.metrics.k8s.io]
    resources: {{ toJson $resources }}
    verbs: [get, list]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {{ $fullname }}-hpa-custom-metrics
  labels:
    {{- include "prometheus-adapter.labels" $p | nindent 4 }}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: {{ $fullname }}-custom-metrics-reader
subjects:
  - kind: ServiceAccount
    name: horizontal-pod-autoscaler
    namespace: kube-system
{{- end -}}
