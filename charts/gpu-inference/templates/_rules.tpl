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
{{- if and $infOn .Values.autoscaling.enabled }}
{{- $sig := include "gpu-inference.signals" . | fromYaml }}
{{- if $sig.signals }}
# What the autoscaler sees per pod, one series per signal (same query as the adapter's rule and
# the KEDA trigger, smoothing and not-Ready exclusion included), labelled signal/namespace/pod.
- name: gpu-inference.autoscaling-signals
  rules:
    {{- range $sig.signals }}
    {{- $e := .podQuery }}
    {{- if ne .podLabel "pod" }}
    {{- $e = printf "sum by (pod) (label_replace(%s, \"pod\", \"$1\", %q, \"(.+)\"))" .podQuery .podLabel }}
    {{- end }}
    - record: gpu_inference:autoscaling_signal:per_pod
      expr: {{ $e | quote }}
      labels: {signal: {{ .name }}, namespace: {{ $.Release.Namespace | quote }}}
    {{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{- define "gpu-inference.alertingRules" -}}
{{- $w := .Values.wiring -}}
{{- $a := .Values.alerts -}}
{{- $l := $w.labels -}}
{{- $infOn := include "gpu-inference.enabled" (dict "root" . "part" "inference") -}}
{{- $thermal := include "gpu-inference.gpuSeries" (dict "root" . "metric" "DCGM_FI_DEV_THERMAL_VIOLATION" "range" "rate" "window" "5m") -}}
{{- /*
XIDs from dcgm-exporter's windowed count (one series per XID, label xid), which falls back to 0
once no new XID was seen for the exporter's window; DCGM_FI_DEV_XID_ERRORS keeps the last XID
until the exporter restarts, so an alert on it never resolves.
*/ -}}
{{- $xidHw := join "|" $a.xidHardware -}}
{{- $xidApp := join "|" $a.xidApplication -}}
{{- $xidHwSeries := include "gpu-inference.gpuSeries" (dict "root" . "metric" "DCGM_EXP_XID_ERRORS_COUNT" "selector" (printf "{xid=~%q}" $xidHw)) -}}
{{- $xidAppSeries := include "gpu-inference.gpuSeries" (dict "root" . "metric" "DCGM_EXP_XID_ERRORS_COUNT" "selector" (printf "{xid=~%q}" $xidApp)) -}}
{{- $xidOtherSeries := include "gpu-inference.gpuSeries" (dict "root" . "metric" "DCGM_EXP_XID_ERRORS_COUNT" "selector" (printf "{xid!~%q}" (printf "%s|%s" $xidHw $xidApp))) -}}
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
    - alert: GPUXidHardwareError
      expr: {{ printf "max by (node, gpu, xid) (%s) > 0" $xidHwSeries | quote }}
      labels: {severity: critical}
      annotations:
        summary: "Hardware XID {{"{{"}} $labels.xid {{"}}"}} on {{"{{"}} $labels.node {{"}}"}} GPU {{"{{"}} $labels.gpu {{"}}"}}"
        description: "The driver reported an XID that points at the GPU, its memory or its bus (ECC, row remapping, fallen off the bus). Cordon and drain the node; the GPU needs a reset, or the node a replacement if it repeats."
    - alert: GPUXidApplicationError
      expr: {{ printf "max by (node, gpu, xid) (%s) > 0" $xidAppSeries | quote }}
      labels: {severity: warning}
      annotations:
        summary: "Application XID {{"{{"}} $labels.xid {{"}}"}} on {{"{{"}} $labels.node {{"}}"}} GPU {{"{{"}} $labels.gpu {{"}}"}}"
        description: "A GPU program faulted (illegal memory access, engine exception, killed context). Usually the server's bug or an out-of-memory kill, not the hardware: check the inference pod's logs and restarts."
    - alert: GPUXidOtherError
      expr: {{ printf "max by (node, gpu, xid) (%s) > 0" $xidOtherSeries | quote }}
      labels: {severity: warning}
      annotations:
        summary: "XID {{"{{"}} $labels.xid {{"}}"}} on {{"{{"}} $labels.node {{"}}"}} GPU {{"{{"}} $labels.gpu {{"}}"}}"
        description: "An XID in neither alerts.xidHardware nor alerts.xidApplication: look it up in NVIDIA's XID catalog and classify it there."
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

{{/*
Autoscaling signals, resolved once, as YAML: {engine, signals: [...], problems: [...], deprecated: [...]}.
Every consumer reads this: the adapter's rules (wiring.signals), the HPA, the KEDA ScaledObject,
the recording rules, validate.yaml (problems) and NOTES.txt (deprecated). Each signal:
  name          gpuUtilization | runningRequests | requestRate | queueDepth | kvCacheUsage | custom
  metric        custom metric name the adapter exposes and the HPA reads (from wiring)
  series        the series the signal reads (the adapter discovers the metric from it)
  podLabel, namespaceLabel   labels that carry the inference pod on that series
  target        per-pod target (string, as the HPA/KEDA want it)
  query         PromQL per pod in prometheus-adapter's template form (<<.Series>>,
                <<.LabelMatchers>>, <<.GroupBy>>): smoothing window and not-Ready exclusion applied
  podQuery      the same query for this release's pods (the placeholders filled in)
  kedaQuery     sum over the release's pods of podQuery (KEDA divides by the replica count)
*/}}
{{- define "gpu-inference.signals" -}}
{{- $as := .Values.autoscaling -}}
{{- $w := .Values.wiring -}}
{{- $ns := .Release.Namespace -}}
{{- $problems := list -}}
{{- $deprecated := list -}}
{{- $infOn := include "gpu-inference.enabled" (dict "root" . "part" "inference") -}}
{{- $promOn := include "gpu-inference.enabled" (dict "root" . "part" "prometheus") -}}
{{- $presetName := "" -}}
{{- $presetSeries := dict -}}
{{- $recommended := list "gpuUtilization" -}}
{{- $metricsPath := "" -}}
{{- $podRegex := ".+" -}}
{{- if $infOn -}}
{{- $i := index .Subcharts "inference" -}}
{{- $preset := include "inference.preset" $i | fromYaml -}}
{{- $presetName = toString $i.Values.preset -}}
{{- $presetSeries = $preset.signals.series | default dict -}}
{{- $recommended = $preset.signals.recommended -}}
{{- $metricsPath = $preset.metricsPath -}}
{{- /* Pods of the Deployment: <name>-<pod-template-hash>-<suffix>; no other pod of the release matches. */ -}}
{{- $podRegex = printf "%s-[a-z0-9]+-[a-z0-9]+" (include "inference.fullname" $i) -}}
{{- end -}}
{{- $settings := deepCopy ($as.signalSettings | default dict) -}}
{{- /* Deprecated keys, still honoured: gpuUtilizationTarget and queueDepth.{enabled,target}. */ -}}
{{- $targetKey := dict "gpuUtilization" "autoscaling.signalSettings.gpuUtilization.target" -}}
{{- if not (kindIs "invalid" $as.gpuUtilizationTarget) -}}
{{- $_ := set (index $settings "gpuUtilization") "target" $as.gpuUtilizationTarget -}}
{{- $_ := set $targetKey "gpuUtilization" "autoscaling.gpuUtilizationTarget" -}}
{{- $deprecated = append $deprecated "autoscaling.gpuUtilizationTarget -> autoscaling.signalSettings.gpuUtilization.target (and autoscaling.signals: [gpuUtilization])" -}}
{{- end -}}
{{- $names := list -}}
{{- range $as.signals -}}
{{- if eq (toString .) "preset" -}}{{- $names = concat $names $recommended -}}{{- else -}}{{- $names = append $names (toString .) -}}{{- end -}}
{{- end -}}
{{- /* Who set the deprecated GPU target scaled on GPU utilization (the old default): keep that signal on. */ -}}
{{- if not (kindIs "invalid" $as.gpuUtilizationTarget) -}}{{- $names = append $names "gpuUtilization" -}}{{- end -}}
{{- $legacyQueue := false -}}
{{- with $as.queueDepth -}}
{{- if not (kindIs "invalid" .target) -}}
{{- $_ := set (index $settings "queueDepth") "target" .target -}}
{{- $deprecated = append $deprecated "autoscaling.queueDepth.target -> autoscaling.signalSettings.queueDepth.target" -}}
{{- end -}}
{{- if .enabled -}}
{{- $legacyQueue = not (has "queueDepth" $names) -}}
{{- $names = append $names "queueDepth" -}}
{{- $deprecated = append $deprecated "autoscaling.queueDepth.enabled=true -> add queueDepth to autoscaling.signals" -}}
{{- end -}}
{{- end -}}
{{- $names = uniq $names -}}
{{- /* The GPU target is checked whether or not the signal is on: a bad value is refused, never kept for later. */ -}}
{{- with (index $settings "gpuUtilization") -}}
{{- $t := float64 .target -}}
{{- if or (lt $t 1.0) (gt $t 90.0) -}}
{{- $k := index $targetKey "gpuUtilization" -}}
{{- $problems = append $problems (printf "%s=%v is outside 1-90. The HPA ignores changes within 10 %% of the target (tolerance 0.1) and GPU utilization stops at 100, so above 90 it can never scale up. Fix: set %s between 1 and 90 (default 80)" $k .target $k) -}}
{{- end -}}
{{- end -}}
{{- if not $names -}}
{{- $problems = append $problems "autoscaling.signals is empty: the autoscaler would have nothing to scale on. Fix: set autoscaling.signals to [gpuUtilization] (the default), [preset] (the preset's recommended set) or a list of gpuUtilization, runningRequests, requestRate, queueDepth, kvCacheUsage, custom" -}}
{{- end -}}
{{- /* Readiness: kube-state-metrics' Ready condition when the Prometheus has it, else the chart's
inference scrape job answering (vLLM serves /metrics only once the model is loaded). */ -}}
{{- $ready := printf "up{job=\"inference\",namespace=%q} == 1" $ns -}}
{{- if $w.kubeStateMetrics -}}
{{- $ready = printf "kube_pod_status_ready{namespace=%q,condition=\"true\"} == 1" $ns -}}
{{- else if $as.excludeNotReady -}}
{{- if not $promOn -}}
{{- $problems = append $problems "autoscaling.excludeNotReady=true but the Prometheus is not the chart's and wiring.kubeStateMetrics=false: no series says which inference pods are Ready. Fix: set wiring.kubeStateMetrics=true if that Prometheus has kube-state-metrics (kube_pod_status_ready), or set autoscaling.excludeNotReady=false" -}}
{{- else if not $metricsPath -}}
{{- $problems = append $problems "autoscaling.excludeNotReady=true but the inference server has no metrics path (inference.custom.metricsPath is empty), so the chart's Prometheus has no up{job=\"inference\"} series to tell Ready pods. Fix: set inference.custom.metricsPath, set wiring.kubeStateMetrics=true with a kube-state-metrics Prometheus, or set autoscaling.excludeNotReady=false" -}}
{{- end -}}
{{- end -}}
{{- $known := list "gpuUtilization" "runningRequests" "requestRate" "queueDepth" "kvCacheUsage" "custom" -}}
{{- $labels := dict "runningRequests" "running requests" "requestRate" "completed requests" "queueDepth" "queue (waiting requests)" "kvCacheUsage" "KV-cache usage" -}}
{{- $out := list -}}
{{- range $name := $names -}}
{{- if not (has $name $known) -}}
{{- $problems = append $problems (printf "autoscaling.signals: unknown signal %q. Fix: use gpuUtilization, runningRequests, requestRate, queueDepth, kvCacheUsage, custom, or preset (the preset's recommended set: %s)" $name (join ", " $recommended)) -}}
{{- continue -}}
{{- end -}}
{{- $set := index $settings $name | default dict -}}
{{- $s := dict "name" $name "podLabel" "pod" "namespaceLabel" "namespace" "aggregate" "sum" "window" ($set.window | default "") -}}
{{- if eq $name "gpuUtilization" -}}
{{- $_ := mergeOverwrite $s (dict "series" $w.gpuMetric "metric" $w.gpuMetric "podLabel" $w.labels.pod "namespaceLabel" $w.labels.namespace "aggregate" "avg") -}}
{{- else if eq $name "custom" -}}
{{- $_ := mergeOverwrite $s (dict "series" ($set.series | default "") "metric" $w.customSignal.metric "aggregate" "max") -}}
{{- if or (not $set.query) (not $set.series) -}}
{{- $problems = append $problems "autoscaling.signals includes custom but autoscaling.signalSettings.custom.query or .series is empty. Fix: set query to PromQL that returns one value per inference pod labelled namespace and pod, and series to a series of those pods it reads (prometheus-adapter discovers the metric from it), or remove custom from autoscaling.signals" -}}
{{- end -}}
{{- else -}}
{{- $wk := index $w $name | default dict -}}
{{- $series := $wk.series | default (index $presetSeries $name) | default "" -}}
{{- $_ := mergeOverwrite $s (dict "series" $series "metric" $wk.metric "aggregate" (ternary "avg" "sum" (eq $name "kvCacheUsage"))) -}}
{{- if not $series -}}
{{- if and (eq $name "queueDepth") $legacyQueue -}}
{{- $problems = append $problems "autoscaling.queueDepth.enabled=true but no queue series is known (preset custom exports none by default). Fix: set wiring.queueDepth.series (or inference.custom.queueSeries) to your server's waiting-requests series, or set autoscaling.queueDepth.enabled=false" -}}
{{- else -}}
{{- $problems = append $problems (printf "autoscaling.signals includes %s but preset %s's server exports no %s series (signals this preset supports: %s). Fix: set wiring.%s.series to the series your server exports, or remove %s from autoscaling.signals" $name $presetName (index $labels $name) (join ", " (concat (list "gpuUtilization") (keys $presetSeries | sortAlpha))) $name $name) -}}
{{- end -}}
{{- else if not $metricsPath -}}
{{- $problems = append $problems (printf "autoscaling.signals includes %s but the inference server has no metrics path (inference.custom.metricsPath is empty), so nothing scrapes %s. Fix: set inference.custom.metricsPath, or remove %s from autoscaling.signals" $name $series $name) -}}
{{- end -}}
{{- end -}}
{{- $_ := set $s "target" (toString $set.target) -}}
{{- if $s.window -}}
{{- $win := include "gpu-inference.seconds" $s.window | float64 -}}
{{- $scrape := include "gpu-inference.seconds" $w.scrapeInterval | float64 -}}
{{- if lt $win 0.0 -}}
{{- $problems = append $problems (printf "autoscaling.signalSettings.%s.window=%q is not a duration. Fix: use e.g. 1m or 2m, or \"\" for no smoothing" $name (toString $s.window)) -}}
{{- else if lt $win (mulf $scrape 2.0) -}}
{{- $problems = append $problems (printf "autoscaling.signalSettings.%s.window (%s) is shorter than two scrape intervals (wiring.scrapeInterval=%s): avg_over_time would average one sample or none and the metric flickers. Fix: set the window to at least %vs, or \"\" for no smoothing" $name $s.window $w.scrapeInterval (mulf $scrape 2.0)) -}}
{{- end -}}
{{- end -}}
{{- /* The per-pod query, in the adapter's template form. */ -}}
{{- $q := "" -}}
{{- if eq $name "custom" -}}
{{- $q = printf "max by (<<.GroupBy>>) ((%s) and on (namespace, pod) <<.Series>>{<<.LabelMatchers>>})" ($set.query | default "vector(0)") -}}
{{- else -}}
{{- $sel := "<<.Series>>{<<.LabelMatchers>>}" -}}
{{- if eq $name "requestRate" -}}
{{- /* A counter: its per-second rate over the window (required), summed over the pod's engines. */ -}}
{{- $sel = printf "rate(%s[%s])" $sel ($s.window | default "1m") -}}
{{- else if $s.window -}}{{- $sel = printf "avg_over_time(%s[%s])" $sel $s.window -}}{{- end -}}
{{- $q = printf "%s by (<<.GroupBy>>) (%s)" $s.aggregate $sel -}}
{{- end -}}
{{- if $as.excludeNotReady -}}
{{- $r := $ready -}}
{{- if ne $s.podLabel "pod" -}}{{- $r = printf "label_replace(%s, %q, \"$1\", \"pod\", \"(.+)\")" $ready $s.podLabel -}}{{- end -}}
{{- $q = printf "%s and on (<<.GroupBy>>) (%s)" $q $r -}}
{{- end -}}
{{- $matchers := printf "%s=%q,%s=~%q" $s.namespaceLabel $ns $s.podLabel $podRegex -}}
{{- $podQ := $q | replace "<<.Series>>" $s.series | replace "<<.LabelMatchers>>" $matchers | replace "<<.GroupBy>>" $s.podLabel -}}
{{- $_ := set $s "query" $q -}}
{{- $_ := set $s "podQuery" $podQ -}}
{{- $_ := set $s "kedaQuery" (printf "sum(%s)" $podQ) -}}
{{- $out = append $out $s -}}
{{- end -}}
engine: {{ $as.engine | default "hpa" | quote }}
signals:
  {{- toYaml $out | nindent 2 }}
problems:
  {{- toYaml $problems | nindent 2 }}
deprecated:
  {{- toYaml $deprecated | nindent 2 }}
{{- end -}}

{{/* autoscaling.behavior as autoscaling/v2 wants it: tolerance is a Quantity, so a string. */}}
{{- define "gpu-inference.hpaBehavior" -}}
{{- $b := deepCopy .Values.autoscaling.behavior -}}
{{- range $dir := list "scaleUp" "scaleDown" -}}
{{- $r := index $b $dir -}}
{{- if and $r (hasKey $r "tolerance") (not (kindIs "invalid" $r.tolerance)) -}}
{{- $_ := set $r "tolerance" (toString $r.tolerance) -}}
{{- end -}}
{{- end -}}
{{- toYaml $b -}}
{{- end -}}
