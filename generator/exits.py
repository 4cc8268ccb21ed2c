"""Exit codes and the mapping of expected failures to one-line messages, shared by every command."""

from __future__ import annotations

import functools
import sys

import click

EXIT_OK, EXIT_FINDINGS, EXIT_INVALID = 0, 1, 2
EXIT_BUSY = 75  # sysexits' EX_TEMPFAIL: another command holds the checkout's lock; run again when it is done


def fail(lines: list[str], code: int) -> None:
    for line in lines:
        click.echo(line, err=True)
    sys.exit(code)


def _expected(exc: Exception) -> tuple[list[str], int] | None:
    """The message lines and exit code of an expected failure; None for anything else. The modules are imported here,
    not at the top, so that a command that fails nothing (a replayed render) never loads them."""
    from .upstream.charts import ChartSourceError
    from .errors import InvalidModel, UsageError, ValidationFailed
    from .helm import HelmError
    from .validate.kubeschema import SchemaError
    from .write.output import Busy

    if isinstance(exc, InvalidModel):
        return [str(p) for p in exc.problems], EXIT_INVALID  # one line per problem, nothing else
    if isinstance(exc, ValidationFailed):
        return exc.lines + [f"{exc.count} validation finding(s); nothing was written."], EXIT_FINDINGS
    if isinstance(exc, (HelmError, UsageError, SchemaError, ChartSourceError)):
        return [f"error: {exc}", "nothing was written."], EXIT_INVALID
    if isinstance(exc, Busy):
        return [f"error: {exc}", "nothing was written."], EXIT_BUSY
    return None


def guarded(fn):
    """Turn expected failures into one-line messages and exit codes; anything else is a bug and keeps its traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if (expected := _expected(exc)) is None:
                raise
            fail(*expected)
    return wrapper
