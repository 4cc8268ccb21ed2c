{{/* Databases Redis must offer: one more than the highest index in .Values.databases. */}}
{{- define "redis.databaseCount" -}}
{{- $max := 0 -}}
{{- range $what, $index := .Values.databases -}}
{{- if gt (int $index) $max }}{{ $max = int $index }}{{ end -}}
{{- end -}}
{{- add1 $max -}}
{{- end -}}

{{/* The requirepass password from the existing credentials Secret, for the server and redis-cli (probes). */}}
{{- define "redis.passwordEnv" -}}
{{- $secretEnv := list
      (dict "name" "REDIS_PASSWORD" "secret" .Values.credentialsSecret "key" "password")
      (dict "name" "REDISCLI_AUTH" "secret" .Values.credentialsSecret "key" "password") -}}
{{- include "lib.env" (dict "Values" (dict "env" list "secretEnv" $secretEnv)) | trim -}}
{{- end -}}

{{/* The exporter's connection: loopback, with the password from the same Secret. */}}
{{- define "redis.exporterEnv" -}}
{{- $env := list (dict "name" "REDIS_ADDR" "value" (printf "redis://127.0.0.1:%d" (.Values.port | int))) -}}
{{- $secretEnv := list (dict "name" "REDIS_PASSWORD" "secret" .Values.credentialsSecret "key" "password") -}}
{{- include "lib.env" (dict "Values" (dict "env" $env "secretEnv" $secretEnv)) | trim -}}
{{- end -}}
