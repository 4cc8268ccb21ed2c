"""Typed promotion between environments, `set-image --env`, and `envs` (drift): only release fields move, each edited
where it changes the target environment alone, comments and every other byte kept."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import REPO, copy_repo
from generator import pipeline
from generator.cli.promote import envs_command, promote_command
from generator.cli.set_image import set_image_command
from generator.edit import envedit, release, setimage, yamledit
from generator.errors import InvalidModel as InvalidModelError
from generator.model import environments
from generator.write import output
from test_set_image import COMMENTED, changed_lines, files

OVERLAYS = Path(__file__).parent / "promote_cases" / "environments"
DIGEST4 = "sha256:" + "4" * 64
DIGEST5 = "sha256:" + "5" * 64


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """The heavily commented set-image model as the base of dev, staging and prod, with commented overlays."""
    values = tmp_path / "values"
    shutil.copytree(COMMENTED, values)
    base = values / "base.yaml"
    text = base.read_text(encoding="utf-8")
    assert "  environment: test\n" in text
    base.write_text("environments: [dev, staging, prod]   # 승격 순서\n" + text.replace("  environment: test\n", ""),
                    encoding="utf-8")
    shutil.copytree(OVERLAYS, values / "environments")
    return values


def promote(root: Path, *args: str):
    return CliRunner().invoke(promote_command, [*args, "--root", str(root), "--no-render"])


def lines_changed(before: dict[str, bytes], after: dict[str, bytes]) -> dict[str, list[tuple[str, str]]]:
    return {n: d for n in sorted(before.keys() | after.keys())
            if (d := changed_lines(before.get(n, b""), after.get(n, b"")))}


def effective(values: Path) -> dict[str, dict]:
    return {env: loaded.model.model_dump(mode="json") for env, loaded in environments.load(values).items()}


# ---------------------------------------------------------------- which fields are release fields


def test_release_fields_are_the_images_and_upstream_charts_the_schema_marks():
    """The schema's marks (an independent reading: the JSON schema as editors see it) name exactly the image and
    chart fields, and every component's release fields are those: Eco² has 13 images (8 workloads, 3 infra, 2
    exporters) and 5 upstream charts."""
    schema = json.loads((REPO / "schema" / "values.schema.json").read_text())
    marked = sorted({(d, prop) for d, node in schema["$defs"].items() for prop, s in node.get("properties", {}).items()
                     if s.get("x-eco2-promotable")})
    assert {prop for _, prop in marked} == {"image", "chart"}
    assert {s["$ref"] for d, node in schema["$defs"].items() for prop, s in node.get("properties", {}).items()
            if s.get("x-eco2-promotable")} == {"#/$defs/Image", "#/$defs/UpstreamChart"}
    envs = environments.load(REPO / "values")
    fields = release.release_fields(envs["prod"].model)
    units = {(comp, rel[:-1]) for comp, per in fields.items() for rel in per}
    assert sum(1 for _, rel in units if rel[-1] == "image") == 13
    assert sum(1 for _, rel in units if rel == ("chart",)) == 5
    assert ("postgresql", ("exporter", "image")) in units and ("redis", ("exporter", "image")) in units
    assert all(rel[-1] in ("image", "chart") for _, rel in units)


# ---------------------------------------------------------------- promotion on the commented model


def reported_lines_hold_the_values(root: Path, stdout: str) -> int:
    """Each reported `file:line: field: old → new` names a line of that file that holds the new value."""
    count = 0
    for line in stdout.splitlines():
        where, _, rest = line.partition(": ")
        file, _, number = where.rpartition(":")
        new = rest.rsplit(" → ", 1)[1]
        text = (root / file).read_text(encoding="utf-8").splitlines()[int(number) - 1]
        assert new in text and rest.split(": ")[0].rsplit(".", 1)[1] + ":" in text, (line, text)
        count += 1
    return count


def test_promotion_copies_only_release_values_into_the_targets_overlay(model: Path):
    before, was = files(model), effective(model)
    result = promote(model.parent, "--from", "dev", "--to", "staging")
    assert result.exit_code == 0, result.output
    after = files(model)
    changed = lines_changed(before, after)
    assert list(changed) == ["environments/staging.yaml"], changed  # the base and dev are untouched
    pairs = changed["environments/staging.yaml"]
    # single: staging's own pin replaced in place, quotes and comment kept
    assert ("  single: {image: {tag: '1.0.5'}}   # 작은따옴표 유지\n",
            "  single: {image: {tag: '1.0.0'}}   # 작은따옴표 유지\n") in pairs
    added = "".join(new for old, new in pairs if old == "")
    assert added == ("    image:\n      tag: 1.1.0\n"  # into hello's block mapping, after its last line
                     "  double:\n    image:\n      tag: 1.1.0\n"
                     "  both:\n    image:\n      tag: sha-def5678\n      digest: " + DIGEST4 + "\n"
                     "infra:\n  postgresql:\n    image:\n      tag: 16.11-alpine\n    exporter:\n      image:\n"
                     "        tag: v0.18.0\n  monitoring:\n    chart:\n      version: 88.6.0\n")
    assert all(old == "" for old, _ in pairs if "single" not in old)
    # every original line (comments, environment fields) is still there, in order
    old_lines = before["environments/staging.yaml"].decode().splitlines()
    new_lines = after["environments/staging.yaml"].decode().splitlines()
    assert [l for l in new_lines if l in old_lines or "single" in l][:len(old_lines)] == \
        [l if "single" not in l else l.replace("1.0.5", "1.0.0") for l in old_lines]
    # the effective models: staging runs dev's release fields and keeps its own replicas; dev and prod did not move
    now = effective(model)
    assert release.drift({e: l for e, l in environments.load(model).items() if e != "prod"}) == []
    assert now["staging"]["services"]["hello"]["replicas"] == 2
    assert {e: m for e, m in now.items() if e != "staging"} == {e: m for e, m in was.items() if e != "staging"}
    assert reported_lines_hold_the_values(model.parent, result.stdout) == 8
    assert all(l.startswith("values/environments/staging.yaml:") for l in result.stdout.splitlines())


def test_promotion_to_the_last_environment_edits_the_base_when_the_others_pin_their_own(model: Path):
    assert promote(model.parent, "--from", "dev", "--to", "staging").exit_code == 0
    others = {e: m for e, m in effective(model).items() if e != "prod"}
    before = files(model)
    result = promote(model.parent, "--from", "staging", "--to", "prod")
    assert result.exit_code == 0, result.output
    changed = lines_changed(before, files(model))
    assert sorted(changed) == ["infra.yaml", "services.yaml"]
    assert changed["services.yaml"] == [
        ("    image: {repository: registry.example.org/hello, tag: 1.0.0}   # 배포 버전\n",
         "    image: {repository: registry.example.org/hello, tag: 1.1.0}   # 배포 버전\n"),
        ('      tag:    "1.0.0"      # quoted on purpose\n', '      tag:    "1.1.0"      # quoted on purpose\n'),
        ("    image: {repository: registry.example.org/both, tag: sha-abc1234, digest: sha256:" + "3" * 64 + "}\n",
         "    image: {repository: registry.example.org/both, tag: sha-def5678, digest: " + DIGEST4 + "}\n")]
    assert changed["infra.yaml"] == [
        ("      tag: 16.10-alpine   # PostgreSQL 16\n", "      tag: 16.11-alpine   # PostgreSQL 16\n"),
        ("      image: {repository: quay.io/prometheuscommunity/postgres-exporter, tag: 16.10-alpine}  # same tag on purpose\n",
         "      image: {repository: quay.io/prometheuscommunity/postgres-exporter, tag: v0.18.0}  # same tag on purpose\n"),
        ("    chart: {repoURL: https://prometheus-community.github.io/helm-charts, name: kube-prometheus-stack, version: 88.5.3}\n",
         "    chart: {repoURL: https://prometheus-community.github.io/helm-charts, name: kube-prometheus-stack, version: 88.6.0}\n")]
    after = effective(model)
    assert {e: m for e, m in after.items() if e != "prod"} == others
    assert release.drift(environments.load(model)) == []


def test_a_value_another_environment_inherits_goes_into_the_targets_overlay_new_file(model: Path):
    """dev → prod while staging inherits the base: the base must not change, so prod gets an overlay of its own."""
    before = files(model)
    result = promote(model.parent, "--from", "dev", "--to", "prod", "hello")
    assert result.exit_code == 0, result.output
    after = files(model)
    assert sorted(lines_changed(before, after)) == ["environments/prod.yaml"]
    text = after["environments/prod.yaml"].decode()
    assert text.startswith("# yaml-language-server: $schema=../../schema/overlay.schema.json\n# prod: ")
    assert text.endswith("services:\n  hello:\n    image:\n      tag: 1.1.0\n")
    assert result.stdout.strip() == "values/environments/prod.yaml:7: services.hello.image.tag: 1.0.0 → 1.1.0"
    assert reported_lines_hold_the_values(model.parent, result.stdout) == 1
    envs = environments.load(model)
    assert envs["staging"].model.services["hello"].image.tag == "1.0.0"
    assert envs["prod"].model.services["hello"].image.tag == "1.1.0"


def test_promoting_what_is_already_there_does_nothing(model: Path):
    before = files(model)
    result = promote(model.parent, "--from", "staging", "--to", "prod", "double")
    assert result.exit_code == 0 and "prod already runs staging's release fields for double; nothing to do" in result.stderr
    assert files(model) == before


@pytest.mark.parametrize("args,message", [
    (("--from", "dev", "--to", "staging", "helo"), "values/: helo: no component named 'helo' in dev (did you mean 'hello'?)"),
    (("--from", "dev", "--to", "qa"), "values/: environments: no environment 'qa': the model has dev, staging, prod"),
    (("--from", "dev", "--to", "dev"), "values/: environments: --from and --to are both dev"),
])
def test_promotion_refuses_bad_arguments(model: Path, args, message):
    before = files(model)
    result = promote(model.parent, *args)
    assert result.exit_code == 2 and message in result.stderr, result.output
    assert files(model) == before


def test_a_component_the_target_removed_is_refused_when_named_and_skipped_otherwise(model: Path):
    edit_text(model / "environments" / "staging.yaml", "  hello:\n    replicas: 2", "  hello: null\n  x-unused:\n    replicas: 2")
    edit_text(model / "environments" / "staging.yaml", "  x-unused:\n    replicas: 2   # 스테이징 복제본 (environment field)\n", "")
    result = promote(model.parent, "--from", "dev", "--to", "staging", "hello")
    assert result.exit_code == 2 and "hello: no component named 'hello' in staging" in result.stderr, result.output
    result = promote(model.parent, "--from", "dev", "--to", "staging")
    assert result.exit_code == 0, result.output
    assert "note: hello is not in staging: nothing promoted" in result.stderr
    assert "hello" not in result.stdout


def test_a_field_the_source_does_not_set_is_refused_at_the_targets_line(model: Path):
    """Promotion sets values and removes none: staging's digest, which dev does not have, is named where it is."""
    edit_text(model / "environments" / "staging.yaml", "{image: {tag: '1.0.5'}}",
              "{image: {tag: '1.0.5', digest: " + DIGEST4 + "}}")
    before = files(model)
    result = promote(model.parent, "--from", "dev", "--to", "staging", "single")
    assert result.exit_code == 2, result.output
    assert ("values/environments/staging.yaml:14:34: services.single.image.digest: staging sets image.digest "
            f"{DIGEST4} and dev does not: promotion sets values and removes none; remove it by hand") in result.stderr
    assert files(model) == before


