"""The four ordinary changes of issue 12, each made the way a user makes it (edit the model, `render`, commit) on a
clone of the Eco² repository, and what `diff` says about each in its summary: the restarts a new database or queue
causes, the Deployment a canary replaces, and the Application, node and Secret a removed service leaves.

The expectations come from the model and the rendered files of each commit (counts of objects, line numbers of the
declarations), not from the diff's own output."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import REPO, edit, run_cli

ENVS = ("dev", "prod", "staging")

NOTIFICATION = """
  notification:
    image: {repository: ghcr.io/eco2-team/notification-api, tag: v0.1.0}
    path: /api/v1/notifications
    nodePort: 30087
    placement: {node: k8s-api-auth}
    replicas: 2
    resources:
      requests: {cpu: 100m, memory: 128Mi}
      limits: {cpu: 300m, memory: 256Mi}
    database: notification
    secretEnv:
      DATABASE_USER: {secret: postgresql-credentials, key: username}
      DATABASE_PASSWORD: {secret: postgresql-credentials, key: password}
    dependsOn: [postgresql]
    delivery: {strategy: rolling}
"""

QUEUE = """    q.notify:
      binding: {exchange: tasks, routingKey: "notify.#"}
      ttl: 5m
      maxLength: 1000
      overflow: reject-publish
      deadLetter: {exchange: dlx, routingKey: dlq}
"""


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True,
                          env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t",
                               "GIT_COMMITTER_EMAIL": "t@e", "PATH": "/usr/bin:/bin"}).stdout


def _block(text: str, start: str, end: str) -> tuple[int, int]:
    i = text.index(start)
    return i, text.index(end, i)


def _add_service(root: Path) -> None:
    services = root / "values/services.yaml"
    services.write_text(services.read_text(encoding="utf-8").rstrip("\n") + "\n" + NOTIFICATION, encoding="utf-8")
    edit(root / "values/environments/dev.yaml", "  chat-llm:", "  notification: {placement: {node: k8s-apps}, replicas: 1}\n  chat-llm:")
    edit(root / "values/environments/staging.yaml", "  chat-llm:", "  notification: {placement: {node: k8s-api}}\n  chat-llm:")


def _add_queue(root: Path) -> None:
    edit(root / "values/messaging.yaml", "    q.dlq:\n", QUEUE + "    q.dlq:\n")
    edit(root / "values/workers.yaml", "queues: [q.fast, q.bulk, q.sched]", "queues: [q.fast, q.bulk, q.sched, q.notify]")


def _recycle_info_canary(root: Path) -> None:
    services = root / "values/services.yaml"
    text = services.read_text(encoding="utf-8")
    i, j = _block(text, "  recycle-info:\n", "delivery: {strategy: rolling}")
    services.write_text(text[:j] + "delivery: {strategy: canary}" + text[j + len("delivery: {strategy: rolling}"):],
                        encoding="utf-8")


def _remove_location(root: Path) -> None:
    services = root / "values/services.yaml"
    text = services.read_text(encoding="utf-8")
    i, j = _block(text, "  location:\n", "  waste:\n")
    services.write_text(text[:i] + text[j:], encoding="utf-8")
    for env in ("dev", "staging"):
        overlay = root / f"values/environments/{env}.yaml"
        lines = overlay.read_text(encoding="utf-8").splitlines(keepends=True)
        overlay.write_text("".join(l for l in lines if not l.startswith("  location:")), encoding="utf-8")


CHANGES = {"add notification": _add_service, "add q.notify": _add_queue, "recycle-info canary": _recycle_info_canary,
           "remove location": _remove_location}


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    """Eco² and its committed output, then one commit per change, each rendered by `render`."""
    root = tmp_path_factory.mktemp("scenarios") / "repo"
    for top in ("values", "charts", "rendered", "argocd", "schema"):
        shutil.copytree(REPO / top, root / top, symlinks=True)
    shutil.copy(REPO / ".gitignore", root / ".gitignore")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "base")
    for message, change in CHANGES.items():
        change(root)
        rendered = run_cli("render", "--root", str(root))
        assert rendered.returncode == 0, rendered.stderr
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", message)
    return root


def diff_of(root: Path, change: str, *extra: str) -> subprocess.CompletedProcess:
    """`diff` of the one commit that made `change`."""
    n = len(CHANGES) - list(CHANGES).index(change)
    return run_cli("diff", "--root", str(root), "--base", f"HEAD~{n}", "--head", f"HEAD~{n - 1}", *extra)


def summary(result: subprocess.CompletedProcess) -> list[str]:
    """The plan lines and the summary: the output up to the first app's objects."""
    head = result.stdout.split("\n\n")
    return [line for block in head[:4] for line in block.splitlines()]


def documents(root: Path, ref: str, path: str) -> list:
    return [d for d in yaml.safe_load_all(git(root, "show", f"{ref}:{path}")) if d]


def line_of(root: Path, ref: str, path: str, start: str) -> int:
    return next(i for i, line in enumerate(git(root, "show", f"{ref}:{path}").splitlines(), 1) if line.startswith(start))


