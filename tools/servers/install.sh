#!/usr/bin/env bash
# Installs the real servers tests/test_servers.py runs the rendered pods against, from the distribution's packages
# (Debian; Ubuntu has the same names): postgresql, redis-server, prometheus-postgres-exporter and
# prometheus-redis-exporter; and jq, which the workflows' scripts use (tests/test_workflows.py runs them).
# `make test` runs it before pytest.
#
#   tools/servers/install.sh [--check]
#
# Idempotent and quiet: when every binary the tests use is there, it does nothing and prints nothing. Otherwise it
# installs the missing packages as root (or, under CI=true, with passwordless sudo), without starting their services.
# When it cannot (not root), it names what is missing and exits 0: the tests then skip with that reason, except under
# CI=true, where they fail. --check installs nothing and exits 1 when something is missing.
# Exit codes: 0 ready or nothing to do, 1 missing (--check) or installation failed, 2 usage.
set -euo pipefail

check_only=0
case ${1:-} in
  "") ;;
  --check) check_only=1 ;;
  -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

say() { printf 'servers: %s\n' "$*" >&2; }

# The packages whose binaries are missing. Debian keeps PostgreSQL's server binaries in
# /usr/lib/postgresql/<major>/bin, off PATH (tests/test_servers.py looks in the same places).
missing_packages() {
  local pg=0 dir
  if command -v postgres >/dev/null && command -v initdb >/dev/null; then
    pg=1
  fi
  for dir in /usr/lib/postgresql/*/bin; do
    if [[ -x $dir/postgres && -x $dir/initdb && -x $dir/pg_isready && -x $dir/psql ]]; then
      pg=1
    fi
  done
  ((pg)) || echo postgresql
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null || echo redis-server
  command -v prometheus-postgres-exporter >/dev/null || command -v postgres_exporter >/dev/null \
    || echo prometheus-postgres-exporter
  command -v prometheus-redis-exporter >/dev/null || command -v redis_exporter >/dev/null \
    || echo prometheus-redis-exporter
  command -v jq >/dev/null || echo jq
}

mapfile -t packages < <(missing_packages)
((${#packages[@]})) || exit 0
if ((check_only)); then
  say "missing: ${packages[*]}"
  exit 1
fi

sudo=()
if ((EUID != 0)); then
  if [[ ${CI:-} == true ]] && command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
  else
    if [[ ${CI:-} == true ]]; then what="fails (CI=true)"; else what="skips"; fi
    say "missing ${packages[*]} (Debian packages); tests/test_servers.py $what without them." \
      "Install them with: sudo $0"
    exit 0
  fi
fi
if ! command -v apt-get >/dev/null; then
  say "missing ${packages[*]} and there is no apt-get here; install them with your package manager" \
    "(tests/test_servers.py skips without them)"
  exit 0
fi

say "installing ${packages[*]} (Debian packages, for tests/test_servers.py)"
log=$(mktemp)
# No service starts during the installation (invoke-rc.d and deb-systemd-invoke ask policy-rc.d): the tests start
# their own throwaway servers on free ports. A policy-rc.d already present (as in Docker images) is left alone.
policy=/usr/sbin/policy-rc.d
made_policy=0
cleanup() {
  rm -f "$log"
  if ((made_policy)); then "${sudo[@]}" rm -f "$policy"; fi
}
trap cleanup EXIT
if [[ ! -e $policy ]]; then
  made_policy=1
  printf '#!/bin/sh\n# tools/servers/install.sh: no service starts while it installs packages\nexit 101\n' \
    | "${sudo[@]}" tee "$policy" >/dev/null
  "${sudo[@]}" chmod 755 "$policy"
fi

apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -qq -o Dpkg::Use-Pty=0)
if ! { "${apt[@]}" update && "${apt[@]}" install --no-install-recommends "${packages[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  say "installing ${packages[*]} failed"
  exit 1
fi
mapfile -t still < <(missing_packages)
if ((${#still[@]})); then
  cat "$log" >&2
  say "installed, but still missing the binaries of: ${still[*]}"
  exit 1
fi