def test_an_edit_that_would_move_another_environment_is_refused(model: Path, monkeypatch: pytest.MonkeyPatch):
    """Belt and braces behind the placement rule: were it to pick the base while staging inherits it, the check of the
    edited copy refuses."""
    monkeypatch.setattr(envedit, "place", lambda envs, env, loc: envedit.BASE)
    before = files(model)
    result = promote(model.parent, "--from", "dev", "--to", "prod", "hello")
    assert result.exit_code == 2 and "the edit would change staging too; set it by hand" in result.stderr, result.output
    assert files(model) == before


def test_a_value_that_cannot_be_spliced_is_refused_at_its_line(model: Path):
    edit_text(model / "environments" / "staging.yaml", "  single: {image: {tag: '1.0.5'}}", "  single: {image: {tag: !!str '1.0.5'}}")
    result = promote(model.parent, "--from", "dev", "--to", "staging", "single")
    assert result.exit_code == 2, result.output
    assert ("values/environments/staging.yaml:14:20: services.single.image.tag: cannot be edited in place: its tag "
            "carries a YAML tag or anchor; set it by hand") in result.stderr


def edit_text(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (old, path)
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# ---------------------------------------------------------------- set-image --env


def test_set_image_env_changes_that_environment_alone(model: Path):
    before, was = files(model), effective(model)
    result = CliRunner().invoke(set_image_command, ["single", "1.0.6", "--env", "dev", "--root", str(model.parent), "--no-render"])
    assert result.exit_code == 0, result.output
    changed = lines_changed(before, files(model))
    assert changed == {"environments/dev.yaml": [("", "  single:\n"), ("", "    image:\n"), ("", "      tag: 1.0.6\n")]}
    assert result.stdout.splitlines() == ["values/environments/dev.yaml:24: services.single.image.tag: 1.0.0 → 1.0.6"]
    assert reported_lines_hold_the_values(model.parent, result.stdout) == 1
    now = effective(model)
    assert {e: m for e, m in now.items() if e != "dev"} == {e: m for e, m in was.items() if e != "dev"}
    result = CliRunner().invoke(set_image_command, ["single", "1.0.6", "--env", "dev", "--root", str(model.parent), "--no-render"])
    assert result.exit_code == 0 and "in dev, services.single.image.tag is already 1.0.6; nothing to do" in result.stderr


def test_set_image_env_refuses_a_mutable_tag_and_an_unknown_environment(model: Path):
    before = files(model)
    result = CliRunner().invoke(set_image_command, ["hello", "latest", "--env", "dev", "--root", str(model.parent), "--no-render"])
    assert result.exit_code == 2 and "values/environments/dev.yaml:" in result.stderr and "tag 'latest' moves" in result.stderr, result.output
    result = CliRunner().invoke(set_image_command, ["hello", "1.2.0", "--env", "qa", "--root", str(model.parent), "--no-render"])
    assert result.exit_code == 2 and "no environment 'qa': the model has dev, staging, prod" in result.stderr
    assert files(model) == before


# ---------------------------------------------------------------- drift


def test_envs_prints_each_release_field_that_differs_in_promotion_order(model: Path):
    result = CliRunner().invoke(envs_command, ["--root", str(model.parent)])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [  # in the model's component order: infra, then services
        "postgresql image: dev 16.11-alpine, staging 16.10-alpine, prod 16.10-alpine",
        "postgresql exporter.image: dev v0.18.0, staging 16.10-alpine, prod 16.10-alpine",
        "monitoring chart: dev 88.6.0, staging 88.5.3, prod 88.5.3",
        "hello image: dev 1.1.0, staging 1.0.0, prod 1.0.0",
        "single image: dev 1.0.0, staging 1.0.5, prod 1.0.0",
        "double image: dev 1.1.0, staging 1.0.0, prod 1.0.0",
        "both image: dev tag=sha-def5678 digest=" + DIGEST4 + ", staging tag=sha-abc1234 digest=sha256:" + "3" * 64
        + ", prod tag=sha-abc1234 digest=sha256:" + "3" * 64,
    ]
    assert "7 release field(s) differ between dev, staging, prod" in result.stderr


def test_envs_names_a_component_one_environment_does_not_deploy_and_says_when_nothing_differs(model: Path):
    edit_text(model / "environments" / "staging.yaml", "  single: {image: {tag: '1.0.5'}}   # 작은따옴표 유지\n",
              "  single: null\n")
    drift = release.drift(environments.load(model))
    assert "single image: dev 1.0.0, staging (not deployed), prod 1.0.0" in [str(d) for d in drift]
    for env in ("dev", "staging"):
        (model / "environments" / f"{env}.yaml").write_text(
            f"cluster: {{server: 'https://{env}.example.org:6443'}}\nargocd: {{namePrefix: {env}-}}\n", encoding="utf-8")
    result = CliRunner().invoke(envs_command, ["--root", str(model.parent)])
    assert result.exit_code == 0 and result.stdout == ""
    assert "no drift: dev, staging, prod run the same release fields" in result.stderr


# ---------------------------------------------------------------- on the Eco² model, rendered


def test_make_promote_staging_to_prod_waste_changes_promotable_lines_and_prods_files(tmp_path: Path, monkeypatch):
    """The issue's definition of done, on a copy of this repository: a release in staging, promoted to prod."""
    monkeypatch.setenv("ECO2_CACHE", str(REPO / ".cache"))
    root = copy_repo(tmp_path / "repo")
    opts = pipeline.Options(root=root, values=root / "values")
    pipeline.render_to_disk(opts, log=lambda _: None)
    for env in ("dev", "staging"):
        result = CliRunner().invoke(set_image_command, ["waste", "v0.6.1", "--env", env, "--root", str(root)])
        assert result.exit_code == 0, result.output
    before_values, before_out = files(root / "values"), generated(root)
    result = CliRunner().invoke(promote_command, ["--from", "staging", "--to", "prod", "waste", "--root", str(root)])
    assert result.exit_code == 0, result.output
    changed = lines_changed(before_values, files(root / "values"))
    assert changed == {"services.yaml": [("    image: {repository: ghcr.io/eco2-team/waste-api, tag: v0.6.0}\n",
                                          "    image: {repository: ghcr.io/eco2-team/waste-api, tag: v0.6.1}\n")]}
    after_out = generated(root)
    moved = {rel for rel in before_out.keys() | after_out.keys() if before_out.get(rel) != after_out.get(rel)}
    assert moved == {"rendered/prod/values/waste.yaml", "rendered/prod/manifests/waste.yaml"}
    assert [l for l in result.output.splitlines() if l.startswith("rendered: ")] == [f"rendered: {r}" for r in sorted(moved)]
    assert "ghcr.io/eco2-team/waste-api:v0.6.1" in after_out["rendered/prod/manifests/waste.yaml"].decode()
    assert pipeline.check(opts, log=lambda _: None) == []


def generated(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for top in ("rendered", "argocd", "schema") for p in sorted((root / top).rglob("*")) if p.is_file()}


def test_a_promotion_the_target_cannot_render_puts_every_file_back(tmp_path: Path, monkeypatch):
    """What passes the model's checks but not the target's render (a chart version charts.lock does not pin) is
    refused after the write: the overlay is put back byte for byte, and rendered/ is as it was."""
    monkeypatch.setenv("ECO2_CACHE", str(REPO / ".cache"))
    root = copy_repo(tmp_path / "repo")
    pipeline.render_to_disk(pipeline.Options(root=root, values=root / "values"), log=lambda _: None)
    edit_text(root / "values" / "environments" / "dev.yaml", "  monitoring:\n", "  monitoring:\n    chart: {version: 88.6.0}\n")
    before_values, before_out = files(root / "values"), generated(root)
    result = CliRunner().invoke(promote_command, ["--from", "dev", "--to", "staging", "monitoring", "--root", str(root)])
    assert result.exit_code == 2, result.output
    assert "chart kube-prometheus-stack 88.6.0 from https://prometheus-community.github.io/helm-charts is not pinned" in result.stderr
    assert files(root / "values") == before_values and generated(root) == before_out


# ---------------------------------------------------------------- in the pull-request diff


def test_a_release_field_changed_in_one_environment_and_not_the_next_is_named_with_its_promotion(model: Path):
    base = environments.load(model)
    assert release.unpromoted(base, base) == []
    result = CliRunner().invoke(set_image_command, ["single", "1.0.6", "--env", "dev", "--root", str(model.parent), "--no-render"])
    assert result.exit_code == 0, result.output
    head = environments.load(model)
    assert release.unpromoted(base, head) == [
        "not promoted: single image: dev 1.0.6, staging 1.0.5, prod 1.0.0; changed in dev, not in staging: "
        "make promote FROM=dev TO=staging COMPONENT=single"]
    # promoted along in the same change: nothing to say; changed in the last environment: no next one
    assert promote(model.parent, "--from", "dev", "--to", "staging", "single").exit_code == 0
    assert release.unpromoted(base, environments.load(model)) == [
        "not promoted: single image: dev 1.0.6, staging 1.0.6, prod 1.0.0; changed in staging, not in prod: "
        "make promote FROM=staging TO=prod COMPONENT=single"]
    assert promote(model.parent, "--from", "staging", "--to", "prod", "single").exit_code == 0
    assert release.unpromoted(base, environments.load(model)) == []


def test_the_diff_command_reads_both_models_from_git(model: Path):
    import subprocess

    from generator.cli.diff import diff_command

    root = model.parent
    shutil.copytree(REPO / "charts", root / "charts", symlinks=True)
    opts = pipeline.Options(root=root, values=model, hydrate=False, validate=False)
    pipeline.render_to_disk(opts, log=lambda _: None)
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "base"]):
        subprocess.run(["git", "-C", str(root), *args], check=True)
    assert CliRunner().invoke(set_image_command, ["hello", "1.2.0", "--env", "dev", "--root", str(root), "--no-render"]).exit_code == 0
    pipeline.render_to_disk(opts, log=lambda _: None)
    result = CliRunner().invoke(diff_command, ["--base", "HEAD", "--root", str(root)])
    assert ("not promoted: hello image: dev 1.2.0, staging 1.0.0, prod 1.0.0; changed in dev, not in staging: "
            "make promote FROM=dev TO=staging COMPONENT=hello") in result.stdout, result.output


