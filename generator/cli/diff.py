"""The `diff` command: what changes in the cluster between two refs, object by object (exit 0, 3 danger, 2 usage)."""

from __future__ import annotations

import io
import sys
import tarfile
import tempfile
from pathlib import Path

import click

from .. import memo, review
from ..edit import release
from ..errors import InvalidModel
from ..helm import cache_dir as helm_cache_dir
from ..model import environments
from ..render import overview

EXIT_OK, EXIT_USAGE, EXIT_DANGER = 0, 2, 3


class _OneLineErrors(click.Command):
    """Usage errors as one line (`Error: Missing option '--base'.`), like every other error of this command."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            exc.ctx = None  # without a context click prints the message alone, not the usage block
            raise


@click.command("diff", cls=_OneLineErrors)
@click.option("--base", required=True, metavar="REF", help="Git ref to compare from (e.g. origin/main, HEAD~2).")
@click.option("--head", default=None, metavar="REF", help="Git ref to compare to [default: the working tree].")
@click.option("--root", default=".", show_default=True, type=click.Path(file_okay=False, exists=True),
              help="Repository root (holds rendered/ and argocd/).")
@click.option("--format", "fmt", type=click.Choice(["text", "markdown"]), default="text", show_default=True,
              help="Terminal text, or Markdown for PR comments (parts of under 60,000 characters each when longer).")
@click.option("--all", "show_all", is_flag=True, help="Keep noise: chart and version labels, checksum annotations.")
@click.option("--ack-danger", is_flag=True, help="Exit 0 even when a change is dangerous (it is still shown).")
@click.option("--output", type=click.Path(dir_okay=False), default=None, help="Write the report to FILE, not stdout.")
def diff_command(base: str, head: str | None, root: str, fmt: str, show_all: bool, ack_danger: bool,
                 output: str | None) -> None:
    """Show what changes in the cluster between BASE and HEAD: a model-level summary, dangers, then per object."""
    root_path = Path(root)
    try:
        old = review.read_git(root_path, base)
        new = review.read_git(root_path, head) if head else review.read_worktree(root_path)
        report = review.compare(old, new, keep_noise=show_all)
        # The parsed YAML and the models as the renders left them in the memo (a tree of 1000 services parses in
        # about 9 s otherwise); the models were checked when they were rendered, so only their schema is read here.
        # The models' positions are read lazily from their files, so the extracted refs outlive every use of them.
        with memo.using(memo.Memo(helm_cache_dir() / "memo")), tempfile.TemporaryDirectory(prefix="diff-models-") as tmp:
            models = _models(root_path, base, head, Path(tmp))
            if models is not None:
                report.summary.extend(release.unpromoted(*models))
                report.summary.extend(overview.headroom_changes(old.files, new.files, *models))
                report.summary.extend(overview.orphan_changes(old.files, new.files, *models))
    except review.DiffError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    if fmt == "markdown":
        command = f"make diff BASE={base}" if not head else f"python -m generator diff --base {base} --head {head}"
        # Too long for one comment: parts, each a comment of its own (the PR workflow posts and updates them).
        parts = review.render_markdown_parts(report, acknowledged=ack_danger, command=command)
        text = f"\n{review.PART_SEPARATOR}\n".join(parts)
    else:
        text = review.render_text(report, acknowledged=ack_danger, color=output is None)
    if output:
        Path(output).write_text(click.unstyle(text), encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
    if report.dangers and not ack_danger:
        n = len(report.dangers)
        click.echo(f"error: {n} dangerous change{'s' if n != 1 else ''} (listed above); "
                   f"re-run with --ack-danger once you mean it", err=True)
        sys.exit(EXIT_DANGER)


def _models(root: Path, base: str, head: str | None, tmp: Path) -> tuple[dict, dict] | None:
    """Every environment's model at both refs (head None: the working tree), for what the rendered tree alone
    cannot say: release fields not promoted, headroom before and after, orphans made. None when either is missing or does not
    load (the diff of the tree still stands). A ref's values/ is extracted under `tmp`."""
    try:
        models = []
        for n, ref in enumerate((base, head)):
            if ref is None:
                values = root / "values"
            else:
                data = review.git_archive(root, ref, "values")
                with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                    tar.extractall(tmp / str(n), filter="data")
                values = tmp / str(n) / "values"
            if not values.is_dir():
                return None
            models.append(environments.load(values, run_checks=False))
    except (InvalidModel, review.DiffError, tarfile.TarError, OSError):
        return None
    return models[0], models[1]
