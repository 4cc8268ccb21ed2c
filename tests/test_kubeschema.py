"""Schema validation of rendered objects: the broken/valid corpus, CRD resolution, and fetching/verifying CRDs."""

from __future__ import annotations

import hashlib
import io
import re
from pathlib import Path

import pytest
import yaml

from generator.upstream.crds import fetch, read_lock, resolve_crd_dir, verify
from generator.validate import kubeschema
from generator.validate.kubeschema import SchemaError, SchemaFinding, Validator

REPO = Path(__file__).resolve().parents[1]
LOCK = REPO / "schemas.lock"
CORPUS = Path(__file__).parent / "schema_corpus"
BROKEN = sorted((CORPUS / "broken").glob("*.yaml"))
VALID = sorted((CORPUS / "valid").glob("*.yaml"))


@pytest.fixture(scope="module")
def crd_dir() -> Path:
    return resolve_crd_dir(None, REPO)


@pytest.fixture(scope="module")
def validator(crd_dir) -> Validator:
    return Validator("1.28", crd_dir)


def _header(text: str, key: str) -> list[str]:
    return re.findall(rf"^# {key}: (.*)$", text, re.MULTILINE)


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_document_reports_what_is_expected(validator, path):
    text = path.read_text()
    source = (_header(text, "source") or [str(path.relative_to(REPO))])[0]
    shown = [str(f) for f in validator.validate_stream(source, text)]
    expects = _header(text, "expect")
    assert expects, f"{path.name} has no '# expect:' line"
    for expect in expects:
        assert any(expect in s for s in shown), f"{expect!r} not among:\n" + "\n".join(shown)
    for count in _header(text, "count"):
        assert len(shown) == int(count), "\n".join(shown)


@pytest.mark.parametrize("path", VALID, ids=lambda p: p.stem)
def test_valid_document_has_no_findings(validator, path):
    assert validator.validate_stream(str(path), path.read_text()) == []


def test_corpus_covers_the_categories():
    assert len(BROKEN) >= 30
    prefixes = {p.stem.split("-")[0] for p in BROKEN}
    assert {"type", "unknown", "required", "crd", "metadata", "kind", "several"} <= prefixes
    kinds = {(d["apiVersion"], d["kind"]) for p in VALID for d in yaml.safe_load_all(p.read_text())}
    assert kinds >= {
        ("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("v1", "Service"), ("networking.k8s.io/v1", "Ingress"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"), ("policy/v1", "PodDisruptionBudget"),
        ("networking.k8s.io/v1", "NetworkPolicy"), ("v1", "ConfigMap"), ("v1", "ServiceAccount"), ("v1", "Namespace"),
        ("argoproj.io/v1alpha1", "Application"), ("argoproj.io/v1alpha1", "AppProject"),
        ("argoproj.io/v1alpha1", "Rollout"), ("argoproj.io/v1alpha1", "AnalysisTemplate"),
        ("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule"),
    }


def test_kinds_cover_builtins_and_every_crd(validator):
    kinds = validator.kinds()
    argo = {"Application", "AppProject", "ApplicationSet", "Rollout", "AnalysisTemplate", "ClusterAnalysisTemplate",
            "AnalysisRun", "Experiment"}
    assert {("argoproj.io/v1alpha1", k) for k in argo} <= kinds
    assert {("monitoring.coreos.com/v1", k) for k in ("ServiceMonitor", "PodMonitor", "PrometheusRule")} <= kinds
    assert {("apps/v1", "Deployment"), ("v1", "Service"), ("rbac.authorization.k8s.io/v1", "ClusterRole"),
            ("internal.apiserver.k8s.io/v1alpha1", "StorageVersion")} <= kinds
    assert ("extensions/v1beta1", "Ingress") not in kinds


def test_finding_shape_and_validate_on_parsed_documents(validator):
    doc = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
           "metadata": {"name": "waste", "namespace": "argocd"},
           "spec": {"project": "apis", "syncWave": 1, "destination": {"namespace": "apis"}}}
    [finding] = validator.validate("rendered/prod/apps/waste.yaml", 1, doc)
    assert finding == SchemaFinding("rendered/prod/apps/waste.yaml", 1, "Application", "argocd/waste",
                                    "spec.syncWave", 'unknown field "syncWave"')
    assert str(finding) == ('rendered/prod/apps/waste.yaml#1 Application argocd/waste: '
                            'spec.syncWave: unknown field "syncWave"')
    assert validator.validate("a.yaml", 0, "text") == [
        SchemaFinding("a.yaml", 0, "?", "?", "", "expected a Kubernetes object (a mapping), got string")]
    assert min([finding, *validator.validate("a.yaml", 0, [])]).source == "a.yaml"


def test_stream_skips_empty_documents_but_keeps_their_positions(validator):
    text = "---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {x: 1}\n---\n"
    [finding] = validator.validate_stream("s.yaml", text)
    assert (finding.doc, finding.name, finding.path) == (1, "a", "data.x")
    assert validator.validate_stream("empty.yaml", "") == []


