"""Time of `diff` over the whole Eco² rendered tree between two refs that change one image tag (median of 5 runs)."""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402  (after the sys.path line, like the generator import)

from generator import review  # noqa: E402 (runs as a script, without an install)
from generator.review import snapshot  # noqa: E402


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "-c", "commit.gpgsign=false",
                    *args], cwd=root, check=True, capture_output=True)


def current_tag(source: Path, app: str) -> str:
    """The image tag `app` is rendered with now (the bench must work whatever the model's state)."""
    values = source / f"rendered/prod/values/{app}.yaml"
    if not values.is_file():
        raise SystemExit(f"{source} has no {values.relative_to(source)}: render first (make render)")
    tag = (yaml.safe_load(values.read_text(encoding="utf-8")).get("image") or {}).get("tag")
    if not tag:
        raise SystemExit(f"{values} has no image.tag to bump")
    return str(tag)


def bumped(tag: str) -> str:
    """The next tag: v0.6.1 -> v0.6.2, sha-abc -> sha-abc-1 (any other tag: never the same one)."""
    match = re.fullmatch(r"(.*?)([0-9]+)", tag)
    return f"{match[1]}{int(match[2]) + 1}" if match else f"{tag}-1"


def history(source: Path, dest: Path, app: str, old: str, new: str) -> int:
    """A git repo holding `source`'s rendered/ and argocd/, then a commit bumping `app`'s image tag; returns file count."""
    for top in snapshot.TOPS:
        shutil.copytree(source / top, dest / top)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "base")
    touched = 0
    # The values file, and the hydrated manifests when the tree has them (image and version label).
    for rel in (f"rendered/prod/values/{app}.yaml", f"rendered/prod/manifests/{app}.yaml"):
        path = dest / rel
        if path.is_file():
            text = path.read_text()
            changed = (text.replace(f"tag: {old}", f"tag: {new}").replace(f":{old}", f":{new}")
                       .replace(f"version: {old}", f"version: {new}"))
            if changed != text:
                path.write_text(changed)
                touched += 1
    if not touched:
        raise SystemExit(f"{source}: {app}'s rendered files do not mention the tag {old}")
    git(dest, "commit", "-q", "-am", f"{app} {new}")
    return len(review.read_worktree(dest).files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--source", type=Path, default=ROOT, help="tree whose rendered/ and argocd/ to use [repo root]")
    parser.add_argument("--app", default="waste", help="app whose image tag the second commit bumps [waste]")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp)
        source = args.source.resolve()
        old = current_tag(source, args.app)
        files = history(source, repo, args.app, old, bumped(old))
        hydrated = any("/manifests/" in p for p in review.read_worktree(repo).files)
        library, cli = [], []
        report = None
        for _ in range(args.runs):
            start = time.perf_counter()
            report = review.compare(review.read_git(repo, "HEAD~1"), review.read_git(repo, "HEAD"))
            review.render_text(report)
            review.render_markdown(report)
            library.append(time.perf_counter() - start)
        runner = ("import click, sys; from generator.cli.diff import diff_command; g = click.Group(); "
                  "g.add_command(diff_command); g(sys.argv[1:])")
        for _ in range(args.runs):
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", runner, "diff", "--root", str(repo), "--base", "HEAD~1",
                                   "--head", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
            cli.append(time.perf_counter() - start)
            assert proc.returncode == 0, proc.stderr
        assert report is not None
        print(f"tree: {files} YAML files ({'with' if hydrated else 'without'} hydrated manifests) from {args.source}")
        print(f"summary: {'; '.join(report.summary)}")
        print(f"library (2 refs read via git + compare + text + markdown): median {statistics.median(library) * 1000:.1f} ms "
              f"of {args.runs} (min {min(library) * 1000:.1f}, max {max(library) * 1000:.1f})")
        print(f"CLI process (python startup included): median {statistics.median(cli) * 1000:.0f} ms of {args.runs} "
              f"(min {min(cli) * 1000:.0f}, max {max(cli) * 1000:.0f})")


if __name__ == "__main__":
    main()
