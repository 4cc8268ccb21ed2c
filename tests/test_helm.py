"""generator.helm: finding a v4 helm (the first run may fetch the pinned one once), and running it."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

import generator.helm as helm_module
from generator.helm import Helm, HelmError, discover, find_helm, verify_sha256


@pytest.fixture(scope="module")
def helm() -> Helm:
    return find_helm()


@pytest.fixture
def chart(helm: Helm, tmp_path: Path) -> Path:
    """A chart made by the real `helm create`, plus a template that shows namespace and capabilities."""
    proc = helm._run(["create", str(tmp_path / "demo")])
    assert proc.returncode == 0, proc.stderr
    (tmp_path / "demo" / "templates" / "probe.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\n"
        "metadata:\n  name: probe\n  namespace: {{ .Release.Namespace }}\n"
        "data:\n"
        "  greeting: {{ .Values.greeting | quote }}\n"
        "  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n"
        '  hasExample: {{ .Capabilities.APIVersions.Has "example.com/v1" | quote }}\n'
    )
    return tmp_path / "demo"


def _values(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "values-test.yaml"
    path.write_text(text)
    return path


def test_find_helm_returns_a_v4_that_runs(helm: Helm):
    assert helm.version.startswith("v4.")
    assert find_helm() is helm  # cached per process
    out = subprocess.run([str(helm.path), "version", "--template", "{{.Version}}"],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == helm.version
    if helm.origin == helm_module.PINNED_ORIGIN:  # the version discover() gives it without running it
        assert out.strip() == helm_module.HELM_VERSION
    assert helm.describe() == f"helm {helm.version} ({helm.path}, from {helm.origin})"


def test_template_renders_with_values_namespace_and_capabilities(helm: Helm, chart: Path, tmp_path: Path):
    values = _values(tmp_path, "greeting: hello-from-values\nreplicaCount: 3\n")
    out = helm.template(chart, "rel", "team-ns", [values], kube_version="v1.31.0",
                        api_versions=["example.com/v1"])
    assert "namespace: team-ns" in out
    assert 'greeting: "hello-from-values"' in out
    assert "replicas: 3" in out
    assert 'kube: "v1.31.0"' in out
    assert 'hasExample: "true"' in out
    assert "name: rel-demo" in out


@pytest.mark.parametrize("values, template, helm_says", [
    ("greeting: [unclosed\n", None, "did not find expected"),
    ("greeting: x\n", "{{ .Values.greeting | noSuchFunction }}\n", 'function "noSuchFunction" not defined'),
    ("greeting: x\n", '{{ required "mustBeSet is required" .Values.mustBeSet }}\n', "mustBeSet is required"),
])
def test_template_errors_carry_helms_message(helm, chart, tmp_path, values, template, helm_says):
    if template:
        (chart / "templates" / "broken.yaml").write_text(template)
    with pytest.raises(HelmError) as err:
        helm.template(chart, "rel", "ns", [_values(tmp_path, values)], "v1.31.0", [])
    message = str(err.value)
    assert helm_says in message
    assert message.startswith("helm template failed:") and "command: " in message


def test_lint(helm: Helm, chart: Path, tmp_path: Path):
    values = _values(tmp_path, "greeting: hi\n")
    assert "1 chart(s) linted, 0 chart(s) failed" in helm.lint(chart, [values], kube_version="v1.31.0")
    (chart / "Chart.yaml").write_text("name: demo\n")  # no apiVersion, no version
    with pytest.raises(HelmError, match="helm lint failed:(.|\n)*chart.metadata.version is required"):
        helm.lint(chart, [values])


def test_verify_sha256_accepts_the_right_file_and_rejects_an_altered_one(tmp_path: Path):
    path = tmp_path / "blob"
    path.write_bytes(b"pinned bytes")
    good = hashlib.sha256(b"pinned bytes").hexdigest()
    verify_sha256(path, good)
    path.write_bytes(b"pinned bytez")  # same size, one byte changed
    actual = hashlib.sha256(b"pinned bytez").hexdigest()
    with pytest.raises(HelmError) as err:
        verify_sha256(path, good)
    assert str(path) in str(err.value) and good in str(err.value) and actual in str(err.value)


def _script(tmp_path: Path, version: str) -> Path:
    fake = tmp_path / "fake-helm"
    fake.write_text(f"#!/bin/sh\necho {version}\n")
    fake.chmod(0o755)
    return fake


def test_helm_env_with_v3_is_rejected(tmp_path: Path, monkeypatch):
    fake = _script(tmp_path, "v3.14.0")
    monkeypatch.setenv("HELM", str(fake))
    with pytest.raises(HelmError, match=rf"HELM={fake} is helm v3\.14\.0, but helm v4 is required"):
        discover()


def test_helm_env_with_v4_is_used(helm: Helm, monkeypatch):
    monkeypatch.setenv("HELM", str(helm.path))
    found = discover()
    assert (found.path, found.version, found.origin) == (helm.path, helm.version, "HELM env")


def test_old_helm_on_path_is_skipped(helm: Helm, tmp_path: Path, monkeypatch):
    (tmp_path / "bin").mkdir()
    _script(tmp_path, "v3.14.0").rename(tmp_path / "bin" / "helm")
    monkeypatch.delenv("HELM", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    monkeypatch.setattr(helm_module, "_pinned", lambda: helm.path)  # no fetch even if helm came from PATH
    found = discover()
    # The pinned helm's version is known from its verified bytes, not asked (tests above run the binary for it).
    assert (found.path, found.version, found.origin) == (helm.path, helm_module.HELM_VERSION, helm_module.PINNED_ORIGIN)


def test_the_pinned_helm_is_hashed_once_per_identity_and_again_when_it_changes(helm: Helm, tmp_path: Path, monkeypatch):
    """_pinned() trusts a stamp naming the binary's size, inode and times; anything that rewrites or touches the
    file changes its change time, so it is hashed again, and fetched again when its bytes are wrong."""
    import os
    import shutil

    monkeypatch.setenv("ECO2_CACHE", str(tmp_path))
    dest = tmp_path / "tools" / f"helm-{helm_module.HELM_VERSION}" / "helm"
    dest.parent.mkdir(parents=True)
    if helm.origin != helm_module.PINNED_ORIGIN:
        pytest.skip("the helm found here is not the pinned one")
    shutil.copyfile(helm.path, dest)
    hashed, fetched = [], []
    real_verify = helm_module.verify_sha256
    monkeypatch.setattr(helm_module, "verify_sha256", lambda p, e: hashed.append(p) or real_verify(p, e))
    monkeypatch.setattr(helm_module, "_fetch", lambda d: fetched.append(d))
    assert helm_module._pinned() == dest and len(hashed) == 1  # first time: hashed, stamped
    assert helm_module._pinned() == dest and len(hashed) == 1  # same file: the stamp
    os.utime(dest)  # touched: the change time moves
    assert helm_module._pinned() == dest and len(hashed) == 2 and not fetched
    with open(dest, "r+b") as f:  # a byte changed in place (same size, same inode)
        f.seek(1000)
        f.write(b"\0")
    st = dest.stat()
    os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))  # even with its old modification time
    helm_module._pinned()
    assert fetched == [dest]  # hashed again, found wrong, fetched
