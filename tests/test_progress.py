"""The progress line: rewritten in place on a terminal, silent in CI logs and pipes."""

from __future__ import annotations

import io

from generator.pipeline import Progress


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_line_rewritten_in_place(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    out = Tty()
    p = Progress("helm template", out)
    for done in (1, 2, 3):
        p(done, 3)
    text = out.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n") and text.count("\n") == 1
    assert text.startswith("\rhelm template 1/3 apps, ") and "\rhelm template 3/3 apps, " in text


def test_ci_and_pipes_get_nothing(monkeypatch):
    monkeypatch.setenv("CI", "true")
    out = Tty()
    Progress("x", out)(1, 1)
    assert out.getvalue() == ""
    monkeypatch.delenv("CI")
    pipe = io.StringIO()
    Progress("x", pipe)(1, 1)
    assert pipe.getvalue() == ""
