"""The `promote` and `envs` commands: release fields between environments (exit 0 ok, 2 bad input)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .. import pipeline
from ..edit import envedit, release, setimage
from ..exits import guarded
from ..model import environments

_root = click.option("--root", default=".", show_default=True, type=click.Path(file_okay=False),
                     help="Repository root (holds values/, charts/, rendered/).")
_values = click.option("--values", "values", default=None, type=click.Path(file_okay=False),
                       help="Model directory [default: <root>/values].")


def _paths(root: str, values: str | None) -> tuple[Path, Path, str]:
    root_path = Path(root).resolve()
    values_path = Path(values).resolve() if values else root_path / "values"
    return root_path, values_path, setimage.display_dir(values_path, root_path)


def print_plan(p: envedit.Plan, rendered: tuple[str, ...]) -> None:
    for change in p.changes:
        click.echo(str(change))
    for rel in rendered:
        click.echo(f"rendered: {rel}")


def run_plan(opts: pipeline.Options, make_plan, render: bool) -> tuple:
    """Plan (under the tree's lock, so nothing edits values/ meanwhile), write, render."""
    with envedit.locked(opts):
        planned = make_plan()  # anything with the envedit.Plan as .plan
        p = planned.plan
        rendered = () if p.noop else envedit.apply(opts, p, render=render)
    return planned, p, rendered


@click.command("promote", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--from", "source", required=True, metavar="ENV", help="The environment whose release fields are copied.")
@click.option("--to", "target", required=True, metavar="ENV", help="The environment that takes them.")
@click.argument("components", nargs=-1)
@_root
@_values
@click.option("--crds", default=None, type=click.Path(file_okay=False),
              help="CRD schema directory for validating the re-render (as for `render`).")
@click.option("--no-render", is_flag=True, help="Only edit values/; run `make render` later.")
@guarded
def promote_command(source: str, target: str, components: tuple[str, ...], root: str, values: str | None,
                    crds: str | None, no_render: bool) -> None:
    """Copy the release fields (images, upstream charts) of COMPONENTS (default: all) from --from to --to, then
    re-render.

    Only release fields move (x-eco2-promotable in the schema); replicas, resources, nodes, hosts and delivery stay
    as --to writes them. Each value is edited where it changes --to alone: --to's overlay when it writes it, the
    base when every other environment's overlay does, else a new entry in --to's overlay. The whole model is
    checked on a copy first: what would fail --to's checks is refused and nothing is written.
    """
    root_path, values_path, shown = _paths(root, values)
    # Only the target is rendered: the edited copy's check proved every other environment's model unchanged.
    opts = pipeline.Options(root=root_path, values=values_path, crds=Path(crds) if crds else None, envs=(target,))
    promo, p, rendered = run_plan(
        opts, lambda: release.plan_promotion(values_path, source, target, components, shown), not no_render)
    for comp in promo.skipped:
        click.echo(f"note: {comp} is not in {target}: nothing promoted (components are added per environment)", err=True)
    if p.noop:
        click.echo(f"{target} already runs {source}'s release fields"
                   + (f" for {', '.join(components)}" if components else "") + "; nothing to do", err=True)
        return
    print_plan(p, rendered)
    if no_render:
        click.echo("not rendered (--no-render): run `make render` before committing", err=True)


@click.command("envs", context_settings={"help_option_names": ["-h", "--help"]})
@_root
@_values
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="json: {environments, drift, pending} for workflows (pending: the promotions waiting, by pair).")
@guarded
def envs_command(root: str, values: str | None, fmt: str) -> None:
    """Print the release fields that differ between environments, one line per component and field, in promotion
    order ("waste image: dev v0.6.3, staging v0.6.2, prod v0.6.1")."""
    _, values_path, shown = _paths(root, values)
    envs = environments.load(values_path, shown)
    found = release.drift(envs)
    if fmt == "json":
        click.echo(json.dumps({
            "environments": list(envs),
            "drift": [{"component": d.component, "field": d.field, "values": dict(d.values)} for d in found],
            "pending": [{"from": s, "to": t, "components": list(c)} for s, t, c in release.pending(envs)],
        }, indent=2, ensure_ascii=False))
        return
    for d in found:
        click.echo(str(d))
    if len(envs) < 2:
        click.echo("one environment: nothing to compare", err=True)
    elif not found:
        click.echo(f"no drift: {', '.join(envs)} run the same release fields", err=True)
    else:
        click.echo(f"{len(found)} release field(s) differ between {', '.join(envs)}", err=True)
