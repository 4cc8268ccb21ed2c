"""parallel.halves: a forked child computes every other item; the result is the loop's, whatever the child does."""

from __future__ import annotations

import os
import signal

import pytest

from generator import output, parallel

pytestmark = pytest.mark.skipif(not parallel.available(), reason="fork-based split only on Linux with 2+ CPUs")


def test_the_result_is_the_loops_in_order_and_half_comes_from_a_child():
    parent = os.getpid()
    out = parallel.halves(lambda i: [i, i * i, os.getpid() == parent], list(range(11)), min_items=2)
    assert [x[:2] for x in out] == [[i, i * i] for i in range(11)]
    assert [x[2] for x in out] == [i % 2 == 0 for i in range(11)]  # odd items computed elsewhere


def test_short_lists_stay_in_this_process():
    parent = os.getpid()
    assert parallel.halves(lambda i: os.getpid() == parent, list(range(5)), min_items=6) == [True] * 5


@pytest.mark.parametrize("how", ["raises", "killed", "exits", "garbage"])
def test_a_child_that_fails_leaves_its_half_to_this_process(how):
    parent = os.getpid()

    def fn(i):
        if os.getpid() != parent:
            if how == "raises":
                raise RuntimeError("in the child")
            if how == "killed":
                os.kill(os.getpid(), signal.SIGKILL)
            if how == "exits":
                os._exit(0)  # leaves without sending anything
            if how == "garbage":
                return {1, 2}  # not JSON: the child cannot send it
        return [i, os.getpid() == parent]
    assert parallel.halves(fn, list(range(8)), min_items=2) == [[i, True] for i in range(8)]


def test_an_error_in_this_process_is_raised_and_leaves_no_child(tmp_path):
    parent = os.getpid()
    pids = tmp_path / "pids"

    def fn(i):
        if os.getpid() == parent:
            raise ValueError("here")
        with open(pids, "a") as f:
            f.write(f"{os.getpid()}\n")
        return "x" * 100_000  # fills the pipe: the child waits for a reader that is gone
    with pytest.raises(ValueError, match="here"):
        parallel.halves(fn, list(range(6)), min_items=2)
    for pid in {int(p) for p in pids.read_text().split()} if pids.exists() else ():
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)  # reaped already


# ---------------------------------------------------------------- a render with its validation forked


def _render(root, cache, monkeypatch, min_items: int) -> tuple[list[str], dict[str, bytes] | list[str]]:
    """(log lines without timings, the tree or the ValidationFailed lines) of a render with parallel.MIN_ITEMS."""
    import re

    from conftest import REPO  # noqa: F401  (the fixture copies it)
    from generator import output, pipeline
    from generator.errors import ValidationFailed

    monkeypatch.setattr(parallel, "MIN_ITEMS", min_items)
    log: list[str] = []
    try:
        pipeline.render_to_disk(pipeline.Options(root=root, values=root / "values", cache=cache, memo=False), log=log.append,
                                replayed=False)
        result: dict[str, bytes] | list[str] = output.read_generated(root)
    except ValidationFailed as exc:
        result = exc.lines
    return [re.sub(r"\d+\.\d\ds", "_s", line) for line in log], result


@pytest.mark.parametrize("broken", [False, True])
def test_a_forked_validation_says_and_writes_what_one_process_does(tmp_path, monkeypatch, broken):
    """With the thresholds at 2, every environment's validation runs in a forked child (and splits its schema
    checks again): the same lines, the same tree or the same findings as in one process; without a memo, which
    would give the second run the first one's report."""
    import shutil

    from conftest import REPO, copy_repo, edit

    forks: list[bool] = []
    real = parallel.Pending.__init__

    def counting(self, fn, fork):
        real(self, fn, fork)
        forks.append(self.forked)
    monkeypatch.setattr(parallel.Pending, "__init__", counting)
    results = []
    for name, min_items in (("alone", 10**9), ("forked", 2)):
        root = copy_repo(tmp_path / name)
        if broken:
            edit(root / "charts" / "api" / "templates" / "poddisruptionbudget.yaml", "  minAvailable:", "  minAvailble:")
        cache = tmp_path / f"cache-{name}"
        if (REPO / ".cache" / "hydrate").is_dir():  # helm's outputs, so that the renders do not run helm 51 times
            shutil.copytree(REPO / ".cache" / "hydrate", cache / "hydrate")
        results.append(_render(root, cache, monkeypatch, min_items))
    assert forks == [False] * 3 + [True] * 3  # dev, staging, prod: in this process, then each in a child
    assert results[0] == results[1]
    if broken:
        assert any("minAvailble" in line for line in results[0][1])
    else:
        assert results[0][1] == {p: b for p, b in output.read_generated(REPO).items()}


def test_with_a_memo_only_a_validation_with_much_to_parse_is_forked(tmp_path, monkeypatch):
    """A cold run (nothing parsed in the memo) forks each environment's validation; a change to one app leaves a
    handful of files to parse, so its validation runs here on the review's documents; nothing changed: no validation."""
    import shutil

    from conftest import REPO, copy_repo, edit
    from generator import pipeline

    forks: list[bool] = []
    real = parallel.Pending.__init__

    def counting(self, fn, fork):
        real(self, fn, fork)
        forks.append(self.forked)
    monkeypatch.setattr(parallel.Pending, "__init__", counting)
    monkeypatch.setattr(parallel, "MIN_ITEMS", 20)  # an environment of Eco² has about 70 files
    root, cache = copy_repo(tmp_path / "repo"), tmp_path / "cache"
    if (REPO / ".cache" / "hydrate").is_dir():
        shutil.copytree(REPO / ".cache" / "hydrate", cache / "hydrate")

    def render() -> None:
        pipeline.render_to_disk(pipeline.Options(root=root, values=root / "values", cache=cache), log=lambda _: None,
                                replayed=False)
    render()
    assert forks == [True] * 3
    forks.clear()
    edit(root / "values" / "services.yaml", "image: {repository: ghcr.io/eco2-team/waste-api, tag: v0.6.0}",
         "image: {repository: ghcr.io/eco2-team/waste-api, tag: v0.6.1}")
    render()
    assert forks == [False] * 3
    forks.clear()
    render()
    assert forks == [False] * 3
