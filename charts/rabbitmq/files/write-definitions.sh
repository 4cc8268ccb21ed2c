#!/bin/bash
# Writes the file RabbitMQ imports at boot (load_definitions in rabbitmq.conf): the model's
# definitions (exchanges, queues, bindings, vhosts) plus the broker's user from the credentials Secret.
#
# Why an init container: a node that imports definitions at boot does not create its default user
# (default_user / RABBITMQ_DEFAULT_USER), so the user has to be part of the imported file, and its
# password must never be in git or in a ConfigMap. The output goes to a memory-backed emptyDir.
#
# usage: write-definitions.sh MODEL_JSON OUTPUT_JSON [VHOST...]
#   MODEL_JSON  the chart's definitions.json: one JSON object, without users or permissions
#   VHOST       every vhost the user gets full permissions on
# env:  RABBITMQ_USERNAME, RABBITMQ_PASSWORD (secretKeyRef to the credentials Secret)
set -euo pipefail

model_file=$1
out=$2
shift 2

# A JSON string literal (quotes included) for $1; $2 names the value in the error message.
json_string() {
	local s=$1
	if [[ $s =~ [[:cntrl:]] ]]; then
		echo "write-definitions: the $2 contains a control character (a trailing newline in the Secret?)" >&2
		return 1
	fi
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	printf '"%s"' "$s"
}

user=$(json_string "${RABBITMQ_USERNAME:?RABBITMQ_USERNAME is empty}" "username")
password=$(json_string "${RABBITMQ_PASSWORD:?RABBITMQ_PASSWORD is empty}" "password")

model=$(<"$model_file")
if [[ $model != \{*\} ]]; then
	echo "write-definitions: $model_file does not hold one JSON object" >&2
	exit 1
fi

permissions=
for vhost in "$@"; do
	vhost_json=$(json_string "$vhost" "vhost name")
	permissions+="${permissions:+,}{\"user\":$user,\"vhost\":$vhost_json,\"configure\":\".*\",\"write\":\".*\",\"read\":\".*\"}"
done

# "password" (not "password_hash"): RabbitMQ hashes it on import with its configured algorithm
# (rabbit_auth_backend_internal:put_user accepts either, never both) and updates an existing user's
# password on every boot, so rotating the Secret and restarting the pod rotates the broker's password.
umask 077
printf '%s,"users":[{"name":%s,"password":%s,"tags":["administrator"]}],"permissions":[%s]}\n' \
	"${model%\}}" "$user" "$password" "$permissions" >"$out.tmp"
mv -f "$out.tmp" "$out"
echo "write-definitions: wrote $out"
