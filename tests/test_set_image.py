"""set-image: a byte-exact edit of one image in values/, validated on a copy, then re-rendered (or nothing changes)."""

from __future__ import annotations

import difflib
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import REPO, copy_repo
from generator import pipeline
from generator.cli.set_image import set_image_command
from generator.edit import setimage
from generator.errors import InvalidModel, ValidationFailed
from generator.helm import HelmError
from generator.model.loader import load
from generator.write import output

COMMENTED = Path(__file__).parent / "set_image_cases" / "commented" / "values"
DIGEST4 = "sha256:" + "4" * 64
DIGEST5 = "sha256:" + "5" * 64


def files(values: Path) -> dict[str, bytes]:
    """Every file of a model directory by name, bytes exactly (a leftover temp file would show up here too)."""
    return {p.relative_to(values).as_posix(): p.read_bytes() for p in sorted(values.rglob("*")) if p.is_file()}


def commented_copy(tmp_path: Path, variant: str = "lf") -> Path:
    """The commented model in tmp_path/values: as stored (LF), with CRLF line ends, or CRLF plus a UTF-8 BOM.

    The CRLF variants are made here rather than stored, so no git or editor setting can normalise them away.
    """
    values = tmp_path / "values"
    shutil.copytree(COMMENTED, values)
    if variant != "lf":
        for p in values.glob("*.yaml"):
            text = p.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            p.write_bytes((b"\xef\xbb\xbf" if variant == "crlf-bom" else b"") + text)
    return values


def run(root: Path, *args: str):
    return CliRunner().invoke(set_image_command, [*args, "--root", str(root), "--no-render"])


def changed_lines(before: bytes, after: bytes) -> list[tuple[str, str]]:
    """(old, new) per changed line, keeping line ends; a line added or removed pairs with ''."""
    a = before.decode("utf-8").splitlines(keepends=True)
    b = after.decode("utf-8").splitlines(keepends=True)
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        if op != "equal":
            olds, news = a[i1:i2], b[j1:j2]
            n = max(len(olds), len(news))
            out += [((olds + [""] * n)[k], (news + [""] * n)[k]) for k in range(n)]
    return out


def test_fixture_is_as_awkward_as_the_tests_need():
    """Guards the fixture: if someone 'tidies' it, the byte-exact tests below would prove much less."""
    text = (COMMENTED / "services.yaml").read_text(encoding="utf-8")
    assert len(re.findall(r"tag:", text)) >= 8  # the sed pitfall: many tag: lines, some in comments and values
    assert text.count("tag: 1.0.0") >= 2 and "'1.0.0'" in text and '"1.0.0"' in text
    assert re.search(r"[가-힣]", text) and not text.endswith("\n")
    assert "image: {\n" in text and "    image:\n      # " in text
    load(COMMENTED)  # and it is a valid model


# (component, ref, fragment of the line before, what that fragment must become) - one line, one splice.
SPLICES = [
    ("hello", "v1.0.1", "tag: 1.0.0}", "tag: v1.0.1}"),
    ("hello", "16.11", "tag: 1.0.0}", 'tag: "16.11"}'),  # plain 16.11 would load as a float: quoted
    ("single", "1.0.1", "tag:  '1.0.0'   }", "tag:  '1.0.1'   }"),
    ("double", "1.0.1", 'tag:    "1.0.0"      #', 'tag:    "1.0.1"      #'),
    ("both", "sha-def5678", "tag: sha-abc1234,", "tag: sha-def5678,"),
    ("both", DIGEST4, "digest: sha256:" + "3" * 64 + "}", f"digest: {DIGEST4}}}"),
    ("hello", DIGEST5, "tag: 1.0.0}", f"tag: 1.0.0, digest: {DIGEST5}}}"),  # a new key in a flow mapping: same line
    ("postgresql", "16.11-alpine", "tag: 16.10-alpine   #", "tag: 16.11-alpine   #"),  # block; not the exporter's
]


@pytest.fixture(params=["libyaml", "ruamel"])
def composer(request, monkeypatch: pytest.MonkeyPatch) -> str:
    """The splice composes with libyaml, and with ruamel where libyaml refuses the text: both must give the same edit."""
    if request.param == "ruamel":
        def refuse(*args, **kwargs):
            raise setimage.yamledit.yaml.YAMLError("refused, as for YAML that only 1.2 allows")
        monkeypatch.setattr(setimage.yamledit.yaml, "compose", refuse)
    return request.param


@pytest.mark.parametrize("variant", ["lf", "crlf", "crlf-bom"])
@pytest.mark.parametrize("component,ref,old,new", SPLICES, ids=[f"{c}={r[:12]}" for c, r, _, _ in SPLICES])
def test_only_the_value_bytes_change(tmp_path: Path, variant: str, component: str, ref: str, old: str, new: str, composer: str):
    values = commented_copy(tmp_path, variant)
    before = files(values)
    result = run(tmp_path, component, ref)
    assert result.exit_code == 0, result.output
    after = files(values)
    assert after.keys() == before.keys()
    edited = [name for name in before if before[name] != after[name]]
    assert len(edited) == 1, edited
    lines = changed_lines(before[edited[0]], after[edited[0]])
    assert len(lines) == 1, lines
    old_line, new_line = lines[0]
    assert old_line.count(old) == 1, (old, old_line)
    assert new_line == old_line.replace(old, new), (old_line, new_line)
    # the whole file, byte for byte: that one line replaced, nothing else (line ends and BOM included)
    assert after[edited[0]] == before[edited[0]].replace(old_line.encode(), new_line.encode(), 1)
    assert f"{edited[0]}:" in result.stdout and f"→ {ref}" in result.stdout


