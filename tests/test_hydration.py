"""The committed manifests are what Argo CD renders: each helm call re-derived from the committed Application alone."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from generator.helm import find_helm

APPS = sorted(REPO.glob("rendered/*/apps/*.yaml"))


def _key(doc: dict) -> tuple:
    meta = doc.get("metadata") or {}
    return (doc.get("kind", ""), meta.get("namespace", ""), meta.get("name", ""))


def test_every_app_has_an_application():
    assert len(APPS) >= 12


@pytest.mark.parametrize("app_file", APPS, ids=[p.stem for p in APPS])
def test_manifest_equals_helm_template_of_the_application(app_file: Path):
    app = yaml.safe_load(app_file.read_text())
    env = app_file.parents[1].name
    manifest = REPO / "rendered" / env / "manifests" / app_file.name
    source = app["spec"].get("source")
    if source is None or "path" not in source:
        # Charts from Helm repositories are not hydrated (rendering is offline): no manifest file at all.
        assert all("chart" in s or "ref" in s for s in app["spec"]["sources"])
        assert not manifest.exists()
        return
    # Argo CD resolves valueFiles against the chart path, inside the repository.
    chart = REPO / source["path"]
    value_files = [Path(os.path.normpath(chart / f)) for f in source["helm"]["valueFiles"]]
    assert all(f.is_file() and f.is_relative_to(REPO) for f in value_files)
    kube = yaml.safe_load((REPO / "values" / "cluster.yaml").read_text())["cluster"]["kubernetesVersion"]
    cmd = [str(find_helm().path), "template", source["helm"]["releaseName"], str(chart),
           "--namespace", app["spec"]["destination"]["namespace"], "--kube-version", kube]
    for f in value_files:
        cmd += ["--values", str(f)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={"PATH": os.environ["PATH"], "HOME": "/tmp"})
    rendered = sorted((d for d in yaml.safe_load_all(out.stdout) if d), key=_key)
    committed = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
    assert [_key(d) for d in rendered] == [_key(d) for d in committed]
    assert rendered == committed
