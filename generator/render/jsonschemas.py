"""JSON Schemas generated from the pydantic models: the editor schema of values/ and each chart's values.schema.json."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from ..model.model import SECTIONS, Model
from .helmvalues import chart_values

SCHEMA_DRAFT = "https://json-schema.org/draft/2020-12/schema"
# Helm adds these top-level keys to every chart's values before validating them: `global`, and one
# key per dependency (every local chart depends on the `lib` library chart).
HELM_ADDED_KEYS = {"global": {"type": "object"}, "lib": {"type": "object"}}


def _schema(model: type[BaseModel], title: str, comment: str) -> dict[str, Any]:
    schema = model.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": SCHEMA_DRAFT, "$comment": comment, **{k: v for k, v in schema.items() if k != "title"}, "title": title}


def values_schema() -> dict[str, Any]:
    """Schema for any file of values/: each file holds some of the model's sections, so none is required here."""
    schema = _schema(Model, "Eco² cluster model (one file of values/)",
                     "Generated from generator/model/model.py by `make render`; do not edit.")
    schema.pop("required", None)
    assert set(schema["properties"]) == set(SECTIONS)
    # With `environments:`, each environment's name is its own and the base leaves cluster.environment out.
    cluster = schema["$defs"]["Cluster"]
    cluster["required"] = [r for r in cluster["required"] if r != "environment"]
    return schema


def _loosened(node: Any) -> Any:
    """An overlay's view of a schema: nothing required, any field may be null (removed), any mapping may say
    `$patch: replace` (environments.py)."""
    if isinstance(node, list):
        return [_loosened(n) for n in node]
    if not isinstance(node, dict):
        return node
    # Nothing is required, and a union is told apart by a `type` the overlay need not repeat: any member may match.
    out = {("anyOf" if k == "oneOf" else k): _loosened(v) for k, v in node.items() if k not in ("required", "discriminator")}
    if out.get("type") == "object" or "properties" in out:
        if "properties" in out:
            out["properties"] = {**{k: {"anyOf": [v, {"type": "null"}]} for k, v in out["properties"].items()},
                                 "$patch": {"const": "replace"}}
        if isinstance(out.get("additionalProperties"), dict):  # a map by name (services, nodes)
            out["additionalProperties"] = {"anyOf": [out["additionalProperties"], {"type": "null"}]}
            out["properties"] = {**out.get("properties", {}), "$patch": {"const": "replace"}}
    return out


def overlay_schema() -> dict[str, Any]:
    """Schema for values/environments/<env>.yaml: the model's sections, loosened as an overlay may write them."""
    schema = _loosened(values_schema())
    schema["properties"].pop("environments")  # the base lists them; an overlay cannot
    schema["properties"].pop("$patch")
    schema["title"] = "Eco² environment overlay (values/environments/<env>.yaml)"
    return schema


def chart_schema(chart: str) -> dict[str, Any]:
    values = chart_values()[chart]  # declared in render/chartvalues.py, or in the module of the chart's kind
    schema = _schema(values, f"Values of the {chart} chart",
                     f"Generated from {values.__module__.replace('.', '/')}.py by `make render`; do not edit.")
    schema["properties"] = {**schema["properties"], **HELM_ADDED_KEYS}
    return schema


def to_json(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