@pytest.mark.parametrize("variant", ["lf", "crlf"])
@pytest.mark.parametrize("component,added", [
    ("digest-block", "      tag: v2.0.0"),  # block mapping: a new line with the siblings' indentation
    ("digest-flow", "      tag: v2.0.0,"),  # flow mapping written over several lines: likewise
])
def test_adding_a_tag_to_a_digest_only_image_adds_exactly_one_line(tmp_path: Path, variant: str, component: str, added: str,
                                                                   composer: str):
    values = commented_copy(tmp_path, variant)
    before = files(values)
    result = run(tmp_path, component, "v2.0.0")
    assert result.exit_code == 0, result.output
    assert "(added line)" in result.stdout and "note: " in result.stderr  # the digest still decides what runs
    after = files(values)
    assert {n for n in before if before[n] != after[n]} == {"services.yaml"}
    a, b = before["services.yaml"].decode().splitlines(True), after["services.yaml"].decode().splitlines(True)
    nl = "\r\n" if variant == "crlf" else "\n"
    at = next(i for i, line in enumerate(a) if f"registry.example.org/{component}" in line) + 1
    assert b == a[:at] + [added + nl] + a[at:]
    model = load(values).model
    assert model.services[component].image.tag == "v2.0.0" and model.services[component].image.digest


def test_tag_and_digest_at_once(tmp_path: Path):
    values = commented_copy(tmp_path)
    result = run(tmp_path, "digest-block", f"v2.0.0@{DIGEST4}")
    assert result.exit_code == 0, result.output
    image = load(values).model.services["digest-block"].image
    assert (image.tag, image.digest) == ("v2.0.0", DIGEST4)
    assert len(changed_lines((COMMENTED / "services.yaml").read_bytes(), (values / "services.yaml").read_bytes())) == 2


def test_sed_pitfall_only_the_components_tag_line_changes(tmp_path: Path):
    """The old `sed -i "s|tag: .*|tag: X|"` rewrote every tag: line; set-image touches one."""
    values = commented_copy(tmp_path)
    text = (values / "services.yaml").read_text(encoding="utf-8")
    sed = re.sub(r"tag: .*", "tag: v9.9.9", text)
    assert len(changed_lines(text.encode(), sed.encode())) >= 6  # what the old way would have done
    assert run(tmp_path, "double", "v9.9.9").exit_code == 0
    (old, new), = changed_lines(text.encode(), (values / "services.yaml").read_bytes())
    assert '"1.0.0"' in old and '"v9.9.9"' in new
    model = load(values).model
    assert {n: s.image.tag for n, s in model.services.items()} == {
        "hello": "1.0.0", "single": "1.0.0", "double": "v9.9.9", "digest-block": None, "digest-flow": None,
        "both": "sha-abc1234"}
    assert model.infra["postgresql"].exporter.image.tag == "16.10-alpine"


@pytest.mark.parametrize("ref,field,message", [
    ("latest", "tag", "tag 'latest' moves"),
    ("main", "tag", "tag 'main' moves"),
    ("LATEST", "tag", "tag 'LATEST' moves"),
    ("1", "tag", "tag '1' is not immutable"),
    ("", "tag", "tag '' is not immutable"),
    ("not a tag", "tag", "tag 'not a tag' is not immutable"),
    ("registry.example.org/hello:v1.2.3", "tag", "not repository:tag"),
    ("sha256:abc", "digest", "'sha256:abc' is not a digest"),
    ("sha256:" + "A" * 64, "digest", "is not a digest"),
    ("v1.2.3@sha256:zz", "digest", "'sha256:zz' is not a digest"),
])
def test_rejects_what_the_model_rejects_and_changes_nothing(tmp_path: Path, ref: str, field: str, message: str):
    values = commented_copy(tmp_path)
    before = files(values)
    result = run(tmp_path, "hello", ref)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert re.match(rf"^values/services\.yaml:\d+:\d+: services\.hello\.image\.{field}: ", lines[0]), lines[0]
    assert message in lines[0]
    assert files(values) == before


def test_same_rule_as_the_loader(tmp_path: Path):
    """A tag set-image refuses is one the loader refuses when written by hand, with the same message."""
    values = commented_copy(tmp_path)
    refused = run(tmp_path, "hello", "stable").stderr.strip()
    text = (values / "services.yaml").read_text(encoding="utf-8")
    (values / "services.yaml").write_text(text.replace("tag: 1.0.0}", "tag: stable}", 1), encoding="utf-8")
    with pytest.raises(InvalidModel) as exc:
        load(values)
    assert [str(p) for p in exc.value.problems] == [refused]


@pytest.mark.parametrize("component,pattern", [
    ("helo", r"^values/services\.yaml:\d+:\d+: services\.helo: no component named 'helo' \(did you mean 'hello'\?\)$"),
    ("postgres", r"^values/infra\.yaml:\d+:\d+: infra\.postgres: no component named 'postgres' \(did you mean 'postgresql'\?\)$"),
    ("zzz", r"^values/: zzz: no component named 'zzz' \(components with an image: both, digest-block, .*\)$"),
    ("monitoring", r"^values/infra\.yaml:\d+:\d+: infra\.monitoring: component 'monitoring' has no image: .*upstream chart kube-prometheus-stack 88\.5\.3"),
    ("platform", r"^values/base\.yaml:\d+:\d+: platform: component 'platform' has no image: it is the platform app"),
])
def test_unknown_or_imageless_components(tmp_path: Path, component: str, pattern: str):
    values = commented_copy(tmp_path)
    before = files(values)
    result = run(tmp_path, component, "v1.0.1")
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1 and re.match(pattern, result.stderr.strip()), result.stderr
    assert files(values) == before


def test_no_op_writes_nothing(tmp_path: Path):
    values = commented_copy(tmp_path)
    inode = (values / "services.yaml").stat().st_ino
    result = run(tmp_path, "single", "1.0.0")
    assert result.exit_code == 0
    assert "services.single.image.tag is already 1.0.0; nothing to do" in result.stderr and result.stdout == ""
    assert (values / "services.yaml").stat().st_ino == inode  # not even rewritten with the same bytes
    assert files(values) == files(COMMENTED)


