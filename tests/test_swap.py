"""The swap of the generated tree, killed at every step: the next command finds the old or the new tree, complete.

A render is killed with os._exit (no `finally`, no `except`: what SIGKILL or a power cut leaves) right
before and right after each rename the swap makes, in a forked child; then the next command's lock
recovers, and the tree must be exactly the old one or exactly the new one, with no staging
directory and no journal left. Which one is known for each step: before the journal says
"committed", the old tree; after, the new one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import shutil

from conftest import REPO, copy_repo, edit
from generator.write import output

OLD = {"rendered/prod/apps/a.yaml": b"old a\n", "rendered/prod/apps/gone.yaml": b"only in the old tree\n",
       "argocd/root.yaml": b"old root\n", "schema/model.json": b"{}\n", "charts/api/values.schema.json": b"old api\n"}
NEW = {"rendered/prod/apps/a.yaml": b"new a\n", "rendered/prod/apps/b.yaml": b"added\n",
       "argocd/root.yaml": b"new root\n", "schema/model.json": b'{"new": 1}\n',
       "charts/api/values.schema.json": b"new api\n", "charts/worker/values.schema.json": b"new worker\n"}
UNMANAGED = {"values/cluster.yaml": b"cluster: {}\n", "charts/api/Chart.yaml": b"name: api\n"}


@pytest.fixture
def rendered_copy(tmp_path: Path) -> Path:
    """A copy of this repository as committed: model, charts and the generated tree (no render needed)."""
    root = copy_repo(tmp_path / "repo")
    for top in output.MANAGED_DIRS:
        shutil.copytree(REPO / top, root / top)
    return root


def tree_of(files: dict[str, bytes]) -> output.Tree:
    tree = output.Tree()
    for rel, data in files.items():
        tree.add(rel, data.decode())
    return tree


def files_under(root: Path) -> dict[str, bytes]:
    """Every file below root, whatever made it (leftovers included)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def leftovers(root: Path) -> list[str]:
    """Staging directories and journals (the lock file stays: removing it would race with its next taker)."""
    return sorted(p.name for p in root.glob(".render*") if p.name != output.LOCK)


def prepare(root: Path) -> None:
    for rel, data in {**OLD, **UNMANAGED}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def swap_new(root: Path) -> output.Tree:
    """What a render does under the lock: stage the new tree, swap it in."""
    with output.locked(root):
        staged = root / ".render-test"
        tree_of(NEW).write(staged)
        tree = tree_of(NEW)
        output.swap(root, staged, tree)
        return tree


def killed_swap(root: Path, kill_at: int, after: bool) -> int:
    """Fork; the child swaps and dies at its kill_at-th rename or replace (before or after it). The renames it made."""
    pid = os.fork()
    if pid == 0:  # the child: never returns to pytest
        calls = 0
        real_rename, real_replace = os.rename, os.replace

        def step(real):
            def op(src, dst):
                nonlocal calls
                calls += 1
                if calls == kill_at and not after:
                    os._exit(137)
                real(src, dst)
                if calls == kill_at and after:
                    os._exit(137)
            return op

        output.os.rename, output.os.replace = step(real_rename), step(real_replace)
        try:
            swap_new(root)
        except BaseException:
            os._exit(1)
        os._exit(0 if calls < kill_at else 3)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def steps_of_a_swap(tmp_path: Path) -> int:
    """How many renames and replaces a complete swap makes (the journal's two writes included)."""
    root = tmp_path / "count"
    root.mkdir()
    prepare(root)
    counted = []
    real_rename, real_replace = os.rename, os.replace
    output.os.rename = lambda s, d: (counted.append(s), real_rename(s, d))[1]
    output.os.replace = lambda s, d: (counted.append(s), real_replace(s, d))[1]
    try:
        swap_new(root)
    finally:
        output.os.rename, output.os.replace = real_rename, real_replace
    assert files_under(root) == {**NEW, **UNMANAGED, output.LOCK: files_under(root)[output.LOCK]}
    return len(counted)


