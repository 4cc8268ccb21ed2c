{{/*
A memory quantity of the model (e.g. 2Gi, 512Mi, 1G, 1073741824) in bytes. The model only allows
an integer with an optional binary or decimal suffix.
*/}}
{{- define "redis.bytes" -}}
{{- $q := toString . -}}
{{- $factors := dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 -}}
{{- $number := regexFind "^[0-9]+" $q -}}
{{- $suffix := trimPrefix $number $q -}}
{{- if or (not $number) (not (hasKey $factors $suffix)) -}}
{{- fail (printf "memory quantity %q: use an integer with an optional suffix Ki, Mi, Gi, Ti, k, M, G or T" $q) -}}
{{- end -}}
{{- mul (atoi $number) (get $factors $suffix) -}}
{{- end -}}

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
