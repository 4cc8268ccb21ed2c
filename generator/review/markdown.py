"""The report as a PR comment in Markdown: a collapsible section per app, cut to GitHub's comment limit, or in
parts, a comment each, that cut nothing."""

from __future__ import annotations

import re

from .report import Report
from .text import _danger_intro, _groups, _object_lines, _plans, _totals


GITHUB_COMMENT_LIMIT = 65_536


def _fence(body: list[str]) -> str:
    longest = max((len(m) for line in body for m in re.findall(r"`+", line)), default=0)
    return "`" * max(3, longest + 1)


def _md_escape(text: str) -> str:
    return re.sub(r"([\\`*_<>\[\]|])", r"\\\1", text)


def _markdown_pieces(report: Report, acknowledged: bool, title: str) -> tuple[list[str], list[tuple], list[str]]:
    """The comment's head (title, plans, summary, dangers, restarts), its sections per app as (opening, body lines
    with the changes each stands for, closing, changes), and its foot."""
    head = [title, ""] + [f"**{_md_escape(line)}**  " for line in _plans(report)] + ["", "**Summary**", ""]
    summary = report.summary or ["no change in model terms (see the objects below)"]
    head += [f"- {_md_escape(s)}" for s in summary[:200]]
    if len(summary) > 200:
        head.append(f"- … and {len(summary) - 200} more")
    if report.dangers:
        intro = _danger_intro(report, acknowledged).replace("--ack-danger", "`--ack-danger`")
        head += ["", "> [!CAUTION]", f"> **Danger: {intro}**", ">"]
        head += [f"> - {_md_escape(d.message)}" for d in report.dangers[:200]]
        if len(report.dangers) > 200:
            head.append(f"> - … and {len(report.dangers) - 200} more")
    if report.restarts:
        only = [r for r in report.restarts if r.only_pod]
        head += ["", "> [!WARNING]" if only else "> [!NOTE]", "> **Restarts at sync** (pod template changed):", ">"]
        head += [f"> - {_md_escape(r.message)}" for r in report.restarts[:200]]
        if len(report.restarts) > 200:
            head.append(f"> - … and {len(report.restarts) - 200} more")
    head.append("")
    foot = [_md_escape(_totals(report)).replace("--all", "`--all`")]

    sections = []
    for group, objs in _groups(report):
        # (line, changes it stands for): a cut is then counted exactly.
        body = []
        for obj in objs:
            fields = report.fields_of(obj)
            lines = _object_lines(obj, fields)
            body.append((lines[0], 1 if obj.op != "changed" else 0))
            per_field = iter(fields)
            for line in lines[1:]:
                starts_field = line.startswith("    ") and not line.startswith("        ")
                body.append((line, 1 if starts_field and next(per_field, None) is not None else 0))
        n = sum(c for _, c in body)
        fence = _fence([line for line, _ in body])
        opening = f"<details><summary>{_md_escape(group)} ({n} change{'s' if n != 1 else ''})</summary>\n\n{fence}diff"
        sections.append((opening, body, f"{fence}\n</details>", n))
    return head, sections, foot


def _title(report: Report) -> str:
    return f"### Rendered diff: `{report.base}` → `{report.head}`"


