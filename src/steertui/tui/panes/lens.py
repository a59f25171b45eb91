"""The logit-lens pane: a grid of layers × the verdict prompt's last positions, baseline, steered or their delta.

Each cell is the layer's top next-token guess at that position, its background shaded by the probability; the
delta view shades by the change of the target token's log-probability (steered − baseline) on a diverging scale.
The cell under the cursor is spelled out in the detail line below the grid: its top tokens on both sides and the
target's probability and rank on both sides. The last layer's lens must equal the model's real softmax: that
check stays in the pane's subtitle.
"""

from __future__ import annotations

import math
from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, Static

VIEWS = ("baseline", "steered", "delta")
CELL = 4  # characters of a cell's token; one space follows it
LAYER_COL = 3
DELTA_SCALE = 2.0  # nats of |Δ log p(target)| shown at full colour
DEFAULT_TARGET = " Yes"


def token_label(text: str, width: int = CELL) -> str:
    """A token as it fits a cell: newlines and tabs made visible, a leading space as ·, cut to ``width``."""
    shown = text.replace("\n", "↵").replace("\t", "→").replace("\r", "␍")
    if shown.startswith(" "):
        shown = "·" + shown[1:]
    return shown[:width] if len(shown) <= width else shown[: width - 1] + "…"


def prob_style(p: float) -> str:
    """Background from dark (p = 0) to bright blue (p = 1); text stays readable on both."""
    p = min(max(p, 0.0), 1.0)
    r, g, b = (int(24 + (40 - 24) * p), int(24 + (110 - 24) * p), int(32 + (220 - 32) * p))
    return f"{'black' if p > 0.75 else 'white'} on rgb({r},{g},{b})"


def delta_style(d: float, scale: float = DELTA_SCALE) -> str:
    """Diverging: red where steering lowers the value (the target's log-probability), green where it raises it,
    full colour at ±``scale``."""
    x = min(abs(d) / scale, 1.0) if math.isfinite(d) and scale > 0 else 1.0
    base = (24, 24, 32)
    top = (200, 40, 40) if d < 0 else (30, 170, 70)
    r, g, b = (int(base[k] + (top[k] - base[k]) * x) for k in range(3))
    return f"white on rgb({r},{g},{b})"


def log_delta(b: float, s: float) -> float:
    """log p_steered − log p_baseline (probabilities of 0 stay finite at float32's smallest normal)."""
    tiny = 1.2e-38
    return math.log(max(s, tiny)) - math.log(max(b, tiny))