# ---------------------------------------------------------------- every branch of the edit and its checks


def stderr_lines(result) -> list[str]:
    return result.stderr.splitlines()


def test_bad_arguments_are_one_located_line_each(model: Path):
    cases = [
        (["--from", "dev", "--to", "staging", "helo"], "values/: helo: no component named 'helo' in dev (did you mean 'hello'?)"),
        (["--from", "dev", "--to", "staging", "zzz"],
         "values/: zzz: no component named 'zzz' in dev (dev's components with release fields: both, digest-block, "
         "digest-flow, double, hello, monitoring, postgresql, single)"),
        (["--from", "dev", "--to", "qa"], "values/: environments: no environment 'qa': the model has dev, staging, prod"),
        (["--from", "qa", "--to", "uat"], "values/: environments: no environment 'qa', 'uat': the model has dev, staging, prod"),
    ]
    for args, line in cases:
        result = promote(model.parent, *args)
        assert (result.exit_code, stderr_lines(result)) == (2, [line]), (args, result.output)
    result = CliRunner().invoke(set_image_command, ["hello", "1.2.0", "--env", "qa", "--root", str(model.parent), "--no-render"])
    assert stderr_lines(result) == ["values/: environments: no environment 'qa': the model has dev, staging, prod"]


def test_a_component_missing_in_the_target_is_named_with_the_targets_components(model: Path):
    text = (model / "environments" / "staging.yaml").read_text(encoding="utf-8")
    (model / "environments" / "staging.yaml").write_text(text.replace("  hello:\n    replicas: 2   # 스테이징 복제본 (environment field)\n",
                                                                      "  hello: null\n"), encoding="utf-8")
    result = promote(model.parent, "--from", "dev", "--to", "staging", "hello", "single")
    assert stderr_lines(result) == ["values/: hello: no component named 'hello' in staging (staging's components with "
                                    "release fields: both, digest-block, digest-flow, double, monitoring, postgresql, single)"]


