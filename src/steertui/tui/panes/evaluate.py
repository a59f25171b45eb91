"""The evaluation pane: does steering the selected layer shift the verdict on held-out files, per CWE, against a
random vector of equal norm; and the alpha sweep, the verdict against alpha for the vector and the control."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static

from steertui.tui.panes.plots import CHANCE, MARK, RANDOM, VECTOR, SweepPlot, key

HELP = """\
## Evaluate
`e` runs the held-out evaluation of `steertui eval` for the steering layer at alphas −a, 0 and +a (a: the
current alpha, or one step when it is 0) on every loaded pair. Pairs are split into 3 folds stratified by CWE;
each fold builds its own mean-difference vector from its training pairs only (not the vector in the Steer
pane) and fixes its verdict threshold on its training files' unsteered scores. Per alpha and CWE:
`shift` the mean change of the verdict score logit(" Yes") − logit(" No") on held-out files, `rand` the same
for a random vector of equal norm (the control: a shift no larger than it means nothing), `yes` the share of
"yes" verdicts before → after (all "yes" or all "no" is visible here). The line under the table spells out the
row under the cursor: `flip` and `rflip` the share of verdicts that changed with the vector and the control,
the accuracy before → after, `KL` the mean per-token KL(steered ‖ plain) on held-out patched files read as
code (and the control's), the answer mass and the coefficient each fold applied. Alpha 0 must show exactly zero
shift, flips and KL.

**The layer was not chosen on held-out files**: the steering layer is picked in the Steer pane from
diagnostics over all loaded pairs, the files evaluated here included. The line under the table says so.

`a` sweeps alpha at the steering layer: the same held-out evaluation at 7 alphas from −A to +A (A: the
current alpha or 3 steps, whichever is larger), recorded in the session as one evaluation; Escape cancels.
It plots, against alpha, the mean verdict score and the yes-rate of the held-out files for the vector (green)
and the random control (yellow), the unsteered level (grey) and the current alpha (red). `w` switches
between the table and the sweep.
"""


class EvalPane(DataTable):
    """One row per alpha and CWE (and `all`): the columns that fit 80 columns; the rest of the row under the
    cursor is in the detail line below."""

    BORDER_TITLE = "Evaluate"
    HELP = HELP

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns("α", "CWE", "n", "shift", "rand", "yes")
        self.border_subtitle = "e: evaluate the steering layer"
        self.results: list[Any] = []  # the rows shown (engine.evaluate.EvalRow)

    def show_result(self, result: Any) -> None:
        self.clear()
        self.results = list(result.rows)
        for r in result.rows:
            bold = r.cwe == "all"
            cells = [f"{r.alpha:+.3g}", r.cwe, str(r.n), f"{r.shift:+.2f}", f"{r.random_shift:+.2f}",
                     f"{r.baseline_yes_rate:.2f}→{r.yes_rate:.2f}"]
            self.add_row(*[f"[b]{c}[/]" if bold else c for c in cells])
        s = result.settings
        self.border_subtitle = (f"layer {', '.join(map(str, s.layers))} · {s.folds} folds by {s.split} · "
                                f"{result.source} · {len(result.truncated)} files truncated")

    def detail(self) -> str:
        """The row under the cursor, with the columns the table leaves out."""
        if not self.results or not 0 <= self.cursor_row < len(self.results):
            return ""
        r = self.results[self.cursor_row]
        folds = ", ".join(f"{a:+.3g}" for a in r.raw_alpha)
        return (f"α {r.alpha:+.3g} {r.cwe} (n {r.n}): flip {r.flip_rate:.2f} · rflip {r.random_flip_rate:.2f} · "
                f"acc {r.baseline_accuracy:.2f}→{r.accuracy:.2f} · KL {r.kl:.3f} (rand {r.random_kl:.3f}, "
                f"{r.n_kl} files) · answer mass {r.answer_mass:.2f} · coefficient per fold {folds}")

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        view = self.parent
        if isinstance(view, EvalView):
            view.show_detail()


class SweepView(Vertical, can_focus=True):
    """The alpha sweep: the mean verdict score and the yes-rate of the held-out files against alpha, side by
    side, each with the vector's line, the random control's and the unsteered level."""

    ALLOW_MAXIMIZE = True
    HELP = HELP

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.border_title = "Alpha sweep · " + key(("vector", VECTOR), ("random", RANDOM), ("unsteered", CHANCE)) + \
            f" [{MARK}]│[/] α"
        self.border_subtitle = "a: sweep alpha at the steering layer"
        self.curve: Any = None

    def compose(self) -> ComposeResult:
        yield Static("a: sweep alpha at the steering layer (7 held-out evaluations)", id="sweep-note")
        with Horizontal(id="sweep-plots"):
            yield SweepPlot(id="sweep-score")
            yield SweepPlot(id="sweep-yes")

    def on_mount(self) -> None:
        self.query_one("#sweep-score", SweepPlot).border_title = "mean verdict score"
        self.query_one("#sweep-yes", SweepPlot).border_title = "yes-rate"

    def show_sweep(self, sweep: Any, note: str, alpha: float | None = None) -> None:
        """``sweep``: an engine.ops.AlphaSweep; ``note``: how the layer was chosen; ``alpha``: the current one."""
        c = self.curve = sweep.curve
        s = sweep.result.settings
        self.query_one("#sweep-note", Static).update(
            f"{c.n} held-out files · {s.folds} folds by {s.split} · {note}")
        self.query_one("#sweep-score", SweepPlot).show(c.alphas, c.score, c.random_score, c.baseline_score,
                                                       mark=alpha)
        self.query_one("#sweep-yes", SweepPlot).show(c.alphas, c.yes_rate, c.random_yes_rate, c.baseline_yes_rate,
                                                     limits=(0.0, 1.0), mark=alpha)
        self.border_subtitle = f"{sweep.result.source} · w: the table"


class EvalView(Vertical):
    """The evaluation table with its detail line, or the alpha sweep (``w`` switches)."""

    BINDINGS = [
        Binding("a", "app.sweep", "Alpha sweep", id="sweep",
                tooltip="the held-out evaluation of the steering layer at 7 alphas, plotted"),
        Binding("w", "switch_view", "Table/sweep", id="eval_view", tooltip="the table or the alpha sweep"),
    ]

    def __init__(self, table: EvalPane, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table = table
        self.note = ""

    def compose(self) -> ComposeResult:
        yield self.table
        yield Static("", id="eval-detail")
        yield SweepView(id="sweep")

    def on_mount(self) -> None:
        self.show_view("table")

    @property
    def view(self) -> str:
        return "sweep" if self.query_one(SweepView).display else "table"

    def show_view(self, view: str) -> None:
        sweep = view == "sweep"
        had_focus = self.has_focus_within
        self.table.display = not sweep
        self.query_one("#eval-detail", Static).display = not sweep
        self.query_one(SweepView).display = sweep
        if had_focus:
            (self.query_one(SweepView) if sweep else self.table).focus()

    def action_switch_view(self) -> None:
        self.show_view("table" if self.view == "sweep" else "sweep")

    def focus_shown(self) -> None:
        """Focus what is shown: the table, or the sweep."""
        (self.query_one(SweepView) if self.view == "sweep" else self.table).focus()

    def show_result(self, result: Any, note: str) -> None:
        self.note = note
        self.table.show_result(result)
        self.show_view("table")
        self.show_detail()

    def show_sweep(self, sweep: Any, note: str, alpha: float | None = None) -> None:
        self.query_one(SweepView).show_sweep(sweep, note, alpha)
        self.show_view("sweep")

    def show_detail(self) -> None:
        lines = [f"[yellow]{self.note}[/]"] if self.note else []
        detail = self.table.detail()
        if detail:
            lines.append(detail)
        self.query_one("#eval-detail", Static).update("\n".join(lines))
