"""Strict offline validation of rendered Kubernetes objects against the k8s OpenAPI and upstream CRD schemas."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource

from .. import yamlio
from ..errors import format_loc

_Loader = yamlio.Loader
_DEFS_ID = "https://kubernetes.io/api/_definitions.json"
_OBJECT_META = f"{_DEFS_ID}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
# JSON Schema keywords a structural CRD schema may use; descriptions, defaults and x-kubernetes-* are dropped.
_KEEP = {"type", "enum", "pattern", "minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems",
         "minProperties", "maxProperties", "multipleOf", "uniqueItems", "required", "anyOf", "allOf", "oneOf", "not"}


class SchemaError(Exception):
    """The validator cannot be set up (no CRDs, unsupported Kubernetes version); the message says what to do."""


@dataclass(frozen=True, order=True)
class SchemaFinding:
    source: str
    doc: int
    kind: str
    name: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.source}#{self.doc} {self.kind} {self.name}: {where}{self.message}"


# ---------------------------------------------------------------- built-in kinds (kubernetes-validate's bundle)

def _bundle_root() -> Path:
    spec = importlib.util.find_spec("kubernetes_validate")  # locate without importing: its __init__ is heavy
    if spec is None or not spec.submodule_search_locations:
        raise SchemaError("the kubernetes-validate package is not installed (pip install -e '.[test]')")
    return Path(next(iter(spec.submodule_search_locations))) / "kubernetes-json-schema"


@cache
def _json(path: Path) -> Any:
    with open(path, "rb") as f:
        return json.load(f)


@cache
def _k8s_dir(kube_version: str) -> Path:
    m = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.\d+)?", kube_version.strip())
    root = _bundle_root()
    found = root / f"v{m[1]}.{m[2]}.0-local-strict" if m else None
    if found is None or not found.is_dir():
        known = sorted((p.name[1:].rsplit(".", 1)[0] for p in root.glob("v*-local-strict")),
                       key=lambda v: tuple(map(int, v.split("."))))
        raise SchemaError(f"Kubernetes version {kube_version!r} is not supported; "
                          f"use MAJOR.MINOR, one of {', '.join(known)}")
    return found


@cache
def _k8s_registry(directory: Path) -> Registry:
    defs = _json(directory / "_definitions.json")
    return Registry().with_resource(_DEFS_ID, Resource.from_contents(defs)).crawl()


@cache
def _k8s_kinds(directory: Path) -> dict[tuple[str, str], Path]:
    """(apiVersion, kind) -> per-kind schema file. File names follow the Go package of the definition
    (io.k8s.api.apps.v1.Deployment -> deployment-apps-v1.json, core is left out), not the API group."""
    files = set(os.listdir(directory))
    kinds = {}
    for name, definition in _json(directory / "_definitions.json")["$defs"].items():
        *_, package, version, type_name = name.split(".")
        stem = f"{type_name.lower()}-{version}" if package == "core" else f"{type_name.lower()}-{package}-{version}"
        if f"{stem}.json" not in files:
            continue
        for gvk in definition.get("x-kubernetes-group-version-kind", ()):
            api_version = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            kinds[(api_version, gvk["kind"])] = directory / f"{stem}.json"
    return kinds


# ---------------------------------------------------------------- custom resources (upstream CRD files)

@cache
def _crd_file(path: str, mtime_ns: int, size: int) -> tuple[dict, ...]:
    """The CRDs in one file, parsed once per process (the stat fields in the key catch rewrites)."""
    try:
        with open(path, encoding="utf-8") as f:
            docs = yamlio.load_all(f.read())
    except yaml.YAMLError as e:
        raise SchemaError(f"{path}: not valid YAML ({e}); fetch it again with `make schemas`") from None
    return tuple(d for d in docs if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition")


def _crds(crd_dir: Path) -> dict[tuple[str, str], tuple[Path, int, dict, str]]:
    """(apiVersion, kind) -> (file, its mtime, CRD, version) for every served version of each CRD under crd_dir."""
    out = {}
    for path in sorted(p for p in crd_dir.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()):
        st = path.stat()
        for crd in _crd_file(str(path), st.st_mtime_ns, st.st_size):
            spec = crd.get("spec", {})
            for v in spec.get("versions", ()):
                if v.get("served") and "openAPIV3Schema" in v.get("schema", {}):
                    gvk = (f"{spec['group']}/{v['name']}", spec["names"]["kind"])
                    out[gvk] = (path, st.st_mtime_ns, crd, v["name"])
    return out


def _python_pattern(pattern: str) -> str | None:
    """Go RE2 accepts inline flags anywhere ('^(?i)(abort|warn)?$'); Python only at the start."""
    for candidate in (pattern, "".join(f"(?{f})" for f in re.findall(r"\(\?([imsU]+)\)", pattern))
                      + re.sub(r"\(\?[imsU]+\)", "", pattern)):
        try:
            re.compile(candidate)
            return candidate
        except re.error:
            pass
    return None  # unchecked rather than a crash in the middle of validation


def _strict(node: dict, optional: bool) -> dict:
    """A structural-schema node as strict JSON Schema, the way the API server's field validation reads it."""
    out = {k: v for k, v in node.items() if k in _KEEP}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("anyOf", None)  # kubebuilder's [{type: integer}, {type: string}], said once as a type
        out["type"] = ["integer", "string"]
    if "pattern" in out and (pattern := _python_pattern(out.pop("pattern"))) is not None:
        out["pattern"] = pattern
    required = set(node.get("required", ()))
    if "properties" in node:
        out["properties"] = {k: _strict(v, k not in required) for k, v in node["properties"].items()}
    if isinstance(node.get("items"), dict):
        out["items"] = _strict(node["items"], False)
    if isinstance(node.get("additionalProperties"), dict):
        out["additionalProperties"] = _strict(node["additionalProperties"], False)
    elif "additionalProperties" in node:
        out["additionalProperties"] = node["additionalProperties"]
    elif (("properties" in node or node.get("type") == "object")
          and not node.get("x-kubernetes-preserve-unknown-fields")):
        # An object without properties is an empty struct: the API server prunes (strict mode: rejects) its fields.
        out["additionalProperties"] = False
    # The API server drops null optional fields instead of rejecting them, as the built-in strict schemas do.
    if (node.get("nullable") or optional) and isinstance(out.get("type"), (str, list)):
        types = [out["type"]] if isinstance(out["type"], str) else out["type"]
        out["type"] = [*types, "null"] if "null" not in types else types
    return out


