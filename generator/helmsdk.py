"""`helm template` of a local chart inside this process, through Helm's Go SDK (PyPI `helm-python-sdk`, which
embeds Helm 4 as a C library), where it gives the objects the helm CLI gives: no process start and no chart
re-read per Application (a helm process costs about 80 ms of CPU; a render here a few ms).

hydrate.in_process() decides which calls may come here: a chart directory with no crds/, no hook, no
`.Capabilities` and no `kubeVersion` constraint (the SDK's Capabilities are fixed and it has no --kube-version,
--api-versions, --include-crds or --skip-tests), nothing that can differ between two renders, and one value file,
parsed by Helm's own reader. The SDK checks the values against the chart's schemas as `helm template` does. Any
error here
makes the caller run the CLI instead, so a failure reads as the CLI's. tests/test_helmsdk.py renders every such
Application of every environment both ways and compares the objects.

`ECO2_HELM_SDK=0` turns it off (everything goes to the CLI); without the package installed it is off as well.
"""

from __future__ import annotations

import contextlib
import functools
import os
import queue
import sys
from pathlib import Path
from typing import Any

PACKAGE = "helm-python-sdk"


@functools.cache
def _library() -> Any:
    if os.environ.get("ECO2_HELM_SDK", "1") == "0":
        return None
    try:
        import helm_python
    except (ImportError, OSError):  # not installed, or its native library does not load here
        return None
    return helm_python


def available() -> bool:
    return _library() is not None


def describe() -> str:
    """What renders in process: part of the hydration cache key of every app rendered here, and of the log."""
    from importlib.metadata import version

    return f"{PACKAGE} {version(PACKAGE)} (Helm {_library().helm_sdk_version()})"


@contextlib.contextmanager
def _quiet_stderr():
    """fd 2 to /dev/null while no other thread of this run is started (the charts are loaded before the pool)."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


class Session:
    """Charts loaded for one hydration run: `workers` handles of each, taken by one call at a time (a handle is
    never rendered by two threads at once), closed at the end of the run."""

    def __init__(self, charts: set[Path], workers: int) -> None:
        self._free: dict[Path, queue.SimpleQueue] = {}
        self._all: list[Any] = []
        with _quiet_stderr():  # Go's loader logs every followed charts/lib symlink on fd 2, as the CLI does
            for chart in sorted(charts):
                free: queue.SimpleQueue = queue.SimpleQueue()
                try:
                    for _ in range(workers):
                        handle = _library().Chart.load(str(chart))
                        self._all.append(handle)
                        free.put(handle)
                except Exception:  # noqa: BLE001 — a chart the SDK cannot load: template() raises, the CLI runs
                    continue
                self._free[chart] = free

    def template(self, chart: Path, release: str, namespace: str, value_file: Path) -> str:
        """The documents `helm template RELEASE CHART -n NAMESPACE -f VALUE_FILE` prints, as one YAML stream
        (their order and `# Source` comments aside, which hydration does not keep). Raises on any error."""
        lib = _library()
        lib.validate_release_name(release)
        values = lib.values_from_yaml(value_file.read_text(encoding="utf-8"))
        loaded = self._free[chart].get()
        try:  # render() checks the values against the chart's schemas first, as `helm template` does
            out = loaded.render(values, name=release, namespace=namespace, revision=1, is_install=True,
                                is_upgrade=False)
        finally:
            self._free[chart].put(loaded)
        parts = []
        for name, text in sorted(out.items()):
            if name.rsplit("/", 1)[-1] == "NOTES.txt" or not text.strip():
                continue  # helm template prints neither the notes nor empty renders (partials are not in `out`)
            parts.append(f"---\n# Source: {name}\n{text}\n")
        return "".join(parts)

    def close(self) -> None:
        for chart in self._all:
            chart.close()
        self._all.clear()
