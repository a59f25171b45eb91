"""The continuation pane: greedy baseline and steered continuations of a pair at its fix site, token by token."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

CHANGED_BASE = "bold white on dark_red"
CHANGED_STEER = "bold white on dark_green"


def side_text(texts: tuple[str, ...], changed: set[int], style: str) -> Text:
    """A continuation with its changed tokens highlighted; newlines and tabs shown as ⏎ and → inside them."""
    out = Text()
    for i, t in enumerate(texts):
        if i in changed:
            out.append(t.replace("\n", "⏎\n").replace("\t", "→") or "∅", style=style)
        else:
            out.append(t)
    return out


def changed_indices(ops: Any) -> tuple[set[int], set[int]]:
    base, steer = set(), set()
    for op in ops:
        if op.tag != "equal":
            base.update(range(op.a0, op.a1))
            steer.update(range(op.b0, op.b1))
    return base, steer


class GenPane(VerticalScroll, can_focus=True):
    """The prompt's last lines, then each side's continuation with the tokens that differ highlighted."""

    ALLOW_MAXIMIZE = True  # z fills the screen with it (a scrolling container is not maximised by default)
    BORDER_TITLE = "Continuations"
    HELP = """\
## Continuations
`g` continues the selected pair's vulnerable file from the line before the first hunk its patch changes
(hunks of only comments, blank lines, `#` lines or imports are skipped), greedily, for 32 new tokens:
once without steering and once with the current steering (layer and alpha from the Steer pane; the vector
is added at every position, prompt and generated). Tokens where the two differ are highlighted (red: the
baseline's, green: the steered). The subtitle gives each side's token count, whether it stopped at the end
token, and its mean log-probability; the lines the patch actually has there are shown for comparison.
"""

    def compose(self) -> ComposeResult:
        yield Static("g: continue the selected pair at its fix site, baseline and steered", id="gen-body")

    def show_diff(self, message: Any) -> None:
        """``message``: a GenerationDiffed (its ``result`` is an engine.ops.Continuation)."""
        prompt, row = message.result.prompt, message.result.row
        base_changed, steer_changed = changed_indices(row.ops)
        body = Text()
        tail = "\n".join(prompt.text.splitlines()[-3:])
        body.append(f"{prompt.pair_id} · continues after line {prompt.line - 1}", style="bold")
        if prompt.dropped_lines:
            body.append(f" · {prompt.dropped_lines} lines dropped from the top to fit", style="yellow")
        body.append("\n")
        body.append(tail + "\n", style="dim")
        for name, side, changed, style in (("baseline", row.baseline, base_changed, CHANGED_BASE),
                                           ("steered", row.steered, steer_changed, CHANGED_STEER)):
            mean = sum(side.logprobs) / len(side.logprobs) if side.logprobs else float("nan")
            stop = " (stopped at end token)" if side.stopped_at_eos else ""
            check = "" if side.consistent else ", NOT reproduced by a teacher-forced pass"
            body.append(f"\n── {name}: {len(side.ids)} tokens{stop}, mean log-prob {mean:.2f}{check}\n",
                        style="bold")
            body.append_text(side_text(side.texts, changed, style))
            body.append("\n")
        body.append("\n── the files at this point\n", style="bold")
        body.append(f"vulnerable: {prompt.vulnerable_line.strip() or '(nothing: the patch inserts here)'}\n")
        body.append(f"patched:    {prompt.patched_line.strip() or '(nothing: the patch deletes here)'}\n")
        self.query_one("#gen-body", Static).update(body)
        first = "identical" if row.first_divergence is None else f"first difference at token {row.first_divergence}"
        self.border_subtitle = f"{first} · {', '.join(message.steers) or 'no steering'}"
