"""Environments: the base model and its overlays, merged by few rules, each error at the line that set the value."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from conftest import REPO, VALUES, copy_repo, edit, run_cli
from generator.errors import Finding, InvalidModel
from generator.model import environments
from generator.plan import resolve
from generator.write import output


def messages(values: Path) -> list[str]:
    try:
        environments.load(values)
    except InvalidModel as exc:
        return [str(p) for p in exc.problems]
    return []


def position(values: Path, file: str, find: str, offset: int = 0) -> str:
    """file:line:col of a text in a model file, found by search (not by the loader under test)."""
    text = (values / file).read_text(encoding="utf-8")
    i = text.index(find) + offset
    return f"values/{file}:{text.count(chr(10), 0, i) + 1}:{i - (text.rfind(chr(10), 0, i) + 1) + 1}: "


# ---------------------------------------------------------------------------------------------- the merge rules


def test_maps_merge_by_key_and_other_values_replace():
    base = {"a": {"x": 1, "y": [1, 2], "z": {"k": "v"}}, "b": 2}
    merged, found = environments.merge(base, {"a": {"y": [3], "z": {"l": "w"}}, "c": 3})
    assert found == []
    assert merged == {"a": {"x": 1, "y": [3], "z": {"k": "v", "l": "w"}}, "b": 2, "c": 3}
    assert base == {"a": {"x": 1, "y": [1, 2], "z": {"k": "v"}}, "b": 2}  # the base is not changed in place


def test_null_removes_and_patch_replace_replaces_a_whole_map():
    base = {"nodes": {"a": {"cpu": 2}, "b": {"cpu": 4}}, "svc": {"hpa": {"min": 2}, "replicas": 2}}
    merged, found = environments.merge(base, {"nodes": {"$patch": "replace", "c": {"cpu": 8}}, "svc": {"hpa": None}})
    assert found == []
    assert merged == {"nodes": {"c": {"cpu": 8}}, "svc": {"replicas": 2}}


def test_what_an_overlay_cannot_mean_is_a_finding_at_its_place():
    _, found = environments.merge({"svc": {"replicas": 2}}, {"svc": {"hap": None, "$patch": "merge"}})
    assert found == [Finding(("svc", "$patch"), "$patch takes one value, replace (got 'merge')"),
                     Finding(("svc", "hap"), "null removes a key of the base model, and the base has no svc.hap")]
    _, found = environments.merge({"m": {"a": 1}}, {"m": {"$patch": "replace", "a": None}})
    assert [f.loc for f in found] == [("m", "a")]  # nothing left to remove in a replaced map


# ---------------------------------------------------------------------------------------------- the Eco² environments


@pytest.fixture(scope="module")
def eco2():
    return environments.load(VALUES)


def test_three_environments_in_promotion_order_each_on_its_own_nodes(eco2):
    assert list(eco2) == ["dev", "staging", "prod"]
    nodes = {env: set(loaded.model.nodes) for env, loaded in eco2.items()}
    assert len(nodes["prod"]) == 13 and len(nodes["staging"]) < len(nodes["prod"]) and len(nodes["dev"]) < len(nodes["staging"])
    for env, loaded in eco2.items():
        assert loaded.model.cluster.environment == env
        for comp in resolve.components(loaded.model):
            placement = getattr(comp.spec, "placement", None)
            if placement is not None:
                assert placement.node in nodes[env], (env, comp.name)


def test_dev_is_single_replica_rolling_and_without_hpa(eco2):
    services = eco2["dev"].model.services
    assert {s.replicas for s in services.values()} == {1}
    assert all(s.hpa is None for s in services.values())
    assert {s.delivery.strategy for s in services.values() if s.delivery is not None} == {"rolling"}
    assert {s.delivery.strategy for s in eco2["prod"].model.services.values()} == {"rolling", "canary"}


def test_prod_is_the_base_as_written(eco2):
    """prod has no overlay: its model is what values/*.yaml alone says (the model before environments existed)."""
    assert not (VALUES / "environments" / "prod.yaml").exists()
    assert eco2["prod"].model.argocd.name_prefix == ""
    base = {f.name: yaml.safe_load(f.read_text()) for f in VALUES.glob("*.yaml")}
    assert set(eco2["prod"].model.nodes) == set(base["cluster.yaml"]["nodes"])
    assert {n: s.replicas for n, s in eco2["prod"].model.services.items()} == {
        n: s["replicas"] for n, s in base["services.yaml"]["services"].items()}


def test_prod_application_and_project_names_are_the_component_names():
    """No prod Application is renamed: deleting one with the resources finalizer deletes what it deployed."""
    files = output.read_generated(REPO)
    for env, prefix in (("prod", ""), ("staging", "staging-"), ("dev", "dev-")):
        for path, data in files.items():
            if path.startswith(f"rendered/{env}/apps/"):
                doc = yaml.safe_load(data)
                assert doc["metadata"]["name"] == prefix + Path(path).stem, path
            if path.startswith(f"argocd/{env}/projects/"):
                assert yaml.safe_load(data)["metadata"]["name"] == prefix + Path(path).stem
    names = [(yaml.safe_load(d)["kind"], yaml.safe_load(d)["metadata"]["name"]) for p, d in files.items() if p.startswith(("rendered/", "argocd/"))
             and p.endswith(".yaml") and "/values/" not in p and "/manifests/" not in p and "/crds/" not in p
             and not p.endswith("nodes.yaml") and not p.endswith("argocd-cm.yaml")]
    assert len(names) == len(set(names)), "two environments share an Argo CD object name"


# ---------------------------------------------------------------------------------------------- errors, located


def test_an_unknown_field_in_an_overlay_is_an_error_at_the_overlay(model_dir: Path):
    edit(model_dir / "environments/staging.yaml", "  auth: {placement: {node: k8s-api}}",
         "  auth: {placement: {node: k8s-api}, replica: 3}")
    got = messages(model_dir)
    assert got == [position(model_dir, "environments/staging.yaml", "replica: 3")
                   + "services.auth.replica: in staging: unknown field (did you mean 'replicas'?)"]


def test_a_value_an_overlay_sets_is_wrong_at_the_overlay_and_a_base_value_at_the_base(model_dir: Path):
    edit(model_dir / "environments/dev.yaml", "  auth: {placement: {node: k8s-apps}, replicas: 1}",
         "  auth: {placement: {node: k8s-apps}, replicas: -1}")
    edit(model_dir / "services.yaml", "    nodePort: 30082", "    nodePort: 80")
    got = messages(model_dir)
    assert got == [
        position(model_dir, "environments/dev.yaml", "replicas: -1")
        + "services.auth.replicas: in dev: input should be greater than or equal to 0 (got -1)",
        position(model_dir, "services.yaml", "nodePort: 80")
        + "services.userinfo.nodePort: input should be greater than or equal to 30000 (got 80)",
    ]


def test_removing_a_required_field_points_at_the_null(model_dir: Path):
    edit(model_dir / "environments/dev.yaml", "  auth: {placement: {node: k8s-apps}, replicas: 1}",
         "  auth: {placement: {node: k8s-apps}, replicas: 1, image: null}")
    assert messages(model_dir) == [position(model_dir, "environments/dev.yaml", "image: null")
                                   + "services.auth.image: in dev: required field is missing"]


def test_an_overlay_may_remove_a_component(model_dir: Path):
    edit(model_dir / "environments/dev.yaml", "  chat-llm: {placement", "  recycle-info: null\n  chat-llm: {placement")
    edit(model_dir / "environments/dev.yaml", "  recycle-info: {placement: {node: k8s-apps}, replicas: 1}\n", "")
    envs = environments.load(model_dir)
    assert "recycle-info" not in envs["dev"].model.services and "recycle-info" in envs["prod"].model.services


def test_overlay_sections_and_names_are_checked(model_dir: Path):
    (model_dir / "environments/qa.yaml").write_text("services: {}\n")
    edit(model_dir / "environments/dev.yaml", "argocd:\n", "environments: [dev]\nservics: {}\nargocd:\n")
    got = messages(model_dir)
    assert got == ["values/environments/qa.yaml: environment 'qa' is not listed in environments: [dev, staging, prod]"]
    (model_dir / "environments/qa.yaml").unlink()
    assert messages(model_dir) == [
        position(model_dir, "environments/dev.yaml", "environments: [dev]") + "environments: in dev: is written in the base model only",
        position(model_dir, "environments/dev.yaml", "servics:") + "servics: in dev: unknown section (did you mean 'services'?)",
    ]


def test_an_environment_is_named_by_its_file_only(model_dir: Path):
    edit(model_dir / "environments/dev.yaml", "cluster:\n", "cluster:\n  environment: qa\n")
    assert messages(model_dir) == [position(model_dir, "environments/dev.yaml", "environment: qa")
                                   + "cluster.environment: in dev: the environment's name is 'dev', from the file name; remove this field"]
    shutil.copy(VALUES / "environments/dev.yaml", model_dir / "environments/dev.yaml")
    edit(model_dir / "cluster.yaml", "  name: eco2\n", "  name: eco2\n  environment: prod\n")
    assert messages(model_dir) == [position(model_dir, "cluster.yaml", "environment: prod")
                                   + "cluster.environment: each environment is named by `environments:` [dev, staging, prod]; remove this field"]


def test_two_environments_may_not_share_names_or_a_cluster(model_dir: Path):
    edit(model_dir / "environments/staging.yaml", "namePrefix: staging-", "namePrefix: dev-")
    assert messages(model_dir) == [position(model_dir, "environments/staging.yaml", "namePrefix: dev-")
                                   + "argocd.namePrefix: in staging: AppProject dev-apis is also dev's: give each "
                                     "environment its own argocd.namePrefix"]
    edit(model_dir / "environments/staging.yaml", "namePrefix: dev-", "namePrefix: staging-")
    edit(model_dir / "environments/staging.yaml", "server: https://staging.k8s.ecoeco.app:6443", "server: https://dev.k8s.ecoeco.app:6443")
    assert messages(model_dir) == [position(model_dir, "environments/staging.yaml", "server: https://dev")
                                   + "cluster.server: in staging: dev deploys to https://dev.k8s.ecoeco.app:6443 too: two "
                                     "environments in one cluster would share its namespaces"]


def test_a_capacity_error_in_one_environment_names_it_and_the_overlay_line(tmp_path: Path):
    from generator import pipeline
    from generator.errors import ValidationFailed

    root = copy_repo(tmp_path)
    edit(root / "values/environments/staging.yaml", "    instanceType: t3a.xlarge\n    cpu: 4\n    memory: 16Gi\n    labels: {workload: data}",
         "    instanceType: t3a.xlarge\n    cpu: 1\n    memory: 16Gi\n    labels: {workload: data}")
    with pytest.raises(ValidationFailed) as err:
        pipeline.render_to_disk(pipeline.Options(root=root, values=root / "values"), log=lambda _: None)
    out = "\n".join(err.value.lines)
    assert "rendered/staging/nodes.yaml" in out and "Node k8s-data: cpu:" in out
    assert "model: " + position(root / "values", "environments/staging.yaml", "    cpu: 1\n", 4).removesuffix(": ") + " nodes.k8s-data.cpu" in out
    assert "rendered/prod/" not in out and not (root / "rendered").exists()


def test_a_capacity_error_points_at_the_line_whose_edit_pushed_the_node_over(tmp_path: Path):
    """Against the committed tree: auth's replicas grew, so the error points at that line, not at the node."""
    from generator import pipeline
    from generator.errors import ValidationFailed

    root = copy_repo(tmp_path)
    shutil.copytree(REPO / "rendered", root / "rendered")
    shutil.copytree(REPO / "argocd", root / "argocd")
    committed = {p: p.read_bytes() for p in sorted((root / "rendered").rglob("*")) if p.is_file()}
    edit(root / "values/services.yaml", "    placement: {node: k8s-api-auth}\n    replicas: 2\n",
         "    placement: {node: k8s-api-auth}\n    replicas: 30\n")
    with pytest.raises(ValidationFailed) as err:
        pipeline.render_to_disk(pipeline.Options(root=root, values=root / "values"), log=lambda _: None)
    out = "\n".join(err.value.lines)
    replicas = position(root / "values", "services.yaml", "    replicas: 30\n", 4).removesuffix(": ")
    # prod puts auth on its own node; staging and dev share one API node (their overlays place it there)
    assert "Node k8s-api-auth: cpu:" in out and "grown since the committed tree: Deployment api/auth: 3×100m -> 31×100m" in out
    assert out.count(f"model: {replicas} services.auth.replicas") == len([l for l in err.value.lines if "[capacity]" in l])
    assert {p: p.read_bytes() for p in sorted((root / "rendered").rglob("*")) if p.is_file()} == committed


# ---------------------------------------------------------------------------------------------- the CLI


def test_a_second_values_directory_is_refused_and_changes_nothing(tmp_path: Path):
    """The old route to an environment: a copy of values/ with another cluster.environment would delete rendered/prod/."""
    root = copy_repo(tmp_path)
    assert run_cli("render", "--root", str(root), "--no-hydrate").returncode == 0
    before = output.read_generated(root)
    other = tmp_path / "values-qa"
    shutil.copytree(root / "values", other, ignore=shutil.ignore_patterns("environments"))
    edit(other / "cluster.yaml", "environments: [dev, staging, prod]\n", "")
    edit(other / "cluster.yaml", "  name: eco2\n", "  name: eco2\n  environment: qa\n")
    result = run_cli("render", "--root", str(root), "--values", str(other), "--no-hydrate")
    assert result.returncode == 2, result.stderr
    assert "renders qa, but rendered/ holds dev, prod, staging" in result.stderr and "values/environments/<env>.yaml" in result.stderr
    assert output.read_generated(root) == before


def test_render_of_one_environment_leaves_the_others_byte_for_byte(tmp_path: Path):
    root = copy_repo(tmp_path)
    assert run_cli("render", "--root", str(root), "--no-hydrate").returncode == 0
    before = output.read_generated(root)
    edit(root / "values/services.yaml", "ghcr.io/eco2-team/waste-api, tag: v0.6.0", "ghcr.io/eco2-team/waste-api, tag: v0.6.9")
    result = run_cli("render", "--root", str(root), "--no-hydrate", "--env", "dev")
    assert result.returncode == 0, result.stderr
    after = output.read_generated(root)
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    assert changed == {"rendered/dev/values/waste.yaml"}
    bad = run_cli("render", "--root", str(root), "--no-hydrate", "--env", "qa")
    assert bad.returncode == 2 and "no environment 'qa': the model has dev, staging, prod" in bad.stderr


def test_set_image_refuses_an_image_the_last_environment_sets_in_its_overlay(model_dir: Path):
    """Editing the base would leave prod's pinned image as it is: refused at the overlay's line, nothing written."""
    from generator.edit import setimage

    (model_dir / "environments/prod.yaml").write_text("services:\n  waste:\n    image: {repository: ghcr.io/eco2-team/waste-api, tag: v0.5.0}\n")
    before = (model_dir / "services.yaml").read_bytes()
    with pytest.raises(InvalidModel) as err:
        setimage.plan(model_dir, "waste", "v0.6.1")
    assert [str(p) for p in err.value.problems] == [
        "values/environments/prod.yaml:3:5: services.waste.image: prod sets this image in its overlay; set-image "
        "without --env edits the base model: use --env prod"]
    assert (model_dir / "services.yaml").read_bytes() == before


def test_set_image_says_which_environments_keep_an_image_of_their_own(model_dir: Path):
    from generator.edit import setimage

    overlay = model_dir / "environments/dev.yaml"
    text = overlay.read_text()
    assert "  waste: {placement: {node: k8s-apps}, replicas: 1," in text
    overlay.write_text(text.replace("  waste: {placement: {node: k8s-apps}, replicas: 1,",
                                    "  waste: {image: {tag: v0.7.0}, placement: {node: k8s-apps}, replicas: 1,"))
    p = setimage.plan(model_dir, "waste", "v0.6.1")
    line = overlay.read_text().splitlines().index(next(l for l in overlay.read_text().splitlines() if "v0.7.0" in l)) + 1
    assert p.notes == (f"dev keeps its own image (values/environments/dev.yaml:{line}); set it with --env dev",)
    assert setimage.plan(model_dir, "auth", "v0.6.1").notes == ()


def test_the_environment_list_itself_is_checked(model_dir: Path):
    edit(model_dir / "cluster.yaml", "environments: [dev, staging, prod]\n", "environments: []\n")
    assert messages(model_dir) == [position(model_dir, "cluster.yaml", "environments: []") + "environments: lists no environment"]
    edit(model_dir / "cluster.yaml", "environments: []\n", "environments: dev\n")
    assert messages(model_dir)[0].startswith(position(model_dir, "cluster.yaml", "environments: dev") + "environments: input should be a valid list")
    edit(model_dir / "cluster.yaml", "environments: dev\n", "")
    edit(model_dir / "cluster.yaml", "  name: eco2\n", "  name: eco2\n  environment: prod\n")
    assert messages(model_dir) == [
        f"values/environments/{env}.yaml: an overlay, but the base model lists no `environments:` (their promotion order)"
        for env in ("dev", "staging")]


def test_an_unreadable_overlay_is_an_error_at_its_own_position(model_dir: Path):
    edit(model_dir / "environments/staging.yaml", "  namePrefix: staging-\n", "  namePrefix: [staging-\n")
    got = messages(model_dir)
    assert len(got) == 1 and got[0].startswith("values/environments/staging.yaml:") and "YAML syntax" in got[0]
    assert "in staging: " in got[0]  # dev and prod load: only staging has it
