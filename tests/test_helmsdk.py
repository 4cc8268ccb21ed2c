"""Helm in process (generator/hydrate/helmsdk.py) gives the objects the helm CLI gives, and is used only where it can.

Every committed manifest of a local chart is rendered in process by `make render`, and
tests/test_hydration.py compares each with `helm template` of its Application run by the CLI: that is the
oracle for every Eco² app. Here: each chart's ci/ scenarios both ways, each rule that sends a call to the CLI
with a chart that breaks it, and the CLI's own error when the values are wrong."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO
from generator.helm import HelmError, find_helm
from generator.hydrate import helmsdk, hydrate

pytestmark = pytest.mark.skipif(not helmsdk.available(), reason="helm-python-sdk is a dependency: `make test` has it")

SCENARIOS = sorted((REPO / "charts").glob("*/ci/*-values.yaml"))


def call(chart: Path, *value_files: Path, **kw) -> hydrate.Invocation:
    return hydrate.Invocation(chart.name, chart, chart.name, "eco2", tuple(value_files), "1.28", ("v1",), **kw,
                              value_names=tuple(f.name for f in value_files))


def cli(inv: hydrate.Invocation) -> hydrate.Output:
    return hydrate.normalize(find_helm().template(inv.chart, inv.release, inv.namespace, list(inv.value_files),
                                                  inv.kube_version, list(inv.api_versions), inv.include_crds))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_each_scenario_gives_the_clis_objects(scenario: Path) -> None:
    inv = call(scenario.parents[1], scenario)
    assert hydrate.in_process(inv)
    session = helmsdk.Session(1)
    try:
        in_process = hydrate.normalize(session.template(inv.chart, inv.release, inv.namespace, scenario))
    finally:
        session.close()
    assert in_process.docs == cli(inv).docs and in_process.docs


@pytest.fixture
def chart(tmp_path: Path) -> Path:
    """A copy of the api chart, with its library beside it as in the repository."""
    shutil.copytree(REPO / "charts" / "lib", tmp_path / "lib")
    return Path(shutil.copytree(REPO / "charts" / "api", tmp_path / "api", symlinks=True))


def _append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


@pytest.mark.parametrize("change", [
    lambda c: (c / "crds").mkdir() or (c / "crds" / "x.yaml").write_text("kind: CustomResourceDefinition\n"),
    lambda c: (c / "templates" / "cap.yaml").write_text("{{ if .Capabilities.APIVersions.Has \"x/v1\" }}{{ end }}\n"),
    lambda c: (c / "templates" / "hook.yaml").write_text("metadata:\n  annotations:\n    helm.sh/hook: test\n"),
    lambda c: _append(c / "Chart.yaml", "kubeVersion: '>=1.28.0'\n"),
    lambda c: (c / "templates" / "random.yaml").write_text("{{ randAlphaNum 8 }}\n"),
    lambda c: (c / "charts" / "lib" / "templates" / "cap.tpl").write_text("{{ .Capabilities.KubeVersion }}\n"),
], ids=["crds", "capabilities", "hook", "kubeVersion", "may flap", "in a subchart"])
def test_a_chart_the_sdk_may_render_otherwise_goes_to_the_cli(change, chart: Path) -> None:
    values = REPO / "charts" / "api" / "ci" / "rolling-values.yaml"
    assert hydrate.in_process(call(chart, values))
    change(chart)
    assert not hydrate.in_process(call(chart, values))


def test_two_value_files_an_archive_or_the_sdk_turned_off_go_to_the_cli(chart: Path, monkeypatch) -> None:
    values = REPO / "charts" / "api" / "ci" / "rolling-values.yaml"
    assert not hydrate.in_process(call(chart, values, values))
    archive = next((REPO.parent / "shared" / "charts").glob("*.tgz"), None) or pytest.skip("no chart archive")
    assert not hydrate.in_process(call(archive, values))
    monkeypatch.setenv("ECO2_HELM_SDK", "0")
    assert not helmsdk.available() and not hydrate.in_process(call(chart, values))
    monkeypatch.delenv("ECO2_HELM_SDK")
    assert helmsdk.available()


def test_a_run_renders_in_process_without_the_cli(chart: Path, tmp_path: Path, monkeypatch) -> None:
    helm = find_helm()
    values = REPO / "charts" / "api" / "ci" / "rolling-values.yaml"
    monkeypatch.setattr(type(helm), "template", lambda *a, **k: pytest.fail("the CLI ran"))
    result = hydrate.hydrate([call(chart, values)], tmp_path, helm, tmp_path / "cache")
    assert result.in_process == 1 and result.outputs["api"].docs and result.fell_back == ()


def test_the_notes_are_left_out_as_the_cli_leaves_them_out(chart: Path) -> None:
    (chart / "templates" / "NOTES.txt").write_text("Thanks for installing {{ .Release.Name }}.\n")
    values = REPO / "charts" / "api" / "ci" / "rolling-values.yaml"
    session = helmsdk.Session(1)
    try:
        text = session.template(chart, "api", "eco2", values)
    finally:
        session.close()
    assert hydrate.normalize(text).docs == cli(call(chart, values)).docs


def test_what_renders_an_app_is_part_of_its_cache_key(chart: Path, monkeypatch) -> None:
    values = REPO / "charts" / "api" / "ci" / "rolling-values.yaml"
    archive = next((REPO.parent / "shared" / "charts").glob("*.tgz"), None) or pytest.skip("no chart archive")
    apps = [call(chart, values), call(archive, values)]
    on = hydrate.digests(apps, REPO, find_helm())
    monkeypatch.setenv("ECO2_HELM_SDK", "0")
    off = hydrate.digests(apps, REPO, find_helm())
    assert on[chart.name] != off[chart.name] and on[archive.name] == off[archive.name]


def test_wrong_values_fail_with_the_clis_message(chart: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text((REPO / "charts" / "api" / "ci" / "rolling-values.yaml").read_text() + "unknownField: 1\n")
    inv = call(chart, wrong)
    assert hydrate.in_process(inv)
    with pytest.raises(HelmError) as cli_error:
        cli(inv)
    with pytest.raises(HelmError) as run_error:
        hydrate.hydrate([inv], tmp_path, find_helm(), tmp_path / "cache")
    assert str(run_error.value) == str(cli_error.value) and "unknownField" in str(cli_error.value)


def test_a_release_name_helm_refuses_fails_with_the_clis_message(chart: Path, tmp_path: Path) -> None:
    values = REPO / "charts" / "api" / "ci" / "rolling-values.yaml"
    inv = hydrate.Invocation("bad", chart, "Not_A_Release", "eco2", (values,), "1.28", (), value_names=("v.yaml",))
    with pytest.raises(HelmError) as cli_error:
        cli(inv)
    with pytest.raises(HelmError) as run_error:
        hydrate.hydrate([inv], tmp_path, find_helm(), tmp_path / "cache")
    assert str(run_error.value) == str(cli_error.value)


@pytest.mark.parametrize("worker", ["import sys; sys.exit(3)", "import sys; sys.stdin.readline(); print('{')"],
                         ids=["a helper that cannot start", "a helper that answers nonsense"])
def test_a_helper_that_fails_leaves_the_call_to_the_cli(worker: str, chart: Path, tmp_path: Path, monkeypatch) -> None:
    values = REPO / "charts" / "api" / "ci" / "rolling-values.yaml"
    monkeypatch.setattr(helmsdk, "WORKER", worker)
    result = hydrate.hydrate([call(chart, values)], tmp_path, find_helm(), tmp_path / "cache")
    assert result.outputs["api"].docs == cli(call(chart, values)).docs
    assert [name.split()[0] for name in result.fell_back] == ["api"]


def test_a_helper_that_cannot_be_started_leaves_the_call_to_the_cli(chart: Path, tmp_path: Path, monkeypatch) -> None:
    values = REPO / "charts" / "api" / "ci" / "rolling-values.yaml"
    monkeypatch.setattr(helmsdk, "_command", lambda: [str(tmp_path / "no-such-python")])
    result = hydrate.hydrate([call(chart, values)], tmp_path, find_helm(), tmp_path / "cache")
    assert result.outputs["api"].docs == cli(call(chart, values)).docs
    assert [name.split()[0] for name in result.fell_back] == ["api"]


def test_the_generators_process_never_loads_the_library(chart: Path, tmp_path: Path) -> None:
    values = REPO / "charts" / "api" / "ci" / "rolling-values.yaml"
    code = ("import sys; from pathlib import Path; from generator import helm; from generator.hydrate import hydrate; "
            f"inv = hydrate.Invocation('api', Path({str(chart)!r}), 'api', 'eco2', (Path({str(values)!r}),), "
            "value_names=('v.yaml',)); "
            f"r = hydrate.hydrate([inv], Path({str(tmp_path)!r}), helm.find_helm(), Path({str(tmp_path / 'c')!r})); "
            "print(r.in_process, 'helm_python' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.stdout.split() == ["1", "False"], out.stderr
