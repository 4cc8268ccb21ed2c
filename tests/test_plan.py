"""The plan: derived facts computed once from the checked model, frozen, and what the renderers read."""

from __future__ import annotations

import pytest

from generator.model.loader import load
from generator.plan import plan as plans, resolve
from generator.render import applications, helmvalues

from conftest import VALUES


@pytest.fixture(scope="module")
def loaded():
    return load(VALUES)


def test_the_plan_is_built_once_per_loaded_model(loaded) -> None:
    assert loaded.plan is loaded.plan
    assert loaded.plan.model is loaded.model
    assert loaded.plan.environment == loaded.model.cluster.environment == "prod"


def test_the_plan_cannot_be_changed_after_it_is_built(loaded) -> None:
    p = loaded.plan
    with pytest.raises(AttributeError):
        p.waves = {}  # type: ignore[misc]
    for mapping in (p.by_name, p.dependencies, p.waves, p.namespaces, p.providers, p.delivery):
        with pytest.raises(TypeError):
            mapping["x"] = None  # type: ignore[index]
    assert isinstance(p.components, tuple) and isinstance(p.api_versions, tuple)


def test_waves_follow_dependencies(loaded) -> None:
    p = loaded.plan
    for comp in p.components:
        deps = [d for d, _ in p.dependencies[comp.name]]
        assert all(p.waves[d] < p.waves[comp.name] for d in deps), comp.name
        if deps:  # not later than it must be either
            assert p.waves[comp.name] == 1 + max(p.waves[d] for d in deps)
        else:
            assert p.waves[comp.name] == 0
    assert p.waves["platform"] == 0 and p.waves["waste"] > p.waves["postgresql"]


def test_waves_of_a_chain_longer_than_the_recursion_limit() -> None:
    names = [f"c{i}" for i in range(5000)]
    deps = {n: ((names[i - 1], "declared in dependsOn"),) if i else () for i, n in enumerate(names)}
    waves = plans._waves(list(reversed(names)), deps)
    assert waves["c0"] == 0 and waves["c4999"] == 4999
    assert list(waves) == list(reversed(names))  # in the order asked


def test_waves_of_a_diamond_take_the_latest_dependency() -> None:
    deps = {"a": (), "b": (("a", ""),), "c": (("b", ""),), "d": (("a", ""), ("c", "")), "e": (("zz", ""),)}
    assert plans._waves(list(deps), deps) == {"a": 0, "b": 1, "c": 2, "d": 3, "e": 0}  # unknown names are no wave


def test_renderers_read_derived_facts_from_the_plan_only(loaded, monkeypatch) -> None:
    """Once the plan exists, rendering every component's values and Application, the projects and the root app
    never re-derives components, dependencies, waves, namespaces, providers, delivery or API versions."""
    p = plans.build(loaded.model)
    before = {c.name: (helmvalues.values(p, c), applications.application(p, c)) for c in p.components}
    projects = applications.projects(p)

    def derived_again(*_a, **_k):
        raise AssertionError("a renderer re-derived a fact the plan holds")
    for name in ("components", "by_name", "dependencies", "namespaces", "providers", "delivery", "api_versions"):
        monkeypatch.setattr(resolve, name, derived_again)
    after = {c.name: (helmvalues.values(p, c), applications.application(p, c)) for c in p.components}
    assert after == before
    assert applications.projects(p) == projects
    assert applications.root_application(p)["spec"]["sources"][1]["path"] == "rendered/prod/apps"


def test_application_takes_its_wave_and_api_versions_from_the_plan(loaded) -> None:
    p = loaded.plan
    app = applications.application(p, p.by_name["waste"])
    assert app["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == str(p.waves["waste"])
    assert app["spec"]["source"]["helm"]["apiVersions"] == list(p.api_versions)
    assert "argoproj.io/v1alpha1/Rollout" in p.api_versions  # Argo Rollouts is a component of Eco²


def test_canary_is_the_effective_delivery_policy(loaded) -> None:
    p = loaded.plan
    canaries = {c.name for c in p.components if p.canary(c)}
    assert canaries == {n for n, s in loaded.model.services.items()
                        if (s.delivery.strategy or "") == "canary"} != set()
    assert not p.canary(p.by_name["postgresql"])  # not a service: no policy at all