def test_preserved_fields_stay_open_and_int_or_string_accepts_both(validator):
    app = yaml.safe_load((CORPUS / "valid" / "application.yaml").read_text())
    app["spec"]["sources"][2]["helm"]["valuesObject"] = {"any": {"nested": [{"thing": 1}]}}
    assert validator.validate("a.yaml", 0, app) == []
    rollout = yaml.safe_load((CORPUS / "valid" / "rollout.yaml").read_text())
    for surge in (1, "50%"):
        rollout["spec"]["strategy"]["canary"]["maxSurge"] = surge
        assert validator.validate("r.yaml", 0, rollout) == []


def test_schemas_are_loaded_once_per_process(validator, crd_dir):
    doc = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": {"name": "p"},
           "spec": {"selector": {}, "podMetricsEndpoints": [{"port": "http"}]}}
    assert validator.validate("p.yaml", 0, doc) == []
    parsed, loaded = kubeschema._crd_file.cache_info().misses, kubeschema._json.cache_info().misses
    again = Validator("1.28", crd_dir)
    assert again.validate("p.yaml", 0, doc) == []
    assert again._validator("monitoring.coreos.com/v1", "PodMonitor") is validator._validator(
        "monitoring.coreos.com/v1", "PodMonitor")
    assert (kubeschema._crd_file.cache_info().misses, kubeschema._json.cache_info().misses) == (parsed, loaded)


def test_bad_configuration_is_a_schema_error(crd_dir, tmp_path):
    with pytest.raises(SchemaError, match=r"1\.99.*1\.28"):
        Validator("1.99", crd_dir)
    with pytest.raises(SchemaError, match="make schemas"):
        Validator("1.28", tmp_path / "nowhere")


# ---------------------------------------------------------------- where CRDs come from


def _link_copy(crd_dir: Path, dest: Path, skip: str | None = None) -> Path:
    for f in read_lock(LOCK):
        if f.path != skip:
            (dest / f.path).parent.mkdir(parents=True, exist_ok=True)
            (dest / f.path).symlink_to(crd_dir / f.path)
    return dest


def test_crd_dir_missing_a_file_says_how_to_get_them(crd_dir, tmp_path):
    partial = _link_copy(crd_dir, tmp_path / "crds", skip="argo-rollouts-v1.9.1/rollout-crd.yaml")
    with pytest.raises(SchemaError) as e:
        resolve_crd_dir(partial, REPO)
    assert "argo-rollouts-v1.9.1/rollout-crd.yaml" in str(e.value)
    assert "make schemas" in str(e.value) and "ECO2_CRDS" in str(e.value)


