"""JSON Schemas generated from the pydantic models: the editor schema of values/ and each chart's values.schema.json."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from .chartvalues import CHARTS
from .model import SECTIONS, Model

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
                     "Generated from generator/model.py by `make render`; do not edit.")
    schema.pop("required", None)
    assert set(schema["properties"]) == set(SECTIONS)
    return schema


def chart_schema(chart: str) -> dict[str, Any]:
    schema = _schema(CHARTS[chart], f"Values of the {chart} chart",
                     "Generated from generator/chartvalues.py by `make render`; do not edit.")
    schema["properties"] = {**schema["properties"], **HELM_ADDED_KEYS}
    return schema


def to_json(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