def render_markdown(report: Report, *, acknowledged: bool = False, limit: int = GITHUB_COMMENT_LIMIT,
                    command: str | None = None) -> str:
    """A PR comment: summary, a danger block, one collapsible section per app; cut to stay under `limit` characters."""
    command = command or f"make diff BASE={report.base}"
    if not report.objects:
        return f"{_title(report)}\n\nNo changes.\n"
    head, sections, foot = _markdown_pieces(report, acknowledged, _title(report))
    text = "\n".join(head)
    full = [f"{o}\n" + "\n".join(line for line, _ in b) + f"\n{c}\n" for o, b, c, _ in sections]
    footer = "\n".join(foot) + "\n"
    if len(text) + sum(len(s) + 1 for s in full) + len(footer) + 1 <= limit:
        return text + "\n" + "\n".join(full) + "\n" + footer

    # Too long for one comment: whole sections while they fit, then as many lines of the next as fit, then a note.
    reserve = len(footer) + 700
    out = [text]
    used = len(text) + 1
    left_changes = left_chars = left_apps = 0
    cut = False
    for (opening, body, closing, n), rendered in zip(sections, full):
        if not cut and used + len(rendered) + 1 + reserve <= limit:
            out.append(rendered)
            used += len(rendered) + 1
            continue
        if not cut:
            cut = True
            room = limit - reserve - used - len(opening) - len(closing) - 12
            kept = 0
            while kept < len(body) and room - len(body[kept][0]) - 1 >= 0:
                room -= len(body[kept][0]) + 1
                kept += 1
            if kept:
                partial = f"{opening}\n" + "\n".join([line for line, _ in body[:kept]] + ["… (cut)"]) + f"\n{closing}\n"
                out.append(partial)
                used += len(partial) + 1
                left_chars += len(rendered) - len(partial)
                left_changes += sum(c for _, c in body[kept:])
                continue
        left_apps += 1
        left_changes += n
        left_chars += len(rendered)
    note = (f"\n> [!NOTE]\n> ✂️ Cut to stay under GitHub's {limit:,}-character comment limit: about {left_chars:,} "
            f"characters ({left_changes:,} changes in {left_apps} more app{'s' if left_apps != 1 else ''} and the cut "
            f"section) are not shown. Run `{command}` to see everything.\n")
    return "\n".join(out) + note + footer


PART_SEPARATOR = "<!-- eco2-gitops-diff: next part -->"  # between the comments of a diff too long for one
PART_LIMIT = 60_000  # per comment: GitHub's 65,536 less room for the workflow's marker and heading


def render_markdown_parts(report: Report, *, acknowledged: bool = False, limit: int = PART_LIMIT,
                          command: str | None = None) -> list[str]:
    """The PR comment as parts, each under `limit` characters, nothing cut: the head and whole app sections while
    they fit, then `(part k/n)` comments with the next sections; an app too large for one comment continues in the
    next (`… continued`). The totals close the last part."""
    one = render_markdown(report, acknowledged=acknowledged, limit=limit, command=command)
    if not report.objects or "✂️ Cut to stay under" not in one:
        return [one]
    head, sections, foot = _markdown_pieces(report, acknowledged, "")
    footer = "\n".join(foot) + "\n"
    title_room = len(_title(report)) + 24  # " (part 10/12)" and the blank line
    room = limit - title_room - len(footer) - 2
    chunks: list[list[str]] = [["\n".join(head[2:])]]  # without the title and its blank line: each part has its own
    used = len(chunks[0][0]) + 1

    def add(text: str) -> None:
        nonlocal used
        if used + len(text) + 1 > room and chunks[-1]:
            chunks.append([])
            used = 0
        chunks[-1].append(text)
        used += len(text) + 1

    for opening, body, closing, _ in sections:
        whole = f"{opening}\n" + "\n".join(line for line, _ in body) + f"\n{closing}\n"
        if len(whole) + 1 <= room:
            add(whole)
            continue
        piece: list[str] = []  # an app larger than a comment: its lines over several sections, each closed
        size = len(opening) + len(closing) + 40
        for line, _ in body:
            if piece and size + len(line) + 1 > room - 100:
                add(f"{opening}\n" + "\n".join(piece + ["… continued in the next part"]) + f"\n{closing}\n")
                piece, size = [], len(opening) + len(closing) + 40
                opening = opening.replace("</summary>", " (continued)</summary>", 1) if "(continued)" not in opening else opening
            piece.append(line[: room - 200])
            size += len(piece[-1]) + 1
        add(f"{opening}\n" + "\n".join(piece) + f"\n{closing}\n")
    total = len(chunks)
    out = []
    for k, chunk in enumerate(chunks, 1):
        text = f"{_title(report)} (part {k}/{total})\n\n" + "\n".join(chunk)
        out.append(text + ("\n" + footer if k == total else ""))
    return out
