"""The code pane: the selected pair as one unified view, lines only in the vulnerable file marked `-`, lines only
in the patched file marked `+`, with the CWE, the labels' caveats and the ground truth."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static


def diff_lines(pair: Any) -> list[tuple[str, str]]:
    """(mark, line) for the whole of both files: ' ' in both, '-' only in the vulnerable one, '+' only in the
    patched one. The vulnerable file is the ' ' and '-' lines in order; the patched file the ' ' and '+' lines."""
    a, b = pair.vulnerable.code.splitlines(), pair.patched.code.splitlines()
    out: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in pair.line_opcodes():
        if tag == "equal":
            out += [(" ", line) for line in a[i1:i2]]
        else:
            out += [("-", line) for line in a[i1:i2]] + [("+", line) for line in b[j1:j2]]
    return out


class CodePane(VerticalScroll, can_focus=True):
    BORDER_TITLE = "Code"
    ALLOW_MAXIMIZE = True  # z fills the screen with it (a scrolling container is not maximised by default)
    pair_id = ""  # the pair shown
    HELP = """\
## Code
The pair under the cursor in the pairs pane, both files in one view: lines only in the vulnerable file are
marked `-` (red), lines only in the patched file `+` (green), shared lines are plain; numbers are the
vulnerable file's lines. Above the code: the pair's CWE and part, every label caveat, and the vulnerable
file's ground truth as the dataset gives it.
"""

    def compose(self) -> ComposeResult:
        yield Static("select a pair in the pairs pane", id="code-body")

    def show_pair(self, pair: Any) -> None:
        self.pair_id = pair.id
        body = Text()
        body.append(f"{pair.id}\n", style="bold")
        body.append(f"{pair.cwe} {pair.cwe_name} · {pair.part} · {pair.language} · {pair.source}\n", style="dim")
        for caveat in pair.caveats:
            body.append(f"! {caveat}\n", style="bold yellow")
        if pair.vulnerable.ground_truth:
            body.append(f"ground truth: {' '.join(pair.vulnerable.ground_truth.split())[:400]}\n", style="italic")
        body.append("\n")
        lines = diff_lines(pair)
        n = 0
        for mark, line in lines:
            if mark != "+":
                n += 1
            style = {"-": "red", "+": "green"}.get(mark, "")
            body.append(f"{n if mark != '+' else '':>4} {mark} {line}\n", style=style)
        self.query_one("#code-body", Static).update(body)
        changed = sum(1 for m, _ in lines if m != " ")
        self.border_subtitle = f"{changed} changed lines · {len(lines)} lines"
        self.scroll_home(animate=False)