def test_an_image_shared_through_an_anchor_is_refused(tmp_path: Path):
    """Splicing the anchored text would move every alias of it too; the meaning check catches that."""
    values = commented_copy(tmp_path)
    path = values / "services.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("image: {repository: registry.example.org/hello, tag: 1.0.0}", "image: &shared {repository: registry.example.org/hello, tag: 1.0.0}")
    text = text.replace("image: {  repository:   registry.example.org/single ,   tag:  '1.0.0'   }", "image: *shared")
    path.write_text(text, encoding="utf-8")
    load(values)
    before = files(values)
    result = run(tmp_path, "hello", "v1.0.1")
    assert result.exit_code == 2
    assert re.match(r"^values/services\.yaml:\d+:\d+: services\.hello\.image: cannot be edited in place: .*anchor", result.stderr)
    assert files(values) == before


def test_the_edited_copy_must_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The last gate before writing is loading the whole edited model: a splice that breaks it never lands."""
    values = commented_copy(tmp_path)
    before = files(values)
    monkeypatch.setattr(setimage.yamledit, "scalar", lambda value, style, flow: "16.11")  # plain 16.11 is a float
    monkeypatch.setattr(setimage, "_only_image_changed", lambda *a: None)  # let the broken text through to the load
    result = run(tmp_path, "hello", "v1.0.1")
    assert result.exit_code == 2
    assert re.match(r"^values/services\.yaml:\d+:\d+: services\.hello\.image\.tag: input should be a valid string", result.stderr), result.stderr
    assert files(values) == before


def test_a_file_changed_after_planning_is_not_overwritten(tmp_path: Path):
    values = commented_copy(tmp_path)
    p = setimage.plan(values, "hello", "v1.0.1")
    theirs = (values / "services.yaml").read_bytes().replace(b"GREETING", b"GREETINGS")
    (values / "services.yaml").write_bytes(theirs)
    with pytest.raises(InvalidModel, match="changed on disk"):
        setimage.write(p)
    assert (values / "services.yaml").read_bytes() == theirs
    assert sorted(p.name for p in values.iterdir()) == sorted(p.name for p in COMMENTED.iterdir())


def test_a_failed_render_puts_the_model_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    values = commented_copy(tmp_path)
    before = files(values)

    def broken(opts, log=None):
        assert (opts.values / "services.yaml").read_bytes() != before["services.yaml"]  # it renders the new model
        raise HelmError("helm template failed: boom")

    monkeypatch.setattr(pipeline, "render_to_disk", broken)
    result = CliRunner().invoke(set_image_command, ["hello", "v1.0.1", "--root", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == ["error: helm template failed: boom", "nothing was written."]
    assert files(values) == before


def test_validation_findings_in_the_render_put_the_model_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    values = commented_copy(tmp_path)
    before = files(values)

    def rejected(opts, log=None):
        raise ValidationFailed(["rendered/test/manifests/hello.yaml: Deployment/api/hello: image is bad"], 1)

    monkeypatch.setattr(pipeline, "render_to_disk", rejected)
    result = CliRunner().invoke(set_image_command, ["hello", "v1.0.1", "--root", str(tmp_path)])
    assert result.exit_code == 1  # findings, as for `render`
    assert result.stderr.splitlines()[-1] == "1 validation finding(s); nothing was written."
    assert files(values) == before


def test_ref_parsing():
    assert setimage.Ref.parse("v0.6.1") == setimage.Ref(tag="v0.6.1")
    assert setimage.Ref.parse(DIGEST4) == setimage.Ref(digest=DIGEST4)
    assert setimage.Ref.parse(f"sha-abc1234@{DIGEST4}") == setimage.Ref("sha-abc1234", DIGEST4)
    assert setimage.Ref.parse(f"@{DIGEST4}") == setimage.Ref(digest=DIGEST4)
    assert setimage.Ref.parse("sha-abc1234") == setimage.Ref(tag="sha-abc1234")  # a build tag, not a digest


# ---------------------------------------------------------------- the Eco² model


@pytest.fixture
def eco2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ECO2_CACHE", str(REPO / ".cache"))  # share helm and the hydration cache with the repo
    return copy_repo(tmp_path / "repo")


def generated(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for top in ("rendered", "argocd", "schema") for p in sorted((root / top).rglob("*")) if p.is_file()}


def test_eco2_waste_changes_one_line_and_its_rendered_files(eco2: Path):
    """The issue's definition of done: `make set-image COMPONENT=waste TAG=v0.6.1`, on a copy of this repository.

    HYDRATED: needs every chart under charts/ to render with helm and validate (CRD schemas as for
    `make render`). If this fails in the baseline render (before set-image runs) or while
    test_eco2_waste_without_hydration passes, the charts or the repository's own model are the
    cause, not set-image. Deliberately not skipped or weakened in that case.
    """
    pipeline.render_to_disk(pipeline.Options(root=eco2, values=eco2 / "values"), log=lambda _: None)
    values_before, out_before = files(eco2 / "values"), generated(eco2)
    result = CliRunner().invoke(set_image_command, ["waste", "v0.6.1", "--root", str(eco2)])
    assert result.exit_code == 0, result.output
    values_after, out_after = files(eco2 / "values"), generated(eco2)
    lines = [(n, d) for n in values_before for d in changed_lines(values_before[n], values_after[n])]
    assert len(lines) == 1, lines
    name, (old, new) = lines[0]
    assert name == "services.yaml" and "waste-api" in old and new == old.replace("tag: v0.6.0", "tag: v0.6.1")
    changed = {rel for rel in out_before.keys() | out_after.keys() if out_before.get(rel) != out_after.get(rel)}
    # The base holds waste's image and no overlay pins another: every environment gets the new tag.
    assert changed == {f"rendered/{env}/{d}/waste.yaml" for env in ("dev", "staging", "prod") for d in ("values", "manifests")}
    assert "ghcr.io/eco2-team/waste-api:v0.6.1" in out_after["rendered/prod/manifests/waste.yaml"].decode()
    assert [l for l in result.stdout.splitlines() if l.startswith("rendered: ")] == [f"rendered: {r}" for r in sorted(changed)]
    assert re.search(r"^values/services\.yaml:\d+: services\.waste\.image\.tag: v0\.6\.0 → v0\.6\.1$", result.stdout, re.M)


def test_eco2_waste_without_hydration(eco2: Path):
    """The same without helm: only the values file of waste changes (manifests are not produced in this mode)."""
    opts = pipeline.Options(root=eco2, values=eco2 / "values", hydrate=False)
    pipeline.render_to_disk(opts, log=lambda _: None)
    before = generated(eco2)
    result = setimage.set_image(eco2, "waste", "v0.6.1", hydrate=False, log=lambda _: None)
    after = generated(eco2)
    assert result.written and result.rendered == tuple(f"rendered/{env}/values/waste.yaml" for env in ("dev", "prod", "staging"))
    assert {rel for rel in before.keys() | after.keys() if before.get(rel) != after.get(rel)} == set(result.rendered)


@pytest.mark.parametrize("component,ref,file,fragment", [
    ("ai-worker", "sha-abc1234", "workers.yaml", "ghcr.io/eco2-team/ai-worker, tag: sha-abc1234}"),
    ("redis", "7.4.6-alpine", "infra.yaml", "docker.io/library/redis, tag: 7.4.6-alpine}"),  # not its exporter
    ("waste", DIGEST4, "services.yaml", f"waste-api, tag: v0.6.0, digest: {DIGEST4}}}"),
])
def test_eco2_other_components_no_render(eco2: Path, component: str, ref: str, file: str, fragment: str):
    before = files(eco2 / "values")
    result = run(eco2, component, ref)
    assert result.exit_code == 0, result.output
    after = files(eco2 / "values")
    lines = [(n, d) for n in before for d in changed_lines(before[n], after[n])]
    assert len(lines) == 1 and lines[0][0] == file and fragment in lines[0][1][1], lines
    assert not (eco2 / "rendered").exists()  # --no-render
    load(eco2 / "values")


# ---------------------------------------------------------------- the text edit itself, on small documents

D1 = "sha256:" + "1" * 64


def splice(text: str, wanted: dict[str, str], tag: str | None = "v1", digest: str | None = None) -> tuple[str, list[str]]:
    """setimage's splice of `x.image` in `text` (no model needed), and the changes as the CLI prints them."""
    from generator.model.model import Image

    image = Image.model_construct(repository="r.example.org/x", tag=tag, digest=digest)
    new, changes = setimage._splice(text, ("x", "image"), wanted, image, "values/x.yaml", None)
    assert setimage._yaml().load(new)["x"]["image"] == {**setimage._yaml().load(text)["x"]["image"], **wanted}
    return new, [str(c) for c in changes]


