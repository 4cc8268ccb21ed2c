"""Scale benchmark: the CLI on synthetic models of N API services (bench/synth.py), next to a plain helm loop.

    make bench-scale                        # N = 100, 300, 1000
    BENCH_N=100,300 make bench-scale        # other sizes
    BENCH_PROFILE=1 make bench-scale        # also cProfile a no-change render of the largest N (top 25 cumulative)
    BENCH_KEEP=1 make bench-scale           # keep the temporary repositories (their paths are printed)

For each N, in a fresh temporary directory: synth writes values/, charts/ is copied, and every command runs as its
own subprocess (`python -m generator ...`, exactly as a user runs it) with ECO2_CACHE pointing at an empty cache
directory of that run (only tools/ is linked to the repository's, so helm is not fetched again). Steps, in order:

1. `render`, cold: no hydration cache, so helm renders every Application;
2. `render`, no change: every Application from the hydration cache;
3. (untimed) `git init` and a commit of the whole tree;
4. `set-image <service> v0.6.1`, then v0.6.2, then v0.6.3: one service's image tag, then the re-render (one
   Application misses the cache); the table gives the median of the three (each in the note: one run varies by
   about a tenth);
5. `check`, 6. `validate`, 7. `diff --base HEAD` (the working tree against the commit of step 3);
8. the baseline: `helm template` once for every rendered/<env>/apps/*.yaml, with the chart, release, namespace,
   value files, --kube-version, --api-versions, --include-crds and --skip-tests the Application gives (as
   generator/hydrate/hydrate.py derives them), output to files; sequentially, and 2 at a time;
9. `render`, cold, again: the model after step 4 in a fresh copy with an empty cache, right after the loops (the
   speed of a shared machine drifts over minutes; the two cold renders bracket the loops).

Per step: CPU seconds (user + sys of the process and every child it waited for, from wait4), wall seconds, and max
RSS (the largest process of that tree: the kernel's maxrss of a reaped process covers its reaped children; each
command is started by a small launcher so that the bench's own size does not count; not measured for the loop), and
the ratios to the helm loop: CPU to the sequential loop's CPU, wall to the sequential and the 2-way loop's wall. Note that
the generator renders charts whose templates call random or clock functions twice (hydrate.may_flap), the loop once.
The commands may write their bytecode (__pycache__), as Python does on a user's machine.
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import synth  # noqa: E402
from generator.helm import find_helm  # noqa: E402
from generator.upstream import charts as chart_sources  # noqa: E402  (locating the verified upstream archives only)

DEFAULT_N = (100, 300, 1000)
NEW_TAGS = ("v0.6.1", "v0.6.2", "v0.6.3")


@dataclass
class Sample:
    step: str
    rc: int
    cpu: float  # user + sys seconds, children included
    wall: float
    rss_mib: float
    note: str = ""


# Runs one command and reports on it (json on argv[1]): exit code, CPU s (user + sys of the command and every child it
# waited for), wall s, and max RSS KiB. A process forked from this small launcher starts with the launcher's small
# resident set; one forked from the bench itself would report the bench's size (the kernel's high-water mark survives
# fork and exec), which made every step of an earlier version show the same 245 MiB.
_LAUNCHER = (
    "import json, os, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "proc = subprocess.Popen(sys.argv[2:])\n"
    "_, status, usage = os.wait4(proc.pid, 0)\n"
    "wall = time.perf_counter() - start\n"
    "with open(sys.argv[1], 'w') as f:\n"
    "    json.dump([os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss], f)\n"
)


def measured(cmd: list[str], cwd: Path, env: dict[str, str], out: Path, err: Path,
             launched: bool = True) -> tuple[int, float, float, float]:
    """(exit code, CPU s, wall s, max RSS MiB) of one subprocess and everything it waited for. launched=False (the
    helm loop, where a launcher per call would add its start-up to a thousand calls): measured from here, without a
    meaningful RSS (0)."""
    if not launched:
        start = time.perf_counter()
        with open(out, "wb") as o, open(err, "wb") as e:
            proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=o, stderr=e)
            _, status, usage = os.wait4(proc.pid, 0)
        return os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime, time.perf_counter() - start, 0.0
    report = out.with_suffix(".usage.json")
    with open(out, "wb") as o, open(err, "wb") as e:
        subprocess.run([sys.executable, "-c", _LAUNCHER, str(report), *cmd], cwd=cwd, env=env, stdout=o, stderr=e,
                       check=False)
    rc, cpu, wall, rss = json.loads(report.read_text())
    return rc, cpu, wall, rss / 1024


def _tail(path: Path) -> str:
    """The end of a log, without the waiver lines every render prints."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return "\n".join(line for line in lines if not line.startswith("waived: "))[-4000:]


