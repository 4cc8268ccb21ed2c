"""The report as terminal text: the plans, the summary, dangers and restarts, then each app's objects with their
field changes (an added or removed object as its YAML). The Markdown comment is made of the same lines."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

import click

from .. import yamlio
from .fields import _show
from .objects import VALUES_KIND
from .report import FieldChange, ObjectChange, Report, Restart


def _field_lines(change: FieldChange) -> list[str]:
    if change.op == "added":
        return [f"+ {change.path}: {_show(change.new)}"]
    if change.op == "removed":
        return [f"- {change.path}: {_show(change.old)}"]
    old, new = change.old, change.new
    if isinstance(old, str) and isinstance(new, str) and ("\n" in old or "\n" in new):
        body = list(difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=1))[2:]
        return [f"~ {change.path}: (text)"] + [f"    {line}" for line in body]
    return [f"~ {change.path}: {_show(old)} → {_show(new)}"]


def _object_lines(obj: ObjectChange, fields: list[FieldChange]) -> list[str]:
    if obj.op == "added":
        head = f"+ {obj.key.label} added"
    elif obj.op == "removed":
        head = f"- {obj.key.label} removed"
    elif obj.op == "renamed":
        old = obj.old_key
        if old.name != obj.key.name:
            head = f"→ {old.label} renamed to {obj.key.name} ({obj.similarity:.0%} the same)"
        else:
            head = f"→ {obj.key.label} moved {old.api_version} → {obj.key.api_version}"
    else:
        head = f"~ {obj.key.label}"
    out = [head]
    for change in fields:
        out += ["    " + line for line in _field_lines(change)]
    if obj.op in ("added", "removed") and isinstance(obj.doc, dict):
        out += _whole_object(obj.doc, "+" if obj.op == "added" else "-")
    return out


WHOLE_OBJECT_LINES = 40  # of an added or removed object's YAML; a CRD's schema would bury the rest


def _whole_object(doc: dict[str, Any], sign: str) -> list[str]:
    """What an added object will be or a removed one was, as YAML lines under it, cut after WHOLE_OBJECT_LINES."""
    lines = yamlio.dump(doc).splitlines()
    shown = [f"    {sign} {line}" for line in lines[:WHOLE_OBJECT_LINES]]
    if len(lines) > WHOLE_OBJECT_LINES:
        shown.append(f"    {sign} … ({len(lines) - WHOLE_OBJECT_LINES} more lines)")
    return shown


def _count(report: Report, obj: ObjectChange) -> int:
    return len(report.fields_of(obj)) + (1 if obj.op != "changed" else 0)


def _groups(report: Report) -> list[tuple[str, list[ObjectChange]]]:
    groups: dict[str, list[ObjectChange]] = {}
    for obj in report.shown_objects():
        groups.setdefault(obj.key.group, []).append(obj)
    return list(groups.items())


def _totals(report: Report) -> str:
    ops = [o.op for o in report.shown_objects()]
    text = (f"{report.base} → {report.head}: {ops.count('changed')} changed, {ops.count('added')} added, "
            f"{ops.count('removed')} removed, {ops.count('renamed')} renamed, {len(report.restarts)} "
            f"restart{'s' if len(report.restarts) != 1 else ''}")
    if report.hidden_noise:
        text += f"; {report.hidden_noise} noise change{'s' if report.hidden_noise != 1 else ''} hidden (--all shows them)"
    return text


def _plan(objs: Iterable[ObjectChange], restarts: Iterable[Restart]) -> str:
    """Like a plan: what the sync does to objects in the cluster (a rename deletes one and creates another; Helm
    values are no cluster object), and how many workloads restart."""
    add = change = destroy = 0
    for o in objs:
        if o.key.kind == VALUES_KIND:
            continue
        add += o.op in ("added", "renamed")
        destroy += o.op in ("removed", "renamed")
        change += o.op == "changed"
    n = len(list(restarts))
    return f"{add} to add, {change} to change, {destroy} to destroy, {n} restart{'s' if n != 1 else ''}"


def _plans(report: Report) -> list[str]:
    """One plan line per environment, then the argocd/ bootstrap, first in the output."""
    envs = sorted({o.key.env for o in report.objects}, key=lambda e: (e == "", e))
    return [f"plan: {env or 'bootstrap (argocd/)'}: "
            + _plan([o for o in report.objects if o.key.env == env], [r for r in report.restarts if r.key.env == env])
            for env in envs]


def _group_plan(report: Report, group: str) -> str:
    return _plan([o for o in report.objects if o.key.group == group], [r for r in report.restarts if r.group == group])


def _danger_intro(report: Report, acknowledged: bool) -> str:
    n = len(report.dangers)
    what = f"{n} dangerous change{'s' if n != 1 else ''}"
    return f"{what} (acknowledged with --ack-danger)" if acknowledged else f"{what}: exit 3 unless acknowledged with --ack-danger"


def render_text(report: Report, *, acknowledged: bool = False, color: bool = False) -> str:
    """Terminal output: summary, danger, then every changed object with its field-level changes, per app."""
    def style(text: str, **kw: Any) -> str:
        return click.style(text, **kw) if color else text

    lines: list[str] = []
    if not report.objects:
        return f"no changes between {report.base} and {report.head}\n"
    lines += [style(line, bold=True) for line in _plans(report)] + [""]
    lines += report.summary or ["no change in model terms (see the objects below)"]
    if report.dangers:
        lines += ["", style(f"DANGER: {_danger_intro(report, acknowledged)}", fg="red", bold=True)]
        lines += [style(f"  !! {d.message}", fg="red") for d in report.dangers]
    if report.restarts:
        lines += ["", style("RESTARTS at sync (pod template changed):", fg="yellow", bold=True)]
        lines += [style(f"  {'!' if r.only_pod else '~'} {r.message}", fg="yellow" if r.only_pod else None)
                  for r in report.restarts]
    for group, objs in _groups(report):
        lines += ["", style(group, bold=True) + f"  ({_group_plan(report, group)})"]
        for obj in objs:
            lines += ["  " + line for line in _object_lines(obj, report.fields_of(obj))]
    lines += ["", _totals(report)]
    return "\n".join(lines) + "\n"
