"""Where the upstream files come from, in order of preference: the chart archives and the CRD schemas.

An explicit directory (a flag) is final, then the environment variable, then the repository's sibling
`../shared/`, then what `make charts` / `make schemas` downloaded into `.cache/`. charts.py and crds.py pick
from these lists; replay.py keys a run by all of them. Standard library only: a no-change render reads this
before anything heavy is imported.
"""

from __future__ import annotations

import os
from pathlib import Path

CHARTS_ENV, CRDS_ENV = "ECO2_CHARTS", "ECO2_CRDS"
CHARTS_LOCK, CRDS_LOCK = "charts.lock", "schemas.lock"  # at the repository root: the pinned archives and schemas


def chart_dirs(explicit: Path | None, repo_root: Path) -> list[tuple[str, Path]]:
    # An explicit choice is final: silently falling back would render a chart nobody asked for.
    if explicit is not None:
        return [("--charts", Path(explicit))]
    if os.environ.get(CHARTS_ENV):
        return [(f"${CHARTS_ENV}", Path(os.environ[CHARTS_ENV]))]
    return [("../shared/charts", repo_root.parent / "shared" / "charts"),
            ("make charts", repo_root / ".cache" / "charts")]


def crd_dirs(explicit: Path | None, repo_root: Path) -> list[tuple[str, Path]]:
    # An explicit choice is final: silently falling back would validate against files nobody asked for.
    if explicit is not None:
        return [("given", Path(explicit))]
    if os.environ.get(CRDS_ENV):
        return [(CRDS_ENV, Path(os.environ[CRDS_ENV]))]
    return [("shared", repo_root.parent / "shared" / "crds"), ("make schemas", repo_root / ".cache" / "crds")]