@pytest.mark.parametrize("nl", ["\n", "\r\n"])
def test_a_new_block_entry_copies_the_siblings_indentation_and_the_line_break(nl):
    text = nl.join(["x:", "  image:", "    repository: r.example.org/x", "    tag: v1", "  replicas: 1", ""])
    assert splice(text, {"digest": D1}) == (
        nl.join(["x:", "  image:", "    repository: r.example.org/x", "    tag: v1", f"    digest: {D1}", "  replicas: 1", ""]),
        [f"values/x.yaml:5: x.image.digest: (not set) → {D1} (added line)"])


def test_a_new_line_takes_the_line_break_of_the_image_not_of_the_first_line():
    text = "# written on Linux, edited on Windows\nx:\r\n  image:\r\n    repository: r.example.org/x\r\n    tag: v1\r\n"
    assert splice(text, {"digest": D1})[0] == text + f"    digest: {D1}\r\n"


def test_a_new_entry_on_the_last_line_keeps_the_file_without_final_line_break():
    text = "x:\n  image:\n    repository: r.example.org/x\n    tag: v1"
    assert splice(text, {"digest": D1}) == (text + f"\n    digest: {D1}",
                                            [f"values/x.yaml:5: x.image.digest: (not set) → {D1} (added line)"])
    crlf = text.replace("\n", "\r\n")
    assert splice(crlf, {"digest": D1})[0] == crlf + f"\r\n    digest: {D1}"


def test_a_new_entry_after_a_block_scalar_goes_where_the_scalar_ends():
    text = f"x:\n  image:\n    repository: >-\n      r.example.org/x\n    digest: {D1}\n  replicas: 1\n"
    assert splice(text, {"tag": "v2"}, tag=None, digest=D1) == (
        f"x:\n  image:\n    repository: >-\n      r.example.org/x\n    tag: v2\n    digest: {D1}\n  replicas: 1\n",
        ["values/x.yaml:5: x.image.tag: (not set) → v2 (added line)"])


@pytest.mark.parametrize("written,added", [
    ("    tag:   v1\n", f"    digest:   {D1}\n"),  # the predecessor's spacing after the colon
    ("    tag : v1\n", f"    digest: {D1}\n"),  # not a plain colon first: the usual ': '
    ("    tag:\n      v1\n", f"    digest: {D1}\n"),  # value on the next line
    ("    tag: # pinned\n      v1\n", f"    digest: {D1}\n"),  # a comment between key and value
])
def test_a_new_block_entry_takes_the_separator_of_its_predecessor_when_it_is_a_plain_one(written, added):
    text = "x:\n  image:\n    repository: r.example.org/x\n" + written + "  replicas: 1\n"
    assert splice(text, {"digest": D1})[0] == text.replace(written, written + added)


