"""`python -m generator` ends with os._exit once the command returns: what it printed is all there, exit codes are
click's (0, 1, 2), and an exception that is not a SystemExit still ends the process the ordinary way."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "generator", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def _plain(*args: str) -> subprocess.CompletedProcess:
    """The same command ended the ordinary way (click's sys.exit, then the interpreter's teardown)."""
    code = f"import sys; from generator.cli import main; sys.argv[1:] = {list(args)!r}; main(prog_name='python -m generator')"
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_the_process_prints_everything_and_keeps_the_exit_code():
    for args in (["--help"], ["render", "--help"], ["capacity", "--root", str(REPO)], ["no-such-command"]):
        done, plain = _run(*args), _plain(*args)
        assert (done.returncode, done.stdout, done.stderr) == (plain.returncode, plain.stdout, plain.stderr), args
        assert done.stdout or done.stderr
    wrong = _run("no-such-command")
    assert wrong.returncode == 2 and "No such command 'no-such-command'" in wrong.stderr
    missing = _run("render", "--root", str(REPO / "no-such-directory"))  # a usage error, not a traceback
    assert missing.returncode == 2 and "Directory" in missing.stderr and "does not exist" in missing.stderr


def test_an_exception_other_than_systemexit_is_not_swallowed(tmp_path):
    code = ("import runpy, sys, generator.cli as c\n"
            "def boom(*a, **k): raise RuntimeError('boom')\n"
            "c.main.main = boom\n"
            "sys.argv = ['generator', '--help']\n"
            "runpy.run_module('generator', run_name='__main__')\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "RuntimeError: boom" in done.stderr


def test_under_a_profiler_the_process_ends_the_ordinary_way(tmp_path):
    """python -m cProfile -o FILE -m generator ...: cProfile writes FILE after the module returns (make bench-scale's
    BENCH_PROFILE does this)."""
    prof = tmp_path / "help.prof"
    done = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "generator", "--help"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "Usage:" in done.stdout and prof.stat().st_size > 0
