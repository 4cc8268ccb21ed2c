"""Orphans: what the model declares and nothing rendered uses, said as warnings on render (never an error)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO, copy_repo, run_cli
from generator.model import environments
from generator.render import overview
from generator.validate import orphans
from generator.write import output

ENVS = ("dev", "staging", "prod")


@pytest.fixture(scope="module")
def committed() -> dict[str, bytes]:
    return output.read_generated(REPO)


def line_of(path: Path, text: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if line.startswith(text))


def found(files: dict[str, bytes], env: str, values: Path = REPO / "values") -> list[str]:
    loaded = environments.load(values)[env]
    return [str(loaded.source.problem(f)) for f in orphans.find(overview.env_objects(files, env), loaded.model)]


@pytest.mark.parametrize("env", ENVS)
def test_eco2_has_no_orphan(committed, env: str):
    assert found(committed, env) == []


def test_a_removed_service_leaves_its_node_and_its_secret_orphaned(committed):
    """The issue's case: without location's Application, its node runs only DaemonSets and the Kakao key is unread."""
    files = {p: b for p, b in committed.items() if not p.endswith("/location.yaml")}
    node = line_of(REPO / "values/cluster.yaml", "  k8s-api-location:")
    secret = line_of(REPO / "values/secrets.yaml", "  kakao-api-key:")
    assert found(files, "prod") == [
        f"values/cluster.yaml:{node}:3: nodes.k8s-api-location: no workload runs on this node (only DaemonSet "
        "aws-ebs-csi-driver/ebs-csi-node, DaemonSet monitoring-node/monitoring-prometheus-node-exporter): remove it, "
        "or place a workload on it",
        f"values/secrets.yaml:{secret}:3: secrets.kakao-api-key: declared, but no rendered object reads this Secret: "
        "remove it, or say why it is kept in its description"]


def test_a_secret_declared_for_a_namespace_that_does_not_read_it(committed, model_dir: Path):
    from conftest import edit

    edit(model_dir / "secrets.yaml", "    namespaces: [api]\n    keys: [secret-key]", "    namespaces: [api, workers]\n    keys: [secret-key]")
    line = line_of(model_dir / "secrets.yaml", "    namespaces: [api, workers]")
    assert found(committed, "prod", model_dir) == [
        f"values/secrets.yaml:{line}:23: secrets.jwt-secret.namespaces[1]: declared for namespace workers, where no "
        "rendered object reads it"]


@pytest.mark.parametrize("doc,names", [
    ({"volumes": [{"name": "v", "secret": {"secretName": "a"}}]}, ["a"]),
    ({"containers": [{"env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "b", "key": "k"}}}]}]}, ["b"]),
    ({"containers": [{"envFrom": [{"secretRef": {"name": "c"}}]}]}, ["c"]),
    ({"volumes": [{"projected": {"sources": [{"secret": {"name": "d"}}]}}]}, ["d"]),
    ({"imagePullSecrets": [{"name": "e"}]}, ["e"]),
    ({"endpoints": [{"bearerTokenSecret": {"name": "f", "key": "token"}}]}, ["f"]),  # a custom resource's field
    ({"roleRef": {"kind": "ClusterRole", "name": "g"}, "subjects": [{"kind": "ServiceAccount", "name": "g"}]}, []),
    ({"secret": "not-a-mapping", "name": "h", "labels": {"secretName": 3}}, []),
])
def test_what_counts_as_reading_a_secret(doc, names):
    assert list(orphans._secret_refs(doc)) == names


def test_render_warns_and_succeeds(tmp_path: Path, monkeypatch):
    from conftest import edit

    monkeypatch.setenv("ECO2_CACHE", str(REPO / ".cache"))
    root = copy_repo(tmp_path / "repo")
    edit(root / "values/secrets.yaml", "secrets:\n", "secrets:\n  legacy-token:\n    description: Kept for the old app.\n"
                                                  "    namespaces: [api]\n    keys: [token]\n")
    result = run_cli("render", "--root", str(root))
    assert result.returncode == 0, result.stderr
    warnings = [l for l in result.stderr.splitlines() if l.startswith("warning: ")]
    assert warnings == [f"warning: values/secrets.yaml:6:3: secrets.legacy-token: declared, but no rendered object reads "
                        f"this Secret: remove it, or say why it is kept in its description (in {env})" for env in ENVS]


def test_the_diff_names_only_the_orphans_a_change_makes(committed):
    """overview.orphan_changes: what is orphaned after and was not before, per finding with its environments."""
    loaded = environments.load(REPO / "values")
    without = {p: b for p, b in committed.items() if not p.endswith("/location.yaml")}
    node = line_of(REPO / "values/cluster.yaml", "  k8s-api-location:")
    secret = line_of(REPO / "values/secrets.yaml", "  kakao-api-key:")
    made = overview.orphan_changes(committed, without, loaded, loaded)
    assert [line.split(": ")[1] + " " + line.rsplit(" ", 3)[-3:][-1] for line in made] == [
        f"values/cluster.yaml:{node}:3 prod)", f"values/secrets.yaml:{secret}:3 staging)"]
    assert made[1].endswith("(in dev, prod, staging)")
    assert overview.orphan_changes(without, without, loaded, loaded) == []  # nothing changed: nothing said
    assert overview.orphan_changes(without, committed, loaded, loaded) == []  # orphans undone are no warning
    # an environment new in this change: every orphan it has is new
    assert overview.orphan_changes(committed, without, {}, {"prod": loaded["prod"]}) == [
        made[0], made[1].replace("dev, prod, staging", "prod")]
