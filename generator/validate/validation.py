"""Validate a generated tree: schemas, cross-object references, policy; waivers; findings tied to the model."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from .. import memo, parallel, yamlio
from ..labels import POD_SECURITY_ENFORCE
from ..model.loader import Loaded
from ..upstream.crds import resolve_crd_dir
from . import capacity, policy, references
from .kubeschema import SchemaFinding, Validator
from .objects import Index, Obj, Parsed, app_of, collect


@dataclass(frozen=True, order=True)
class Issue:
    source: str
    doc: int
    check: str
    object: str  # "Kind namespace/name"
    path: str
    message: str
    model: str = ""  # "values/services.yaml:67:3 services.waste.probes" where it can be traced

    def __str__(self) -> str:
        where = f"{self.source}#{self.doc}" if self.doc >= 0 else self.source
        text = f"{where} {self.object}: {self.path}: {self.message} [{self.check}]" if self.path else \
            f"{where} {self.object}: {self.message} [{self.check}]"
        return f"{text}\n    model: {self.model}" if self.model else text


@dataclass
class Report:
    issues: list[Issue]
    waived: list[tuple[Issue, str]]
    documents: int

    @property
    def ok(self) -> bool:
        return not self.issues

    def to_json(self) -> dict:
        return {"issues": [dataclasses.astuple(i) for i in self.issues],
                "waived": [[dataclasses.astuple(i), reason] for i, reason in self.waived], "documents": self.documents}

    @classmethod
    def from_json(cls, d: dict) -> "Report":
        return cls([Issue(*i) for i in d["issues"]], [(Issue(*i), reason) for i, reason in d["waived"]], d["documents"])

    def lines(self) -> list[str]:
        out = [str(i) for i in self.issues]
        out += [f"waived: {i.source}#{i.doc} {i.object}: {i.message} [{i.check}] — {reason}" for i, reason in self.waived]
        return out


def _model_field(loaded: Loaded | None, app: str | None, suffix: tuple) -> str:
    if loaded is None or app is None:
        return ""
    comp = loaded.plan.by_name.get(app)
    if comp is None:
        return ""
    spec_fields = set(type(comp.spec).model_fields) if comp.spec is not None else set()
    aliases = {f.alias or n for n, f in type(comp.spec).model_fields.items()} if comp.spec is not None else set()
    loc = comp.loc + tuple(p for p in suffix if p in aliases or p in spec_fields)
    file, line, col, path = loaded.source.locate(loc)
    return f"{file}:{line}:{col} {path}"


def validate_files(files: dict[str, bytes], repo: Path, loaded: Loaded | None, kube_version: str,
                   crd_dir: Path | None = None, parsed: Parsed | None = None,
                   loads: list[capacity.PodLoad] | None = None) -> Report:
    """Everything under rendered/ and argocd/ in `files` (path -> bytes), as Argo CD and the cluster would see it.
    `parsed`: the documents of files parsed before in this run (objects.collect); `loads`: capacity.loads of the
    manifests of these files, when this run has them already (the review's)."""
    objs, unreadable = collect(files, parsed)
    issues: list[Issue] = [Issue(path, -1, "schema", "?", "", error) for path, error in unreadable]

    traced: dict[Issue, tuple[str | None, tuple]] = {}  # the model field is looked up for kept issues only

    def issue(obj: Obj, check: str, path: str, message: str, suffix: tuple = ()) -> Issue:
        found = Issue(obj.source, obj.index, check, obj.shown, path, message)
        traced.setdefault(found, (obj.app, suffix))
        return found

    hydrated = [(o.source, o.doc) for o in objs if o.kind == "CustomResourceDefinition" and app_of(o.source)[1] == "crds"]
    schema = Validator(kube_version, resolve_crd_dir(crd_dir, Path(__file__).resolve().parents[2]), hydrated)
    by_position = {(o.source, o.index): o for o in objs}
    for source, gvk, pinned in schema.mismatches:
        crd = next(o for o in objs if o.source == source and o.kind == "CustomResourceDefinition")
        issues.append(issue(crd, "schema.crd", "spec.versions", f"the schema of {gvk} differs from the pinned {pinned}"))
    by_source: dict[str, list[Obj]] = {}
    for o in objs:
        by_source.setdefault(o.source, []).append(o)
    unreadable_paths = {path for path, _ in unreadable}
    schema_found, credentials_found = _file_findings(schema, files, by_source, unreadable_paths)
    for source, found in schema_found.items():
        for f in found:
            issues.append(issue(by_position[(source, f.doc)], "schema", f.path, f.message))

    index = Index(objs)
    ctx = references.Context(index, loaded.model if loaded else None, repo, frozenset(schema.builtin_kinds()), frozenset(files))
    for obj, check, path, message, suffix in references.run(ctx):
        issues.append(issue(obj, check, path, message, suffix))
    manifests = [o for o in objs if app_of(o.source)[1] == "manifests"]
    levels = {ns.name: (ns.labels or {}).get(POD_SECURITY_ENFORCE, "restricted") for ns in index.kind("Namespace")}
    for obj, check, path, message, suffix in policy.pods(manifests, levels):
        issues.append(issue(obj, check, path, message, suffix))
    for found, trace in _credentials(credentials_found, by_source):
        traced.setdefault(found, trace)
        issues.append(found)
    if loaded is not None:
        issues += _capacity(objs, loaded, computed=loads)

    waivers = {(w.check, w.object): w.reason for w in loaded.model.waivers} if loaded else {}
    kept, waived = [], []
    for i in sorted(set(issues)):
        obj = by_position.get((i.source, i.doc))
        reason = waivers.get((i.check, obj.ref)) if obj is not None else None
        if reason:
            waived.append((i, reason))
        else:  # positions in values/ cost a parse of the model files: only for what is printed with them
            kept.append(dataclasses.replace(i, model=_model_field(loaded, *traced[i])) if i in traced and not i.model else i)
    return Report(sorted(kept), waived, len(objs))


def capacity_since(report: Report, files: dict[str, bytes], loaded: Loaded, committed: dict[str, bytes]) -> Report:
    """The report with its capacity findings told against the committed tree: which workloads grew on the node,
    and the model field of the one that pushed it over. Outside validate_files (and its memo key), since only a
    failing render needs the committed files."""
    kept = {(i.source, i.doc, i.path) for i in report.issues if i.check == "capacity"}
    if not kept:
        return report
    told = [i for i in _capacity(collect(files)[0], loaded, collect(committed)[0]) if (i.source, i.doc, i.path) in kept]
    return dataclasses.replace(report, issues=sorted([i for i in report.issues if i.check != "capacity"] + told))


def _credential_scanned(path: str, unreadable: set[str]) -> bool:
    """Every YAML file under rendered/ or argocd/ is scanned for credentials, values files included (an unreadable
    file is a finding of collect() already)."""
    return path.startswith(("rendered/", "argocd/")) and path.endswith((".yaml", ".yml")) and path not in unreadable


def _file_findings(schema: Validator, files: dict[str, bytes], by_source: dict[str, list[Obj]], unreadable: set[str]
                   ) -> tuple[dict[str, list[SchemaFinding]], dict[str, list[tuple[int, tuple, str]]]]:
    """What depends on one file alone: schema.validate() of its objects, and policy.credential_problems of each of
    its documents (its objects, or every document of a values file, which holds no objects). Each through the memo,
    keyed by the file's bytes (and the schemas of its kinds): a thousand services make 3,000 files and 10,000 objects.
    What the memo does not hold is computed half here, half in a forked process when it is much
    (parallel.halves): on a cold render at 1000 services, 8 s of CPU that nothing else waits on."""
    m = memo.active()
    schema_out: dict[str, list[SchemaFinding]] = {}
    credentials_out: dict[str, list[tuple[int, tuple, str]]] = {}
    todo: list[tuple[str, bytes | None, bool, bytes | None, bool]] = []  # (file, schema key, to do, credentials key, to do)
    paths = sorted(set(by_source) | {p for p in files if _credential_scanned(p, unreadable)})
    # The per-file findings of these files in one entry too: a re-render after one change reads it instead of 6,000.
    kept = memo.Index(m, memo.digest("file findings", *paths)) if m is not None else None
    for path in paths:
        schema_key = credentials_key = None
        schema_todo = credentials_todo = False
        if path in by_source:
            keys = [schema.schema_key(o.doc) for o in by_source[path]]
            # No schema for a kind: its message lists every kind known, so it is never stored.
            schema_key = memo.digest(files[path], repr(keys)) if m is not None and None not in keys else None
            found = kept.lookup("schema-file", schema_key) if schema_key is not None else None
            if found is not None:
                schema_out[path] = [SchemaFinding(path, *f) for f in found]
            else:
                schema_todo = True
        if _credential_scanned(path, unreadable):
            credentials_key = memo.digest(files[path], "objects" if path in by_source else "all") if m is not None else None
            found = kept.lookup("credentials-file", credentials_key) if credentials_key is not None else None
            if found is not None:
                credentials_out[path] = [(i, tuple(loc), what) for i, loc, what in found]
            else:
                credentials_todo = True
        if schema_todo or credentials_todo:
            todo.append((path, schema_key, schema_todo, credentials_key, credentials_todo))
    for path, _, schema_todo, _, _ in todo:  # built here, once, so that a forked half finds them built
        for o in by_source[path] if schema_todo else ():
            if isinstance(o.doc, dict) and isinstance(o.doc.get("apiVersion"), str) and isinstance(o.doc.get("kind"), str):
                schema.prepare(o.doc["apiVersion"], o.doc["kind"])

    def compute(item: tuple) -> list:  # stores what it computed: each process its own half
        path, schema_key, schema_todo, credentials_key, credentials_todo = item
        objs = by_source.get(path)
        schema_found = credentials = None
        if schema_todo:
            schema_found = [[f.doc, f.kind, f.name, f.path, f.message] for o in objs
                            for f in schema.validate(path, o.index, o.doc)]
            if schema_key is not None:
                m.misses += 1
                m.store("schema-file", schema_key, schema_found)
        if credentials_todo:
            docs = [(o.index, o.doc) for o in objs] if objs is not None else \
                enumerate(yamlio.load_all(files[path].decode("utf-8")))
            credentials = [[index, list(loc), what] for index, doc in docs for loc, what in policy.credential_problems(doc)]
            if credentials_key is not None:
                m.misses += 1
                m.store("credentials-file", credentials_key, credentials)
        return [schema_found, credentials]
    for (path, schema_key, _, credentials_key, _), (schema_found, credentials) in zip(todo, parallel.halves(compute, todo)):
        if schema_found is not None:
            schema_out[path] = [SchemaFinding(path, *f) for f in schema_found]
            if schema_key is not None:
                kept.remember("schema-file", schema_key, schema_found)
        if credentials is not None:
            credentials_out[path] = [(i, tuple(loc), what) for i, loc, what in credentials]
            if credentials_key is not None:
                kept.remember("credentials-file", credentials_key, credentials)
    if kept is not None:
        kept.save()
    return {p: schema_out[p] for p in by_source}, {p: credentials_out[p] for p in sorted(credentials_out)}


def _credentials(found: dict[str, list[tuple[int, tuple, str]]], by_source: dict[str, list[Obj]]
                 ) -> Iterable[tuple[Issue, tuple]]:
    """No plaintext credentials anywhere under rendered/ or argocd/, values files included (`found`: by file, from
    _file_findings)."""
    from ..errors import format_loc

    for path, problems in found.items():
        shown = {o.index: (o.shown, o.app) for o in by_source[path]} if path in by_source else {}
        for index, loc, what in problems:
            obj_shown, app = shown.get(index, ("values", app_of(path)[2]))
            yield Issue(path, index, "policy.credentials", obj_shown, format_loc(loc), what), (app, ("env",))


def _capacity(objs: list[Obj], loaded: Loaded, before: list[Obj] | None = None,
              computed: list[capacity.PodLoad] | None = None) -> Iterable[Issue]:
    """Peak requests of the rendered pods per node (capacity.py), shown at the node's Node object; pointing at the
    model field whose change pushed the node over where the committed tree (`before`) shows one."""
    from ..errors import format_loc

    def manifests(some: list[Obj]) -> list[Obj]:
        return [o for o in some if app_of(o.source)[1] == "manifests"]
    model = loaded.model
    nodes = {o.name: o for o in objs if o.kind == "Node" and o.source.endswith("/nodes.yaml")}
    for f in capacity.findings(manifests(objs), model, manifests(before) if before is not None else None, computed):
        node = nodes.get(f.loc[1])
        file, line, col, path = loaded.source.locate(getattr(f, "changed", ()) or f.loc)
        yield Issue(node.source if node else "rendered", node.index if node else -1, "capacity",
                    node.shown if node else f"Node {f.loc[1]}", format_loc(f.loc[2:]), f.message, f"{file}:{line}:{col} {path}")
