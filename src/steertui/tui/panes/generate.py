"""The continuation pane: greedy baseline and steered continuations of a pair at its fix site, token by token."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from steertui.tui.panes.lens import delta_style, token_label

CHANGED_BASE = "bold white on dark_red"
CHANGED_STEER = "bold white on dark_green"
CURSOR = "reverse underline"  # the token under the cursor (cursor_rows finds its rows by it)


VIEWS = ("diff", "delta")  # what `w` switches: the tokens that differ, or every token's log-prob change


SCROLL_TRIES = 5  # refreshes the scroll to the token cursor waits at most for the new text's layout


def side_text(texts: tuple[str, ...], changed: set[int], style: str, cursor: int | None = None,
              deltas: tuple[float, ...] | None = None) -> Text:
    """A continuation with its changed tokens highlighted (or, given ``deltas``, every token coloured by its
    log-prob change, steered run − baseline run) and the token at ``cursor`` underlined and reversed; newlines
    and tabs shown as ⏎ and → inside the marked tokens."""
    out = Text()
    for i, t in enumerate(texts):
        marked = deltas is not None or i in changed or i == cursor
        shown = (t.replace("\n", "⏎\n").replace("\t", "→") or "∅") if marked else t
        look = delta_style(deltas[i]) if deltas is not None else (style if i in changed else "")
        if i == cursor:
            look = f"{look} {CURSOR}".strip()
        out.append(shown, style=look)
    return out


def lens_cells(deltas: tuple[float, ...]) -> Text:
    """One cell per layer: the change of a token's lens log-prob, steered run − baseline run, coloured as the
    lens grid's delta view (green up, red down, full colour at ±2 nats)."""
    out = Text()
    for d in deltas:
        out.append(f"{d:+5.1f}", style=delta_style(d))
        out.append(" ")
    return out


def step_detail(steps: Any, j: int) -> Text:
    """Step ``j`` of a continuation's two sides (an engine.gendiff.ContinuationLens): each side's token, its
    log-prob and rank in the baseline run → the steered run over that side's own prefix, the top tokens of the
    side's own run, and per layer the change of the token's lens log-prob (steered run − baseline run)."""
    n = max(len(steps.baseline), len(steps.steered))
    b = steps.baseline[j] if j < len(steps.baseline) else None
    s = steps.steered[j] if j < len(steps.steered) else None
    same = b is not None and s is not None and b.id == s.id
    body = Text()
    body.append(f"token {j + 1} of {n} · {'the same on both sides' if same else 'the sides differ'} · "
                "baseline run → steered run", style="bold")
    for name, st, own in (("baseline", b, 0), ("steered", s, 1)):
        body.append(f"\n{name:<9}", style="bold")
        if st is None:
            body.append("(ended before this token)", style="dim")
            continue
        body.append(token_label(st.text, 8).ljust(8), style=CHANGED_STEER if own else CHANGED_BASE)
        body.append(f" log p {st.logprob[0]:.2f} → {st.logprob[1]:.2f}  rank {st.rank[0]} → {st.rank[1]}  top ")
        body.append(" ".join(f"{token_label(t.text, 6)} {t.prob:.2f}".replace(" 0.", " .") for t in st.top[own]))
        body.append("\n  lens Δ ", style="dim")
        body.append_text(lens_cells(st.lens_delta))
    return body


def changed_indices(ops: Any) -> tuple[set[int], set[int]]:
    base, steer = set(), set()
    for op in ops:
        if op.tag != "equal":
            base.update(range(op.a0, op.a1))
            steer.update(range(op.b0, op.b1))
    return base, steer


