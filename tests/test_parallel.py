"""parallel.halves: a forked child computes every other item; the result is the loop's, whatever the child does."""

from __future__ import annotations

import os
import signal

import pytest

from generator import parallel
from generator.write import output

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


def test_an_error_in_this_process_stops_a_child_still_computing():
    """Ctrl-C (or any error) here does not wait for the child's half: the child is killed and reaped."""
    import time

    parent = os.getpid()

    def fn(i):
        if os.getpid() == parent:
            raise KeyboardInterrupt
        time.sleep(60)
        return i
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        parallel.halves(fn, list(range(4)), min_items=2)
    assert time.monotonic() - started < 20


# ---------------------------------------------------------------- a render with its file checks split


def _render(root, cache, monkeypatch, min_items: int, memo: bool = False) -> tuple[list[str], dict[str, bytes] | list[str]]:
    """(log lines without timings, the tree or the ValidationFailed lines) of a render with parallel.MIN_ITEMS."""
    import re

    from generator import pipeline
    from generator.errors import ValidationFailed

    monkeypatch.setattr(parallel, "MIN_ITEMS", min_items)
    log: list[str] = []
    try:
        pipeline.render_to_disk(pipeline.Options(root=root, values=root / "values", cache=cache, memo=memo),
                                log=log.append, replayed=False)
        result: dict[str, bytes] | list[str] = output.read_generated(root)
    except ValidationFailed as exc:
        result = exc.lines
    return [re.sub(r"\d+\.\d\ds", "_s", line) for line in log], result


def _counting_forks(monkeypatch) -> list[int]:
    forks: list[int] = []
    real = parallel._fork

    def counting(fn):
        forks.append(1)
        return real(fn)
    monkeypatch.setattr(parallel, "_fork", counting)
    return forks


def _repo(tmp_path, name: str):
    import shutil

    from conftest import REPO, copy_repo

    root, cache = copy_repo(tmp_path / name), tmp_path / f"cache-{name}"
    if (REPO / ".cache" / "hydrate").is_dir():  # helm's outputs, so that the renders do not run helm 51 times
        shutil.copytree(REPO / ".cache" / "hydrate", cache / "hydrate")
    return root, cache


@pytest.mark.parametrize("broken", [False, True])
def test_split_file_checks_say_and_write_what_one_process_does(tmp_path, monkeypatch, broken):
    """With the threshold at 2, every environment's schema and credential checks are split with a forked child: the
    same lines, the same tree or the same findings (a schema error, a plaintext credential) as in one process; without
    a memo, which would give the second run the first one's results."""
    from conftest import REPO, edit

    forks = _counting_forks(monkeypatch)
    results = []
    for name, min_items in (("alone", 10**9), ("split", 2)):
        root, cache = _repo(tmp_path, name)
        if broken:
            edit(root / "charts" / "api" / "templates" / "poddisruptionbudget.yaml", "  minAvailable:", "  minAvailble:")
            edit(root / "values" / "services.yaml", "    env:\n      CELERY_DEFAULT_EXCHANGE: tasks\n",
                 "    env:\n      CELERY_DEFAULT_EXCHANGE: tasks\n      BROKER_URL: amqp://eco:hunter2@rabbitmq:5672/\n")
        results.append(_render(root, cache, monkeypatch, min_items))
        # Split: each of dev, staging and prod at least once (the parse of its files, their checks).
        assert (len(forks) == 0) if name == "alone" else (len(forks) >= 3)
    assert results[0] == results[1]
    if broken:
        assert any("minAvailble" in line for line in results[0][1])
        assert any("[policy.credentials]" in line for line in results[0][1])
    else:
        assert results[0][1] == output.read_generated(REPO)


def test_with_a_memo_only_much_to_check_is_split(tmp_path, monkeypatch):
    """A cold run splits each environment's parse and file checks; a change to one app leaves a few files to parse
    and check, done here; nothing changed: nothing to do."""
    from conftest import edit

    forks = _counting_forks(monkeypatch)
    root, cache = _repo(tmp_path, "repo")
    _render(root, cache, monkeypatch, 20, memo=True)  # an environment of Eco² has about 70 files
    cold = len(forks)
    assert cold >= 3
    edit(root / "values" / "services.yaml", "image: {repository: ghcr.io/eco2-team/waste-api, tag: v0.6.0}",
         "image: {repository: ghcr.io/eco2-team/waste-api, tag: v0.6.1}")
    for _ in range(2):  # one change, then none
        _render(root, cache, monkeypatch, 20, memo=True)
        assert len(forks) == cold


def test_load_new_parses_what_the_memo_lacks_half_in_a_child_with_the_same_errors(tmp_path, monkeypatch):
    import yaml

    from generator import memo, yamlio

    monkeypatch.setattr(parallel, "MIN_ITEMS", 2)
    datas = [f"a: {i}\n---\nb: [{i}]\n".encode() for i in range(6)] + [b"a: [1\n", b"\xff: x\n"]
    with pytest.raises(yaml.YAMLError) as bad:  # as collect() parses it in this process
        yamlio.load_all("a: [1\n")
    with pytest.raises(UnicodeDecodeError) as undecodable:
        b"\xff: x\n".decode("utf-8")
    forks = _counting_forks(monkeypatch)
    got = yamlio.load_new(datas)
    assert len(forks) == 1
    assert got == {**{d: yamlio.load_all(d.decode()) for d in datas[:6]},
                   b"a: [1\n": " ".join(str(bad.value).split()), b"\xff: x\n": " ".join(str(undecodable.value).split())}
    with memo.using(memo.Memo(tmp_path / "memo")):
        yamlio.load_all(datas[0].decode())  # now in the memo: left out
        assert set(yamlio.load_new(datas)) == set(datas[1:])