def _crd_schema(crd: dict, version: str) -> dict:
    spec = crd["spec"]
    v = next(v for v in spec["versions"] if v["name"] == version)
    schema = _strict(v["schema"]["openAPIV3Schema"], False)
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {"type": "string", "const": f"{spec['group']}/{version}"}
    props["kind"] = {"type": "string", "const": spec["names"]["kind"]}
    props["metadata"] = {"$ref": _OBJECT_META}
    schema["required"] = sorted({*schema.get("required", ()), "apiVersion", "kind"})
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://eco2.invalid/crd/{spec['group']}/{version}/{spec['names']['kind']}"
    return schema


# ---------------------------------------------------------------- error wording

def _type_name(value: object) -> str:
    for t, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
                    (dict, "object"), (list, "array"), (type(None), "null")):
        if isinstance(value, t):
            return name
    return type(value).__name__


def _got(value: object) -> str:
    if isinstance(value, (dict, list)) or value is None:
        return _type_name(value)
    shown = json.dumps(value) if isinstance(value, (str, int, float, bool)) else repr(value)
    return f"{_type_name(value)} {shown[:60]}"


def _expected(types: list) -> str:
    named = [t for t in dict.fromkeys(types) if t != "null"] or ["null"]
    return " or ".join(named)


def _explain(err: ValidationError) -> Iterator[tuple[tuple, str]]:
    """(path, message) for one jsonschema error, reworded; anyOf/oneOf are narrowed to their best branch."""
    path, v, value, inst = tuple(err.absolute_path), err.validator, err.validator_value, err.instance
    if v in ("anyOf", "oneOf") and err.context:
        if all(e.validator == "type" and not e.path for e in err.context):
            types = [t for e in err.context for t in ([e.validator_value] if isinstance(e.validator_value, str)
                                                       else e.validator_value)]
            yield path, f"expected {_expected(types)}, got {_got(inst)}"
            return
        best = best_match([err])
        if best is not err:
            yield from _explain(best)
            return
    if v == "additionalProperties" and value is False and isinstance(inst, dict):
        known, patterns = err.schema.get("properties", {}), err.schema.get("patternProperties", {})
        for key in inst:
            if key not in known and not any(re.search(p, key) for p in patterns):
                yield (*path, key), f'unknown field "{key}"'
    elif v == "required" and isinstance(inst, dict):
        for key in value:
            if key not in inst:
                yield (*path, key), f'missing required field "{key}"'
    elif v == "type":
        yield path, f"expected {_expected([value] if isinstance(value, str) else value)}, got {_got(inst)}"
    elif v == "enum":
        yield path, f"must be one of {', '.join(json.dumps(x) for x in value)}; got {_got(inst)}"
    elif v == "pattern":
        yield path, f"must match {value}, got {_got(inst)}"
    elif v == "const":
        yield path, f"must be {json.dumps(value)}, got {_got(inst)}"
    else:
        yield path, " ".join(err.message.split())[:300]


