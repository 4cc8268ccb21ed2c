"""Review of a change to the generated tree: what changes in the cluster between two git refs (or a ref and the
working tree), object by object. `python -m generator diff` (cli/diff.py) runs it; one module a step:

1. snapshot: read both sides, the YAML files under rendered/ and argocd/ at a git ref or on disk.
2. objects: collect the objects of the files that differ, keyed by environment, app, apiVersion, kind, namespace
   and name (a document both sides have alike is never parsed).
3. comparison: pair what the head adds with what it removes (renames, apiVersion moves), then for each pair
4. fields: the field diff (noise rules; similarity for renames), with secrets kept out by redaction;
5. dangers (with replacements, removed environments and restarts) and summary (model terms) from the same pairs,
   all gathered in a Report (report: the dataclasses).
6. text and markdown: the Report for a terminal, or as PR comments.

Here: the entry points callers use. Tests of internals import the module they test.
"""

from .comparison import compare
from .markdown import PART_SEPARATOR, render_markdown, render_markdown_parts
from .snapshot import DiffError, Snapshot, git_archive, read_git, read_worktree
from .text import render_text

__all__ = ["PART_SEPARATOR", "DiffError", "Snapshot", "compare", "git_archive", "read_git", "read_worktree",
           "render_markdown", "render_markdown_parts", "render_text"]
