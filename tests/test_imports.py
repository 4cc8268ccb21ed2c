"""Every module of the package imports on its own, first, in a fresh interpreter.

The model and the kinds of component import each other's work (generator/kinds/ builds on the model's classes; the
model's unions come from the kinds, resolved when pydantic first builds its schema; the kinds' values use helmvalues,
which resolve and plan also reach): whichever module a process imports first must find the others complete enough.
One test process imports them in one order only, so each is tried alone.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from conftest import REPO

MODULES = sorted(
    ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
    for path in (REPO / "generator").rglob("*.py") if path.name != "__main__.py")


def _import(module: str) -> tuple[str, str]:
    done = subprocess.run([sys.executable, "-c", f"import {module}; from generator.model.model import Model; "
                                                 "Model.model_json_schema()"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    return module, done.stderr.strip().splitlines()[-1] if done.returncode else ""


def test_every_module_imports_first_on_its_own():
    assert "generator.kinds.registry" in MODULES and "generator.model.model" in MODULES
    with ThreadPoolExecutor(2) as pool:
        failed = {m: err for m, err in pool.map(_import, MODULES) if err}
    assert failed == {}
