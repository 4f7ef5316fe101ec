{{/*
Objects of this part that depend on the wiring. The parent chart renders them with
(dict "part" <this chart's scope> "wiring" <resolved wiring>); see the parent's
templates/wired-grafana.yaml. Wiring keys used here:
  prometheusUrl, scrapeInterval, dashboardsConfigMap (name), dashboardsChecksum.
*/}}

{{- define "grafana.wired.provisioning" -}}
{{- $w := .wiring -}}
datasources.yaml: |
  apiVersion: 1
  datasources:
    - name: Prometheus
      uid: prometheus
      type: prometheus
      access: proxy
      url: {{ $w.prometheusUrl }}
      isDefault: true
      editable: false
      jsonData:
        timeInterval: {{ $w.scrapeInterval }}
dashboards.yaml: |
  apiVersion: 1
  providers:
    - name: gpu-inference
      folder: GPU inference
      type: file
      disableDeletion: true
      allowUiUpdates: false
      updateIntervalSeconds: {{ .part.Values.dashboardsUpdateIntervalSeconds }}
      options:
        path: /var/lib/grafana-dashboards
{{- end -}}

{{- define "grafana.wired.configmap" -}}
{{- $p := .part -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "grafana.fullname" $p }}-provisioning
  namespace: {{ $p.Release.Namespace }}
  labels:
    {{- include "grafana.labels" $p | nindent 4 }}
data:
  {{- include "grafana.wired.provisioning" . | nindent 2 }}
{{- end -}}

{{- define "grafana.wired.deployment" -}}
{{- $p := .part -}}
{{- $v := $p.Values -}}
{{- $w := .wiring -}}
{{- $fullname := include "grafana.fullname" $p -}}
{{- $secret := $v.admin.existingSecret | default (printf "%s-admin" $fullname) -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $fullname }}
  namespace: {{ $p.Release.Namespace }}
  labels:
    {{- include "grafana.labels" $p | nindent 4 }}
spec:
  replicas: 1
  revisionHistoryLimit: 3
  strategy:
    type: Recreate
  selector:
    matchLabels:
      {{- include "grafana.selectorLabels" $p | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "grafana.labels" $p | nindent 8 }}
      annotations:
        # Datasources are read at start: roll on change. Dashboards are re-read in place.
        checksum/config: {{ include "grafana.wired.provisioning" . | sha256sum }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "grafana.serviceAccountName" $p }}
      automountServiceAccountToken: false
      {{- with (include "grafana.imagePullSecrets" $p) }}{{ . | nindent 6 }}{{- end }}
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
      containers:
        - name: grafana
          image: {{ include "grafana.image" $p | quote }}
          imagePullPolicy: {{ $v.image.pullPolicy }}
          {{- with $v.extraArgs }}
          args:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          env:
            # Credentials are read from files (the Secret mounted below), not environment variables.
            - {name: GF_SECURITY_ADMIN_USER__FILE, value: /etc/grafana/admin/{{ $v.admin.userKey }}}
            - {name: GF_SECURITY_ADMIN_PASSWORD__FILE, value: /etc/grafana/admin/{{ $v.admin.passwordKey }}}
            - {name: GF_PATHS_DATA, value: /var/lib/grafana}
            - {name: GF_PATHS_PROVISIONING, value: /etc/grafana/provisioning}
            - {name: GF_LOG_MODE, value: console}
            - {name: GF_ANALYTICS_REPORTING_ENABLED, value: "false"}
            - {name: GF_ANALYTICS_CHECK_FOR_UPDATES, value: "false"}
            - {name: GF_USERS_ALLOW_SIGN_UP, value: "false"}
            - {name: GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH, value: /var/lib/grafana-dashboards/gpu-inference.json}
            {{- with $v.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            - name: http
              containerPort: 3000
              protocol: TCP
          readinessProbe:
            httpGet: {path: /api/health, port: http}
            periodSeconds: 10
            failureThreshold: 3
          livenessProbe:
            httpGet: {path: /api/health, port: http}
            initialDelaySeconds: 60
            periodSeconds: 15
            failureThreshold: 6
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $v.securityContext | nindent 12 }}
          volumeMounts:
            - {name: provisioning, mountPath: /etc/grafana/provisioning/datasources/datasources.yaml, subPath: datasources.yaml, readOnly: true}
            - {name: provisioning, mountPath: /etc/grafana/provisioning/dashboards/dashboards.yaml, subPath: dashboards.yaml, readOnly: true}
            - {name: dashboards, mountPath: /var/lib/grafana-dashboards, readOnly: true}
            - {name: admin, mountPath: /etc/grafana/admin, readOnly: true}
            - {name: data, mountPath: /var/lib/grafana}
            - {name: tmp, mountPath: /tmp}
      volumes:
        - name: provisioning
          configMap:
            name: {{ $fullname }}-provisioning
        - name: dashboards
          configMap:
            name: {{ $w.dashboardsConfigMap }}
        - name: admin
          secret:
            secretName: {{ $secret }}
        - name: data
          {{- if $v.persistence.enabled }}
          persistentVolumeClaim:
            claimName: {{ $fullname }}
          {{- else }}
          emptyDir:
            sizeLimit: 1Gi
          {{- end }}
        - name: tmp
          emptyDir:
            sizeLimit: 64Mi
{{- end -}}
