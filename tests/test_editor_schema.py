"""The editor schema (schema/values.schema.json) accepts every model file and rejects what the loader rejects."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import REPO, VALUES

SCHEMA = json.loads((REPO / "schema" / "values.schema.json").read_text())
FILES = sorted(VALUES.glob("*.yaml"))


OVERLAY_SCHEMA = json.loads((REPO / "schema" / "overlay.schema.json").read_text())
OVERLAYS = sorted((VALUES / "environments").glob("*.yaml"))


@pytest.mark.parametrize("path", FILES + OVERLAYS, ids=[p.relative_to(VALUES).as_posix() for p in FILES + OVERLAYS])
def test_model_file_validates_and_names_the_schema(path: Path):
    """Base files name values.schema.json, overlays (values/environments/) overlay.schema.json, and pass it."""
    name, schema = ("../../schema/overlay.schema.json", OVERLAY_SCHEMA) if path in OVERLAYS else ("../schema/values.schema.json", SCHEMA)
    text = path.read_text()
    assert text.startswith(f"# yaml-language-server: $schema={name}\n")
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(text))


def test_schema_rejects_a_misspelt_field():
    """The misspelt key itself is refused (additionalProperties: false), not only the correct key it leaves missing."""
    doc = yaml.safe_load((VALUES / "services.yaml").read_text())
    auth = doc["services"]["auth"]
    auth["replica"] = auth.pop("replicas")

    def errors() -> list[tuple[str, list, str]]:
        return sorted((e.validator, list(e.absolute_path), e.message)
                      for e in jsonschema.Draft202012Validator(SCHEMA).iter_errors(doc))

    assert errors() == [("additionalProperties", ["services", "auth"], "Additional properties are not allowed ('replica' was unexpected)"),
                        ("required", ["services", "auth"], "'replicas' is a required property")]
    auth["replicas"] = auth["replica"]  # the right key beside the misspelt one: the stray key alone is the error
    assert errors() == [("additionalProperties", ["services", "auth"], "Additional properties are not allowed ('replica' was unexpected)")]


def test_overlay_schema_takes_null_and_patch_and_refuses_what_the_loader_refuses():
    ok = {"services": {"waste": {"hpa": None, "delivery": {"$patch": "replace", "strategy": "rolling"}}},
          "nodes": {"$patch": "replace"}}
    jsonschema.Draft202012Validator(OVERLAY_SCHEMA).validate(ok)
    bad = [{"services": {"waste": {"replica": 1}}},  # misspelt field
           {"environments": ["dev"]},  # the base's alone
           {"nodes": {"$patch": "merge"}},  # replace is the only directive
           {"services": {"waste": {"replicas": "two"}}}]
    for doc in bad:
        assert list(jsonschema.Draft202012Validator(OVERLAY_SCHEMA).iter_errors(doc)), doc