def test_killed_at_every_step_of_the_swap_the_next_command_finds_one_whole_tree(tmp_path: Path):
    steps = steps_of_a_swap(tmp_path)
    # only what changes moves: 4 changed files (aside and in), 2 added (in), 1 removed (aside), 2 journal writes
    assert steps == 13
    outcomes = []
    for kill_at in range(1, steps + 1):
        for after in (False, True):
            root = tmp_path / f"kill-{kill_at}-{'after' if after else 'before'}"
            root.mkdir()
            prepare(root)
            assert killed_swap(root, kill_at, after) == 137
            with output.locked(root):  # what the next render, check, validate or set-image does first
                pass
            found = {k: v for k, v in files_under(root).items() if k != output.LOCK}
            committed = kill_at == steps and after  # the journal said "committed" before the kill
            assert found == {**(NEW if committed else OLD), **UNMANAGED}, (kill_at, after)
            assert not leftovers(root), (kill_at, after)
            outcomes.append("new" if committed else "old")
    assert outcomes.count("new") == 1 and len(outcomes) == 2 * steps


def test_a_recovery_that_is_itself_killed_is_finished_by_the_next_one(tmp_path: Path):
    steps = steps_of_a_swap(tmp_path)
    for undo_kill in range(1, 8):
        root = tmp_path / f"undo-{undo_kill}"
        root.mkdir()
        prepare(root)
        assert killed_swap(root, steps - 2, after=True) == 137  # most renames done, not committed
        pid = os.fork()
        if pid == 0:
            calls = 0
            real = os.rename

            def rename(src, dst):
                nonlocal calls
                calls += 1
                if calls == undo_kill:
                    os._exit(137)
                real(src, dst)
            output.os.rename = rename
            output.recover(root)
            os._exit(0)
        os.waitpid(pid, 0)
        with output.locked(root):
            pass
        assert {k: v for k, v in files_under(root).items() if k != output.LOCK} == {**OLD, **UNMANAGED}, undo_kill
        assert not leftovers(root)


def test_stale_staging_directories_are_removed_by_the_next_command(tmp_path: Path):
    prepare(tmp_path)
    (tmp_path / ".render-abandoned" / "rendered").mkdir(parents=True)
    (tmp_path / ".render-abandoned" / "rendered" / "x.yaml").write_text("x")
    (tmp_path / ".render-empty").mkdir()
    assert output.recover(tmp_path) == "removed 2 stale staging directories"
    assert not list(tmp_path.glob(".render-*"))