@pytest.mark.parametrize("written,new", [
    ("{repository: r.example.org/x, tag: v1}", f"{{repository: r.example.org/x, tag: v1, digest: {D1}}}"),
    ("{repository: r.example.org/x ,  tag: v1}", f"{{repository: r.example.org/x ,  tag: v1 ,  digest: {D1}}}"),  # its spacing
    ("{tag: v1,   repository: r.example.org/x}", f"{{tag: v1,   digest: {D1},   repository: r.example.org/x}}"),  # right after tag
    ("{repository: r.example.org/x,  # where\n     tag: v1}", f"{{repository: r.example.org/x,  # where\n     tag: v1,\n     digest: {D1}}}"),
    ("{repository: r.example.org/x,\n     tag: v1}", f"{{repository: r.example.org/x,\n     tag: v1,\n     digest: {D1}}}"),
    ("{repository: r.example.org/x,  # where\n\n     tag: v1}",  # the indentation of the line the next entry is on
     f"{{repository: r.example.org/x,  # where\n\n     tag: v1,\n     digest: {D1}}}"),
])
def test_a_new_flow_entry_copies_the_separator_between_its_neighbours(written, new):
    text = f"x:\n  image: {written}\n  replicas: 1\n"
    assert splice(text, {"digest": D1})[0] == text.replace(written, new)


def test_a_tag_goes_after_the_repository_and_a_digest_after_the_tag():
    text = "x:\n  image: {repository: r.example.org/x}\n"
    new, changes = splice(text, {"tag": "v2", "digest": D1}, tag=None)
    assert new == f"x:\n  image: {{repository: r.example.org/x, tag: v2, digest: {D1}}}\n"
    assert changes == ["values/x.yaml:2: x.image.tag: (not set) → v2", f"values/x.yaml:2: x.image.digest: (not set) → {D1}"]
    text = f"x:\n  image: {{repository: r.example.org/x, digest: {D1}}}\n"
    assert splice(text, {"tag": "v2"}, tag=None, digest=D1)[0] == f"x:\n  image: {{repository: r.example.org/x, tag: v2, digest: {D1}}}\n"


def test_replacing_both_values_reports_each_on_its_line():
    text = f"x:\n  image:\n    repository: r.example.org/x\n    tag: v1\n    digest: {D1}\n"
    new, changes = splice(text, {"tag": "v2", "digest": DIGEST4}, digest=D1)
    assert new == f"x:\n  image:\n    repository: r.example.org/x\n    tag: v2\n    digest: {DIGEST4}\n"
    assert changes == ["values/x.yaml:4: x.image.tag: v1 → v2", f"values/x.yaml:5: x.image.digest: {D1} → {DIGEST4}"]


@pytest.mark.parametrize("written,why", [
    ("tag: |\n      v1\n", "its tag is written as a | block"),
    ("tag: >\n      v1\n", "its tag is written as a > block"),
    ("tag: [v1]\n", "its tag is written as a non-scalar block"),
    ("tag: \"v1\n      \"\n", "its tag spans several lines"),
    ("tag: &t v1\n", "its tag carries a YAML tag or anchor"),
    ("tag: !!str v1\n", "its tag carries a YAML tag or anchor"),
])
@pytest.mark.parametrize("compose", ["libyaml", "ruamel"])
def test_values_a_splice_cannot_rewrite_say_how_they_are_written(written, why, compose):
    text = "x:\n  image:\n    repository: r.example.org/x\n    " + written
    root = setimage._compose(text) if compose == "libyaml" else setimage._yaml().compose(text)
    assert isinstance(root, setimage.yamledit.yaml.Node if compose == "libyaml" else setimage.Node)
    mapping = setimage._find(root, ("x", "image"))
    with pytest.raises(setimage._Unsupported) as err:
        setimage._replace(text, mapping, "tag", "v2", "v1")
    assert str(err.value) == why


def test_an_image_whose_repository_comes_from_a_merge_key_cannot_get_a_tag():
    text = f"base: &base {{repository: r.example.org/x}}\nx:\n  image:\n    <<: *base\n    digest: {D1}\n"
    mapping = setimage._find(setimage._yaml().compose(text), ("x", "image"))
    with pytest.raises(setimage._Unsupported) as err:
        setimage._insert(text, mapping, "tag", "v2")
    assert str(err.value) == "it has no repository to place the new tag after"


@pytest.mark.parametrize("text,at,nl", [
    ("a\nb\r\nc\n", 0, "\n"), ("a\nb\r\nc\n", 2, "\r\n"), ("a\r\nb\nc", 5, "\n"),
    ("a\r\nb", 3, "\r\n"),  # the last line has no break: the one before it decides
    ("ab", 1, "\n"), ("\nab", 2, "\n"), ("\nab\r", 2, "\n"), ("\r\nab", 0, "\r\n"),
])
def test_the_line_break_is_the_one_of_the_line_being_edited(text, at, nl):
    assert setimage._line_end(text, at) == nl


def test_changes_print_as_file_line_field_old_and_new():
    assert str(setimage.Change("values/s.yaml", 7, "services.a.image.tag", "v1", "v2")) == "values/s.yaml:7: services.a.image.tag: v1 → v2"
    assert str(setimage.Change("values/s.yaml", 8, "services.a.image.digest", None, D1, added_line=True)) == (
        f"values/s.yaml:8: services.a.image.digest: (not set) → {D1} (added line)")


