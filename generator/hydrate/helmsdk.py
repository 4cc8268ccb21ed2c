"""`helm template` of a local chart by Helm's Go SDK (PyPI `helm-python-sdk`, which embeds Helm 4 as a C library),
where it gives the objects the helm CLI gives: the chart is loaded once per run instead of once per Application,
and no helm process is started per call (one costs about 80 ms of CPU; a render here a few ms).

The SDK runs in helper processes, one per hydration thread, that load the library and keep their charts loaded for
the run; the generator's own process never loads it (the library alone is 54 MiB resident, which would sit on top of
validation's peak) and gets back YAML text, as from the CLI. Go's own logging goes to the helpers' stderr, which is
discarded (it logs every followed charts/lib symlink, as the CLI does).

hydrate.in_process() decides which calls may come here: a chart directory with no crds/, no hook, no
`.Capabilities` and no `kubeVersion` constraint (the SDK's Capabilities are fixed and it has no --kube-version,
--api-versions, --include-crds or --skip-tests), nothing that can differ between two renders, and one value file,
parsed by Helm's own reader. The SDK checks the values against the chart's schemas and the release name as `helm
template` does. Any error here (a helper that cannot start or dies included) makes the caller run the CLI instead,
so a failure reads as the CLI's. tests/test_helmsdk.py renders each chart's ci/ scenarios both ways and compares
the objects; tests/test_hydration.py compares every committed manifest with the CLI's.

`ECO2_HELM_SDK=0` turns it off (everything goes to the CLI); without the package installed it is off as well.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import queue
import subprocess
import sys
from pathlib import Path
from typing import Any

PACKAGE = "helm-python-sdk"
WORKER = "from generator.hydrate.helmsdk import serve; serve()"  # what a helper process runs


def _command() -> list[str]:
    return [sys.executable, "-c", WORKER]


def available() -> bool:
    """Whether the package is installed and not turned off (without loading its library here)."""
    return os.environ.get("ECO2_HELM_SDK", "1") != "0" and _installed()


@functools.cache  # find_spec walks sys.path: 0.1 ms, and every app's hydration key asks
def _installed() -> bool:
    return importlib.util.find_spec("helm_python") is not None


@functools.cache  # a metadata lookup costs 0.6 ms, and every app's hydration key asks twice a run
def describe() -> str:
    """What renders in process: part of the hydration cache key of every app rendered here, and of the log (the
    package's version pins the Helm it embeds)."""
    from importlib.metadata import version

    return f"{PACKAGE} {version(PACKAGE)}"


class Session:
    """`workers` helper processes for one hydration run, each taking one call at a time; closed at its end."""

    def __init__(self, workers: int) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parents[2]), *filter(None, [os.environ.get("PYTHONPATH")])])}
        self._all: list[subprocess.Popen] = []
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(workers):
            try:
                proc = subprocess.Popen(_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL, env=env)
            except OSError:  # no helper: template() raises and the caller runs the CLI
                continue
            self._all.append(proc)
            self._free.put(proc)

    def template(self, chart: Path, release: str, namespace: str, value_file: Path) -> str:
        """The documents `helm template RELEASE CHART -n NAMESPACE -f VALUE_FILE` prints, as one YAML stream
        (their order and `# Source` comments aside, which hydration does not keep). Raises on any error."""
        if not self._all:
            raise RuntimeError(f"no {PACKAGE} helper process could be started")
        proc = self._free.get()
        try:
            proc.stdin.write(json.dumps([str(chart), release, namespace, str(value_file)]).encode() + b"\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
        finally:
            self._free.put(proc)
        if not line:
            raise RuntimeError(f"the {PACKAGE} helper process ended (exit code {proc.poll()})")
        reply = json.loads(line)
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply["text"]

    def close(self) -> None:
        for proc in self._all:
            try:
                proc.stdin.close()
                proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                proc.kill()
        self._all.clear()


def _render(lib: Any, chart: Any, release: str, namespace: str, value_file: Path) -> str:
    lib.validate_release_name(release)
    values = lib.values_from_yaml(value_file.read_text(encoding="utf-8"))
    # render() checks the values against the chart's schemas first, as `helm template` does
    out = chart.render(values, name=release, namespace=namespace, revision=1, is_install=True, is_upgrade=False)
    parts = []
    for name, text in sorted(out.items()):
        if name.rsplit("/", 1)[-1] == "NOTES.txt" or not text.strip():
            continue  # helm template prints neither the notes nor empty renders (partials are not in `out`)
        parts.append(f"---\n# Source: {name}\n{text}\n")
    return "".join(parts)


def serve() -> None:
    """A helper process: one JSON request a line on stdin, one JSON reply a line on stdout, until stdin closes."""
    import helm_python as lib

    charts: dict[str, Any] = {}
    for line in sys.stdin.buffer:
        chart, release, namespace, value_file = json.loads(line)
        try:
            if chart not in charts:
                charts[chart] = lib.Chart.load(chart)
            reply = {"text": _render(lib, charts[chart], release, namespace, Path(value_file))}
        except Exception as exc:  # noqa: BLE001 — every failure is the caller's cue to run the CLI
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
    for handle in charts.values():
        handle.close()