def test_a_second_writer_is_refused_while_one_holds_the_checkout(rendered_copy: Path):
    with output.locked(rendered_copy):
        result = subprocess.run([sys.executable, "-m", "generator", "render", "--root", str(rendered_copy), "--no-hydrate"],
                                capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 75, result.stderr
    assert result.stderr.splitlines() == [
        f"error: pid {os.getpid()} ({' '.join(sys.argv[:2])}) is writing this checkout's generated files; "
        "run again when it has finished", "nothing was written."]


KILLED_RENDER = """
import os, sys
from generator import cli
from generator.write import output
calls, real, kill_at = 0, os.rename, int(sys.argv[2])
def rename(src, dst):
    global calls
    calls += 1
    if calls == kill_at:
        os.kill(os.getpid(), 9)
    real(src, dst)
output.os.rename = rename
sys.argv = ["generator", "render", "--root", sys.argv[1], "--no-hydrate"]
cli.main()
"""


@pytest.mark.parametrize("kill_at", [1, 3])  # rendered/ moved aside; new rendered/ beside the old argocd/
def test_the_real_cli_killed_mid_swap_then_validate_sees_the_previous_tree(rendered_copy: Path, kill_at: int):
    before = {k: v for k, v in files_under(rendered_copy).items() if k.split("/")[0] in output.MANAGED_DIRS}
    edit(rendered_copy / "values" / "services.yaml", "tag: v0.6.0", "tag: v0.6.1")
    killed = subprocess.run([sys.executable, "-c", KILLED_RENDER, str(rendered_copy), str(kill_at)],
                            capture_output=True, text=True, cwd=REPO)
    assert killed.returncode == -9, killed.stderr
    assert (rendered_copy / output.JOURNAL).exists()
    after_kill = subprocess.run([sys.executable, "-m", "generator", "validate", "--root", str(rendered_copy)],
                                capture_output=True, text=True, cwd=REPO)
    assert "recovered: an earlier render was killed during its swap: the tree before it is restored" in after_kill.stderr
    now = {k: v for k, v in files_under(rendered_copy).items() if k.split("/")[0] in output.MANAGED_DIRS}
    assert now == before
    assert not leftovers(rendered_copy)


# ---------------------------------------------------------------- the pieces of the swap, one by one


def test_a_swap_that_fails_in_this_process_puts_the_old_tree_back_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    prepare(tmp_path)
    calls, real = [], os.rename

    def rename(src, dst):
        calls.append(src)
        if len(calls) == 4:
            raise OSError("disk full")
        real(src, dst)

    monkeypatch.setattr(output.os, "rename", rename)
    with pytest.raises(OSError, match="disk full"):
        swap_new(tmp_path)
    shutil.rmtree(tmp_path / ".render-test")  # what output.staging() does for a render
    assert {k: v for k, v in files_under(tmp_path).items() if k != output.LOCK} == {**OLD, **UNMANAGED}
    assert not leftovers(tmp_path)  # no journal: the undo is done, nothing for the next command to recover


def test_directories_a_removal_empties_go_with_it(tmp_path: Path):
    prepare(tmp_path)
    for rel in ("rendered/dev/apps/only.yaml", "rendered/dev/values/only.yaml"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"dev\n")
    swap_new(tmp_path)
    assert not (tmp_path / "rendered" / "dev").exists()  # emptied: removed up to the managed folder
    assert (tmp_path / "rendered" / "prod" / "apps").is_dir()  # still holds files
    assert {k: v for k, v in files_under(tmp_path).items() if k != output.LOCK} == {**NEW, **UNMANAGED}


def test_an_unchanged_tree_is_not_swapped_at_all(tmp_path: Path):
    prepare(tmp_path)
    before = {k: v for k, v in files_under(tmp_path).items() if not k.startswith(".")}  # not the lock, staging
    first = swap_new(tmp_path)
    after = {k: v for k, v in files_under(tmp_path).items() if not k.startswith(".")}
    # The swap says what it replaced, added and removed: what differs on disk.
    assert first.changed == tuple(sorted(r for r in before.keys() | after.keys() if before.get(r) != after.get(r)))
    assert "rendered/prod/apps/gone.yaml" in first.changed and "rendered/prod/apps/b.yaml" in first.changed
    inodes = {rel: (tmp_path / rel).stat().st_ino for rel in NEW}
    assert swap_new(tmp_path).changed == ()
    assert {rel: (tmp_path / rel).stat().st_ino for rel in NEW} == inodes and not (tmp_path / output.JOURNAL).exists()


def test_a_swap_needs_the_lock(tmp_path: Path):
    prepare(tmp_path)
    with pytest.raises(AssertionError, match="^swap without the checkout's lock$"):
        output.swap(tmp_path, tmp_path / ".render-x", tree_of(NEW))


def test_killed_after_the_commit_the_next_command_keeps_the_new_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Killed between the "committed" journal and the cleanup: the next command finishes the cleanup, keeps the tree."""
    prepare(tmp_path)

    def killed(root, journal):
        raise KeyboardInterrupt  # stands for the kill: nothing after the commit ran

    monkeypatch.setattr(output, "_finish", killed)
    with pytest.raises(KeyboardInterrupt):
        swap_new(tmp_path)
    monkeypatch.undo()
    assert (tmp_path / output.JOURNAL).exists() and (tmp_path / ".render-test").is_dir()
    assert output.recover(tmp_path) == "an earlier render was killed after its swap: its tree is complete"
    assert {k: v for k, v in files_under(tmp_path).items() if k != output.LOCK} == {**NEW, **UNMANAGED}
    assert not leftovers(tmp_path)


def test_killed_in_the_cleanup_after_its_staging_is_gone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The cleanup removes the staging directory, then the journal: killed in between, only the journal is left."""
    prepare(tmp_path)
    real_unlink = Path.unlink

    def unlink(self, missing_ok=False):
        if self.name == output.JOURNAL and (tmp_path / output.JOURNAL).exists() and not (tmp_path / ".render-test").exists():
            raise KeyboardInterrupt
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    with pytest.raises(KeyboardInterrupt):
        swap_new(tmp_path)
    monkeypatch.undo()
    assert (tmp_path / output.JOURNAL).exists() and not (tmp_path / ".render-test").exists()
    assert output.recover(tmp_path) == "an earlier render was killed after its swap: its tree is complete"
    assert {k: v for k, v in files_under(tmp_path).items() if k != output.LOCK} == {**NEW, **UNMANAGED}
    assert not leftovers(tmp_path)


def test_the_tree_knows_which_files_lie_outside_the_managed_folders():
    tree = tree_of({"rendered/prod/a.yaml": b"a\n", "argocd/root.yaml": b"r\n", "schema/m.json": b"{}\n",
                    "charts/api/values.schema.json": b"{}\n", "rendered.yaml": b"x\n", "tests/rendered/x": b"x\n"})
    assert tree.managed_files == {"charts/api/values.schema.json", "rendered.yaml", "tests/rendered/x"}
    assert tree.files["rendered/prod/a.yaml"] == b"a\n"
    tree.add("rendered/prod/b.yaml", "서비스\n")
    assert tree.files["rendered/prod/b.yaml"] == "서비스\n".encode("utf-8")
    with pytest.raises(ValueError, match=r"^two generated files would be written to rendered/prod/a\.yaml$"):
        tree.add("rendered/prod/a.yaml", "again\n")


def test_same_on_disk_compares_the_bytes(tmp_path: Path):
    (tmp_path / "f").write_bytes(b"abc")
    assert output.same_on_disk(tmp_path / "f", b"abc")
    assert not output.same_on_disk(tmp_path / "f", b"abd")  # same size, other bytes
    assert not output.same_on_disk(tmp_path / "f", b"abcd")
    assert not output.same_on_disk(tmp_path / "missing", b"")


def test_drift_is_a_unified_diff_per_file_that_differs(tmp_path: Path):
    prepare(tmp_path)
    (tmp_path / "rendered/prod/apps/bin.yaml").write_bytes(b"caf\xe9\n")
    tree = tree_of({**NEW, "rendered/prod/apps/bin.yaml": b"cafe\n", "argocd/root.yaml": b"new root"})
    del tree.files["charts/worker/values.schema.json"]  # generated elsewhere: neither side has it
    tree.managed_files.discard("charts/worker/values.schema.json")
    diffs = output.drift(tmp_path, tree)
    assert diffs == [
        "--- a/argocd/root.yaml\n+++ b/argocd/root.yaml\n@@ -1 +1 @@\n-old root\n+new root\n\\ No newline at end of file\n",
        "--- a/charts/api/values.schema.json\n+++ b/charts/api/values.schema.json\n@@ -1 +1 @@\n-old api\n+new api\n",
        "--- a/rendered/prod/apps/a.yaml\n+++ b/rendered/prod/apps/a.yaml\n@@ -1 +1 @@\n-old a\n+new a\n",
        "--- /dev/null\n+++ b/rendered/prod/apps/b.yaml\n@@ -0,0 +1 @@\n+added\n",
        "--- a/rendered/prod/apps/bin.yaml\n+++ b/rendered/prod/apps/bin.yaml\n@@ -1 +1 @@\n-caf\ufffd\n+cafe\n",
        "--- a/rendered/prod/apps/gone.yaml\n+++ /dev/null\n@@ -1 +0,0 @@\n-only in the old tree\n",
        "--- a/schema/model.json\n+++ b/schema/model.json\n@@ -1 +1 @@\n-{}\n+{\"new\": 1}\n",
    ]
    same = output.Tree({rel: data for rel, data in files_under(tmp_path).items() if rel.split("/")[0] in output.MANAGED_DIRS},
                       {"charts/api/values.schema.json"})
    same.files["charts/api/values.schema.json"] = OLD["charts/api/values.schema.json"]
    assert output.drift(tmp_path, same) == []


def test_read_generated_is_the_managed_folders_only(tmp_path: Path):
    prepare(tmp_path)
    assert output.read_generated(tmp_path) == {rel: data for rel, data in OLD.items() if not rel.startswith("charts/")}
    assert output.read_generated(tmp_path / "nowhere") == {}


def test_recovery_of_what_a_kill_can_leave_besides_a_journal(tmp_path: Path):
    prepare(tmp_path)
    (tmp_path / ".render-abandoned").mkdir()
    (tmp_path / ".render-a-file").write_text("not a directory: not ours to remove")
    assert output.recover(tmp_path) == "removed 1 stale staging directory"
    assert (tmp_path / ".render-a-file").exists()
    # killed while writing the first journal: half a JSON document, nothing moved yet
    (tmp_path / output.JOURNAL).write_text('{"staging": ".render-x", "state": "swa')
    (tmp_path / (output.JOURNAL + ".tmp")).write_text("{")
    assert output.recover(tmp_path) is None
    assert not (tmp_path / output.JOURNAL).exists() and not (tmp_path / (output.JOURNAL + ".tmp")).exists()
    assert {k: v for k, v in files_under(tmp_path).items() if not k.startswith(".render-a")} == {**OLD, **UNMANAGED}
    assert output.recover(tmp_path) is None  # nothing left to do
