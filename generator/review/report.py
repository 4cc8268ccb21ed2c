"""What a comparison finds: object changes with their field changes, dangers, restarts, and the report of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .objects import Key


@dataclass
class FieldChange:
    """One leaf or subtree: op is added, removed or changed; old/new are already redacted."""

    op: str
    path: str
    old: Any = None
    new: Any = None
    noise: bool = False


@dataclass
class ObjectChange:
    """op: added, removed, changed or renamed (renamed also covers an apiVersion move of the same object)."""

    op: str
    key: Key
    old_key: Key | None = None
    fields: list[FieldChange] = field(default_factory=list)
    similarity: float | None = None
    shown: bool = True  # False: the values file of a hydrated app (its manifests show the effect)
    doc: Any = None  # an added object as it will be, a removed one as it was (redacted)

    @property
    def visible_fields(self) -> list[FieldChange]:
        return [f for f in self.fields if not f.noise]


@dataclass(frozen=True)
class Danger:
    rule: str
    group: str
    message: str


@dataclass(frozen=True)
class Restart:
    """A workload whose pods roll at sync: its pod template changed (checksum annotations and labels included)."""

    key: Key
    pods: int | None  # replicas after the change; None for a DaemonSet (one per node)

    @property
    def group(self) -> str:
        return self.key.group

    @property
    def only_pod(self) -> bool:
        return self.pods == 1

    @property
    def message(self) -> str:
        if self.pods is None:
            how = "its pod on every node"
        elif self.pods == 1:
            how = "its only pod: unavailable until the new one is ready"
        else:
            how = f"its {self.pods} pods"
        return f"{self.group}: {self.key.label} restarts {how}"


@dataclass
class Report:
    base: str
    head: str
    summary: list[str]
    objects: list[ObjectChange]
    dangers: list[Danger]
    keep_noise: bool = False
    restarts: list[Restart] = field(default_factory=list)

    @property
    def hidden_noise(self) -> int:
        return 0 if self.keep_noise else sum(len(o.fields) - len(o.visible_fields) for o in self.objects if o.shown)

    def shown_objects(self) -> list[ObjectChange]:
        """What the per-object section lists: without values of hydrated apps and (unless --all) noise-only changes."""
        out = []
        for obj in self.objects:
            if not obj.shown:
                continue
            if obj.op == "changed" and not self.keep_noise and not obj.visible_fields:
                continue
            out.append(obj)
        return out

    def fields_of(self, obj: ObjectChange) -> list[FieldChange]:
        return obj.fields if self.keep_noise else obj.visible_fields
