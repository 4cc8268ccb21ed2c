"""Shared fixtures: the repository, copies of the Eco² model to break, and running the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import types
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pytest
import yaml

from generator import credentials, memo, yamlio
from generator.helm import find_helm
from generator.model.loader import load
from generator.render import helmvalues

REPO = Path(__file__).resolve().parents[1]
VALUES = REPO / "values"


@pytest.fixture(autouse=True)
def _judge_every_name_afresh():
    """is_credential_name is memoized per process; clear it, so each test (and each mutant `make mutation` runs in
    a process forked after a warm run) really calls the code under test."""
    credentials.is_credential_name.cache_clear()


def _module_of(target: Any) -> str:
    if isinstance(target, str):
        return target
    if isinstance(target, types.ModuleType):
        return target.__name__
    return str(getattr(target, "__module__", ""))


@pytest.fixture
def monkeypatch(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> pytest.MonkeyPatch:
    """pytest's monkeypatch, with one addition: once a test replaces anything of the generator, every memo it opens is
    its own. The memo's stages are keyed by their inputs and by the generator's code on disk (memo.salt), which a
    patch does not change: a render with a patched function would otherwise store its output under the real
    model's key, and every later render reading that memo (make render included) would get the patched result."""
    real = monkeypatch.setattr
    own: list[Path] = []

    def setattr(target: Any, *args: Any, **kwargs: Any) -> None:
        if not own and _module_of(target).split(".")[0] == "generator":
            own.append(tmp_path_factory.mktemp("memo"))
            opened = memo.Memo.__init__
            real(memo.Memo, "__init__", lambda self, root: opened(self, own[0]))
        real(target, *args, **kwargs)
    monkeypatch.setattr = setattr  # type: ignore[method-assign]
    return monkeypatch


def edit(path: Path, old: str, new: str, count: int = 1) -> None:
    """Replace `old` (which must occur) by `new` in a model file: the tests' way of breaking a model."""
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not found in {path}"
    path.write_text(text.replace(old, new, count), encoding="utf-8")


def copy_repo(dest: Path, values: Path = VALUES) -> Path:
    """A throwaway repository root: the model and the charts (with their library symlinks)."""
    shutil.copytree(values, dest / "values")
    shutil.copytree(REPO / "charts", dest / "charts", symlinks=True)
    return dest


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "ECO2_CACHE": str(REPO / ".cache"), **(env or {})}
    return subprocess.run([sys.executable, "-m", "generator", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A copy of the Eco² model in values/ that a test may break."""
    return Path(shutil.copytree(VALUES, tmp_path / "values"))


@pytest.fixture(scope="session")
def helm():
    return find_helm()


def write_chart_values(out: Path, *charts: str):
    """The Eco² model, and (component, values file) for each component one of `charts` renders."""
    plan = load(VALUES).plan
    model = plan.model
    written = []
    for comp in plan.components:
        if helmvalues.local_chart(comp) in charts:
            path = out / f"{comp.name}.yaml"
            path.write_text(yamlio.dump(helmvalues.values(plan, comp)))
            written.append((comp, path))
    return model, written


@pytest.fixture(scope="session")
def validator():
    """Kubernetes 1.28 and upstream CRD schemas, loaded once for the session."""
    from generator.upstream.crds import resolve_crd_dir
    from generator.validate.kubeschema import Validator

    return Validator(load(VALUES).model.cluster.kubernetes_version, resolve_crd_dir(None, REPO))


def schema_rejection(helm, chart: Path, release: str, namespace: str, values_file: Path, edit, tmp_path: Path) -> str:
    """helm's error for a values file changed by `edit`: the chart's values.schema.json must refuse it."""
    from generator.helm import HelmError

    values = yaml.safe_load(values_file.read_text())
    edit(values)
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(values))
    with pytest.raises(HelmError) as err:
        helm.template(chart, release, namespace, [bad], load(VALUES).model.cluster.kubernetes_version, [])
    assert "values don't meet the specifications of the schema" in str(err.value)
    return str(err.value)


@dataclass(frozen=True)
class Rendered:
    """One `helm template` output of a chart, with the values it was rendered from."""

    release: str
    namespace: str
    values: dict[str, Any]
    text: str

    @cached_property
    def docs(self) -> list[dict[str, Any]]:
        return [d for d in yaml.load_all(self.text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) if d]

    def objects(self) -> set[tuple[str, str]]:
        return {(d["kind"], d["metadata"]["name"]) for d in self.docs}

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [d for d in self.docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
        assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
        return found[0]

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]