def test_the_model_directory_is_named_as_given(model: Path):
    """Messages and changes name the values directory as the caller shows it (display_dir), not as `values`."""
    with pytest.raises(InvalidModelError) as err:
        release.plan_promotion(model, "dev", "qa", display_dir="model")
    assert [str(p) for p in err.value.problems] == ["model/: environments: no environment 'qa': the model has dev, staging, prod"]
    with pytest.raises(InvalidModelError) as err:
        release.plan_set_image(model, "qa", "hello", "1.2.0", display_dir="model")
    assert [str(p) for p in err.value.problems] == ["model/: environments: no environment 'qa': the model has dev, staging, prod"]
    promo = release.plan_promotion(model, "dev", "staging", ("hello",), display_dir="model")
    assert (promo.source, promo.target, promo.skipped) == ("dev", "staging", ())
    assert [str(c) for c in promo.plan.changes] == ["model/environments/staging.yaml:14: services.hello.image.tag: 1.0.0 → 1.1.0"]
    assert promo.plan.env == "staging" and [f.display for f in promo.plan.files] == ["model/environments/staging.yaml"]
    set_ = release.plan_set_image(model, "dev", "both", setimage.Ref(digest=DIGEST5), display_dir="model")
    assert set_.field == "services.both.image"
    assert set_.notes == ("services.both.image.tag stays sha-def5678 (the image is now pinned by tag and digest; the "
                          "digest decides what runs)",)
    assert [str(c) for c in set_.plan.changes] == [f"model/environments/dev.yaml:21: services.both.image.digest: {DIGEST4} → {DIGEST5}"]