# ---------------------------------------------------------------- the helm loop


def helm_env(cache: Path) -> dict[str, str]:
    """What generator/helm.py gives helm: no user repos, plugins or kube config; C locale, UTC."""
    env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    env |= {"LC_ALL": "C", "TZ": "UTC"}
    for kind in ("cache", "config", "data"):
        (cache / "helm-home" / kind).mkdir(parents=True, exist_ok=True)
        env[f"HELM_{kind.upper()}_HOME"] = str(cache / "helm-home" / kind)
    return env


def helm_args(app: dict, root: Path) -> list[str]:
    """`helm template` arguments for one Application, read off it the way Argo CD (and hydrate.invocation) does."""
    spec = app["spec"]
    name = app["metadata"]["name"]
    sources = spec.get("sources") or [spec["source"]]
    refs = {s["ref"] for s in sources if s.get("ref")}
    (source,) = [s for s in sources if "path" in s or "chart" in s]
    helm = source.get("helm") or {}
    if "chart" in source:
        chart = chart_sources.resolve_chart(source["chart"], source["targetRevision"], source["repoURL"])
        base = root
    else:
        chart = base = root / source["path"]
    files = []
    for ref in helm.get("valueFiles", []):
        if ref.startswith("$"):
            ref_name, _, rest = ref[1:].partition("/")
            assert ref_name in refs, f"{name}: {ref}"
            files.append(os.path.normpath(root / rest))
        else:
            files.append(os.path.normpath(base / ref))
    args = ["template", helm.get("releaseName", name), str(chart),
            "--namespace", helm.get("namespace") or spec["destination"]["namespace"]]
    args += [a for f in files for a in ("-f", f)]
    args += ["--kube-version", helm["kubeVersion"]] if helm.get("kubeVersion") else []
    args += [a for v in helm.get("apiVersions", []) for a in ("--api-versions", v)]
    args += [] if helm.get("skipCrds") else ["--include-crds"]
    args += ["--skip-tests"] if helm.get("skipTests") else []
    return args


