#!/bin/sh
# postStart hook of the postgresql container: creates the databases of databases.sql that do not
# exist yet, on every start. So a database added to the values later is created by the restart
# that the changed ConfigMap triggers (checksum/config), with no manual step and no Job.
#
# It waits for TCP on 127.0.0.1: during first initialisation the entrypoint's temporary server
# listens on the socket only, and /docker-entrypoint-initdb.d has already run the same SQL by the
# time the real server listens. The kubelet starts the probes only after this hook, so the pod is
# never Ready while a database is missing. A failure (server not up in time, SQL error) makes the
# kubelet restart the container and report this script's output in a FailedPostStartHook event.
set -eu

deadline=$(($(date +%s) + 600))
# As POSTGRES_USER, into the postgres database: pg_isready's defaults (the OS user, here "postgres")
# name a role that does not exist, which the server logs as FATAL on every attempt.
until pg_isready --quiet --host 127.0.0.1 --port "$PGPORT" --username "$POSTGRES_USER" --dbname postgres; do
	if [ "$(date +%s)" -ge "$deadline" ]; then
		echo "ensure-databases: PostgreSQL did not accept connections on 127.0.0.1:$PGPORT within 600s" >&2
		exit 1
	fi
	sleep 2
done

# Over the socket, where the image's pg_hba.conf trusts local connections: no password needed.
exec psql --no-psqlrc --no-password --quiet --set ON_ERROR_STOP=1 \
	--host /var/run/postgresql --port "$PGPORT" --username "$POSTGRES_USER" --dbname postgres \
	--file /docker-entrypoint-initdb.d/databases.sql