def test_a_service_with_a_database_restarts_postgresql(history: Path):
    result = diff_of(history, "add notification")
    assert result.returncode == 0, result.stderr
    lines = summary(result)
    ref = "HEAD~3"
    for env in ENVS:
        added = 1 + len(documents(history, ref, f"rendered/{env}/manifests/notification.yaml"))  # and its Application
        assert re.fullmatch(rf"plan: {env}: {added} to add, \d+ to change, 0 to destroy, 1 restart", lines[ENVS.index(env)])
        assert (f"  ! {env}/postgresql: StatefulSet data/postgresql restarts its only pod: unavailable until the new "
                "one is ready") in lines
    assert "postgresql (every environment): databases + notification" in lines
    assert "postgresql (every environment): networkPolicy.ingress + notification uses postgresql" in lines
    assert "3 Applications added (dev/notification, prod/notification, staging/notification), 0 removed" in lines
    # the new pods' node has less room, by what the new Deployment requests
    assert any(l.startswith("capacity: prod/k8s-api-auth: CPU headroom ") for l in lines)


def test_a_queue_restarts_rabbitmq_and_the_worker_that_consumes_it(history: Path):
    result = diff_of(history, "add q.notify")
    assert result.returncode == 0, result.stderr
    lines = summary(result)
    assert "rabbitmq (every environment): queue q.notify added" in lines
    assert "storage-worker (every environment): queues q.fast, q.bulk, q.sched → q.fast, q.bulk, q.sched, q.notify" in lines
    assert not [l for l in lines if l.startswith("rabbitmq") and "q.notify added" not in l], \
        "the queue's binding and alert come with it"
    for env in ENVS:
        assert (f"  ! {env}/rabbitmq: StatefulSet messaging/rabbitmq restarts its only pod: unavailable until the new "
                "one is ready") in lines
    replicas = {env: documents(history, "HEAD~2", f"rendered/{env}/values/storage-worker.yaml")[0]["replicas"]
                for env in ENVS}
    for env, n in replicas.items():
        said = (f"  ! {env}/storage-worker: StatefulSet workers/storage-worker restarts its only pod" if n == 1 else
                f"  ~ {env}/storage-worker: StatefulSet workers/storage-worker restarts its {n} pods")
        assert any(l.startswith(said) for l in lines), said


def test_a_rolling_service_made_canary_is_a_replaced_deployment_with_its_safe_path(history: Path):
    result = diff_of(history, "recycle-info canary")
    assert result.returncode == 3, result.stdout + result.stderr
    lines = summary(result)
    steps = documents(history, "HEAD~1", "rendered/prod/values/recycle-info.yaml")[0]["canary"]["steps"]
    weights = "/".join(str(s["setWeight"]) for s in steps if "setWeight" in s)
    pauses = "/".join(str(s["pause"]) for s in steps if "pause" in s)
    assert (f"recycle-info (every environment): delivery rolling → canary: weights {weights}, pauses {pauses}, "
            "analysis success ≥ 0.95") in lines
    for env in ENVS:
        danger = next(l for l in lines if l.startswith(f"  !! {env}/recycle-info: "))
        assert "Deployment api/recycle-info is replaced by a Rollout" in danger and "workloadRef" in danger
    assert diff_of(history, "recycle-info canary", "--ack-danger").returncode == 0


def test_a_removed_service_deletes_its_application_and_orphans_its_node_and_its_secret(history: Path):
    result = diff_of(history, "remove location")
    assert result.returncode == 3, result.stdout + result.stderr
    lines = summary(result)
    for env in ENVS:
        name = "location" if env == "prod" else f"{env}-location"
        assert any(l.startswith(f"  !! {env}/location: Application argocd/{name} removed") for l in lines)
    assert "0 Applications added, 3 removed (dev/location, prod/location, staging/location)" in lines
    node = line_of(history, "HEAD", "values/cluster.yaml", "  k8s-api-location:")
    secret = line_of(history, "HEAD", "values/secrets.yaml", "  kakao-api-key:")
    warnings = [l for l in lines if l.startswith("warning: ")]
    assert [w.split(": ")[1:3] for w in warnings] == [
        [f"values/cluster.yaml:{node}:3", "nodes.k8s-api-location"], [f"values/secrets.yaml:{secret}:3", "secrets.kakao-api-key"]]
    # only prod gave location a node of its own; every environment loses the Secret's one reader
    assert warnings[0].endswith("(in prod)") and warnings[1].endswith("(in dev, prod, staging)")
    markdown = run_cli("diff", "--root", str(history), "--base", "HEAD~1", "--format", "markdown", "--ack-danger")
    assert markdown.returncode == 0 and f"- warning: values/cluster.yaml:{node}:3: nodes.k8s-api-location" in markdown.stdout


def test_a_change_that_orphans_nothing_warns_of_nothing(history: Path):
    for change in ("add notification", "add q.notify", "recycle-info canary"):
        assert not [l for l in summary(diff_of(history, change, "--ack-danger")) if l.startswith("warning: ")]
