"""Pure work done in a forked child beside this process, for the long CPU-bound steps of a cold run.

A forked child starts with everything this process has built (parsed objects, compiled schema validators) without
copying or rebuilding it; it computes its part, sends the result back as JSON through a pipe, and exits without
running any of this process's exit handlers. If the child fails in any way (it raises, is killed, sends something
unreadable), this process computes the child's part itself: a fork can only save time, never change a result.

Only on Linux (fork is unsafe where system libraries keep threads, as on macOS) and with at least two CPUs; only for
work large enough to pay for a fork (about 10 ms for a 300 MiB process).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from typing import Any, BinaryIO, Callable, Sequence, TypeVar

T = TypeVar("T")

MIN_ITEMS = 200


def available() -> bool:
    return sys.platform == "linux" and hasattr(os, "fork") and (os.cpu_count() or 1) >= 2


def _fork(fn: Callable[[], Any]) -> tuple[int, BinaryIO]:
    """Start fn() in a child; (its pid, the pipe its JSON result comes through)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compute, send, and leave at once (no atexit, no flushing of inherited buffers)
        code = 1
        try:
            _die_with_parent()
            os.close(read_end)
            data = json.dumps(fn(), separators=(",", ":")).encode("utf-8")
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(data)
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    return pid, os.fdopen(read_end, "rb")


def _receive(pid: int, pipe: BinaryIO) -> tuple[bool, Any]:
    """(True, the child's result), or (False, None) when it failed. Always reaps the child."""
    try:
        with pipe:
            data = pipe.read()
    finally:
        _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        return False, None
    try:
        return True, json.loads(data)
    except ValueError:
        return False, None


def _abandon(pid: int, pipe: BinaryIO) -> None:
    """On an error here (Ctrl-C included): stop the child, whatever it is doing, and reap it."""
    pipe.close()
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    os.waitpid(pid, 0)


def halves(fn: Callable[[T], Any], items: Sequence[T], min_items: int | None = None) -> list[Any]:
    """[fn(item) for item in items], the odd-numbered items computed in a forked child when there are at least
    min_items (default MIN_ITEMS). fn must be pure, and its results must survive a JSON round trip unchanged (lists,
    str keys)."""
    if len(items) < max(MIN_ITEMS if min_items is None else min_items, 2) or not available():
        return [fn(item) for item in items]
    theirs_index = range(1, len(items), 2)
    pid, pipe = _fork(lambda: [fn(items[i]) for i in theirs_index])
    try:
        mine = [fn(items[i]) for i in range(0, len(items), 2)]
    except BaseException:
        _abandon(pid, pipe)
        raise
    ok, theirs = _receive(pid, pipe)
    if not ok or not isinstance(theirs, list) or len(theirs) != len(theirs_index):
        theirs = [fn(items[i]) for i in theirs_index]
    out: list[Any] = [None] * len(items)
    out[0::2], out[1::2] = mine, theirs
    return out


def _die_with_parent() -> None:
    """The child is killed with its parent (prctl PR_SET_PDEATHSIG): a render killed by SIGKILL leaves no process
    behind holding the checkout's lock it inherited."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