# ---------------------------------------------------------------- the validator

# ---------------------------------------------------------------- $ref: a subtree valid once is valid again

_REF = jsonschema.Draft202012Validator.VALIDATORS["$ref"]
# (id of the schema a $ref resolved to, the base URI it resolved under, sha1 of the subtree's repr): found valid.
_VALID_REFS: set[tuple[int, str, bytes]] = set()
_PINNED: dict[int, Any] = {}  # those schemas, held so that an id in _VALID_REFS is never reused by another object


def _remembering_ref(validator: Any, ref: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    """`$ref`, except that a subtree already found valid against the schema the reference resolves to is not walked
    again. At 1000 services most of the objects' subtrees repeat (probes, security contexts, resources, selectors,
    whole PodSpecs but for a name); this roughly halves the schema validation of a cold render.

    Sound because whether an instance is valid against a schema depends on nothing else here: the schemas use no
    `unevaluatedProperties`/`unevaluatedItems` (which read sibling results) and no `$dynamicRef` (checked where a
    validator is built), formats are not asserted, and the key names the resolved schema object, the base URI its own
    references resolve against, and the subtree's repr (which tells 1 from 1.0 from True, and {} from []). Only valid
    results are kept; a subtree with errors is walked every time, so messages and paths are the plain validator's."""
    try:
        resolved = validator._resolver.lookup(ref)
    except Exception:  # noqa: BLE001  (unresolvable: the plain keyword raises the error jsonschema gives for it)
        yield from _REF(validator, ref, instance, schema)
        return
    target = resolved.contents
    key = (id(target), str(resolved.resolver._base_uri),
           hashlib.sha1(repr(instance).encode("utf-8", "surrogatepass")).digest())
    if key in _VALID_REFS:
        return
    errors = list(_REF(validator, ref, instance, schema))
    if not errors:
        _PINNED.setdefault(id(target), target)
        _VALID_REFS.add(key)
    yield from errors


_Remembering = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"$ref": _remembering_ref})
_CONTEXTUAL = ("unevaluatedProperties", "unevaluatedItems", "$dynamicRef", "$recursiveRef")


