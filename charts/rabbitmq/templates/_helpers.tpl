{{/* The broker user's env, from the existing credentials Secret (referenced, never rendered). */}}
{{- define "rabbitmq.credentialsEnv" -}}
{{- $secretEnv := list
      (dict "name" "RABBITMQ_USERNAME" "secret" .Values.credentialsSecret "key" "username")
      (dict "name" "RABBITMQ_PASSWORD" "secret" .Values.credentialsSecret "key" "password") -}}
{{- include "lib.env" (dict "Values" (dict "env" list "secretEnv" $secretEnv)) | trim -}}
{{- end -}}

{{/* Where the init container writes the definitions file that rabbitmq.conf's load_definitions reads. */}}
{{- define "rabbitmq.definitionsDir" -}}/etc/rabbitmq-definitions{{- end -}}
