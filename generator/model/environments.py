"""Environments: the base model in values/*.yaml, and one overlay per environment in values/environments/<env>.yaml.

The base lists the environments in promotion order (`environments: [dev, staging, prod]`); each environment is the
base merged with its overlay (an environment without an overlay file is the base as written). The merge rules:

- a mapping merges into the base's mapping key by key, recursively;
- any other value (a list, a string, a number) replaces the base's value whole;
- `key: null` removes the key: a component, a node, an entry, or a field back to its default;
- `$patch: replace` inside a mapping makes it replace the base's mapping instead of merging into it.

The merged model is checked like a base model, and every error points at the file and line that set the value:
the overlay's where it writes the field, else the base's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from .. import memo
from ..errors import Finding, InvalidModel, Problem, format_loc
from . import loader
from .loader import Loaded
from .model import SECTIONS

OVERLAY_DIR = "environments"
PATCH = "$patch"
BASE_ONLY = ("environments",)  # sections only the base may write
OVERLAY_SECTIONS = tuple(s for s in SECTIONS if s not in BASE_ONLY)


def overlay_files(values_dir: Path) -> dict[str, Path]:
    """environment name -> its overlay file, for values/environments/*.yaml."""
    folder = values_dir / OVERLAY_DIR
    if not folder.is_dir():
        return {}
    return {p.name.rsplit(".", 1)[0]: p for p in sorted(folder.iterdir()) if p.suffix in (".yaml", ".yml")}


def merge(base: Any, overlay: Any, loc: tuple = ()) -> tuple[Any, list[Finding]]:
    """The overlay applied to the base by the rules above, and what in the overlay cannot be applied."""
    if not isinstance(overlay, dict):
        return overlay, []
    findings: list[Finding] = []
    patch = overlay.get(PATCH)
    if patch is not None and patch != "replace":
        findings.append(Finding(loc + (PATCH,), f"{PATCH} takes one value, replace (got {patch!r})"))
    replace = patch == "replace" or not isinstance(base, dict)
    out: dict[str, Any] = {} if replace else dict(base)
    for key, value in overlay.items():
        if key == PATCH:
            continue
        if value is None:
            if replace or key not in base:
                findings.append(Finding(loc + (key,), "null removes a key of the base model, and the base has no "
                                                      f"{format_loc(loc + (key,))}"))
            out.pop(key, None)
            continue
        merged, found = merge(None if replace else base.get(key), value, loc + (key,))
        out[key] = merged
        findings += found
    return out, findings


def _read_overlay(path: Path, shown: str) -> tuple[dict[str, Any] | None, CommentedMap | None, list[Problem]]:
    """An overlay file's plain data (from the memo when its bytes were read before), its parse, its problems."""
    m = memo.active()
    parsed: list = []

    def read() -> dict[str, Any]:
        parsed.append(_parse_overlay(path, shown))
        data, _, problems = parsed[0]
        if problems or data is None or not memo.json_safe(data):
            raise memo.Unstorable(None)
        return data
    if m is None or not path.is_file() or path.stat().st_size > loader.MAX_FILE_BYTES:
        return _parse_overlay(path, shown)
    data = m.get("overlay", path.read_bytes(), read)
    return parsed[0] if parsed else (data, None, [])


def _parse_overlay(path: Path, shown: str) -> tuple[dict[str, Any] | None, CommentedMap | None, list[Problem]]:
    if not path.is_file():
        return None, None, [Problem(shown, 0, 0, "", "is not a regular file")]
    doc, problems = loader.read_file(path, shown, empty_ok=True)
    if doc is None:
        return None, None, problems
    out: dict[str, Any] = {}
    for key in doc:
        line, col = doc.lc.key(key)
        if key in BASE_ONLY:
            problems.append(Problem(shown, line + 1, col + 1, str(key), "is written in the base model only"))
        elif key not in SECTIONS:
            problems.append(loader.unknown_section(shown, line, col, key, OVERLAY_SECTIONS, "an overlay may set"))
        else:
            out[key] = loader._plain(doc[key])
    return out, doc, problems


def _combined(per_env: dict[str, list[Problem]]) -> list[Problem]:
    """Each problem once; one found in some environments only says which."""
    where: dict[Problem, list[str]] = {}
    for env, problems in per_env.items():
        for p in problems:
            where.setdefault(p, []).append(env)
    out = []
    for p, envs in where.items():
        if len(envs) == len(per_env):
            out.append(p)
        else:
            out.append(Problem(p.file, p.line, p.col, p.field, f"in {', '.join(envs)}: {p.message}"))
    return out


def load(values_dir: Path, display_dir: str = "values", run_checks: bool = True,
         only: tuple[str, ...] = ()) -> dict[str, Loaded]:
    """Every environment's checked model (or those in `only`), in promotion order; InvalidModel with every
    problem of every environment, each at the file:line:col that set the value."""
    read = loader.read_sections(values_dir, display_dir)
    data, source, problems, unreadable = read
    overlays = overlay_files(values_dir)
    names = data.get("environments")
    if names is None and not overlays:
        loaded = loader.build(read, display_dir, run_checks)
        env = loaded.model.cluster.environment
        if only and env not in only:
            raise InvalidModel([_unknown_env(only, [env], display_dir)])
        return {env: loaded}
    if unreadable:
        raise InvalidModel(problems)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or not names:
        if isinstance(names, list) and not names:
            raise InvalidModel([source.problem(Finding(("environments",), "lists no environment"))])
        if names is not None:
            loader.build(read, display_dir, run_checks)  # reports the type error at its position
        raise InvalidModel([Problem(f"{display_dir}/{OVERLAY_DIR}/{p.name}", 0, 0, "",
                                    "an overlay, but the base model lists no `environments:` (their promotion order)")
                            for p in overlays.values()])
    listed = ", ".join(names)
    base_problems, problems = list(problems), []  # the base's own go with each environment's (said once if in all)
    problems += [Problem(f"{display_dir}/{OVERLAY_DIR}/{p.name}", 0, 0, "",
                         f"environment {env!r} is not listed in environments: [{listed}]")
                 for env, p in overlays.items() if env not in names]
    if "environment" in (data.get("cluster") or {}):
        problems.append(source.problem(Finding(("cluster", "environment"), "each environment is named by "
                                               f"`environments:` [{listed}]; remove this field")))
    unknown = [e for e in only if e not in names]
    if unknown:
        problems.append(_unknown_env(tuple(unknown), names, display_dir))
    if problems:
        raise InvalidModel(problems)
    per_env: dict[str, list[Problem]] = {}
    out: dict[str, Loaded] = {}
    for env in names:
        if only and env not in only:
            continue
        path = overlays.get(env)
        shown = f"{display_dir}/{OVERLAY_DIR}/{path.name}" if path else None
        odata, odoc, oproblems = _read_overlay(path, shown) if path else ({}, None, [])
        if odata is None:
            per_env[env] = oproblems
            continue
        layered = source.with_overlay(shown, odata, path, odoc) if path else source
        merged, findings = merge(data, odata)
        cluster = merged.get("cluster")
        if isinstance(cluster, dict):
            if "environment" in (odata.get("cluster") or {}):
                findings.append(Finding(("cluster", "environment"), f"the environment's name is {env!r}, from the file "
                                                                    "name; remove this field"))
            merged["cluster"] = {**cluster, "environment": env}
        env_problems = base_problems + oproblems + [layered.problem(f) for f in findings]
        try:
            out[env] = loader.build((merged, layered, env_problems, False), display_dir, run_checks)
        except InvalidModel as exc:
            per_env[env] = exc.problems
    if not per_env and run_checks:
        per_env = {env: [] for env in out}
        for env, finding in cross_environment(out):
            per_env[env].append(out[env].source.problem(finding))
        per_env = {env: p for env, p in per_env.items() if p}
    if per_env:
        raise InvalidModel(_combined({**{e: [] for e in out}, **per_env}))
    return out


def _unknown_env(asked: tuple[str, ...], names: list[str], display_dir: str) -> Problem:
    return Problem(f"{display_dir}/", 0, 0, "", f"no environment {', '.join(map(repr, asked))}: the model has "
                                                f"{', '.join(names)}")


def argo_names(loaded: Loaded) -> dict[tuple[str, str], tuple]:
    """(kind, name) -> the model field that names it, for every Application and AppProject of an environment."""
    from ..plan import resolve
    from ..render.applications import argo_name

    model = loaded.model
    out: dict[tuple[str, str], tuple] = {("Application", argo_name(model, model.argocd.root_app)): ("argocd", "rootApp")}
    for comp in resolve.components(model):
        out[("Application", argo_name(model, comp.name))] = comp.loc
    for name in model.argocd.projects:
        out[("AppProject", argo_name(model, name))] = ("argocd", "projects", name)
    return out


def cross_environment(envs: dict[str, Loaded]) -> list[tuple[str, Finding]]:
    """What no environment can see alone: two of them sharing an Argo CD object name, or one cluster."""
    found: list[tuple[str, Finding]] = []
    names: dict[tuple[str, str], str] = {}
    servers: dict[str, str] = {}
    for env, loaded in envs.items():
        own = sorted(argo_names(loaded))
        if shared := [key for key in own if key in names]:
            key = shared[0]
            found.append((env, Finding(("argocd", "namePrefix"), f"{key[0]} {key[1]} is also {names[key]}'s: give "
                                                                 "each environment its own argocd.namePrefix")))
        for key in own:
            names.setdefault(key, env)
        server = loaded.model.cluster.server
        if server in servers:
            found.append((env, Finding(("cluster", "server"), f"{servers[server]} deploys to {server} too: two "
                                                              "environments in one cluster would share its namespaces")))
        servers.setdefault(server, env)
    return found
