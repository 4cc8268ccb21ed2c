"""Each cross-object rule of the model: the Eco² model passes it, and a broken model fails it with its finding."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import VALUES
from generator import checks
from generator.loader import load
from test_invalid_inputs import apply

INVALID = Path(__file__).parent / "invalid"

# rule -> invalid cases (tests/invalid/<case>.yaml) that must trigger it
FAILING = {
    "unique_component_names": ["duplicate-component-name"],
    "nodes_exist": ["unknown-node"],
    "projects_and_namespaces_exist": ["unknown-project"],
    "dependencies_exist": ["unknown-dependency"],
    "secrets_exist": ["undeclared-secret", "secret-wrong-namespace"],
    "databases_have_a_server": ["database-without-server"],
    "messaging_references": ["unknown-queue"],
    "queues_have_consumers": ["queue-without-consumer"],
    "placement_fits_node": ["taint-not-tolerated", "selector-mismatch", "selector-too-wide"],
    "unique_routes": ["duplicate-path", "duplicate-node-port"],
    "canaries": ["canary-weights-fall", "canary-weight-100", "canary-without-analysis", "canary-internal"],
    "capabilities_provided": ["no-rollouts-controller", "no-storage-provider", "storage-class-twice", "unknown-storage-class"],
    "acyclic_dependencies": ["dependency-cycle"],
    "redis_memory": ["redis-maxmemory"],
    "single_database_server": ["two-postgresql"],
    "redis_databases_unique": ["redis-db-index-reused"],
}
RULES = {rule.__name__: rule for rule in checks.RULES}


def test_every_rule_has_a_failing_case():
    assert set(FAILING) == set(RULES), "add a case to tests/invalid/ and map it here for each new rule"


@pytest.fixture(scope="module")
def eco2():
    return load(VALUES, run_checks=False).model


@pytest.mark.parametrize("name", sorted(RULES))
def test_rule_passes_on_eco2(name, eco2):
    assert list(RULES[name](eco2)) == []


@pytest.mark.parametrize("name,case", [(r, c) for r, cases in sorted(FAILING.items()) for c in cases])
def test_rule_fails_on_broken_model(name, case, model_dir):
    spec = yaml.safe_load((INVALID / f"{case}.yaml").read_text(encoding="utf-8"))
    apply(spec, model_dir)
    model = load(model_dir, run_checks=False).model
    findings = list(RULES[name](model))
    assert findings, f"rule {name} did not fire on case {case}"
    expected = "\n".join(spec["expected"])
    for finding in findings:
        assert finding.message in expected, f"{finding.message!r} is not among the case's expected messages"
