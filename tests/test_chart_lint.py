"""helm lint --strict of every local chart with each of its ci/*-values.yaml scenarios (the real helm)."""

from __future__ import annotations

import pytest

from conftest import REPO, VALUES
from generator.model.loader import load

CHARTS = sorted(p.parent for p in REPO.glob("charts/*/Chart.yaml") if "type: library" not in p.read_text())
KUBE = load(VALUES).model.cluster.kubernetes_version
SCENARIOS = [(chart, s) for chart in CHARTS for s in sorted((chart / "ci").glob("*-values.yaml"))]


def test_every_chart_has_scenarios():
    assert {c.name for c in CHARTS} == {"api", "worker", "rabbitmq", "postgresql", "redis", "platform"}
    assert all(any(c == chart for c, _ in SCENARIOS) for chart in CHARTS)


@pytest.mark.parametrize("chart, scenario", SCENARIOS, ids=[f"{c.name}/{s.stem}" for c, s in SCENARIOS])
def test_lint_strict_is_clean(helm, chart, scenario):
    out = helm.lint(chart, [scenario], strict=True, kube_version=KUBE)
    assert "1 chart(s) linted, 0 chart(s) failed" in out
    assert "[WARNING]" not in out and "[ERROR]" not in out


def test_templates_use_nothing_unstable_or_cluster_dependent():
    """No random, time, generated certificates, cluster lookups or capability branches: the output is byte-stable
    and equals what Argo CD renders without a cluster."""
    import re

    banned = re.compile(r"\b(rand[A-Za-z]*|now|genCA|genSelfSignedCert|genPrivateKey|lookup|uuidv4)\b|\.Capabilities")
    found = [f"{t.relative_to(REPO)}:{n}: {line.strip()}"
             for t in sorted(REPO.glob("charts/*/templates/*")) for n, line in enumerate(t.read_text().splitlines(), 1)
             if banned.search(line.split("{{/*")[0]) and "{{" in line]
    assert found == []