class GenPane(VerticalScroll, can_focus=True):
    """The prompt's last lines, then each side's continuation with the tokens that differ highlighted; a token
    cursor (←/→) and, docked under them, what both runs make of the token under it."""

    ALLOW_MAXIMIZE = True  # z fills the screen with it (a scrolling container is not maximised by default)
    BORDER_TITLE = "Continuations"
    # not shown in the footer: the footer would be rebuilt whenever a job focuses this pane
    BINDINGS = [
        Binding("left", "step(-1)", "Token ←", show=False),
        Binding("right", "step(1)", "Token →", show=False),
        Binding("home", "step_to('first')", "First token", show=False),
        Binding("end", "step_to('last')", "Last token", show=False),
        Binding("right_square_bracket", "step_to('next')", "Next difference", show=False),
        Binding("left_square_bracket", "step_to('previous')", "Previous difference", show=False),
        Binding("w", "switch_view", "View", show=False,
                tooltip="the tokens that differ, or every token coloured by how steering moved its log-prob"),
    ]
    HELP = """\
## Continuations
`g` continues the selected pair's vulnerable file from the line before the first hunk its patch changes
(hunks of only comments, blank lines, `#` lines or imports are skipped), greedily, for 32 new tokens:
once without steering and once with the current steering (layer and alpha from the Steer pane; the vector
is added at every position, prompt and generated). Tokens where the two differ are highlighted (red: the
baseline's, green: the steered). The subtitle gives each side's token count, whether it stopped at the end
token, and its mean log-probability; the lines the patch actually has there are shown for comparison, with
which of the two the model would rather write there (as `steertui eval --fix-site` scores it: log p(patched) −
log p(vulnerable) of the two versions up to the next line both files share, teacher-forced, in nats), without
and with the steering, and the change (green: towards the fix).

`←` / `→` move a cursor over the tokens (`Home` / `End`: the first and last; `]` / `[`: the next and
previous token where the sides differ), starting at the first difference. `w` colours every token instead by
how the steering moved its log-probability (steered run − baseline run over that side's prefix; green up,
red down, full colour at ±2 nats): on the steered side, what the steering made likely; on the baseline side,
what it made unlikely. Under the continuations, for the token under the cursor on each side: its log-probability and
rank in the baseline run → the steered run, both over that side's own prefix (what the unsteered model would
have given the steered token, and the reverse), the top 3 of the side's own run, and the logit lens of the
token at every layer as the change steering made there (steered run − baseline run, in nats; green up, red
down). It shows at which layer the steering made a token win. These readings are not recorded in the
session: they follow from its recorded tokens and steering. An opened session shows its last continuation
as recorded (its tokens are not generated again; their reading is computed from them).
"""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.result: Any = None  # the engine.ops.Continuation shown
        self.steers: list[str] = []
        self.cursor = 0
        self.stale: str | None = None  # what changed since it was computed
        self.recorded = False  # an opened session's continuation, as recorded
        self.view = VIEWS[0]
        self.body = Text()  # the continuations as last rendered (the cursor is scrolled into view in them)
        self.detail = Text()  # the docked reading of the token under the cursor, as last rendered

    def compose(self) -> ComposeResult:
        yield Static("g: continue the selected pair at its fix site, baseline and steered", id="gen-body")
        yield Static("", id="gen-step")

    @property
    def length(self) -> int:
        row = self.result.row
        return max(len(row.baseline.ids), len(row.steered.ids))

    def show_diff(self, message: Any) -> None:
        """``message``: a GenerationDiffed (its ``result`` is an engine.ops.Continuation). The cursor starts at the
        first difference."""
        self.result, self.steers, self.stale = message.result, list(message.steers), None
        self.recorded = message.recorded
        self.cursor = message.result.row.first_divergence or 0
        self.render_diff()

    def action_step(self, delta: int) -> None:
        if self.result is not None and self.length:
            self.cursor = min(max(self.cursor + delta, 0), self.length - 1)
            self.render_diff()

    def action_step_to(self, where: str) -> None:
        if self.result is None or not self.length:
            return
        if where in ("next", "previous"):
            base, steer = changed_indices(self.result.row.ops)
            after = where == "next"
            found = sorted((j for j in base | steer if (j > self.cursor if after else j < self.cursor)),
                           reverse=not after)
            self.cursor = found[0] if found else self.cursor
        else:
            self.cursor = 0 if where == "first" else self.length - 1
        self.render_diff()

    def action_switch_view(self) -> None:
        self.view = VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)]
        if self.result is not None:
            self.render_diff()

    def render_diff(self) -> None:
        prompt, row, j = self.result.prompt, self.result.row, self.cursor
        base_changed, steer_changed = changed_indices(row.ops)
        body = Text()
        body.append(f"{prompt.pair_id} · continues after line {prompt.line - 1}", style="bold")
        if prompt.dropped_lines:
            body.append(f" · {prompt.dropped_lines} lines dropped from the top to fit", style="yellow")
        body.append("\n")
        steps = self.result.steps
        for name, side, changed, style, read in (
                ("baseline", row.baseline, base_changed, CHANGED_BASE, steps.baseline),
                ("steered", row.steered, steer_changed, CHANGED_STEER, steps.steered)):
            mean = sum(side.logprobs) / len(side.logprobs) if side.logprobs else float("nan")
            stop = " (stopped at end token)" if side.stopped_at_eos else ""
            check = "" if side.consistent else ", NOT reproduced by a teacher-forced pass"
            body.append(f"── {name}: {len(side.ids)} tokens{stop}, mean log-prob {mean:.2f}{check}\n", style="bold")
            deltas = tuple(st.delta for st in read) if self.view == "delta" else None
            body.append_text(side_text(side.texts, changed, style, cursor=j, deltas=deltas))
            body.append("\n")
        body.append("\n── the prompt ends with\n", style="bold")
        body.append("\n".join(prompt.text.splitlines()[-3:]) + "\n", style="dim")
        body.append("\n── the files at this point\n", style="bold")
        body.append(f"vulnerable: {prompt.vulnerable_line.strip() or '(nothing: the patch inserts here)'}\n")
        body.append(f"patched:    {prompt.patched_line.strip() or '(nothing: the patch deletes here)'}\n")
        fix = self.result.fix
        if fix is not None:  # which of the two the model would rather write there (engine.fixsite)
            body.append(f"log p patched − vulnerable: {fix.baseline_preference:+.2f} → steered "
                        f"{fix.steered_preference:+.2f} ")
            body.append(f"({fix.shift:+.2f} nats)\n",
                        style="green" if fix.shift > 0 else "red" if fix.shift < 0 else "")
        self.body = body
        self.query_one("#gen-body", Static).update(body)
        step = self.query_one("#gen-step", Static)
        step.display = bool(self.length)
        detail = self.detail = step_detail(self.result.steps, j) if self.length else Text()
        step.update(detail)
        self.show_subtitle()
        self.call_after_refresh(self.scroll_to_cursor, body, detail, SCROLL_TRIES)

    def cursor_rows(self, body: Text) -> tuple[int, int] | None:
        """The first and last row of ``body``, as wrapped at the pane's width, that hold the token cursor (on
        either side); None before the pane has a width or without a cursor."""
        width = self.scrollable_content_region.width
        if width <= 0:
            return None
        rows = [y for y, line in enumerate(body.wrap(self.app.console, width))
                if any(CURSOR in str(span.style) for span in line.spans)]
        return (rows[0], rows[-1]) if rows else None

    def docked_rows(self, detail: Text) -> int:
        """The rows the docked reading ``detail`` covers at the bottom of the pane: its lines as wrapped inside its
        padding, at most half the pane (its CSS max-height). Counted from the text, not from its last layout, so
        that the scroll does not depend on whether the reading was laid out yet."""
        width, height = self.scrollable_content_region.width, self.scrollable_content_region.height
        if not detail.plain or width <= 2:
            return 0
        return min(len(detail.wrap(self.app.console, width - 2)), height // 2)

    def scroll_to_cursor(self, body: Text, detail: Text, tries: int = 1) -> None:
        """Scroll the continuations so that the token cursor's rows are above the docked reading of it. A scroll
        beyond the pane's height as last laid out would be cut short (Textual clamps it to the old height): it
        waits for the next refresh instead, ``tries`` times at most."""
        if body is not self.body:  # a newer render scrolls for itself
            return
        rows = self.cursor_rows(body)
        if rows is None:
            return
        first, last = rows
        top, visible = self.scroll_y, self.scrollable_content_region.height - self.docked_rows(detail)
        if visible <= 0 or (first >= top and last < top + visible):
            return
        # the least scroll that shows both sides' cursor rows; where they do not fit together, the first
        y = max(0, first if first < top or last - first >= visible else last - visible + 1)
        if y > self.max_scroll_y and tries > 1:
            self.call_after_refresh(self.scroll_to_cursor, body, detail, tries - 1)
            return
        self.scroll_to(y=y, animate=False, immediate=True)

    def mark_stale(self, what: str) -> None:
        """The steering or the pair changed since the continuations were made (``what``: which)."""
        self.stale = what
        self.show_subtitle()

    def show_subtitle(self) -> None:
        if self.stale is not None:
            self.border_subtitle = f"stale: the {self.stale} changed · g re-runs"
            return
        if self.recorded:
            self.border_subtitle = "as recorded in the session (not re-run) · ←/→ tokens · g re-runs"
            return
        first = self.result.row.first_divergence
        first = "identical" if first is None else f"first difference at token {first + 1}"
        view = "w: log-prob change" if self.view == "diff" else "log-prob change, steered − baseline run · w: diff"
        self.border_subtitle = f"{first} · {', '.join(self.steers) or 'no steering'} · ←/→ [ ] tokens · {view}"
