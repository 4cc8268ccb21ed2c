{{/*
Chart-local helpers of the api chart. Names, labels, security contexts, placement, env and the
NetworkPolicy come from the lib chart; what is here is specific to an HTTP API service.
*/}}

{{/* Fail early on values the schema cannot express. */}}
{{- define "api.validate" -}}
{{- if and .Values.hpa.enabled (gt (int .Values.hpa.minReplicas) (int .Values.hpa.maxReplicas)) -}}
{{- fail (printf "hpa.minReplicas (%d) is above hpa.maxReplicas (%d)" (int .Values.hpa.minReplicas) (int .Values.hpa.maxReplicas)) -}}
{{- end -}}
{{- if eq .Values.strategy "canary" -}}
{{- if not .Values.canary.steps -}}
{{- fail "canary.steps is empty: a canary needs at least one step" -}}
{{- end -}}
{{- with .Values.canary.analysis -}}
{{- if ge (int .startingStep) (len $.Values.canary.steps) -}}
{{- fail (printf "canary.analysis.startingStep (%d) must be the index of one of the %d canary steps" (int .startingStep) (len $.Values.canary.steps)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The workload kind the strategy selects: a Deployment (rolling) or an Argo Rollouts Rollout (canary). */}}
{{- define "api.workloadKind" -}}
{{- if eq .Values.strategy "canary" }}Rollout{{ else }}Deployment{{ end -}}
{{- end -}}

{{- define "api.workloadApiVersion" -}}
{{- if eq .Values.strategy "canary" }}argoproj.io/v1alpha1{{ else }}apps/v1{{ end -}}
{{- end -}}

{{/*
Argo Rollouts' ALB integration needs an Ingress to write its weights into; an internal canary
(ingress disabled) is split by replica counts instead.
*/}}
{{- define "api.albRouting" -}}
{{- if and (eq .Values.strategy "canary") .Values.ingress.enabled }}true{{ end -}}
{{- end -}}

{{/*
The one Service port: the service port from values, sent to the container's named port.
Call with (dict "root" $ "nodePort" true) to pin the nodePort from values (root Service only).
*/}}
{{- define "api.servicePorts" -}}
{{- $v := .root.Values -}}
- name: http
  port: {{ $v.service.port }}
  targetPort: http
  protocol: TCP
  {{- if and .nodePort (eq $v.service.type "NodePort") $v.service.nodePort }}
  nodePort: {{ $v.service.nodePort }}
  {{- end }}
{{- end -}}

{{/*
Handlers that are not user traffic: the kubelet's probes, the ALB health check (same path as the
liveness probe) and Prometheus' scrapes. Counting their always-200 requests would dilute the
success rate of a canary that receives little traffic, and hide its errors.
*/}}
{{- define "api.internalHandlers" -}}
{{- $paths := list .Values.metricsPath -}}
{{- range list .Values.probes.liveness .Values.probes.readiness -}}
{{- if .httpGet -}}
{{- $paths = append $paths .httpGet.path -}}
{{- end -}}
{{- end -}}
{{- $quoted := list -}}
{{- range ($paths | uniq | sortAlpha) -}}
{{- $quoted = append $quoted (regexQuoteMeta .) -}}
{{- end -}}
{{- join "|" $quoted -}}
{{- end -}}

{{/*
PromQL label matchers for the service's own series (without braces). `job` is the Service name
that the ServiceMonitor scrapes (the root Service), `handler` leaves out internal handlers.
Call with (dict "root" $ "namespace" "..." "job" "..." "extra" "...").
*/}}
{{- define "api.matchers" -}}
namespace="{{ .namespace }}", job="{{ .job }}", handler!~"{{ include "api.internalHandlers" .root }}"
{{- with .extra }}, {{ . }}{{ end -}}
{{- end -}}

{{/*
The analysis arguments the Rollout passes, as a YAML list. The AnalysisTemplate declares exactly
these names (it ranges over this same list), so the two cannot drift apart.
*/}}
{{- define "api.analysisArgs" -}}
- name: service-name
  value: {{ include "lib.name" . }}
- name: namespace
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: canary-hash
  valueFrom:
    podTemplateHashValue: Latest
{{- end -}}

{{/* "{{args.<name>}}": an Argo Rollouts argument placeholder, which Helm must emit literally. */}}
{{- define "api.arg" -}}
{{- printf "%sargs.%s%s" "{{" . "}}" -}}
{{- end -}}

{{/* The pod template shared by the Deployment and the Rollout. */}}
{{- define "api.podTemplate" -}}
metadata:
  labels:
    {{- include "lib.labels" . | nindent 4 }}
spec:
  serviceAccountName: {{ include "lib.name" . }}
  automountServiceAccountToken: false
  # The app gets its endpoints from env (DATABASE_HOST, ...), not from per-Service link variables.
  enableServiceLinks: false
  securityContext:
    {{- include "lib.podSecurityContext" (dict "uid" 10001) | nindent 4 }}
  containers:
    - name: api
      image: {{ include "lib.image" .Values.image | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      ports:
        - name: http
          containerPort: {{ .Values.port }}
          protocol: TCP
      {{- with include "lib.env" . | trim }}
      env:
        {{- . | nindent 8 }}
      {{- end }}
      livenessProbe:
        {{- toYaml .Values.probes.liveness | nindent 8 }}
      readinessProbe:
        {{- toYaml .Values.probes.readiness | nindent 8 }}
      resources:
        {{- toYaml .Values.resources | nindent 8 }}
      securityContext:
        {{- include "lib.containerSecurityContext" (dict "readOnly" true) | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
  volumes:
    # The root filesystem is read-only; Python and uvicorn write temporary files only here.
    - name: tmp
      emptyDir: {}
  {{- with include "lib.placement" . | trim }}
  {{- . | nindent 2 }}
  {{- end }}
{{- end -}}