def test_generated_files_are_the_managed_folders_and_the_chart_schemas(tmp_path: Path):
    for rel in ("rendered/prod/a.yaml", "argocd/root.yaml", "schema/values.schema.json", "charts/api/values.schema.json",
                "charts/api/values.yaml", "values/x.yaml", "rendered/prod/sub/b.yaml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(rel.encode())
    (tmp_path / "rendered" / "empty").mkdir()
    assert output.read_generated(tmp_path, chart_schemas=True) == {rel: rel.encode() for rel in (
        "rendered/prod/a.yaml", "rendered/prod/sub/b.yaml", "argocd/root.yaml", "schema/values.schema.json",
        "charts/api/values.schema.json")}
    assert output.read_generated(tmp_path / "nowhere", chart_schemas=True) == {}


@pytest.mark.parametrize("value,style,flow,written", [
    ("v1.2.3", None, False, "v1.2.3"),
    ("16.10", None, False, '"16.10"'),  # a float to YAML: quoted
    ("true", None, True, '"true"'),  # a bool
    ("a: b", None, False, '"a: b"'),  # would not parse as a plain value at all
    ("a,b", None, True, '"a,b"'),  # a comma ends a plain value in a flow mapping ...
    ("a,b", None, False, "a,b"),  # ... not in a block one
    ("it's", "'", False, "'it''s'"),  # the quotes it was written in, escaped their way
    ('say "hi" \\o/', '"', False, '"say \\"hi\\" \\\\o/"'),
])
def test_a_value_is_written_plain_only_when_it_reads_back_as_the_same_string(value, style, flow, written):
    assert setimage._scalar(value, style, flow) == written
    assert setimage._yaml().load(f"k: {written}\n")["k"] == value


def test_a_value_starting_like_a_yaml_tag_character_is_still_replaced():
    text = "x:\n  image:\n    repository: r.example.org/x\n    tag: X1\n"
    mapping = setimage._find(setimage._yaml().compose(text), ("x", "image"))
    edit = setimage._replace(text, mapping, "tag", "X2", "X1")
    assert text[:edit.start] + edit.replacement + text[edit.end:] == text.replace("X1", "X2")


# ---------------------------------------------------------------- every message whole, and the write path

WITH_IMAGE = "components with an image: both, digest-block, digest-flow, double, hello, postgresql, single"
IMMUTABLE = "is not immutable: use a full version (v1.2.3, 16.10, 3.13.7-management), a build tag sha-<hex>, or a digest"


@pytest.mark.parametrize("component,ref,stderr", [
    ("zzz", "v1.0.1", f"values/: zzz: no component named 'zzz' ({WITH_IMAGE})"),
    ("helo", "v1.0.1", "values/services.yaml:5:1: services.helo: no component named 'helo' (did you mean 'hello'?)"),
    ("hallo-welt", "v1.0.1", f"values/: hallo-welt: no component named 'hallo-welt' ({WITH_IMAGE})"),  # 0.53 like hello: no guess
    ("monitoring", "v1.0.1", "values/infra.yaml:23:3: infra.monitoring: component 'monitoring' has no image: it is "
                             "kube-prometheus-stack, whose images come from its upstream chart kube-prometheus-stack 88.5.3 "
                             f"({WITH_IMAGE})"),
    ("platform", "v1.0.1", "values/base.yaml:37:1: platform: component 'platform' has no image: it is the platform app "
                           f"(namespaces, their policies, the ingress) and runs no image of its own ({WITH_IMAGE})"),
    ("both", "v9", f"values/services.yaml:67:52: services.both.image.tag: tag 'v9' {IMMUTABLE}"),
    ("hello", "a/b", f"values/services.yaml:9:53: services.hello.image.tag: tag 'a/b' {IMMUTABLE}; give the tag alone "
                     "(v0.6.1), not repository:tag"),
    ("hello", "a:b", f"values/services.yaml:9:53: services.hello.image.tag: tag 'a:b' {IMMUTABLE}; give the tag alone "
                     "(v0.6.1), not repository:tag"),
    # split at the first @: the rest is the digest; a missing digest field is reported at the image
    ("hello", "x@y@z", "values/services.yaml:9:5: services.hello.image.digest: 'y@z' is not a digest (sha256: followed by "
                       f"64 hex digits)\nvalues/services.yaml:9:53: services.hello.image.tag: tag 'x' {IMMUTABLE}"),
])
def test_refusals_are_whole_located_messages(tmp_path: Path, component: str, ref: str, stderr: str):
    values = commented_copy(tmp_path)
    before = files(values)
    result = run(tmp_path, component, ref)
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", stderr + "\n")
    assert files(values) == before


def test_a_component_kind_without_an_image_field_says_so(monkeypatch: pytest.MonkeyPatch):
    """Neither the platform app nor an upstream chart: the generic reason (no such kind in the model today)."""
    loaded = load(COMMENTED)
    real = setimage.resolve.components
    imageless = lambda model: [c if c.name != "hello" else
                               setimage.resolve.Component(c.name, c.kind, c.loc, object(), c.project, c.namespace)
                               for c in real(model)]
    monkeypatch.setattr(setimage.resolve, "components", imageless)
    with pytest.raises(InvalidModel) as exc:
        setimage._component(loaded, "hello")
    assert [str(p) for p in exc.value.problems] == [
        "values/services.yaml:7:3: services.hello: component 'hello' has no image: a api component has no image field "
        "(components with an image: both, digest-block, digest-flow, double, postgresql, single)"]


@pytest.mark.parametrize("component,ref,note", [
    ("hello", DIGEST4, "note: services.hello.image.tag stays 1.0.0 (the image is now pinned by tag and digest; the digest "
                       "decides what runs)"),
    ("digest-block", "v2.0.0", "note: services.digest-block.image.digest stays sha256:" + "1" * 64 + ": the digest decides "
                               "what runs, so the new tag changes nothing in the cluster; set both with v2.0.0@sha256:<hex>"),
    ("both", DIGEST4, "note: services.both.image.tag stays sha-abc1234 (the image is now pinned by tag and digest; the digest "
                      "decides what runs)"),
    ("both", "sha-def5678", "note: services.both.image.digest stays sha256:" + "3" * 64 + ": the digest decides what runs, "
                            "so the new tag changes nothing in the cluster; set both with sha-def5678@sha256:<hex>"),
])
def test_a_kept_field_is_noted_in_full(tmp_path: Path, component: str, ref: str, note: str):
    commented_copy(tmp_path)
    result = run(tmp_path, component, ref)
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [note, "not rendered (--no-render): run `make render` before committing"]


@pytest.mark.parametrize("component,ref", [("hello", "v1.0.1"), ("both", f"sha-def5678@{DIGEST4}"), ("digest-block", DIGEST4),
                                           ("hello", f"v1.0.1@{DIGEST4}")])
def test_no_note_when_nothing_is_kept_that_decides(component: str, ref: str):
    p = setimage.plan(COMMENTED, component, ref)
    assert p.notes == ()


def test_an_unsupported_value_is_refused_at_the_image_with_how_it_is_written(tmp_path: Path):
    values = commented_copy(tmp_path)
    path = values / "services.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace('tag:    "1.0.0"', "tag: !!str 1.0.0"), encoding="utf-8")
    before = files(values)
    result = run(tmp_path, "double", "v1.0.1")
    assert (result.exit_code, result.stderr) == (2, "values/services.yaml:30:5: services.double.image: cannot be edited in "
                                                     "place: its tag carries a YAML tag or anchor; set it by hand\n")
    assert files(values) == before


def test_an_anchored_image_is_refused_in_full(tmp_path: Path):
    values = commented_copy(tmp_path)
    path = values / "services.yaml"
    text = path.read_text(encoding="utf-8")
    text = text.replace("image: {repository: registry.example.org/hello, tag: 1.0.0}",
                        "image: &shared {repository: registry.example.org/hello, tag: 1.0.0}")
    path.write_text(text.replace("image: {  repository:   registry.example.org/single ,   tag:  '1.0.0'   }", "image: *shared"),
                    encoding="utf-8")
    result = run(tmp_path, "hello", "v1.0.1")
    assert (result.exit_code, result.stderr) == (2, "values/services.yaml:9:5: services.hello.image: cannot be edited in place: "
                                                     "the edit would change more than this image (is it shared through a YAML "
                                                     "anchor?); set it by hand\n")


def test_a_text_that_no_longer_parses_is_refused_as_a_changed_meaning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    values = commented_copy(tmp_path)
    monkeypatch.setattr(setimage.yamledit, "scalar", lambda value, style, flow: "'broken")  # an unclosed quote
    result = run(tmp_path, "hello", "v1.0.1")
    assert result.exit_code == 2 and "services.hello.image: cannot be edited in place: the edit would change more" in result.stderr
    assert files(values) == files(COMMENTED)


def test_the_problem_of_a_file_changed_meanwhile_names_the_file(tmp_path: Path):
    values = commented_copy(tmp_path)
    p = setimage.plan(values, "hello", "v1.0.1")
    (values / "services.yaml").write_bytes(b"# theirs\n" + p.before)
    with pytest.raises(InvalidModel) as exc:
        setimage.write(p)
    assert [str(x) for x in exc.value.problems] == [
        "values/services.yaml: changed on disk while set-image ran; nothing was written, run it again"]


def test_write_keeps_the_mode_and_leaves_no_temporary_file(tmp_path: Path):
    values = commented_copy(tmp_path)
    (values / "services.yaml").chmod(0o640)
    p = setimage.plan(values, "hello", "v1.0.1")
    setimage.write(p)
    assert (values / "services.yaml").read_bytes() == p.after
    assert (values / "services.yaml").stat().st_mode & 0o7777 == 0o640
    assert sorted(x.name for x in values.iterdir()) == sorted(x.name for x in COMMENTED.iterdir())


def test_a_failed_write_removes_its_temporary_file_and_keeps_the_old_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    values = commented_copy(tmp_path)
    p = setimage.plan(values, "hello", "v1.0.1")
    seen = []

    def fail(src, dst):
        seen.append(Path(src))
        raise OSError("disk full")

    monkeypatch.setattr(setimage.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        setimage.write(p)
    assert files(values) == files(COMMENTED)  # no temp file left beside it, the model file untouched
    (tmp,) = seen
    # beside the target (a rename within one file system) under a name the loader skips: hidden, no .yaml/.yml suffix
    assert tmp.parent == values and tmp.name.startswith(".services.yaml.") and tmp.name.endswith(".tmp")


def test_a_symlinked_model_file_stays_a_symlink(tmp_path: Path):
    values = commented_copy(tmp_path)
    real = tmp_path / "elsewhere.yaml"
    (values / "services.yaml").rename(real)
    (values / "services.yaml").symlink_to(real)
    p = setimage.plan(values, "hello", "v1.0.1")
    setimage.write(p)
    assert (values / "services.yaml").is_symlink() and real.read_bytes() == p.after


def test_set_image_without_render_or_with_nothing_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    values = commented_copy(tmp_path)
    monkeypatch.setattr(pipeline, "render_to_disk", lambda *a, **k: pytest.fail("no render was asked for"))
    noop = setimage.set_image(tmp_path, "single", "1.0.0", render=False)
    assert (noop.written, noop.rendered, noop.plan.noop) == (False, (), True)
    done = setimage.set_image(tmp_path, "hello", "v1.0.1", render=False)
    assert (done.written, done.rendered, done.plan.noop) == (True, (), False)
    assert (values / "services.yaml").read_bytes() == done.plan.after


@pytest.mark.parametrize("hydrate", [True, False])
def test_set_image_renders_as_render_does_and_reports_what_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hydrate: bool):
    commented_copy(tmp_path)
    for rel in ("rendered/prod/values/hello.yaml", "rendered/prod/values/gone.yaml", "argocd/root.yaml", "charts/api/values.schema.json"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("old\n")
    calls, mine = [], lambda _: None

    def render(opts, log=None):
        assert log is mine
        calls.append(opts)
        before = output.read_generated(tmp_path, chart_schemas=True)
        (tmp_path / "rendered/prod/values/hello.yaml").write_text("new\n")
        (tmp_path / "rendered/prod/values/gone.yaml").unlink()
        (tmp_path / "rendered/prod/values/added.yaml").write_text("new\n")
        (tmp_path / "charts/api/values.schema.json").write_text("new\n")
        after = output.read_generated(tmp_path, chart_schemas=True)  # as a render returns it: on disk, with what
        changed = tuple(sorted(r for r in before.keys() | after.keys() if before.get(r) != after.get(r)))  # it swapped
        return output.Tree(after, changed=changed)

    monkeypatch.setattr(pipeline, "render_to_disk", render)
    crds = tmp_path / "crds"
    kwargs = {"hydrate": hydrate} if not hydrate else {}  # hydrating (and validating) is the default
    result = setimage.set_image(tmp_path, "hello", "v1.0.1", crds=crds, log=mine, **kwargs)
    (opts,) = calls
    assert (opts.root, opts.values, opts.hydrate, opts.validate, opts.crds) == (tmp_path, tmp_path / "values", hydrate, hydrate, crds)
    assert result.plan.component == "hello" and result.written and result.rendered == (
        "charts/api/values.schema.json", "rendered/prod/values/added.yaml", "rendered/prod/values/gone.yaml",
        "rendered/prod/values/hello.yaml")


def test_display_dir_is_relative_to_the_root_when_inside_it(tmp_path: Path):
    assert setimage.display_dir(tmp_path / "values", tmp_path) == "values"
    assert setimage.display_dir(tmp_path / "a" / "values", tmp_path) == "a/values"
    assert setimage.display_dir(tmp_path / "values", tmp_path / "other") == (tmp_path / "values").as_posix()


def test_a_plan_says_what_it_edits(tmp_path: Path):
    values = commented_copy(tmp_path)
    p = setimage.plan(values, "hello", setimage.Ref(tag="v1.0.1"))  # a parsed Ref is taken as it is
    assert (p.component, p.field, p.path, p.display, p.before) == (
        "hello", "services.hello.image", values / "services.yaml", "values/services.yaml", (values / "services.yaml").read_bytes())
    assert [str(c) for c in p.changes] == ["values/services.yaml:9: services.hello.image.tag: 1.0.0 → v1.0.1"] and not p.noop
    same = setimage.plan(values, "hello", "1.0.0")
    assert (same.component, same.field, same.path, same.display, same.changes, same.noop) == (
        "hello", "services.hello.image", values / "services.yaml", "values/services.yaml", (), True)
    nested = setimage.plan(values, "hello", "v1.0.1", display_dir="deploy/values")
    assert (nested.path, nested.display) == (values / "services.yaml", "deploy/values/services.yaml")


def test_messages_name_the_model_directory_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    values = commented_copy(tmp_path)
    with pytest.raises(InvalidModel, match=r"^deploy/values/: zzz: no component named"):
        setimage.plan(values, "zzz", "v1.0.1", display_dir="deploy/values")
    monkeypatch.setattr(setimage.yamledit, "scalar", lambda value, style, flow: "16.11")  # breaks the edited copy's load
    monkeypatch.setattr(setimage, "_only_image_changed", lambda *a: None)
    with pytest.raises(InvalidModel, match=r"^deploy/values/services\.yaml:\d+:\d+: services\.hello\.image\.tag: input"):
        setimage.plan(values, "hello", "v1.0.1", display_dir="deploy/values")
    outside = tmp_path / "elsewhere"
    shutil.copytree(values, outside / "values")
    (tmp_path / "root").mkdir()
    with pytest.raises(InvalidModel, match=rf"^{re.escape((outside / 'values').as_posix())}/: zzz: no component"):
        setimage.set_image(tmp_path / "root", "zzz", "v1.0.1", values=outside / "values", render=False)


def test_the_edited_copy_holds_every_model_file(tmp_path: Path):
    """A .yml file is part of the model too: the copy that is checked must have it, or its sections would be missing."""
    values = commented_copy(tmp_path)
    (values / "infra.yaml").rename(values / "infra.yml")
    (values / "notes").mkdir()  # a folder is not part of the model
    result = run(tmp_path, "hello", "v1.0.1")
    assert result.exit_code == 0, result.output
    assert load(values).model.services["hello"].image.tag == "v1.0.1"


def test_two_edits_report_the_lines_of_the_new_text(tmp_path: Path):
    values = commented_copy(tmp_path)
    result = run(tmp_path, "digest-block", f"v2.0.0@{DIGEST4}")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "values/services.yaml:46: services.digest-block.image.tag: (not set) → v2.0.0 (added line)",
        f"values/services.yaml:47: services.digest-block.image.digest: sha256:{'1' * 64} → {DIGEST4}"]
    lines = (values / "services.yaml").read_text(encoding="utf-8").splitlines()
    assert lines[45] == "      tag: v2.0.0" and lines[46] == f"      digest: {DIGEST4}"


def test_an_image_that_comes_from_a_merge_key_is_refused(tmp_path: Path):
    values = commented_copy(tmp_path)
    path = values / "services.yaml"
    text = path.read_text(encoding="utf-8").replace("  single:\n", "  single: &single\n", 1)
    both = "    image: {repository: registry.example.org/both, tag: sha-abc1234, digest: sha256:" + "3" * 64 + "}\n"
    assert text.count(both) == 1
    path.write_text(text.replace(both, "    <<: *single\n"), encoding="utf-8")
    assert load(values).model.services["both"].image.repository == "registry.example.org/single"
    result = run(tmp_path, "both", "v1.0.1")  # refused where the merged-in image is written
    assert (result.exit_code, result.stderr) == (2, "values/services.yaml:21:5: services.both.image: cannot be edited in "
                                                     "place: services.both.image is not written out as such in the file (a "
                                                     "YAML merge key or alias?); set it by hand\n")


def test_a_value_that_is_not_a_mapping_cannot_be_found_as_one():
    with pytest.raises(setimage._Unsupported) as err:
        setimage._find(setimage._yaml().compose("x:\n  image: r.example.org/x:v1\n"), ("x", "image"))
    assert str(err.value) == "x.image is not a mapping"


def test_a_model_without_any_image_says_none(monkeypatch: pytest.MonkeyPatch):
    loaded = load(COMMENTED)
    platform_only = [c for c in setimage.resolve.components(loaded.model) if c.kind == setimage.resolve.PLATFORM]
    monkeypatch.setattr(setimage.resolve, "components", lambda model: platform_only)
    with pytest.raises(InvalidModel) as exc:
        setimage._component(loaded, "zzz")
    assert [str(p) for p in exc.value.problems] == ["values/: zzz: no component named 'zzz' (components with an image: none)"]
