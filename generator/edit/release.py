"""Release fields across environments: what `promote` copies from one environment to the next, what `envs` compares,
and the edit behind `set-image --env`.

Which fields are release fields is written once, in the model (model.Release, `x-eco2-promotable` in the editor
schema): the images of workloads and their exporters, and the upstream charts (repoURL, name, version). Everything
else belongs to the environment and is never copied.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel

from ..errors import InvalidModel, Loc, Problem, format_loc
from ..model import environments
from ..model.loader import Loaded
from ..model.model import PROMOTABLE, Image, Model, Strict
from ..plan import resolve
from . import envedit, setimage


def release_units(spec: Any, loc: Loc = ()) -> Iterator[tuple[Loc, BaseModel]]:
    """(loc relative to the component, value) of every release field of a component's model object, in field order."""
    if not isinstance(spec, Strict):
        return
    for name, info in type(spec).model_fields.items():
        value, key = getattr(spec, name), info.alias or name
        if PROMOTABLE in (info.json_schema_extra or {}):  # type: ignore[operator]
            yield loc + (key,), value
        elif isinstance(value, Strict):
            yield from release_units(value, loc + (key,))


def _leaves(unit: BaseModel) -> Iterator[tuple[str, Any]]:
    for name, info in type(unit).model_fields.items():
        yield info.alias or name, getattr(unit, name)


def release_fields(model: Model) -> dict[str, dict[Loc, tuple[Loc, str | None]]]:
    """component -> {loc of the release field relative to the component + leaf: (absolute loc, value as a string)}."""
    out: dict[str, dict[Loc, tuple[Loc, str | None]]] = {}
    for comp in resolve.components(model):
        fields = {}
        for rel, unit in release_units(comp.spec):
            for leaf, value in _leaves(unit):
                fields[rel + (leaf,)] = (comp.loc + rel + (leaf,), None if value is None else str(value))
        if fields:
            out[comp.name] = fields
    return out


# ---------------------------------------------------------------- drift


@dataclass(frozen=True)
class Drift:
    """One release field (a whole image or chart) that is not the same in every environment."""

    component: str
    field: str  # e.g. image, exporter.image, chart
    values: tuple[tuple[str, str], ...]  # (environment, what it runs), in promotion order

    def __str__(self) -> str:
        return f"{self.component} {self.field}: " + ", ".join(f"{env} {v}" for env, v in self.values)


def _describe(unit: BaseModel | None, differing: list[str]) -> str:
    """What an environment runs, by the leaves that differ: `v0.6.1`, `(no digest)`, `tag=v1 digest=sha256:…`."""
    if unit is None:
        return "(not deployed)"
    values = dict(_leaves(unit))
    if len(differing) == 1:
        return str(values[differing[0]]) if values[differing[0]] is not None else f"(no {differing[0]})"
    # an image always has a tag or a digest, a chart every leaf: never empty
    return " ".join(f"{leaf}={values[leaf]}" for leaf in differing if values[leaf] is not None)


def drift(envs: dict[str, Loaded]) -> list[Drift]:
    """Every release field whose value differs between environments, by component (in the first environment's
    order, then those only later ones have)."""
    units: dict[tuple[str, Loc], dict[str, BaseModel]] = {}
    for env, loaded in envs.items():
        for comp in resolve.components(loaded.model):
            for rel, unit in release_units(comp.spec):
                units.setdefault((comp.name, rel), {})[env] = unit
    out = []
    for (component, rel), per_env in units.items():
        present = list(per_env.values())
        leaves = [leaf for leaf, _ in _leaves(present[0])]
        differing = [leaf for leaf in leaves if len({dict(_leaves(u))[leaf] for u in present}) > 1]
        if not differing and len(per_env) == len(envs):
            continue
        # all the same where deployed: name it by the leaf that says most (a tag, a version, else the digest)
        shown = differing or [leaf for leaf in ("tag", "version", "digest")
                              if leaf in leaves and dict(_leaves(present[0]))[leaf] is not None][:1]
        values = tuple((env, _describe(per_env.get(env), shown)) for env in envs)
        out.append(Drift(component, format_loc(rel), values))
    return out


def pending(envs: dict[str, Loaded]) -> list[tuple[str, str, tuple[str, ...]]]:
    """(environment, the next one, components whose release fields differ between them), for each consecutive pair
    in promotion order that differs: the promotions waiting to be made."""
    names = list(envs)
    out = []
    for source, target in zip(names, names[1:]):
        src, dst = release_fields(envs[source].model), release_fields(envs[target].model)
        comps = tuple(c for c in src if c in dst and {r: v for r, (_, v) in src[c].items()}
                      != {r: v for r, (_, v) in dst[c].items()})
        if comps:
            out.append((source, target, comps))
    return out


