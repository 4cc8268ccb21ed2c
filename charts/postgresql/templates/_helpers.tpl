{{/* POSTGRES_USER / POSTGRES_PASSWORD from the existing credentials Secret (referenced, never rendered). */}}
{{- define "postgresql.credentialsEnv" -}}
{{- $secretEnv := list
      (dict "name" "POSTGRES_USER" "secret" .Values.credentialsSecret "key" "username")
      (dict "name" "POSTGRES_PASSWORD" "secret" .Values.credentialsSecret "key" "password") -}}
{{- include "lib.env" (dict "Values" (dict "env" list "secretEnv" $secretEnv)) | trim -}}
{{- end -}}

{{/* The exporter's login: the same Secret, under the names postgres_exporter reads. */}}
{{- define "postgresql.exporterEnv" -}}
{{- $env := list (dict "name" "DATA_SOURCE_URI" "value" (printf "127.0.0.1:%d/postgres?sslmode=disable" (.Values.port | int))) -}}
{{- $secretEnv := list
      (dict "name" "DATA_SOURCE_USER" "secret" .Values.credentialsSecret "key" "username")
      (dict "name" "DATA_SOURCE_PASS" "secret" .Values.credentialsSecret "key" "password") -}}
{{- include "lib.env" (dict "Values" (dict "env" $env "secretEnv" $secretEnv)) | trim -}}
{{- end -}}

{{/* The SQL that creates every database of .Values.databases that does not exist yet. */}}
{{- define "postgresql.databasesSql" -}}
-- One database per entry of `databases` in the chart values (the services that use PostgreSQL),
-- owned by the connecting (superuser) role. Idempotent: creates only the missing ones, so it runs
-- both at first initialisation (/docker-entrypoint-initdb.d) and on every start (postStart hook).
-- Databases removed from the values are never dropped.
{{- if .Values.databases }}
SELECT format('CREATE DATABASE %I', wanted.name)
FROM unnest(ARRAY[{{ range $i, $db := .Values.databases }}{{ if $i }}, {{ end }}'{{ $db }}'{{ end }}]::text[]) AS wanted(name)
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = wanted.name)
\gexec
{{- else }}
-- (no databases in the values)
{{- end }}
{{- end -}}
