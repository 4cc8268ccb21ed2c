{{/*
A memory quantity of the model (e.g. 2Gi, 512Mi, 1G, 1073741824) in bytes, for settings that take a
plain number. The model only allows an integer with an optional binary or decimal suffix.
*/}}
{{- define "rabbitmq.bytes" -}}
{{- $q := toString . -}}
{{- $factors := dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776 -}}
{{- $number := regexFind "^[0-9]+" $q -}}
{{- $suffix := trimPrefix $number $q -}}
{{- if or (not $number) (not (hasKey $factors $suffix)) -}}
{{- fail (printf "memory quantity %q: use an integer with an optional suffix Ki, Mi, Gi, Ti, k, M, G or T" $q) -}}
{{- end -}}
{{- mul (atoi $number) (get $factors $suffix) -}}
{{- end -}}

{{/* The broker user's env, from the existing credentials Secret (referenced, never rendered). */}}
{{- define "rabbitmq.credentialsEnv" -}}
{{- $secretEnv := list
      (dict "name" "RABBITMQ_USERNAME" "secret" .Values.credentialsSecret "key" "username")
      (dict "name" "RABBITMQ_PASSWORD" "secret" .Values.credentialsSecret "key" "password") -}}
{{- include "lib.env" (dict "Values" (dict "env" list "secretEnv" $secretEnv)) | trim -}}
{{- end -}}

{{/* Where the init container writes the definitions file that rabbitmq.conf's load_definitions reads. */}}
{{- define "rabbitmq.definitionsDir" -}}/etc/rabbitmq-definitions{{- end -}}
