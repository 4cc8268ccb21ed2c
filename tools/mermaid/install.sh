#!/usr/bin/env bash
# Installs the pinned Mermaid parser (tools/mermaid/package-lock.json, integrity-checked by npm ci) into
# .cache/mermaid once, with parse.mjs beside it (ES modules resolve from the script's own folder); prints the
# directory. tests/test_overview.py runs `node <dir>/parse.mjs FILE...` on the generated pages.
# Exit codes: 0 ready, 1 npm or node missing or the install failed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
dir=${ECO2_MERMAID_DIR:-$root/.cache/mermaid}
stamp="$dir/.stamp-$(cat "$here/package-lock.json" "$here/parse.mjs" | sha256sum | cut -c1-12)"
die() { echo "mermaid: $*" >&2; exit 1; }
command -v "${NODE:-node}" >/dev/null 2>&1 || die "node not found: the Mermaid parser runs under Node.js >= 18"
command -v "${NPM:-npm}" >/dev/null 2>&1 || die "npm not found: it installs the pinned parser (tools/mermaid/package-lock.json)"
mkdir -p "$dir"
# Parallel test workers share the directory: one installs, the others wait.
if command -v flock >/dev/null 2>&1; then exec 9>"$dir/.lock" && flock 9; fi
if [[ ! -f $stamp ]]; then
  echo "mermaid: installing the parser into ${dir#"$root"/} (tools/mermaid/package-lock.json)" >&2
  find "$dir" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +
  cp "$here/package.json" "$here/package-lock.json" "$here/parse.mjs" "$dir/"
  "${NPM:-npm}" ci --prefix "$dir" --ignore-scripts --no-audit --no-fund --loglevel=error >&2 \
    || die "npm ci of tools/mermaid/package-lock.json failed (is the npm registry reachable?)"
  touch "$stamp"
fi
echo "$dir"
