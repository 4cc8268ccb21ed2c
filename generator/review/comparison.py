"""Two snapshots compared: the objects of the files that differ, renames and apiVersion moves paired, each pair's
fields diffed (a CRD's as versions and schema fields), and the summary, the dangers and the restarts, in a Report."""

from __future__ import annotations

from typing import Any

from .. import yamlio
from .dangers import _dangers, _environments_removed, _restarts
from .fields import Raw, _leaves, _set_similarity, diff_values, format_path, is_noise
from .objects import VALUES_KIND, Key, _collect, _equal_documents, _manifest_path, _place, _Side
from .redaction import redact
from .report import FieldChange, ObjectChange, Report
from .snapshot import Snapshot
from .summary import _summary


RENAME_THRESHOLD = 0.9
# Past this many removed x added pairs of one kind, similarity scoring costs more than it explains.
RENAME_PAIR_LIMIT = 40_000


def _pair_moves(removed: dict[Key, Any], added: dict[Key, Any]) -> list[tuple[Key, Key, float]]:
    """Renames (same env/apiVersion/kind/namespace, ≥ 90 % equal leaves) and apiVersion moves of one object."""
    pairs: list[tuple[Key, Key, float]] = []
    by_identity: dict[tuple, list[Key]] = {}
    for key in added:
        by_identity.setdefault((key.env, key.kind, key.namespace, key.name), []).append(key)
    for old in list(removed):
        same = by_identity.get((old.env, old.kind, old.namespace, old.name), [])
        if len(same) == 1 and same[0].api_version != old.api_version:
            pairs.append((old, same[0], 1.0))
    taken_old = {p[0] for p in pairs}
    taken_new = {p[1] for p in pairs}
    groups: dict[tuple, tuple[list[Key], list[Key]]] = {}
    for key in removed:
        if key not in taken_old:
            groups.setdefault((key.env, key.api_version, key.kind, key.namespace), ([], []))[0].append(key)
    for key in added:
        if key not in taken_new:
            group = (key.env, key.api_version, key.kind, key.namespace)
            if group in groups:
                groups[group][1].append(key)
    leaves: dict[Key, set] = {}

    def leaf_set(key: Key, doc: Any) -> set:
        if key not in leaves:
            leaves[key] = set()
            _leaves(doc, (), leaves[key])
        return leaves[key]

    for olds, news in groups.values():
        if not news or len(olds) * len(news) > RENAME_PAIR_LIMIT:
            continue
        scored = []
        for o in olds:
            lo = leaf_set(o, removed[o])
            for n in news:
                if o.app != n.app:
                    # One app's object gone and another app's alike one new (a service removed while a similar
                    # one is added) are two changes, not a rename: a reviewer must see both apps' names.
                    continue
                ln = leaf_set(n, added[n])
                if min(len(lo), len(ln)) < RENAME_THRESHOLD * max(len(lo), len(ln)):
                    continue  # cannot reach the threshold: skip the set intersection
                score = _set_similarity(lo, ln)
                if score >= RENAME_THRESHOLD:
                    scored.append((score, o, n))
        scored.sort(key=lambda s: (-s[0], s[1], s[2]))
        for score, o, n in scored:
            if o not in taken_old and n not in taken_new:
                taken_old.add(o)
                taken_new.add(n)
                pairs.append((o, n, score))
    return pairs


def _schema_fields(node: Any, prefix: str = "") -> set[str]:
    """Every property path an openAPIV3Schema declares: spec.endpoints[].port, ..."""
    out: set[str] = set()
    if not isinstance(node, dict):
        return out
    for name, sub in (node.get("properties") or {}).items():
        path = f"{prefix}.{name}" if prefix else name
        out.add(path)
        out |= _schema_fields(sub, path)
    if isinstance(node.get("items"), dict):
        out |= _schema_fields(node["items"], f"{prefix}[]")
    if isinstance(node.get("additionalProperties"), dict):
        out |= _schema_fields(node["additionalProperties"], f"{prefix}.*")
    return out