def unpromoted(base: dict[str, Loaded], head: dict[str, Loaded]) -> list[str]:
    """For a change from `base` to `head` (every environment of each): the release fields it changes in one
    environment and not in the next, with the promotion that would take them there."""
    names = list(head)
    fields = {env: release_fields(loaded.model) for env, loaded in head.items()}
    before = {env: release_fields(loaded.model) for env, loaded in base.items()}
    drifts = {(d.component, d.field): d for d in drift(head)}
    out: list[str] = []
    seen: set[tuple[str, str]] = set()
    for env, nxt in zip(names, names[1:]):
        for comp, per in fields[env].items():
            if comp not in fields[nxt]:
                continue
            for rel, (_, value) in per.items():
                unit = format_loc(rel[:-1])
                was = before.get(env, {}).get(comp, {}).get(rel, (None, value))[1]
                if value == was or fields[nxt][comp].get(rel, (None, None))[1] == value or (comp, unit) in seen:
                    continue
                seen.add((comp, unit))
                shown = drifts.get((comp, unit))
                out.append(f"not promoted: {shown or f'{comp} {unit}'}; changed in {env}, not in {nxt}: "
                           f"make promote FROM={env} TO={nxt} COMPONENT={comp}")
    return out


# ---------------------------------------------------------------- promotion


@dataclass(frozen=True)
class Promotion:
    source: str
    target: str
    plan: envedit.Plan
    skipped: tuple[str, ...]  # components of the source the target does not have (nothing to copy into)


def _unknown(envs: dict[str, Loaded], env: str, name: str, names: list[str]) -> Problem:
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else f" ({env}'s components with release fields: {', '.join(sorted(names))})"
    return Problem(f"{envs[env].source.display_dir}/", 0, 0, name, f"no component named {name!r} in {env}{hint}")


def promotion_wanted(envs: dict[str, Loaded], source: str, target: str,
                     components: tuple[str, ...] = ()) -> tuple[dict[Loc, str], tuple[str, ...]]:
    """The values the target must take (absolute loc -> value) for it to run the source's release fields, and the
    components skipped; InvalidModel for an unknown component or a field the source does not set and the target
    does (promotion sets values, it removes none)."""
    src, dst = release_fields(envs[source].model), release_fields(envs[target].model)
    problems = [_unknown(envs, source, c, list(src)) for c in components if c not in src]
    problems += [_unknown(envs, target, c, list(dst)) for c in components if c in src and c not in dst]
    if problems:
        raise InvalidModel(problems)
    wanted: dict[Loc, str] = {}
    skipped = []
    for comp in components or tuple(src):
        if comp not in dst:
            skipped.append(comp)
            continue
        for rel, (loc, value) in src[comp].items():
            _, now = dst[comp].get(rel, (loc, None))
            if value == now:
                continue
            if value is None:
                file, line, col, field = envs[target].source.locate(loc)
                problems.append(Problem(file, line, col, field, f"{target} sets {format_loc(rel)} {now} and {source} "
                                        "does not: promotion sets values and removes none; remove it by hand"))
                continue
            wanted[loc] = value
    if problems:
        raise InvalidModel(problems)
    return wanted, tuple(skipped)


def plan_promotion(values_dir: Path, source: str, target: str, components: tuple[str, ...] = (),
                   display_dir: str = "values") -> Promotion:
    envs = environments.load(values_dir, display_dir)
    missing = [e for e in (source, target) if e not in envs]
    if missing or source == target:
        why = (f"no environment {', '.join(map(repr, missing))}: the model has {', '.join(envs)}" if missing
               else f"--from and --to are both {source}")
        raise InvalidModel([Problem(f"{display_dir}/", 0, 0, "environments", why)])
    wanted, skipped = promotion_wanted(envs, source, target, components)
    return Promotion(source, target, envedit.plan(values_dir, envs, target, wanted, display_dir), skipped)


@dataclass(frozen=True)
class EnvImage:
    plan: envedit.Plan
    field: str  # e.g. services.waste.image
    notes: tuple[str, ...]  # as set-image's


def plan_set_image(values_dir: Path, env: str, component: str, ref: str | setimage.Ref,
                   display_dir: str = "values") -> EnvImage:
    """set-image for one environment: its image set where it changes that environment alone (envedit's rule)."""
    envs = environments.load(values_dir, display_dir)
    if env not in envs:
        raise InvalidModel([Problem(f"{display_dir}/", 0, 0, "environments",
                                    f"no environment {env!r}: the model has {', '.join(envs)}")])
    loaded = envs[env]
    comp = setimage._component(loaded, component)
    image_loc = comp.loc + ("image",)
    image: Image = comp.spec.image  # type: ignore[union-attr]
    parsed = ref if isinstance(ref, setimage.Ref) else setimage.Ref.parse(ref)
    setimage._validate_ref(loaded.source, image_loc, image, parsed)
    notes = setimage._notes(image, parsed, format_loc(image_loc))
    wanted = {image_loc + (f,): v for f, v in parsed.fields().items()}
    return EnvImage(envedit.plan(values_dir, envs, env, wanted, display_dir), format_loc(image_loc), notes)