def helm_loop(root: Path, helm: Path, cache: Path, out: Path, jobs: int) -> tuple[Sample, int]:
    """Every Application of rendered/*/apps through `helm template`, `jobs` at a time."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = helm_env(cache)
    calls = []
    for path in sorted(root.glob("rendered/*/apps/*.yaml")):
        app = yaml.safe_load(path.read_text(encoding="utf-8"))
        calls.append((path.stem, [str(helm), *helm_args(app, root)]))

    def one(call: tuple[str, list[str]]) -> tuple[int, float, float, float]:
        stem, cmd = call
        return measured(cmd, root, env, out / f"{stem}.yaml", out / f"{stem}.err", launched=False)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(one, calls))
    wall = time.perf_counter() - start
    failed = [stem for (stem, _), r in zip(calls, results) if r[0] != 0]
    rc = 1 if failed else 0
    note = f"{len(calls)} apps" + (f"; failed: {', '.join(failed[:5])}" if failed else "")
    label = "helm template loop, sequential" if jobs == 1 else f"helm template loop, {jobs}-way parallel"
    return Sample(label, rc, sum(r[1] for r in results), wall, 0.0, note), len(calls)


# ---------------------------------------------------------------- one N


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "-c", "commit.gpgsign=false",
                    *args], cwd=root, check=True, capture_output=True)


def tree_size(root: Path) -> tuple[int, int]:
    files = [p for top in ("rendered", "argocd") for p in (root / top).rglob("*.yaml")]
    return len(files), sum(p.stat().st_size for p in files)


def bench_n(n: int, keep: bool, profile: bool) -> tuple[list[Sample], list[str], str | None]:
    """The samples, context lines, and the profile's text (if asked)."""
    tmp = Path(tempfile.mkdtemp(prefix=f"eco2-scale-{n}-"))
    root, cache, logs = tmp / "repo", tmp / "cache", tmp / "logs"
    logs.mkdir()
    synth.write(n, root)
    shutil.copytree(REPO / "charts", root / "charts", symlinks=True)
    helm = find_helm()  # the bench's own lookup (fetches the pinned helm into the repo's .cache once if needed)
    cache.mkdir()
    if (REPO / ".cache" / "tools").is_dir():
        (cache / "tools").symlink_to(REPO / ".cache" / "tools")  # the pinned helm, without a second download
    # As on a user's machine, Python keeps the package's bytecode (this workplace sets PYTHONDONTWRITEBYTECODE=1, which
    # made every command compile the package again: about 0.15 s a process).
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}, "ECO2_CACHE": str(cache)}
    gen = [sys.executable, "-m", "generator"]
    service = synth.name_of(n // 2)
    samples: list[Sample] = []
    logged = itertools.count()  # the logs' numbers (the set-image runs become one sample)
    context = [f"N={n}: {tmp}"]

    def step(label: str, args: list[str], expect: tuple[int, ...] = (0,), cmd: list[str] | None = None) -> bool:
        tag = f"{next(logged):02d}"
        out, err = logs / f"{tag}.out", logs / f"{tag}.err"
        rc, cpu, wall, rss = measured(cmd or [*gen, *args], REPO, env, out, err)
        note = "" if rc in expect else f"FAILED (exit {rc}), see {err}"
        samples.append(Sample(label, rc, cpu, wall, rss, note))
        print(f"  N={n} {label}: exit {rc}, {cpu:.1f}s CPU, {wall:.1f}s wall, {rss:.0f} MiB", file=sys.stderr, flush=True)
        if rc not in expect:
            print(_tail(err), file=sys.stderr)
        return rc in expect

    r = str(root)
    ok = step("render, cold (no hydration cache)", ["render", "--root", r])
    if ok:
        ok = step("render, no change", ["render", "--root", r])
    if ok:
        files, size = tree_size(root)
        apps = len(list(root.glob("rendered/*/apps/*.yaml")))
        context.append(f"N={n}: {apps} Applications, {len(synth.build(n, REPO / 'values')['cluster.yaml']['nodes'])} nodes, "
                       f"{files} files / {size / 2**20:.1f} MiB under rendered/ + argocd/; "
                       f"{(root / 'values' / 'services.yaml').stat().st_size / 1024:.0f} KiB values/services.yaml")
        git(root, "init", "-q")
        git(root, "add", "-A")
        git(root, "commit", "-q", "-m", f"synthetic model, {n} services")
        for tag in NEW_TAGS:
            ok = ok and step(f"set-image {service} {tag} (one change + render)", ["set-image", service, tag, "--root", r])
        if ok:  # the three runs, as one row: their median
            runs = sorted(samples[-len(NEW_TAGS):], key=lambda s: s.cpu)
            del samples[-len(NEW_TAGS):]
            mid = runs[len(runs) // 2]
            samples.append(Sample(f"set-image {service} (one change + render), median of {len(runs)}", 0, mid.cpu,
                                  sorted(x.wall for x in runs)[len(runs) // 2], max(x.rss_mib for x in runs),
                                  "CPU s " + " / ".join(f"{x.cpu:.2f}" for x in runs)))
    if ok:
        step("check", ["check", "--root", r])
        step("validate", ["validate", "--root", r])
        step("diff --base HEAD", ["diff", "--base", "HEAD", "--root", r])
        for jobs in (1, 2):
            sample, _ = helm_loop(root, helm.path, cache, tmp / "loop", jobs)
            samples.append(sample)
            print(f"  N={n} {sample.step}: {sample.cpu:.1f}s CPU, {sample.wall:.1f}s wall ({sample.note})",
                  file=sys.stderr, flush=True)
        # The speed of a shared machine drifts over minutes: a second cold render, right after the loops, in a fresh
        # copy with a fresh cache, shows how much of a ratio is the machine.
        again, again_cache = tmp / "again", tmp / "again-cache"
        again.mkdir()
        again_cache.mkdir()
        shutil.copytree(root / "values", again / "values")
        shutil.copytree(REPO / "charts", again / "charts", symlinks=True)
        if (REPO / ".cache" / "tools").is_dir():
            (again_cache / "tools").symlink_to(REPO / ".cache" / "tools")
        env["ECO2_CACHE"] = str(again_cache)
        step("render, cold, again after the loops", ["render", "--root", str(again)])
        env["ECO2_CACHE"] = str(cache)
    profiled = None
    if ok and profile:
        prof = tmp / "render.prof"
        step("render, no change, under cProfile", ["render", "--root", r],
             cmd=[sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "generator", "render", "--root", r])
        text = io.StringIO()
        stats = pstats.Stats(str(prof), stream=text)
        stats.sort_stats("cumulative").print_stats(25)
        text.write("\n--- by own time (tottime) ---\n")
        stats.sort_stats("tottime").print_stats(15)
        profiled = text.getvalue()
        context.append(f"N={n}: profile in {prof}" if keep else f"N={n}: profile written (BENCH_KEEP=1 keeps {prof})")
    if not keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return samples, context, profiled


# ---------------------------------------------------------------- report


def table(results: dict[int, list[Sample]]) -> str:
    head = ("| N | step | exit | CPU s | wall s | max RSS MiB | CPU ÷ loop CPU | wall ÷ loop wall (seq) | "
            "wall ÷ loop wall (2-way) | note |")
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for n, samples in results.items():
        seq = next((s for s in samples if s.step.endswith("sequential")), None)
        par = next((s for s in samples if "parallel" in s.step), None)

        def ratio(a: float, b: Sample | None, attr: str) -> str:
            base = getattr(b, attr) if b else 0
            return f"{a / base:.3f}" if base else "—"

        for s in samples:
            rows.append(f"| {n} | {s.step} | {s.rc} | {s.cpu:.1f} | {s.wall:.1f} | {f'{s.rss_mib:.0f}' if s.rss_mib else '—'} | "
                        f"{ratio(s.cpu, seq, 'cpu')} | {ratio(s.wall, seq, 'wall')} | {ratio(s.wall, par, 'wall')} | "
                        f"{s.note} |")
    return "\n".join(rows)


def sizes(text: str | None) -> tuple[int, ...]:
    if not text:
        return DEFAULT_N
    try:
        out = tuple(int(x) for x in text.replace(" ", "").split(",") if x)
    except ValueError:
        raise SystemExit(f"BENCH_N={text!r}: a comma-separated list of service counts, e.g. 100,300") from None
    if not out or min(out) < 1:
        raise SystemExit(f"BENCH_N={text!r}: at least one count, each at least 1")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", default=os.environ.get("BENCH_N"), help="comma-separated service counts [100,300,1000]")
    parser.add_argument("--profile", action="store_true", default=bool(os.environ.get("BENCH_PROFILE")),
                        help="cProfile a no-change render of the largest N (top 25 cumulative, top 15 own time)")
    parser.add_argument("--keep", action="store_true", default=bool(os.environ.get("BENCH_KEEP")),
                        help="keep the temporary repositories")
    args = parser.parse_args()
    ns = sizes(args.n)
    helm = find_helm()
    print(f"scale bench: N = {', '.join(map(str, ns))}; {helm.describe()}; {os.cpu_count()} CPUs; {sys.executable}",
          file=sys.stderr, flush=True)
    results: dict[int, list[Sample]] = {}
    context: list[str] = []
    profile_text = None
    started = time.perf_counter()
    for n in ns:
        samples, ctx, prof = bench_n(n, args.keep, args.profile and n == max(ns))
        results[n] = samples
        context += ctx
        profile_text = prof or profile_text
    print()
    print(f"### Scale: the CLI on bench/synth.py models vs. a plain `helm template` loop ({os.cpu_count()} CPUs)")
    print()
    print(table(results))
    print()
    for line in context:
        print(f"- {line}")
    print(f"- total bench time {time.perf_counter() - started:.0f}s")
    if profile_text:
        print()
        print(f"### cProfile of a no-change render, N={max(ns)} (sorted by cumulative time)")
        print()
        print("```")
        print(profile_text.strip())
        print("```")
    if any(s.note.startswith("FAILED") or s.rc for samples in results.values() for s in samples):
        sys.exit(1)


if __name__ == "__main__":
    main()
