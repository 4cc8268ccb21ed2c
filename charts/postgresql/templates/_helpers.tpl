{{/* POSTGRES_USER / POSTGRES_PASSWORD from the existing credentials Secret (referenced, never rendered). */}}
{{- define "postgresql.credentialsEnv" -}}
{{- $secretEnv := list
      (dict "name" "POSTGRES_USER" "secret" .Values.credentialsSecret "key" "username")
      (dict "name" "POSTGRES_PASSWORD" "secret" .Values.credentialsSecret "key" "password") -}}
{{- include "lib.env" (dict "Values" (dict "env" list "secretEnv" $secretEnv)) | trim -}}
{{- end -}}

{{/*
The exporter's login: the same Secret, but never inside a DSN. To label the server, postgres_exporter splits the
key=value form of its DSN on blanks (parseFingerprint, still so in v0.17.1), so a password or user with a space fails
with "malformed dsn" (upstream issue #393), in DATA_SOURCE_NAME and in the DSN it builds from DATA_SOURCE_USER and
DATA_SOURCE_PASS alike. So the DSN names the server only, and lib/pq, the exporter's driver, reads the login from
libpq's PGUSER and PGPASSWORD, as libpq does. tests/test_servers.py checks it against a real server.
*/}}
{{- define "postgresql.exporterEnv" -}}
{{- $env := list (dict "name" "DATA_SOURCE_NAME" "value" (printf "postgresql://127.0.0.1:%d/postgres?sslmode=disable" (.Values.port | int))) -}}
{{- $secretEnv := list
      (dict "name" "PGUSER" "secret" .Values.credentialsSecret "key" "username")
      (dict "name" "PGPASSWORD" "secret" .Values.credentialsSecret "key" "password") -}}
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