def _crd_versions(doc: Any) -> dict[str, tuple[bool, bool, set[str]]]:
    versions = ((doc or {}).get("spec") or {}).get("versions") or []
    return {v.get("name"): (bool(v.get("served")), bool(v.get("storage")),
                            _schema_fields((v.get("schema") or {}).get("openAPIV3Schema"))) for v in versions}


def crd_changes(old: Any, new: Any, raw: list[Raw]) -> list[FieldChange]:
    """A CRD change in reviewable terms: versions served and stored, schema fields added or removed, anything else
    outside the schemas as ordinary field changes (descriptions, which make most of an upstream bump, are left out)."""
    out: list[FieldChange] = []
    a, b = _crd_versions(old), _crd_versions(new)
    for name in sorted(set(a) | set(b), key=str):
        if name not in a:
            out.append(FieldChange("added", f"version {name}", None, "served" if b[name][0] else "not served"))
            continue
        if name not in b:
            out.append(FieldChange("removed", f"version {name}", "served" if a[name][0] else "not served", None))
            continue
        for i, what in ((0, "served"), (1, "storage")):
            if a[name][i] != b[name][i]:
                out.append(FieldChange("changed", f"version {name} {what}", a[name][i], b[name][i]))
        gained, lost = sorted(b[name][2] - a[name][2]), sorted(a[name][2] - b[name][2])
        if gained:
            out.append(FieldChange("added", f"version {name} schema fields", None, ", ".join(gained)))
        if lost:
            out.append(FieldChange("removed", f"version {name} schema fields", ", ".join(lost), None))
    constraints: dict[str, set[str]] = {}
    names = [v.get("name") for v in ((new or {}).get("spec") or {}).get("versions") or []]
    for _, parts, _, _ in raw:
        if len(parts) > 5 and parts[:2] == ("spec", "versions") and parts[3] == "schema" and "description" not in parts:
            version = names[parts[2]] if isinstance(parts[2], int) and parts[2] < len(names) else parts[2]
            tail = parts[5:]
            where = ".".join(str(tail[i + 1]) for i, p in enumerate(tail[:-1]) if p == "properties")
            last = str(tail[-1])
            if last != "properties" and not (len(tail) >= 2 and tail[-2] == "properties"):
                constraints.setdefault(str(version), set()).add(f"{where or '(root)'} {last}")
    for name, what in sorted(constraints.items()):
        shown = sorted(what)
        out.append(FieldChange("changed", f"version {name} schema constraints", None,
                               ", ".join(shown[:8]) + (f" and {len(shown) - 8} more" if len(shown) > 8 else "")))
    rest = [r for r in raw if not (len(r[1]) >= 3 and r[1][:2] == ("spec", "versions")
                                   and any(p in ("schema", "served", "storage", "name") for p in r[1][3:4]))]
    described = [r for r in rest if "description" not in r[1]]
    return out + _field_changes(described, "CustomResourceDefinition")


def _field_changes(raw: list[Raw], kind: str) -> list[FieldChange]:
    return [FieldChange(op, format_path(parts), redact(old, parts, kind), redact(new, parts, kind), is_noise(parts))
            for op, parts, old, new in raw]