def test_resolution_order(crd_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("ECO2_CRDS", str(_link_copy(crd_dir, tmp_path / "env")))
    assert resolve_crd_dir(None, REPO) == tmp_path / "env"
    assert resolve_crd_dir(crd_dir, REPO) == crd_dir
    monkeypatch.setenv("ECO2_CRDS", str(tmp_path / "missing"))
    with pytest.raises(SchemaError, match=r"missing \(ECO2_CRDS\) does not exist"):
        resolve_crd_dir(None, REPO)
    monkeypatch.delenv("ECO2_CRDS")
    repo = tmp_path / "repo"  # no ../shared/crds next to it: falls back to what `make schemas` downloads
    repo.mkdir()
    (repo / "schemas.lock").write_bytes(LOCK.read_bytes())
    with pytest.raises(SchemaError, match="make schemas"):
        resolve_crd_dir(None, repo)
    _link_copy(crd_dir, repo / ".cache" / "crds")
    assert resolve_crd_dir(None, repo) == repo / ".cache" / "crds"


def test_lock_matches_the_published_checksums(crd_dir):
    sums = dict(line.split()[::-1] for line in (crd_dir / "SHA256SUMS").read_text().splitlines() if line.strip())
    locked = read_lock(LOCK)
    assert {f"./{f.path}": f.sha256 for f in locked} == sums
    assert all(f.url.startswith("https://raw.githubusercontent.com/") and f.url.endswith("/" + Path(f.path).name)
               for f in locked)
    assert verify(LOCK, crd_dir) == []


def test_verify_reports_missing_and_tampered_files(crd_dir, tmp_path):
    copy = _link_copy(crd_dir, tmp_path, skip="argo-cd-v3.5.1/appproject-crd.yaml")
    (copy / "argo-cd-v3.5.1/application-crd.yaml").unlink()
    (copy / "argo-cd-v3.5.1/application-crd.yaml").write_text("kind: Tampered\n")
    problems = verify(LOCK, copy)
    assert len(problems) == 2
    assert any("appproject-crd.yaml: missing" in p for p in problems)
    assert any("application-crd.yaml: sha256 " in p and "expected 5dde0e22" in p for p in problems)


def _file_url_lock(crd_dir: Path, tmp_path: Path) -> Path:
    text = LOCK.read_text()
    for f in read_lock(LOCK):
        text = text.replace(f'"{f.url}"', f'"{(crd_dir / f.path).as_uri()}"')
    (tmp_path / "schemas.lock").write_text(text)
    return tmp_path / "schemas.lock"


def test_fetch_verifies_places_and_skips_what_is_present(crd_dir, tmp_path):
    lock, dest = _file_url_lock(crd_dir, tmp_path), tmp_path / "cache"
    assert len(fetch(lock, dest)) == 11  # urllib's own file:// handler: the real transport, offline
    assert verify(LOCK, dest) == [] and not list(dest.rglob("*.part"))

    def offline(url):
        raise AssertionError(f"{url} fetched although present")

    assert fetch(lock, dest, opener=offline) == []


def test_fetch_refuses_a_download_with_the_wrong_hash(crd_dir, tmp_path):
    lock, dest = _file_url_lock(crd_dir, tmp_path), tmp_path / "cache"
    stale = dest / "argo-cd-v3.5.1/appproject-crd.yaml"
    stale.parent.mkdir(parents=True)
    stale.write_text("old\n")
    with pytest.raises(SchemaError) as e:
        fetch(lock, dest, opener=lambda url: io.BytesIO(b"tampered"))
    message = str(e.value)
    assert (crd_dir / "argo-cd-v3.5.1/appproject-crd.yaml").as_uri() in message
    assert "expected ab225266944322750136f1198d93786e4a79a0e43c8d149abfba44da30a3eac8" in message
    assert f"got {hashlib.sha256(b'tampered').hexdigest()}" in message
    assert [p for p in dest.rglob("*") if p.is_file()] == []  # nothing unverified left behind, stale copy included


# ---------------------------------------------------------------- $ref: a subtree found valid is not walked again


def _plain_findings(validator: Validator, doc: dict) -> list[tuple[str, str]]:
    """What jsonschema's own Draft 2020-12 validator says of doc, with the schema and registry of ours."""
    import jsonschema

    ours = validator._validator(doc["apiVersion"], doc["kind"])
    plain = jsonschema.Draft202012Validator(ours.schema, registry=ours._registry)
    return sorted({(kubeschema.format_loc(p), m) for err in plain.iter_errors(doc) for p, m in kubeschema._explain(err)})


def _ours(validator: Validator, doc: dict) -> list[tuple[str, str]]:
    return sorted((f.path, f.message) for f in validator.validate("x.yaml", 0, doc))


def _pod(*containers: dict, metadata: dict | None = None) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"} if metadata is None else metadata,
            "spec": {"containers": list(containers)}}


def test_a_remembered_subtree_is_only_the_same_subtree_under_the_same_schema(validator, monkeypatch):
    monkeypatch.setattr(kubeschema, "_VALID_REFS", set())
    good = {"name": "app", "image": "nginx:1.27", "ports": [{"containerPort": 80}]}
    assert _ours(validator, _pod(good)) == []
    remembered = len(kubeschema._VALID_REFS)
    assert remembered > 0  # the container, its ports, the PodSpec, the metadata ... were found valid
    assert _ours(validator, _pod(dict(good))) == [] and len(kubeschema._VALID_REFS) == remembered  # all seen
    # The same container but for one value: walked again, and wrong.
    twin = {**good, "ports": [{"containerPort": "80"}]}
    assert _ours(validator, _pod(twin)) == _plain_findings(validator, _pod(twin)) != []
    # 80, 80.0 and True are different subtrees (repr tells them apart): each gets the plain validator's verdict.
    for port, wrong in (("80", True), (80.0, False), (True, True)):
        doc = _pod({**good, "ports": [{"containerPort": port}]})
        assert _ours(validator, doc) == _plain_findings(validator, doc) and bool(_ours(validator, doc)) == wrong
    # {} is valid ObjectMeta (remembered as such), but not a valid Container (name is required).
    assert _ours(validator, _pod(good, metadata={})) == []
    assert _ours(validator, _pod({}, metadata={})) == _plain_findings(validator, _pod({}, metadata={})) != []


def test_remembering_gives_the_plain_validators_findings_on_the_corpus(validator, monkeypatch):
    monkeypatch.setattr(kubeschema, "_VALID_REFS", set())
    docs = []
    for path in VALID + BROKEN + VALID + BROKEN:  # twice: the second round meets what the first remembered
        try:
            docs += [d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict) and validator.schema_key(d)]
        except yaml.YAMLError:
            continue  # the corpus's unparsable files
    assert len(docs) > 40
    for doc in docs:
        assert _ours(validator, doc) == _plain_findings(validator, doc), doc.get("kind")


def test_a_schema_whose_results_depend_on_siblings_is_validated_plainly():
    assert kubeschema._contextual({"properties": {"a": {"unevaluatedProperties": False}}})
    assert kubeschema._contextual([{"$dynamicRef": "#x"}])
    assert not kubeschema._contextual({"properties": {"unevaluated": {"type": "string"}}, "$ref": "#/x"})
    assert not kubeschema._registry_contextual(kubeschema._k8s_dir("1.28"))  # so the built-in kinds remember
