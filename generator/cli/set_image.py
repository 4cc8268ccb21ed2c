"""The `set-image` command: pin a component's image in values/ in place, then re-render (exit 0 ok, 2 bad input)."""

from __future__ import annotations

from pathlib import Path

import click

from .. import pipeline
from ..edit import release, setimage
from ..exits import guarded


@click.command("set-image", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("component")
@click.argument("ref", metavar="REF")
@click.option("--root", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Repository root (holds values/, charts/, rendered/).")
@click.option("--values", "values", default=None, type=click.Path(file_okay=False),
              help="Model directory [default: <root>/values].")
@click.option("--crds", default=None, type=click.Path(file_okay=False),
              help="CRD schema directory for validating the re-render (as for `render`).")
@click.option("--env", "env", default=None, metavar="ENV",
              help="Only this environment: the image is set in its overlay, or in the base when that changes no "
                   "other environment [default: the base, for every environment that does not pin it].")
@click.option("--no-render", is_flag=True, help="Only edit values/; run `make render` later.")
@guarded
def set_image_command(component: str, ref: str, root: str, values: str | None, crds: str | None, env: str | None,
                      no_render: bool) -> None:
    """Pin COMPONENT's image to REF and re-render.

    REF is an immutable tag (v0.6.1, 16.10-alpine, sha-abc1234), a digest (sha256:<64 hex>), or both
    as <tag>@sha256:<64 hex>. A tag sets `tag`, a digest sets `digest`; the other is kept. Only the
    bytes of that value change in values/ (comments and formatting stay); a field not written yet is
    added next to its siblings. The whole model is checked on a copy before anything is written.
    """
    root_path = Path(root).resolve()
    values_path = Path(values).resolve() if values else root_path / "values"
    if env is not None:
        _set_image_in(root_path, values_path, env, component, ref, crds, no_render)
        return
    # a new image that renders objects the cluster would reject is a validation failure: the edit is undone
    result = setimage.set_image(root_path, component, ref, values=values_path, render=not no_render,
                                crds=Path(crds) if crds else None)
    p = result.plan
    _report(p.notes, p.noop, p.field, ref, "", p.changes, result.rendered, no_render)


def _report(notes, noop: bool, field: str, ref: str, where: str, changes, rendered, no_render: bool) -> None:
    """What set-image did: notes and a no-op on stderr, each changed line and generated file on stdout."""
    for note in notes:
        click.echo(f"note: {note}", err=True)
    if noop:
        current = ", ".join(f"{field}.{k} is already {v}" for k, v in setimage.Ref.parse(ref).fields().items())
        click.echo(f"{where}{current}; nothing to do", err=True)
        return
    for change in changes:
        click.echo(str(change))
    for rel in rendered:
        click.echo(f"rendered: {rel}")
    if no_render:
        click.echo("not rendered (--no-render): run `make render` before committing", err=True)


def _set_image_in(root: Path, values: Path, env: str, component: str, ref: str, crds: str | None, no_render: bool) -> None:
    from .promote import run_plan

    opts = pipeline.Options(root=root, values=values, crds=Path(crds) if crds else None, envs=(env,))
    shown = setimage.display_dir(values, root)
    planned, p, rendered = run_plan(opts, lambda: release.plan_set_image(values, env, component, ref, shown),
                                    not no_render)
    _report(planned.notes, p.noop, planned.field, ref, f"in {env}, ", p.changes, rendered, no_render)
