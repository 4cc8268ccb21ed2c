{{/*
Names. Every object of a release is named after the release (the component name in the model);
sub-workloads (e.g. a worker's beat) pass a suffix.
*/}}
{{- define "lib.name" -}}
{{- $root := .root | default . -}}
{{- $suffix := .suffix | default "" -}}
{{- if $suffix -}}
{{- printf "%s-%s" $root.Release.Name $suffix | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $root.Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/*
Selector labels: immutable in Deployments and StatefulSets, so only the workload name and the
release, never a version. Call with the root context, or with (dict "root" $ "suffix" "beat").
*/}}
{{- define "lib.selectorLabels" -}}
{{- $root := .root | default . -}}
app.kubernetes.io/name: {{ include "lib.name" . }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
{{- end -}}

{{/* Labels for every object: selector labels plus chart, version, component and part-of. */}}
{{- define "lib.labels" -}}
{{- $root := .root | default . -}}
{{ include "lib.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ include "lib.version" $root | quote }}
app.kubernetes.io/component: {{ $root.Values.component }}
app.kubernetes.io/part-of: {{ $root.Values.partOf }}
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
{{- end -}}

{{/* The deployed version: the image tag, else the digest's first 12 hex digits. */}}
{{- define "lib.version" -}}
{{- if .Values.image.tag -}}
{{- .Values.image.tag | trunc 63 -}}
{{- else -}}
{{- .Values.image.digest | trimPrefix "sha256:" | trunc 12 -}}
{{- end -}}
{{- end -}}

{{/* repository[:tag][@digest] of an image values block. */}}
{{- define "lib.image" -}}
{{- .repository -}}
{{- if .tag }}:{{ .tag }}{{ end -}}
{{- if .digest }}@{{ .digest }}{{ end -}}
{{- end -}}

{{/*
Pod-level security context for Pod Security "restricted". Call with (dict "uid" 10001) or with
(dict "uid" 999 "fsGroup" 999) when volumes must be writable by the user.
*/}}
{{- define "lib.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .gid | default .uid }}
fsGroup: {{ .fsGroup | default .uid }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container security context for Pod Security "restricted". Call with (dict "readOnly" true). */}}
{{- define "lib.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: {{ .readOnly }}
runAsNonRoot: true
capabilities:
  drop:
    - ALL
{{- end -}}

{{/* nodeSelector and tolerations from .Values.placement (computed by the generator from the node). */}}
{{- define "lib.placement" -}}
{{- with .Values.placement.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.placement.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* env entries: plain values, then values from existing Secrets (referenced, never rendered). */}}
{{- define "lib.env" -}}
{{- range .Values.env }}
- name: {{ .name }}
  value: {{ .value | quote }}
{{- end }}
{{- range .Values.secretEnv }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
{{- end }}
{{- end -}}

{{/* NetworkPolicy rule list (ingress or egress): an empty peer list means any peer. */}}
{{- define "lib.policyRules" -}}
{{- $direction := .direction -}}
{{- $out := list -}}
{{- range .rules -}}
{{- $rule := dict "ports" .ports -}}
{{- if .peers -}}
{{- $_ := set $rule $direction .peers -}}
{{- end -}}
{{- $out = append $out $rule -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/*
The release's NetworkPolicy: selects every pod of the release; allows exactly the rules in
.Values.networkPolicy (derived from the model's dependencies). Both policy types are always set,
so an empty list denies everything in that direction.
*/}}
{{- define "lib.networkPolicy" -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "lib.name" . }}
  labels:
    {{- include "lib.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      app.kubernetes.io/instance: {{ .Release.Name }}
  policyTypes:
    - Ingress
    - Egress
  {{- if .Values.networkPolicy.ingress }}
  ingress:
    {{- include "lib.policyRules" (dict "direction" "from" "rules" .Values.networkPolicy.ingress) | nindent 4 }}
  {{- else }}
  ingress: []
  {{- end }}
  {{- if .Values.networkPolicy.egress }}
  egress:
    {{- include "lib.policyRules" (dict "direction" "to" "rules" .Values.networkPolicy.egress) | nindent 4 }}
  {{- else }}
  egress: []
  {{- end }}
{{- end -}}

{{/*
A memory quantity of the model (e.g. 2Gi, 512Mi, 1G, 1073741824) in bytes, for settings that take a
plain number. The model only allows an integer with an optional binary or decimal suffix.
*/}}
{{- define "lib.bytes" -}}
{{- $q := toString . -}}
{{- $factors := dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 -}}
{{- $number := regexFind "^[0-9]+" $q -}}
{{- $suffix := trimPrefix $number $q -}}
{{- if or (not $number) (not (hasKey $factors $suffix)) -}}
{{- fail (printf "memory quantity %q: use an integer with an optional suffix Ki, Mi, Gi, Ti, k, M, G or T" $q) -}}
{{- end -}}
{{- mul (atoi $number) (get $factors $suffix) -}}
{{- end -}}