def compare(base: Snapshot, head: Snapshot, *, keep_noise: bool = False) -> Report:
    """Everything that differs between two snapshots, as object changes, model-level summary lines and dangers."""
    old_side, new_side = _Side(base), _Side(head)
    paths = sorted(set(base.files) | set(head.files))
    changed = {p for p in paths if base.files.get(p) != head.files.get(p)}
    skips = {p: _equal_documents(base.files.get(p), head.files.get(p)) for p in changed}
    # A changed Application may move its objects to another namespace: re-key all of its manifests.
    for p in list(changed):
        place = _place(p)
        if place.role == "apps":
            mp = _manifest_path(place.env, place.app)
            if mp in base.files or mp in head.files:
                changed.add(mp)
                skips.pop(mp, None)
    ordered = sorted(changed)
    old_objs, new_objs = _collect(old_side, ordered, skips), _collect(new_side, ordered, skips)
    hydrated = {(pl.env, pl.app) for pl in map(_place, paths) if pl.role == "manifests"}

    removed = {k: v for k, v in old_objs.items() if k not in new_objs}
    added = {k: v for k, v in new_objs.items() if k not in old_objs}
    moves = _pair_moves(removed, added)
    for o, n, _ in moves:
        removed.pop(o)
        added.pop(n)

    objects: list[ObjectChange] = []
    danger_input = []
    for key in sorted(old_objs.keys() & new_objs.keys()):
        raw = diff_values(old_objs[key], new_objs[key])
        if raw:
            fields = (crd_changes(old_objs[key], new_objs[key], raw) if key.kind == "CustomResourceDefinition"
                      else _field_changes(raw, key.kind))
            objects.append(ObjectChange("changed", key, None, fields))
            danger_input.append(("changed", key, old_objs[key], key, new_objs[key], raw))
    for o, n, score in moves:
        raw = [r for r in diff_values(old_objs[o], new_objs[n]) if r[1] != ("metadata", "name")]
        objects.append(ObjectChange("renamed", n, o, _field_changes(raw, n.kind), round(score, 3)))
        danger_input.append(("renamed", o, old_objs[o], n, new_objs[n], raw))
    for key, doc in removed.items():
        objects.append(ObjectChange("removed", key, doc=redact(doc, (), key.kind)))
        danger_input.append(("removed", key, doc, None, None, []))
    for key, doc in added.items():
        objects.append(ObjectChange("added", key, doc=redact(doc, (), key.kind)))
        danger_input.append(("added", None, None, key, doc, []))
    for obj in objects:
        obj.shown = not (obj.key.kind == VALUES_KIND and (obj.key.env, obj.key.app) in hydrated)
    objects.sort(key=lambda o: (o.key.env == "", o.key.env, o.key.app, o.key.kind == VALUES_KIND, o.key.kind,
                                o.key.namespace, o.key.name, o.op))

    places = [pl for pl in map(_place, paths) if pl.env]
    envs = {pl.env for pl in places}
    present = {(pl.env, pl.app) for pl in places if pl.role in ("values", "manifests")}
    summary = _hand_applies(base, head) + _summary(old_objs, new_objs, moves, envs, present)
    return Report(base.label, head.label, summary, objects,
                  _environments_removed(base, head) + _dangers(danger_input), keep_noise, _restarts(danger_input, new_side))


HAND_APPLIED = ("root.yaml", "argocd-cm.yaml")  # the bootstrap Argo CD does not sync (argocd/README.md)


def _hand_applies(base: Snapshot, head: Snapshot) -> list[str]:
    """`apply by hand: kubectl apply -n argocd -f argocd/prod/root.yaml` for each object of the bootstrap that no
    Application syncs (the root Applications, and argocd-cm, which the environments of one Argo CD share) and that
    the change adds or alters. By object, not by file: one moved to another path as it was, or written the same by
    several environments, needs nothing."""
    def objects(snap: Snapshot) -> dict[tuple[str, str, str], tuple[str, Any]]:
        out: dict[tuple[str, str, str], tuple[str, Any]] = {}
        for path in sorted(snap.files):
            parts = path.split("/")
            if parts[0] != "argocd" or parts[-1] not in HAND_APPLIED or len(parts) > 3:
                continue
            for doc in yamlio.load_all(snap.files[path].decode("utf-8")):
                meta = (doc or {}).get("metadata") or {}
                key = (str((doc or {}).get("kind", "")), str(meta.get("namespace") or "argocd"), str(meta.get("name", "")))
                out.setdefault(key, (path, doc))
        return out
    old, new = objects(base), objects(head)
    lines = []
    for key, (path, doc) in sorted(new.items(), key=lambda item: item[1][0]):
        if key not in old or old[key][1] != doc:
            lines.append(f"apply by hand: kubectl apply -n {key[1]} -f {path} (Argo CD does not sync it)")
    for key, (path, _) in sorted(old.items(), key=lambda item: item[1][0]):
        if key not in new:
            lines.append(f"apply by hand: {key[0]} {key[1]}/{key[2]} ({path}) is no longer rendered: it stays in the "
                         "cluster until deleted by hand (Argo CD does not sync it)")
    return lines