def _contextual(schema: Any) -> bool:
    """Whether a schema (or a schema it contains) uses a keyword whose result depends on more than one subtree."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if any(k in node for k in _CONTEXTUAL):
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


@cache
def _registry_contextual(directory: Path) -> bool:
    return _contextual(_json(directory / "_definitions.json"))


# Module-level so that every Validator in the process (one per command, one per test) shares them.
_VALIDATORS: dict[tuple, jsonschema.protocols.Validator] = {}


class Validator:
    """Validates documents for one Kubernetes version against its built-in schemas and the CRDs in crd_dir."""

    def __init__(self, kube_version: str, crd_dir: Path, hydrated: list[tuple[str, dict]] = ()):
        """`hydrated`: (source, CRD) the cluster's own components install; they win over crd_dir, which must agree."""
        self.kube_version = kube_version
        self.crd_dir = Path(crd_dir)
        self._k8s = _k8s_dir(kube_version)
        if not self.crd_dir.is_dir():
            raise SchemaError(f"CRD directory {self.crd_dir} does not exist; run `make schemas` or set ECO2_CRDS")
        self._builtin = _k8s_kinds(self._k8s)
        self._custom = _crds(self.crd_dir)
        self.mismatches: list[tuple[str, str, str]] = []  # (source of the hydrated CRD, gvk, pinned file it differs from)
        for source, crd in hydrated:
            spec = crd.get("spec") or {}
            digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
            for v in spec.get("versions", ()):
                if not (v.get("served") and "openAPIV3Schema" in (v.get("schema") or {})):
                    continue
                gvk = (f"{spec['group']}/{v['name']}", spec["names"]["kind"])
                pinned = self._custom.get(gvk)
                if pinned is not None and source != str(pinned[0]):
                    theirs = next(x for x in pinned[2]["spec"]["versions"] if x["name"] == pinned[3])
                    if theirs["schema"]["openAPIV3Schema"] != v["schema"]["openAPIV3Schema"]:
                        self.mismatches.append((source, f"{gvk[0]} {gvk[1]}", str(pinned[0])))
                self._custom[gvk] = (source, digest, crd, v["name"])

    def builtin_kinds(self) -> set[tuple[str, str]]:
        """(apiVersion, kind) the API server of this Kubernetes version serves without any CRD."""
        return set(self._builtin)

    def kinds(self) -> set[tuple[str, str]]:
        """The (apiVersion, kind) pairs this validator has a schema for."""
        return set(self._builtin) | set(self._custom)

    def _key(self, api_version: str, kind: str) -> tuple | None:
        """What identifies the schema of a kind: the Kubernetes schema directory, and for a CRD its file and
        mtime (or the hydrated CRD's content hash)."""
        gvk = (api_version, kind)
        if gvk in self._builtin:
            return (str(self._k8s), *gvk)
        if gvk in self._custom:
            return (str(self._k8s), *gvk, *map(str, self._custom[gvk][:2]))
        return None

    def _validator(self, api_version: str, kind: str):
        key = self._key(api_version, kind)
        if key is None:
            return None
        if key not in _VALIDATORS:
            gvk = (api_version, kind)
            schema = _json(self._builtin[gvk]) if gvk in self._builtin else _crd_schema(*self._custom[gvk][2:])
            plain = _contextual(schema) or _registry_contextual(self._k8s)
            cls = jsonschema.Draft202012Validator if plain else _Remembering
            _VALIDATORS[key] = cls(schema, registry=_k8s_registry(self._k8s))
        return _VALIDATORS[key]

    def prepare(self, api_version: str, kind: str) -> None:
        """Build the validator of a kind now (validate() builds it on first use otherwise)."""
        self._validator(api_version, kind)

    def _no_schema(self, api_version: str, kind: str) -> str:
        hint = f"not a built-in kind of Kubernetes {self.kube_version} and no CRD for it in {self.crd_dir}"
        elsewhere = sorted(a for a, k in self.kinds() if k == kind)
        alike = sorted({k for _, k in self.kinds() if k.lower() == kind.lower() and k != kind})
        if elsewhere:
            hint += f" ({kind} exists as {', '.join(elsewhere)})"
        elif alike:
            hint += f" (did you mean {', '.join(alike)}?)"
        return f"no schema for {api_version} {kind}; {hint}"

    def schema_key(self, doc: object) -> tuple | None:
        """What validate()'s findings for doc depend on besides doc itself: its kind's schema (`()` when validate
        refuses the document before any schema); None when they depend on every kind known (no schema for it)."""
        if not isinstance(doc, dict):
            return ()
        api_version, kind = doc.get("apiVersion"), doc.get("kind")
        if not isinstance(api_version, str) or not api_version or not isinstance(kind, str) or not kind:
            return ()
        return self._key(api_version, kind)

    def validate(self, source: str, doc_index: int, doc: object) -> list[SchemaFinding]:
        """Every problem in one parsed document; an empty list means it is valid."""
        if not isinstance(doc, dict):
            return [SchemaFinding(source, doc_index, "?", "?", "",
                                  f"expected a Kubernetes object (a mapping), got {_type_name(doc)}")]
        api_version, kind = doc.get("apiVersion"), doc.get("kind")
        meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
        name = "?" if meta.get("name") is None else str(meta["name"])
        if meta.get("namespace") is not None:
            name = f"{meta['namespace']}/{name}"
        shown_kind = kind if isinstance(kind, str) and kind else "?"

        def finding(path: tuple, message: str) -> SchemaFinding:
            return SchemaFinding(source, doc_index, shown_kind, name, format_loc(path), message)

        problems = [finding((f,), f'missing required field "{f}"') if v in (None, "")
                    else finding((f,), f"expected string, got {_got(v)}")
                    for f, v in (("apiVersion", api_version), ("kind", kind)) if not isinstance(v, str) or not v]
        if problems:
            return problems
        key = self._key(api_version, kind)
        if key is None:
            return [finding((), self._no_schema(api_version, kind))]

        # Not through the memo one object at a time: validation._file_findings keeps each file's findings, and a subtree
        # found valid is not walked again (_remembering_ref); 10,000 memo entries cost more than they saved.
        validator = self._validator(api_version, kind)
        pairs = {(format_loc(p), m) for err in validator.iter_errors(doc) for p, m in _explain(err)}
        return sorted({SchemaFinding(source, doc_index, shown_kind, name, path, message) for path, message in pairs})

    def validate_stream(self, source: str, text: str) -> list[SchemaFinding]:
        """Every problem in a multi-document YAML text. Documents are numbered by position, empty ones included."""
        findings: list[SchemaFinding] = []
        index = -1
        try:
            for index, doc in enumerate(yaml.load_all(text, Loader=_Loader)):
                if doc is not None:
                    findings += self.validate(source, index, doc)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(e, "problem", None) or str(e)
            findings.append(SchemaFinding(source, index + 1, "?", "?", "", f"not valid YAML{where}: {problem}"))
        return findings
