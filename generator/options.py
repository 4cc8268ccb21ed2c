"""What a command was asked to do: the options every stage of a run reads (standard library only)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .helm import cache_dir as helm_cache_dir


@dataclass(frozen=True)
class Options:
    root: Path
    values: Path
    hydrate: bool = True
    validate: bool = True
    crds: Path | None = None
    charts: Path | None = None
    cache: Path | None = None
    jobs: int | None = None
    memo: bool = True  # reuse the memo of parsed and emitted YAML (.cache/memo); results are the same without
    envs: tuple[str, ...] = ()  # only these environments are rendered; the others' files stay as they are

    @property
    def cache_dir(self) -> Path:
        return self.cache or helm_cache_dir()
