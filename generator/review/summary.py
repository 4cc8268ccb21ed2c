"""The summary in model terms: what each app's values change (image, delivery, replicas, HPA, canary, resources,
queues, volumes) and what its Application changes, said once for all the apps and environments it reaches; then the
Applications added, removed and renamed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import labels
from .dangers import _is_argo, _is_volume_size, _queue_names
from .fields import Raw, _show, diff_values, format_path
from .objects import VALUES_KIND, Key
from .redaction import redact


def _short_digest(digest: str) -> str:
    algo, _, hexdigits = str(digest).partition(":")
    return f"{algo}:{hexdigits[:12]}" if hexdigits else str(digest)


def _image(img: dict, with_repo: bool) -> str:
    out = str(img.get("repository", "")) if with_repo else ""
    if img.get("tag"):
        out += (":" if with_repo else "") + str(img["tag"])
    if img.get("digest"):
        out += ("@" if out else "") + _short_digest(img["digest"])
    return out or "(none)"


def _fmt(value: Any) -> str:
    return "(none)" if value is None else _show(value)


def _get(doc: Any, *path: Any) -> Any:
    for step in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(step)
    return doc


def _model_lines(old: dict, new: dict, raw: list[Raw]) -> list[str]:
    """One line per model-level change of an app's values; the rest is counted, never dropped silently."""
    lines: list[str] = []
    described: list[tuple] = []

    oi, ni = old.get("image") or {}, new.get("image") or {}
    keys = ("repository", "tag", "digest")
    if isinstance(oi, dict) and isinstance(ni, dict) and any(oi.get(k) != ni.get(k) for k in keys):
        same_repo = oi.get("repository") == ni.get("repository")
        lines.append(f"image {_image(oi, not same_repo)} → {_image(ni, not same_repo)}")
    described += [("image", k) for k in keys]

    if old.get("strategy") != new.get("strategy"):
        lines.append(f"delivery {_fmt(old.get('strategy'))} → {_fmt(new.get('strategy'))}" + _delivery_detail(new))
        described += [("rolling",), ("canary",)]  # the strategy's own block comes and goes with it
    described.append(("strategy",))
    if old.get("replicas") != new.get("replicas"):
        lines.append(f"replicas {_fmt(old.get('replicas'))} → {_fmt(new.get('replicas'))}")
    described.append(("replicas",))

    oh, nh = old.get("hpa") or {}, new.get("hpa") or {}
    if isinstance(oh, dict) and isinstance(nh, dict):
        def span(h: dict) -> str:
            return f"{h.get('minReplicas')}–{h.get('maxReplicas')}"
        if bool(oh.get("enabled")) != bool(nh.get("enabled")):
            lines.append(f"HPA on ({span(nh)})" if nh.get("enabled") else "HPA off")
        elif nh.get("enabled") and span(oh) != span(nh):
            lines.append(f"HPA {span(oh)} → {span(nh)}")
        if nh.get("enabled") and oh.get("enabled") and oh.get("targetCpuUtilization") != nh.get("targetCpuUtilization"):
            lines.append(f"HPA CPU target {oh.get('targetCpuUtilization')}% → {nh.get('targetCpuUtilization')}%")
        described += [("hpa", k) for k in ("enabled", "minReplicas", "maxReplicas", "targetCpuUtilization")]

    lines += _canary_lines(old.get("canary"), new.get("canary"), described)

    for kind in ("requests", "limits"):
        for res in ("cpu", "memory"):
            a, b = _get(old, "resources", kind, res), _get(new, "resources", kind, res)
            if a != b:
                lines.append(f"{res} {kind[:-1]} {_fmt(a)} → {_fmt(b)}")
            described.append(("resources", kind, res))

    oc, nc = old.get("celery") or {}, new.get("celery") or {}
    if isinstance(oc, dict) and isinstance(nc, dict):
        if oc.get("queues") != nc.get("queues"):
            lines.append(f"queues {', '.join(map(str, oc.get('queues') or [])) or '(none)'} → "
                         f"{', '.join(map(str, nc.get('queues') or [])) or '(none)'}")
        for k in ("pool", "concurrency"):
            if oc.get(k) != nc.get(k):
                lines.append(f"{k} {_fmt(oc.get(k))} → {_fmt(nc.get(k))}")
        described += [("celery", k) for k in ("queues", "pool", "concurrency")]

    for op, parts, a, b in raw:
        if op == "changed" and _is_volume_size(parts):
            where = [str(p) for p in parts[:-2] if not isinstance(p, int)]
            lines.append(f"{' '.join(where + ['volume']) if where else 'volume'} {a} → {b}")
            described.append(parts)

    oq, nq = _queue_names(old.get("definitions")), _queue_names(new.get("definitions"))
    lines += [f"queue {q} added" for q in sorted(nq - oq)] + [f"queue {q} removed" for q in sorted(oq - nq)]
    described.append(("definitions", "queues"))
    # A queue's binding and its alert come and go with it: "queue q.notify added" says them.
    moved = (nq - oq) | (oq - nq)
    for op, parts, a, b in raw:
        item = b if op == "added" else a
        if op in ("added", "removed") and isinstance(item, dict) and moved & {item.get("destination"), item.get("queue")}:
            described.append(parts)

    return lines + _rest_lines([r for r in raw if not any(r[1][:len(d)] == d for d in described)])