class LensGrid(DataTable):
    """The grid itself: one row per layer, one column per position (the last ones that fit)."""

    HELP = """\
## Lens
The logit lens of the selected pair's verdict prompt, from ONE forward per side: each layer's hidden state at
each of the prompt's last positions, put through the model's final norm and unembedding. A cell is that
layer's top guess for the next token there, shaded by its probability. `w` switches the view: **baseline**,
**steered**, or **delta** — the change of the target token's log-probability, steered − baseline (green up,
red down, full colour at ±2 nats). `T` changes the target (one token, default ` Yes`). The line under the grid
spells out the cell under the cursor. The subtitle holds the check that makes the lens trustworthy: at the
last layer it must equal the model's real next-token distribution (max |Δp|).
"""

    BINDINGS = [
        Binding("w", "cycle_view", "View", tooltip="baseline, steered, delta of the target's log-probability"),
        Binding("T", "edit_target", "Target", tooltip="the token whose probability the delta view follows"),
    ]

    class TargetChanged(Message):
        """The user asked for another target token (the app re-runs the lens with it)."""

        def __init__(self, target: str) -> None:
            super().__init__()
            self.target = target

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="cell", cell_padding=0, zebra_stripes=False, **kwargs)
        self.view = VIEWS[0]
        self.lens: Any = None
        self.shown: list[int] = []  # indices into the result's positions, left to right

    def action_cycle_view(self) -> None:
        self.view = VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)]
        self.render_grid()
        pane = self.parent
        if isinstance(pane, LensPane):
            pane.show_subtitle()

    def action_edit_target(self) -> None:
        pane = self.parent
        if isinstance(pane, LensPane):
            pane.ask_target()

    # ---- data -----------------------------------------------------------------------------------------
    def sides(self) -> tuple[Any, Any, bool]:
        diff = getattr(self.lens, "deltas", None) is not None
        return (self.lens.baseline, self.lens.steered, True) if diff else (self.lens, self.lens, False)

    def fitting(self) -> int:
        width = self.scrollable_content_region.width or self.size.width or 80
        return max(1, (width - LAYER_COL) // (CELL + 1))

    def render_grid(self) -> None:
        if self.lens is None:
            return
        base, steered, _ = self.sides()
        n = len(base.positions)
        self.shown = list(range(max(0, n - self.fitting()), n))
        row, col = self.cursor_coordinate
        self.clear(columns=True)
        self.add_column(Text("L", style="bold"), width=LAYER_COL, key="layer")
        for j in self.shown:
            tok = base.token_texts[base.positions[j]]
            self.add_column(Text(token_label(tok) + " ", style="bold"), width=CELL + 1, key=str(j))
        for li, (b, s) in enumerate(zip(base.layers, steered.layers)):
            cells = [Text(f"{b.layer:>2} ")]
            for j in self.shown:
                cells.append(self.cell(b, s, j))
            self.add_row(*cells, key=str(b.layer))
        if self.row_count:
            self.move_cursor(row=min(row, self.row_count - 1), column=min(max(col, 1), len(self.shown)))

    def cell(self, b: Any, s: Any, j: int) -> Text:
        if self.view == "delta":
            if b.target_prob is None:
                return Text(" -".ljust(CELL + 1))
            d = log_delta(b.target_prob[j], s.target_prob[j])
            label = f"{d:+.1f}" if abs(d) < 10 else f"{d:+.0f}"
            return Text(label.rjust(CELL)[:CELL], style=delta_style(d)) + Text(" ")
        side = b if self.view == "baseline" else s
        top = side.top[j][0]
        return Text(token_label(top.text).ljust(CELL), style=prob_style(top.prob)) + Text(" ")

    def detail(self) -> str:
        """The cell under the cursor in words: top tokens and the target, baseline and steered."""
        if self.lens is None or not self.shown:
            return ""
        base, steered, diff = self.sides()
        row, col = self.cursor_coordinate
        if not 0 <= row < len(base.layers):
            return ""
        j = self.shown[min(max(col - 1, 0), len(self.shown) - 1)]
        b, s = base.layers[row], steered.layers[row]
        pos = base.positions[j]
        head = f"layer {b.layer} · position {pos} {base.token_texts[pos]!r}"

        def tops(layer: Any) -> str:
            return " ".join(f"{t.text!r} {t.prob:.2f}" for t in layer.top[j][:3])

        lines = [head, f"baseline {tops(b)}"]
        if diff:
            lines.append(f"steered  {tops(s)}")
        if b.target_prob is not None:
            tgt = base.target_text
            t = f"{tgt!r}: p {b.target_prob[j]:.3g} rank {b.target_rank[j]}"
            if diff:
                t += (f" → p {s.target_prob[j]:.3g} rank {s.target_rank[j]} "
                      f"(Δ log p {log_delta(b.target_prob[j], s.target_prob[j]):+.2f})")
            lines.append(t)
        return "\n".join(lines)

    def on_data_table_cell_highlighted(self, _event: DataTable.CellHighlighted) -> None:
        pane = self.parent
        if isinstance(pane, LensPane):
            pane.show_detail()

    def on_resize(self) -> None:
        if self.lens is not None and len(self.shown) != min(self.fitting(), len(self.sides()[0].positions)):
            self.render_grid()


class LensPane(Vertical):
    """The grid, the detail line for the cell under the cursor, and the target input (hidden until ``T``)."""

    HELP = LensGrid.HELP
    DEFAULT_CSS = """
    LensPane:focus-within { border: round $accent; }
    LensPane LensGrid { height: 1fr; }
    LensPane #lens-detail { height: auto; max-height: 4; }
    LensPane #lens-target { height: 3; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.steering = ""
        self.border_title = "Lens"
        self.border_subtitle = "t: compute for the selected pair"

    def compose(self):
        yield LensGrid(id="lens-grid")
        yield Static("", id="lens-detail")
        yield Input(value=DEFAULT_TARGET, placeholder="target token, e.g. ' Yes'", id="lens-target")

    def on_mount(self) -> None:
        self.query_one("#lens-target", Input).display = False

    @property
    def target(self) -> str:
        """The target token of the lens on screen (the default before any)."""
        lens = self.grid.lens
        text = lens is not None and self.grid.sides()[0].target_text
        return text or DEFAULT_TARGET

    @property
    def grid(self) -> LensGrid:
        return self.query_one(LensGrid)

    def focus(self, scroll_visible: bool = True) -> "LensPane":
        self.grid.focus(scroll_visible)
        return self

    def ask_target(self) -> None:
        box = self.query_one("#lens-target", Input)
        box.value = self.target
        box.display = True
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        event.input.display = False
        self.grid.focus()
        if event.value and event.value != self.target:
            self.post_message(LensGrid.TargetChanged(event.value))

    def show_error(self, text: str) -> None:
        self.query_one("#lens-detail", Static).update(Text(text, style="bold red"))

    def show_lens(self, lens: Any, steering: str = "") -> None:
        """``lens``: a LensDiff, or a plain LensResult when nothing is steered (both sides are then the same);
        ``steering``: the interventions that made it, as the panes name them."""
        self.steering = steering
        grid = self.grid
        grid.lens = lens
        grid.render_grid()
        self.show_detail()
        self.show_subtitle()

    def show_subtitle(self) -> None:
        grid = self.grid
        if grid.lens is None:
            return
        check = grid.sides()[0].final_logits_check
        self.border_subtitle = (f"{grid.view} · {self.target!r} · {self.steering or 'no steering'} · "
                                f"last layer = real softmax (max |Δp| {check:.1e})")

    def show_detail(self) -> None:
        self.query_one("#lens-detail", Static).update(Text(self.grid.detail()))