def test_several_refusals_are_all_reported(model: Path):
    edit_text(model / "environments" / "staging.yaml", "{image: {tag: '1.0.5'}}",
              "{image: {tag: '1.0.5', digest: " + DIGEST4 + "}}")
    edit_text(model / "environments" / "staging.yaml", "  hello:\n    replicas: 2",
              "  hello:\n    image: {digest: " + DIGEST5 + "}\n    replicas: 2")
    result = promote(model.parent, "--from", "dev", "--to", "staging")
    assert result.exit_code == 2
    assert [l.split(": ", 2)[1] for l in stderr_lines(result)] == ["services.hello.image.digest", "services.single.image.digest"]


def test_a_chart_repository_is_written_under_its_own_key(model: Path):
    """repoURL is the chart's alias: written as such, not as the Python name repo_url."""
    edit_text(model / "environments" / "dev.yaml", "    chart: {version: 88.6.0}     # 차트 버전",
              "    chart: {version: 88.6.0, repoURL: https://charts.example.org/prometheus}")
    result = promote(model.parent, "--from", "dev", "--to", "staging", "monitoring")
    assert result.exit_code == 0, result.output
    text = (model / "environments" / "staging.yaml").read_text(encoding="utf-8")
    assert "      repoURL: https://charts.example.org/prometheus\n" in text and "repo_url" not in text
    assert environments.load(model)["staging"].model.infra["monitoring"].chart.repo_url == "https://charts.example.org/prometheus"


