{{/*
Chart-local helpers of the worker chart. Names, labels, security contexts, placement, env and the
NetworkPolicy come from the lib chart; only what is specific to Celery lives here.
*/}}

{{/* The Celery worker's command line, built from .Values.celery (one list item per argument). */}}
{{- define "worker.command" -}}
- celery
- -A
- {{ .Values.celery.app | quote }}
- worker
- {{ printf "--queues=%s" (join "," .Values.celery.queues) | quote }}
- {{ printf "--pool=%s" .Values.celery.pool | quote }}
- {{ printf "--concurrency=%d" (int .Values.celery.concurrency) | quote }}
- {{ printf "--loglevel=%s" .Values.celery.logLevel | quote }}
{{- end -}}

{{/* Where the beat keeps its schedule: an emptyDir, because the root filesystem is read-only. */}}
{{- define "worker.beatScheduleDir" -}}/var/lib/celery-beat{{- end -}}
{{- define "worker.beatSchedule" -}}{{ include "worker.beatScheduleDir" . }}/celerybeat-schedule{{- end -}}

{{/*
Exit 0 when the beat wrote its schedule file less than `maxAge` seconds ago. The file is a shelve
database: dbm may add a suffix (.db, or .dat/.dir/.bak), hence the glob. Only the standard library is
used, so the check costs one short Python start and needs nothing from the image but python.
*/}}
{{- define "worker.beatScheduleFresh" -}}
- python
- -c
- {{ printf "import glob, os, sys, time; sys.exit(0 if any(time.time() - os.path.getmtime(p) < %d for p in glob.glob('%s*')) else 1)" (int .maxAge) (include "worker.beatSchedule" .root) | quote }}
{{- end -}}

{{/* PromQL label matchers for the series Prometheus scrapes through this release's ServiceMonitor. */}}
{{- define "worker.scrapedSeries" -}}
namespace="{{ .Release.Namespace }}", service="{{ include "lib.name" . }}"
{{- end -}}
