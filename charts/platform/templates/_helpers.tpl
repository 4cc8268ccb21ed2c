{{/*
Labels in the lib chart's style. lib.labels reads .Values.image and .Values.component, which a chart of
namespaces and policies does not have: this chart has no image to take a version from, so the version
is the chart's, and the component is the chart itself.
*/}}
{{- define "platform.labels" -}}
{{ include "lib.selectorLabels" . }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/version: {{ .Chart.Version | quote }}
app.kubernetes.io/component: platform
app.kubernetes.io/part-of: {{ .Values.partOf }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}