def test_an_overlay_that_replaces_a_mapping_above_the_field_takes_the_value(model: Path):
    """`$patch: replace` over the image: the base does not reach staging's image, so staging's overlay is edited even
    though it does not write the tag (and the base, which prod reads, stays)."""
    edit_text(model / "environments" / "staging.yaml", "  hello:\n    replicas: 2",
              "  hello:\n    image: {$patch: replace, repository: registry.example.org/hello, digest: " + DIGEST5 + "}\n    replicas: 2")
    envs = environments.load(model)
    assert envedit.place(envs, "staging", ("services", "hello", "image", "tag")) == envedit.OVERLAY
    # dev pins hello's tag and staging replaced the image: the base now reaches prod alone
    assert envedit.place(envs, "prod", ("services", "hello", "image", "tag")) == envedit.BASE
    assert envedit.place(envs, "prod", ("services", "double", "image", "tag")) == envedit.OVERLAY  # staging inherits it
    edit_text(model / "environments" / "staging.yaml", "  single: {image: {tag: '1.0.5'}}", "  single: {image: {tag: '1.0.5'}}\n  double: {image: {tag: '1.0.0'}}")
    envs = environments.load(model)
    assert envedit.place(envs, "prod", ("services", "double", "image", "tag")) == envedit.BASE
    assert envedit.place(envs, "prod", ("services", "double", "replicas")) == envedit.OVERLAY  # staging does not write it


