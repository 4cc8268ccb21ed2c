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
