"""Render timings of the Eco² model: full (empty hydration cache and memo), warm no-change, and model-only, in
process; and `render` and `check` with nothing changed as the CLI processes a user runs. Medians of 5."""

from __future__ import annotations

import resource
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from generator import pipeline  # noqa: E402


def timed(fn, runs: int = 5) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        shutil.copytree(REPO / "values", root / "values")
        shutil.copytree(REPO / "charts", root / "charts", symlinks=True)
        quiet = lambda _: None  # noqa: E731
        opts = pipeline.Options(root=root, values=root / "values")

        def full() -> None:
            cache = Path(tmp) / "cold"
            shutil.rmtree(cache, ignore_errors=True)
            pipeline.render_to_disk(pipeline.Options(root=root, values=root / "values", cache=cache), log=quiet)

        pipeline.render_to_disk(opts, log=quiet)  # warm-up: helm located, cache filled, imports done
        no_hydrate = pipeline.Options(root=root, values=root / "values", hydrate=False, validate=False, memo=False)
        print(f"render, full (helm for every app, validation): {timed(full):.2f}s median of 5")
        print(f"render, nothing changed (replayed, in process): {timed(lambda: pipeline.render_to_disk(opts, log=quiet)):.2f}s median of 5")
        print(f"render, model only (--no-hydrate, without the memo): {timed(lambda: pipeline.render_to_disk(no_hydrate, log=quiet)):.3f}s median of 5")
        print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
        pipeline.render_to_disk(opts, log=quiet)  # the last run: what the processes below find nothing to redo for
        env = {**os.environ, "ECO2_CACHE": str(opts.cache_dir)}
        for command in ("render", "check"):
            def cli() -> None:
                subprocess.run([sys.executable, "-m", "generator", command, "--root", str(root)], env=env, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            print(f"`python -m generator {command}`, nothing changed (a process): {timed(cli):.2f}s median of 5")


if __name__ == "__main__":
    main()