def test_the_edited_copy_must_read_the_values_set(model: Path, monkeypatch: pytest.MonkeyPatch):
    real = yamledit.set_value
    monkeypatch.setattr(yamledit, "set_value", lambda text, loc, value: real(text, loc, value + "-x"))
    before = files(model)
    result = promote(model.parent, "--from", "dev", "--to", "staging", "hello")
    assert stderr_lines(result) == ["values/services.yaml:9:53: services.hello.image.tag: cannot be edited in place: "
                                    "staging would read '1.1.0-x', not '1.1.0'; set it by hand"], result.output
    assert files(model) == before


def test_the_edited_copy_must_change_nothing_else_in_the_target(model: Path, monkeypatch: pytest.MonkeyPatch):
    real = yamledit.set_value
    monkeypatch.setattr(yamledit, "set_value",
                        lambda text, loc, value: real(real(text, loc, value).text, ("services", "hello", "path"), "/other"))
    before = files(model)
    result = promote(model.parent, "--from", "dev", "--to", "staging", "hello")
    assert stderr_lines(result) == ["values/services.yaml:9:53: services.hello.image.tag: cannot be edited in place: the "
                                    "edit would change more than these fields (a YAML anchor?); set it by hand"], result.output
    assert files(model) == before


def test_the_edited_copy_must_keep_the_environments(model: Path):
    envs = environments.load(model)
    base = model / "base.yaml"
    text = base.read_text(encoding="utf-8")
    after = text.replace("environments: [dev, staging, prod]", "environments: [staging, dev, prod]").encode()
    with pytest.raises(InvalidModelError) as err:
        envedit._verify(model, envs, "prod", (envedit.FileEdit(base, "values/base.yaml", text.encode(), after),),
                        {("services", "hello", "image", "tag"): "1.0.0"}, "values")
    assert [str(p) for p in err.value.problems] == ["values/base.yaml:1:1: environments: the edit would change the environments"]


