"""Shared fixtures: the repository, copies of the Eco² model to break, and running the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from generator import helmvalues, resolve, yamlio
from generator.helm import find_helm
from generator.loader import load

REPO = Path(__file__).resolve().parents[1]
VALUES = REPO / "values"


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
    model = load(VALUES).model
    written = []
    for comp in resolve.components(model):
        if helmvalues.local_chart(comp) in charts:
            path = out / f"{comp.name}.yaml"
            path.write_text(yamlio.dump(helmvalues.values(model, comp)))
            written.append((comp, path))
    return model, written
