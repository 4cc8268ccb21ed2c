"""Exit codes and the mapping of expected failures to one-line messages, shared by every command."""

from __future__ import annotations

import functools
import sys

import click

from .charts import ChartSourceError
from .errors import InvalidModel, UsageError, ValidationFailed
from .helm import HelmError
from .kubeschema import SchemaError
from .output import Busy

EXIT_OK, EXIT_FINDINGS, EXIT_INVALID = 0, 1, 2
EXIT_BUSY = 75  # sysexits' EX_TEMPFAIL: another command holds the checkout's lock; run again when it is done


def fail(lines: list[str], code: int) -> None:
    for line in lines:
        click.echo(line, err=True)
    sys.exit(code)


def guarded(fn):
    """Turn expected failures into one-line messages and exit codes; anything else is a bug and keeps its traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InvalidModel as exc:
            fail([str(p) for p in exc.problems], EXIT_INVALID)  # one line per problem, nothing else
        except ValidationFailed as exc:
            fail(exc.lines + [f"{exc.count} validation finding(s); nothing was written."], EXIT_FINDINGS)
        except (HelmError, UsageError, SchemaError, ChartSourceError) as exc:
            fail([f"error: {exc}", "nothing was written."], EXIT_INVALID)
        except Busy as exc:
            fail([f"error: {exc}", "nothing was written."], EXIT_BUSY)
    return wrapper