def test_another_environment_moved_is_named_at_the_value(model: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(envedit, "place", lambda envs, env, loc: envedit.BASE)
    result = promote(model.parent, "--from", "dev", "--to", "prod", "hello")
    assert stderr_lines(result) == ["values/services.yaml:9:53: services.hello.image.tag: cannot be edited in place: the "
                                    "edit would change staging too; set it by hand"]


def test_the_only_environment_is_edited_in_the_base(model: Path):
    """One environment and no overlay folder: no other environment reads the base, so the base is edited and no
    overlay is made (an overlay folder made from nothing cannot arise: two environments without overlays would share
    one API server and one name prefix, which the model refuses)."""
    shutil.rmtree(model / "environments")
    text = (model / "base.yaml").read_text(encoding="utf-8")
    (model / "base.yaml").write_text(text.replace("environments: [dev, staging, prod]", "environments: [prod]"), encoding="utf-8")
    result = CliRunner().invoke(set_image_command, ["hello", "1.2.0", "--env", "prod", "--root", str(model.parent), "--no-render"])
    assert result.exit_code == 0, result.output
    # prod is the only environment: the base changes it alone
    assert not (model / "environments").exists()
    assert "tag: 1.2.0}" in (model / "services.yaml").read_text(encoding="utf-8")


def test_apply_writes_then_renders_and_puts_every_file_back_when_the_render_fails(model: Path, monkeypatch: pytest.MonkeyPatch):
    root = model.parent
    edit_text(model / "environments" / "staging.yaml", "  single: {image: {tag: '1.0.5'}}",
              "  single: {image: {tag: '1.0.5'}}\n  double: {image: {tag: '1.0.0'}}")
    envs = environments.load(model)
    p = envedit.plan(model, envs, "prod", {("services", "hello", "image", "tag"): "1.1.0",
                                           ("services", "double", "image", "tag"): "1.1.0"})
    assert sorted(f.display for f in p.files) == ["values/environments/prod.yaml", "values/services.yaml"]
    before = files(model)
    opts = pipeline.Options(root=root, values=model, envs=("prod",))

    def broken(opts, log=None):
        raise RuntimeError("helm died")
    monkeypatch.setattr(pipeline, "render_to_disk", broken)
    with pytest.raises(RuntimeError, match="helm died"):
        envedit.apply(opts, p)
    assert files(model) == before and not (model / "environments" / "prod.yaml").exists()

    def renders(opts, log=None):  # what it wrote, as the swap reports it
        (root / "rendered" / "prod").mkdir(parents=True, exist_ok=True)
        (root / "rendered" / "prod" / "x.yaml").write_text("a: 1\n")
        return output.Tree(output.read_generated(root), changed=("rendered/prod/x.yaml",))
    monkeypatch.setattr(pipeline, "render_to_disk", renders)
    assert envedit.apply(opts, p) == ("rendered/prod/x.yaml",)
    after = files(model)
    assert after["environments/prod.yaml"] == p.files[[f.display for f in p.files].index("values/environments/prod.yaml")].after
    assert oct((model / "environments" / "prod.yaml").stat().st_mode & 0o777) == "0o644"
    # planned against files that changed since: nothing is written
    with pytest.raises(InvalidModelError) as err:
        envedit.apply(opts, p)
    assert [str(e) for e in err.value.problems][0].endswith("changed on disk meanwhile; nothing was written, run it again")
    assert files(model) == after


def test_envs_json_lists_the_promotions_waiting(model: Path):
    result = CliRunner().invoke(envs_command, ["--root", str(model.parent), "--format", "json"])
    data = json.loads(result.stdout)
    assert data["environments"] == ["dev", "staging", "prod"]
    assert data["pending"] == [
        {"from": "dev", "to": "staging", "components": ["postgresql", "monitoring", "hello", "single", "double", "both"]},
        {"from": "staging", "to": "prod", "components": ["single"]}]
    assert data["drift"][0] == {"component": "postgresql", "field": "image",
                                "values": {"dev": "16.11-alpine", "staging": "16.10-alpine", "prod": "16.10-alpine"}}
    assert release.pending({"prod": environments.load(model)["prod"]}) == []


def test_drift_names_a_missing_leaf_and_a_missing_component(model: Path):
    edit_text(model / "environments" / "staging.yaml", "  single: {image: {tag: '1.0.5'}}",
              "  single: {image: {tag: '1.0.0', digest: " + DIGEST4 + "}}")
    edit_text(model / "environments" / "staging.yaml", "  hello:\n", "  digest-flow: null\n  hello:\n")
    lines = [str(d) for d in release.drift(environments.load(model))]
    assert f"single image: dev (no digest), staging {DIGEST4}, prod (no digest)" in lines
    # the same where deployed: named by its digest (it has no tag)
    two = "sha256:" + "2" * 64
    assert f"digest-flow image: dev {two}, staging (not deployed), prod {two}" in lines


def test_unpromoted_dedupes_a_unit_skips_new_environments_and_names_exporters(model: Path):
    base = environments.load(model)
    assert CliRunner().invoke(set_image_command, ["both", f"sha-fff1111@{DIGEST5}", "--env", "dev", "--root",
                                                  str(model.parent), "--no-render"]).exit_code == 0
    edit_text(model / "environments" / "dev.yaml", "image: {tag: v0.18.0}", "image: {tag: v0.19.0}")
    head = environments.load(model)
    assert release.unpromoted(base, head) == [
        "not promoted: postgresql exporter.image: dev v0.19.0, staging 16.10-alpine, prod 16.10-alpine; changed in dev, "
        "not in staging: make promote FROM=dev TO=staging COMPONENT=postgresql",
        f"not promoted: both image: dev tag=sha-fff1111 digest={DIGEST5}, staging tag=sha-abc1234 digest=sha256:{'3' * 64}, "
        f"prod tag=sha-abc1234 digest=sha256:{'3' * 64}; changed in dev, not in staging: make promote FROM=dev TO=staging "
        "COMPONENT=both"]
    # an environment the base did not have: nothing of it counts as changed
    assert release.unpromoted({e: l for e, l in base.items() if e != "dev"}, head) == []
