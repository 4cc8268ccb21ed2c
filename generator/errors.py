"""Problems with the input, located at file:line:col and a field path, and how they print."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

Loc = tuple  # a path into the model: ("services", "waste", "replicas") or (..., "steps", 2)

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def format_loc(loc: Iterable) -> str:
    """('services', 'waste', 'steps', 2) -> services.waste.steps[2]; keys with dots are quoted."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.match(str(part)):
            out += f".{part}" if out else str(part)
        else:
            out += f'["{part}"]'
    return out


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    col: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


@dataclass(frozen=True)
class Finding:
    """A problem found on the loaded model, before it is given a position in the files."""

    loc: Loc
    message: str


class InvalidModel(Exception):
    """The model in values/ cannot be rendered. Carries every problem found, sorted."""

    def __init__(self, problems: Iterable[Problem]):
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


class UsageError(Exception):
    """The command line or the environment is wrong (exit 2), not the model."""


class ValidationFailed(Exception):
    """Rendered objects that the cluster, Argo CD or policy would reject; carries one line per finding."""

    def __init__(self, lines: list[str], count: int):
        self.lines = lines
        self.count = count
        super().__init__(f"{count} validation finding(s)")