_MORE = 3  # value paths named on the remainder's line before "and N more"


def _rest_lines(rest: list[Raw]) -> list[str]:
    """What no rule above describes, still by name: a list of names with what joined and left it
    (`databases + notification`), a rule added or removed by the reason it carries (`networkPolicy.ingress
    + notification uses postgresql`), and the paths of whatever else changed; never a bare count."""
    lines: list[str] = []
    others: dict[str, str] = {}  # path -> what changed there
    for op, parts, a, b in rest:
        a, b = redact(a, parts, VALUES_KIND), redact(b, parts, VALUES_KIND)  # what the fields below show, no more
        if op == "changed" and isinstance(a, list) and isinstance(b, list):  # a list of scalars, whole
            joined = [_show(x) for x in b if x not in a]
            left = [_show(x) for x in a if x not in b]
            change = " ".join([f"+ {', '.join(joined)}"] * bool(joined) + [f"− {', '.join(left)}"] * bool(left))
            lines.append(f"{format_path(parts)} {change or 'reordered'}")
            continue
        item = b if op == "added" else a
        if op in ("added", "removed") and isinstance(item, dict) and isinstance(item.get("why"), str):
            at = parts[:-1] if parts and isinstance(parts[-1], int) else parts
            lines.append(f"{format_path(at)} {'+' if op == 'added' else '−'} {item['why']}")
            continue
        change = (f"{_show(a, 60)} → {_show(b, 60)}" if op == "changed" else
                  f"+ {_show(b, 60)}" if op == "added" else f"− {_show(a, 60)}")
        others.setdefault(format_path(parts), change)
    if 0 < len(others) <= _MORE:  # few: each with its values (prometheus.retention 7d → 14d)
        lines += [f"{path} {change}" for path, change in others.items()]
    elif others:
        named = list(others)
        lines.append(f"{len(named)} values changed: {', '.join(named[:_MORE])} and {len(named) - _MORE} more")
    return lines


def _delivery_detail(values: dict) -> str:
    """What the new strategy will do: `: weights 10/30/50, pauses 5m/5m/5m, analysis ≥ 0.95` for a canary,
    `: maxSurge 1, maxUnavailable 0` for a rolling update."""
    block = values.get(values.get("strategy")) if isinstance(values.get("strategy"), str) else None
    if not isinstance(block, dict):
        return ""
    if values["strategy"] == "canary":
        steps = [s for s in block.get("steps") or [] if isinstance(s, dict)]
        said = [f"weights {'/'.join(str(s['setWeight']) for s in steps if 'setWeight' in s) or '(none)'}",
                f"pauses {'/'.join(str(s['pause']) for s in steps if 'pause' in s) or '(none)'}"]
        analysis = block.get("analysis")
        if isinstance(analysis, dict) and "successThreshold" in analysis:
            said.append(f"analysis success ≥ {analysis['successThreshold']}")
        return ": " + ", ".join(said)
    return ": " + ", ".join(f"{k} {_fmt(v)}" for k, v in block.items() if not isinstance(v, (dict, list)))


def _canary_lines(old: Any, new: Any, described: list[tuple]) -> list[str]:
    """Canary steps in model terms: step N is the N-th setWeight step (1-based; pauses are not counted)."""
    if not isinstance(old, dict) or not isinstance(new, dict):
        return []
    lines = []
    described.append(("canary", "steps"))
    steps_o, steps_n = old.get("steps") or [], new.get("steps") or []
    wo = [s["setWeight"] for s in steps_o if isinstance(s, dict) and "setWeight" in s]
    wn = [s["setWeight"] for s in steps_n if isinstance(s, dict) and "setWeight" in s]
    if len(wo) == len(wn):
        lines += [f"canary step {i + 1} weight {a} → {b}" for i, (a, b) in enumerate(zip(wo, wn)) if a != b]
    else:
        lines.append(f"canary weights {'/'.join(map(str, wo))} → {'/'.join(map(str, wn))}")
    po = [str(s["pause"]) for s in steps_o if isinstance(s, dict) and "pause" in s]
    pn = [str(s["pause"]) for s in steps_n if isinstance(s, dict) and "pause" in s]
    if po != pn:
        lines.append(f"canary pauses {'/'.join(po) or '(none)'} → {'/'.join(pn) or '(none)'}")
    ao, an = old.get("analysis") or {}, new.get("analysis") or {}
    if isinstance(ao, dict) and isinstance(an, dict):
        for k in dict.fromkeys([*ao, *an]):
            if not isinstance(ao.get(k), (dict, list)) and not isinstance(an.get(k), (dict, list)):
                if ao.get(k) != an.get(k):
                    lines.append(f"canary analysis {k} {_fmt(ao.get(k))} → {_fmt(an.get(k))}")
                described.append(("canary", "analysis", k))
    return lines


