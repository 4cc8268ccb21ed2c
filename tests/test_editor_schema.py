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


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_model_file_validates_and_names_the_schema(path: Path):
    text = path.read_text()
    assert text.startswith("# yaml-language-server: $schema=../schema/values.schema.json\n")
    jsonschema.Draft202012Validator(SCHEMA).validate(yaml.safe_load(text))


def test_schema_rejects_a_misspelt_field():
    doc = yaml.safe_load((VALUES / "services.yaml").read_text())
    doc["services"]["auth"]["replica"] = doc["services"]["auth"].pop("replicas")
    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(doc))
    assert any("replica" in e.message for e in errors)
