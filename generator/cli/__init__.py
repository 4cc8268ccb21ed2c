"""Command line: parses flags, calls the library, maps outcomes to exit codes (0 ok, 1 drift/findings, 2 bad input,
75 busy)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from ..exits import EXIT_FINDINGS, fail, guarded
from ..helm import HelmError
from ..options import Options
from ..write import replay

# The library is imported by the command that needs it, not here: a render or check that replay finds nothing to
# redo for finishes before the model, pydantic, jsonschema or the review code are loaded.


def _options(root: str, values: str | None, hydrate: bool = True, crds: str | None = None,
             charts: str | None = None, envs: tuple[str, ...] = ()) -> Options:
    root_path = Path(root).resolve()
    return Options(root=root_path, values=Path(values).resolve() if values else root_path / "values",
                   hydrate=hydrate, validate=hydrate, crds=Path(crds) if crds else None,
                   charts=Path(charts).resolve() if charts else None, envs=tuple(envs))


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


class _Commands(click.Group):
    """The commands with modules of their own, imported when one of them is run (or --help lists them)."""

    LAZY = {"diff": "diff:diff_command", "set-image": "set_image:set_image_command",
            "promote": "promote:promote_command", "envs": "promote:envs_command"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.LAZY])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.LAZY:
            module, attr = self.LAZY[name].split(":")
            return getattr(importlib.import_module(f"{__package__}.{module}"), attr)
        return super().get_command(ctx, name)


root_option = click.option("--root", default=".", show_default=True, type=click.Path(file_okay=False, exists=True),
                           help="Repository root (holds charts/, rendered/, argocd/).")
crds_option = click.option("--crds", default=None, type=click.Path(file_okay=False),
                           help="CRD schema directory [default: $ECO2_CRDS, ../shared/crds, .cache/crds (make schemas)].")
charts_option = click.option("--charts", default=None, type=click.Path(file_okay=False),
                              help="Upstream chart archives [default: $ECO2_CHARTS, ../shared/charts, .cache/charts (make charts)].")
env_option = click.option("--env", "envs", multiple=True, metavar="ENV",
                          help="Only this environment (repeatable) [default: every one in `environments:`].")
values_option = click.option("--values", "values", default=None, type=click.Path(file_okay=False),
                             help="Model directory [default: <root>/values].")


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Render the Eco² cluster model in values/ into Helm values, Argo CD Applications and manifests."""


@main.command()
@root_option
@values_option
@crds_option
@charts_option
@env_option
@click.option("--no-hydrate", is_flag=True, help="Skip `helm template` and validation (values, Applications, bootstrap only).")
@guarded
def render(root: str, values: str | None, crds: str | None, charts: str | None, envs: tuple[str, ...],
           no_hydrate: bool) -> None:
    """Write rendered/, argocd/ and the schemas, validated; all or nothing. With --env, the other environments'
    files stay exactly as they are."""
    opts = _options(root, values, hydrate=not no_hydrate, crds=crds, charts=charts, envs=envs)
    if replay.replay(opts, _stderr) is None:
        from .. import pipeline

        pipeline.render_to_disk(opts, replayed=False)


@main.command()
@root_option
@values_option
@crds_option
@charts_option
@env_option
@guarded
def check(root: str, values: str | None, crds: str | None, charts: str | None, envs: tuple[str, ...]) -> None:
    """Exit 1 with a unified diff if anything generated differs from what is committed."""
    opts = _options(root, values, crds=crds, charts=charts, envs=envs)
    if replay.replay(opts, _stderr) is not None:
        diffs = []
    else:
        from .. import pipeline

        diffs = pipeline.check(opts, replayed=False)
    if diffs:
        click.echo("".join(diffs), nl=False)
        fail([f"{len(diffs)} generated file(s) out of date: run `make render` and commit the result."], EXIT_FINDINGS)
    click.echo("rendered output is up to date", err=True)


@main.command()
@root_option
@values_option
@crds_option
@env_option
@guarded
def validate(root: str, values: str | None, crds: str | None, envs: tuple[str, ...]) -> None:
    """Validate what is on disk under rendered/ and argocd/: schemas, references, policy (exit 1 on findings)."""
    from .. import pipeline

    report = pipeline.validate_on_disk(_options(root, values, crds=crds, envs=envs))
    for line in report.lines():
        click.echo(line)
    if not report.ok:
        fail([f"{len(report.issues)} finding(s) in {report.documents} objects."], EXIT_FINDINGS)
    click.echo(f"{report.documents} objects valid", err=True)


@main.command()
@root_option
@values_option
@env_option
@guarded
def capacity(root: str, values: str | None, envs: tuple[str, ...]) -> None:
    """Per environment and node: what is allocatable, the rendered pods' requests at steady state and at peak, and
    the headroom left (read from rendered/ on disk, as the capacity check reads it)."""
    from .. import pipeline

    for env, lines in pipeline.capacity_on_disk(_options(root, values, envs=envs)).items():
        click.echo(f"{env}:")
        for line in lines:
            click.echo(f"  {line}")


@main.command("helm-lint")
@root_option
@guarded
def helm_lint(root: str) -> None:
    """helm lint --strict every local chart with each of its ci/*-values.yaml scenarios."""
    from ..helm import find_helm

    helm, count = find_helm(), 0
    for chart in sorted(Path(root, "charts").glob("*/Chart.yaml")):
        scenarios = sorted((chart.parent / "ci").glob("*-values.yaml"))
        if "type: library" in chart.read_text():
            continue
        if not scenarios:
            fail([f"{chart.parent}: no ci/*-values.yaml scenario to lint with"], EXIT_FINDINGS)
        for scenario in scenarios:
            try:
                helm.lint(chart.parent, [scenario], strict=True)
            except HelmError as exc:
                fail([f"{scenario}: {exc}"], EXIT_FINDINGS)
            count += 1
    click.echo(f"helm lint --strict: {count} chart scenario(s) clean ({helm.describe()})", err=True)