def _application_lines(old: Any, new: Any) -> list[str]:
    lines = []
    for label, path in (("project", ("spec", "project")), ("namespace", ("spec", "destination", "namespace")),
                        ("sync wave", ("metadata", "annotations", labels.SYNC_WAVE))):
        a, b = _get(old, *path), _get(new, *path)
        if a != b:
            lines.append(f"{label} {_fmt(a)} → {_fmt(b)}")
    src_o, src_n = _get(old, "spec", "source") or {}, _get(new, "spec", "source") or {}
    if src_n.get("chart") and (src_o.get("chart"), src_o.get("targetRevision")) != (src_n.get("chart"),
                                                                                    src_n.get("targetRevision")):
        lines.append(f"chart {src_o.get('chart')} {src_o.get('targetRevision')} → "
                     f"{src_n.get('chart')} {src_n.get('targetRevision')}")
    return lines


def _reach(item: str, places: list[tuple[str, str]], envs: set[str], present: set[tuple[str, str]]) -> str:
    """`waste (every environment): item` when the change reaches the app in every environment; else the env/app
    pairs it reaches, and the environments that have those apps but do not get it (`(not in dev)`)."""
    if len(envs) <= 1:
        return f"{', '.join(app for _, app in places)}: {item}"
    by_app: dict[str, set[str]] = {}
    for env, app in places:
        by_app.setdefault(app, set()).add(env)
    if all(got == envs for got in by_app.values()):
        return f"{', '.join(by_app)} (every environment): {item}"
    missing = sorted({e for app, got in by_app.items() for e in envs - got if (e, app) in present})
    shown = ", ".join(f"{env}/{app}" if env else app for env, app in places)
    return f"{shown}: {item}" + (f" (not in {', '.join(missing)})" if missing else "")


def _summary(old_objs: dict[Key, Any], new_objs: dict[Key, Any], moves: list[tuple[Key, Key, float]],
             envs: set[str], present: set[tuple[str, str]] = frozenset()) -> list[str]:
    """Model-level lines, per app (prefixed env/app when the tree has several environments, or `(every
    environment)`), then Applications. `present`: the (env, app) pairs either side renders."""
    per_app: dict[tuple[str, str], list[str]] = {}
    for key in sorted(old_objs.keys() & new_objs.keys()):
        old, new = old_objs[key], new_objs[key]
        if key.kind == VALUES_KIND and isinstance(old, dict) and isinstance(new, dict):
            per_app.setdefault((key.env, key.app), []).extend(_model_lines(old, new, diff_values(old, new)))
        elif key.kind == "Application" and _is_argo(key) and isinstance(old, dict) and isinstance(new, dict):
            per_app.setdefault((key.env, key.app), []).extend(_application_lines(old, new))
    # One model change often reaches several apps (a default canary step, a shared setting): say it once.
    where: dict[str, list[tuple[str, str]]] = {}
    for (env, app), items in sorted(per_app.items()):
        for item in items:
            where.setdefault(item, []).append((env, app))
    lines = [_reach(item, places, envs, present) for item, places in where.items()]

    def apps(keys: Iterable[Key]) -> list[str]:
        return sorted(k.name if len(envs) <= 1 else k.group for k in keys
                      if k.kind == "Application" and _is_argo(k))
    moved_old = {o for o, _, _ in moves}
    moved_new = {n for _, n, _ in moves}
    gone = apps(k for k in old_objs if k not in new_objs and k not in moved_old)
    came = apps(k for k in new_objs if k not in old_objs and k not in moved_new)
    renamed = [f"{o.name} → {n.name}" for o, n, _ in moves if o.kind == "Application" and o.name != n.name]
    if gone or came or renamed:
        line = (f"{len(came)} Application{'s' if len(came) != 1 else ''} added"
                f"{' (' + ', '.join(came) + ')' if came else ''}, {len(gone)} removed"
                f"{' (' + ', '.join(gone) + ')' if gone else ''}")
        if renamed:
            line += f", {len(renamed)} renamed ({', '.join(renamed)})"
        lines.append(line)
    return lines
