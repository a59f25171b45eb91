"""The evaluation pane: does steering the selected layer shift the verdict on held-out files, per CWE, against a
random vector of equal norm; the alpha sweep, the verdict against alpha for the vector and the control; and the
layer grid, the verdict shift of every layer at every alpha."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from rich.text import Text
from textual.widgets import DataTable, Static

from steertui.engine.ops import (beyond_control, fix_beyond_control, grid_picks, held_out_files, layer_alpha_grid,
                                 next_cwe, pick_text, random_kl_text, steered_layers, sweep_curve, within_control)
from steertui.tui.panes.lens import delta_style
from steertui.tui.panes.plots import CHANCE, MARK, RANDOM, VECTOR, SweepPlot, key

VIEWS = ("table", "sweep", "grid")  # what `w` cycles through (`h` shows the files of the row or cell in view)
GRID_CELL = 6  # characters of a grid cell: a space and the shift ("+1.23")
PICK_MIN_HEIGHT = 20  # rows the grid or sweep view needs to show the honest pick's line (80×24 gives 17)
# `f` in the sweep, the grid and the held-out files: the same evaluation read on one CWE, then the next, then all
CYCLE_CWE = Binding("f", "cycle_cwe", "CWE", show=False, tooltip="the held-out files of one CWE, or all")


def files_of(cwe: str) -> str:
    """Whose held-out files a sweep or grid reads: ``every CWE`` or the one CWE ``f`` chose."""
    return "every CWE" if cwe == "all" else cwe

HELP = """\
## Evaluate
`e` runs the held-out evaluation of `steertui eval` for the steering layer at alphas −a, 0 and +a (a: the
current alpha, or one step when it is 0) on every loaded pair. Pairs are split into 3 folds stratified by CWE;
each fold builds its own mean-difference vector from its training pairs only (not the vector in the Steer
pane) and fixes its verdict threshold on its training files' unsteered scores. Per alpha and CWE:
`shift` the mean change of the verdict score logit(" Yes") − logit(" No") on held-out files (dim where it means
nothing next to the control, as in the grid), `rand` the same
for a random vector of equal norm (the control: a shift no larger than it means nothing), `yes` the share of
"yes" verdicts before → after (all "yes" or all "no" is visible here). The line under the table spells out the
row under the cursor: `vs rand` the shift beyond the control's ± 2 standard errors over pairs (a pair's two
files are not independent; `±?` under 2 pairs), `flip` and `rflip` the share of verdicts that changed with the
vector and the control,
the accuracy before → after, `KL` the mean per-token KL(steered ‖ plain) on held-out patched files read as
code (and the control's), the answer mass and the coefficient each fold applied. Alpha 0 must show exactly zero
shift, flips and KL. `y` makes the next `e`, `a` and `x` split each file's shift (as `steertui eval
--attribution`): what the vector writes straight into the answer, and what the layers after it change; the detail
lines then give both (read in the scoring forwards themselves: no forward more). `F` makes them also score what
the model would write (as `steertui eval --fix-site`): at each held-out pair's fix site, log p(patched) − log
p(vulnerable) of the two versions of the line its patch changes, continuing the vulnerable file; the detail lines
then give its shift, the random control's and the first beyond the second (nats; positive: towards the fix).
`C` makes them steer each CWE's held-out pairs with a vector built from the fold's training pairs of that CWE
alone (as `steertui eval --per-cwe`; not for imported vectors): is one direction enough, or does each CWE need
its own? The coefficient line then gives every CWE's.

**The layer was not chosen on held-out files**: the steering layer is picked in the Steer pane from
diagnostics over all loaded pairs, the files evaluated here included. The line under the table says so.

`a` sweeps alpha at the steering layer: the same held-out evaluation at 7 alphas from −A to +A (A: the
current alpha or 3 steps, whichever is larger), recorded in the session as one evaluation; Escape cancels.
It plots, against alpha, the mean verdict score and the yes-rate of the held-out files for the vector (green)
and the random control (yellow), the unsteered level (grey) and the current alpha (red).

`x` evaluates every layer at 7 alphas (the same held-out evaluation, recorded as one step; Escape cancels).
Here alpha is measured in each layer's mean residual norm (the unit of `+`/`-`, one step = 0.25), so one
column is the same push at every layer: from −A to +A, A 3 steps or the current alpha rounded up to a multiple
of 3 steps; each fold applies its own coefficient (`raw_alpha`). A cell is the mean verdict-score shift of all
held-out files, green up and red down (full colour at the grid's largest shift); a dim cell shifted no more
than the random vector of equal norm did there, or beyond it by no more than 2 standard errors (over pairs:
`vs rand` in the line under the grid, the shift beyond the control's ± 2 SE). The line under the grid spells
out the cell under the cursor;
`▸` marks the steering layer. Enter on a cell steers with its layer and alpha (the Steer pane's vectors); the
next tokens and the lens follow. `f` shows the grid (or the sweep) of one CWE's held-out files, then the
next CWE's, then all of them again: few files per CWE, so their shifts are noisier (the note gives n).
`w` cycles the table, the sweep and the grid.

`h` lists the held-out files behind the row of the table, the cell of the grid or the sweep's point at the
current alpha (of its CWE, or all): per file its truth (V vulnerable, P patched), fold, verdict before → after
(`✗` where the vector flipped it), unsteered score, shift with the vector and with the random control (the mean
over the controls, and how many flipped it), and the patched file's KL. The files the vector flipped come first,
then the largest shifts beyond the control. Enter on a file selects its pair (the code, the next tokens and the
lens follow it); `f` shows the same cell's files of one CWE, then the next; `h` again returns. From the
per-file records: an opened session written before they were kept has none.

**A cell picked from the grid is picked on these held-out files**: its own numbers are then optimistic (the
best of 28 or more cells). The last line (from 20 rows of the pane; `z` zooms) says by how much: each fold's
held-out files steered with the cell that did best on the *other* folds' files (largest shift beyond the
random control, ↑ towards " Yes", ↓ towards " No"), so no file helps choose the cell it is scored with; its
shift beyond the control (± 2 SE) is what "search the grid, then steer" gives, beside the grid's best cell
read off the grid. The sweep's last line does the same over its alphas. Confirm a cell on files it was not
chosen on, e.g. another dataset part with `steertui eval --part`.
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
        self.result: Any = None
        self.settings: Any = None  # their engine.evaluate.EvalSettings

    def show_result(self, result: Any) -> None:
        self.clear()
        self.result = result  # the engine.evaluate.EvalResult shown
        self.results = list(result.rows)
        for r in result.rows:
            bold = r.cwe == "all"
            cells: list[Any] = [f"{r.alpha:+.3g}", r.cwe, str(r.n), f"{r.shift:+.2f}", f"{r.random_shift:+.2f}",
                                f"{r.baseline_yes_rate:.2f}→{r.yes_rate:.2f}"]
            cells = [Text(c, style="bold" if bold else "") for c in cells]
            if within_control(r):  # the shift means nothing next to the control's: dim, as in the grid
                cells[3].stylize("dim")
            self.add_row(*cells)
        s = result.settings
        if s.together is None:
            what = f"layer {', '.join(map(str, s.layers))}"
        else:  # several layers steered at once: α scales each layer's own alpha (residual norms)
            what = "layers at once, α × " + " ".join(f"{w:+.2g}@{L}" for L, w in zip(s.layers, s.together))
        per_cwe = (" · a vector per CWE" if s.per_cwe else "") + (" · few-shot" if s.shot_pairs else "")
        self.border_subtitle = (f"{what} · {s.folds} folds by {s.split}{per_cwe} · {result.source} · "
                                f"{len(result.truncated)} files truncated")
        self.settings = s

    def detail(self) -> str:
        """The row under the cursor, with the columns the table leaves out."""
        if not self.results or not 0 <= self.cursor_row < len(self.results):
            return ""
        r = self.results[self.cursor_row]
        folds = ", ".join(f"{a:+.3g}" for a in r.raw_alpha) or "not recorded"
        if self.settings is not None and self.settings.together is not None:
            folds += f" (layer {r.layer}'s)"
        per = "per fold and CWE" if self.settings is not None and self.settings.per_cwe else "per fold"
        mass = f"{r.answer_mass:.2f}" if r.answer_mass == r.answer_mass else "not recorded"
        return (f"α {r.alpha:+.3g} {r.cwe} (n {r.n}): vs rand {beyond_control(r)} · flip {r.flip_rate:.2f} · "
                f"rflip {r.random_flip_rate:.2f} · "
                f"acc {r.baseline_accuracy:.2f}→{r.accuracy:.2f} · KL {r.kl:.3f} "
                f"({random_kl_text(r, self.settings.controls if self.settings is not None else 1)}, "
                f"{r.n_kl} files) · answer mass {mass} · coefficient {per} {folds}{split_text(r)}{fix_text(r)}")


class SweepView(Vertical, can_focus=True):
    """The alpha sweep: the mean verdict score and the yes-rate of the held-out files against alpha, side by
    side, each with the vector's line, the random control's and the unsteered level."""

    ALLOW_MAXIMIZE = True
    HELP = HELP
    BINDINGS = [CYCLE_CWE]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.sweep: Any = None  # the engine.ops.AlphaSweep shown
        self.note, self.alpha = "", None
        self.border_title = "Alpha sweep · " + key(("vector", VECTOR), ("random", RANDOM), ("unsteered", CHANCE)) + \
            f" [{MARK}]│[/] α"
        self.border_subtitle = "a: sweep alpha at the steering layer"
        self.curve: Any = None
        self.picks: dict[str, Any] = {}  # engine.ops.grid_picks of the sweep shown

    def compose(self) -> ComposeResult:
        yield Static("a: sweep alpha at the steering layer (7 held-out evaluations)", id="sweep-note")
        with Horizontal(id="sweep-plots"):
            yield SweepPlot(id="sweep-score")
            yield SweepPlot(id="sweep-yes")
            yield SweepPlot(id="sweep-fix")  # shown when the sweep scored the fix sites (`F`)
        yield Static("", id="sweep-pick")

    def on_mount(self) -> None:
        self.query_one("#sweep-score", SweepPlot).border_title = "mean verdict score"
        self.query_one("#sweep-yes", SweepPlot).border_title = "yes-rate"
        fix = self.query_one("#sweep-fix", SweepPlot)
        fix.border_title, fix.display = "fix-site shift (nats)", False

    def show_sweep(self, sweep: Any, note: str, alpha: float | None = None) -> None:
        """``sweep``: an engine.ops.AlphaSweep; ``note``: how the layer was chosen; ``alpha``: the current one."""
        self.sweep, self.note, self.alpha = sweep, note, alpha
        self.picks = grid_picks(sweep.result)  # picked once: every CWE's curve reads them
        self.show_curve(sweep.curve)
        self.border_subtitle = f"{sweep.result.source} · f: CWE · w: the grid"

    def show_curve(self, c: Any) -> None:
        """One curve of the sweep (engine.ops.SweepCurve): its CWE's held-out files, or all of them."""
        self.curve, s = c, self.sweep.result.settings
        self.query_one("#sweep-note", Static).update(
            f"{c.n} held-out files ({files_of(c.cwe)}) · {s.folds} folds by {s.split} · "
            f"{self.note}")
        self.query_one("#sweep-score", SweepPlot).show(c.alphas, c.score, c.random_score, c.baseline_score,
                                                       mark=self.alpha)
        self.query_one("#sweep-yes", SweepPlot).show(c.alphas, c.yes_rate, c.random_yes_rate, c.baseline_yes_rate,
                                                     limits=(0.0, 1.0), mark=self.alpha)
        fix = self.query_one("#sweep-fix", SweepPlot)  # what the model would write, against alpha (`F`)
        fix.display = c.fix is not None
        if c.fix is not None:
            fix.show(c.alphas, c.fix, c.random_fix, 0.0, mark=self.alpha)
        # the alpha picked on the other folds (the grid's honest pick, over this sweep's alphas)
        self.query_one("#sweep-pick", Static).update(pick_text(layer_alpha_grid(self.sweep.result, c.cwe,
                                                                                 self.picks)))
        self.show_pick()

    def on_resize(self) -> None:
        self.show_pick()

    def show_pick(self) -> None:
        """The honest pick's line, where the pane has room for it beside the plots (as the grid's)."""
        self.query_one("#sweep-pick", Static).display = self.size.height >= PICK_MIN_HEIGHT

    def action_cycle_cwe(self) -> None:
        if self.sweep is not None:
            result = self.sweep.result
            self.show_curve(sweep_curve(result, self.curve.layer, next_cwe(result, self.curve.cwe)))


class GridTable(DataTable):
    """Rows: layers; columns: alphas in residual units; a cell: the verdict-score shift over all held-out files."""

    grid: Any = None  # engine.ops.LayerAlphaGrid
    marked: int | None = None  # the steering layer

    def on_mount(self) -> None:
        self.cursor_type = "cell"
        self.cell_padding = 0  # each cell carries its own leading space: 7 alphas fit 80 columns

    def show_grid(self, grid: Any, marked: int | None, keep_cursor: bool = False) -> None:
        """Show ``grid`` with ``marked`` (the steering layer) marked; the cursor goes to that layer at alpha 0, or
        with ``keep_cursor`` stays on the cell it is on."""
        cursor = self.cursor_coordinate
        self.grid, self.marked = grid, marked
        self.clear(columns=True)
        self.add_column("layer", key="layer")
        for a in grid.alphas:
            self.add_column(f"{a:+.2f}".rjust(GRID_CELL), key=f"{a!r}")
        scale = max((abs(c.shift) for c in grid.cells.values()), default=0.0)
        for layer in grid.layers:
            cells: list[Any] = [self._label(layer)]
            for a in grid.alphas:
                c = grid.cell(layer, a)
                text = f"{c.shift:+.2f}".rjust(GRID_CELL)
                cells.append(Text(text, style="dim" if within_control(c) else delta_style(c.shift, scale)))
            self.add_row(*cells, key=str(layer))
        if keep_cursor:
            self.move_cursor(row=cursor.row, column=cursor.column)
        elif marked in grid.layers and 0.0 in grid.alphas:
            self.move_cursor(row=grid.layers.index(marked), column=1 + grid.alphas.index(0.0))

    def _label(self, layer: int) -> str:
        return f"{'▸' if layer == self.marked else ' '}{layer}"

    def mark(self, layer: int | None) -> None:
        """Mark ``layer`` as the steering layer (the cursor stays where it is)."""
        if self.grid is None or layer == self.marked:
            return
        self.marked = layer
        for row in self.grid.layers:
            self.update_cell(str(row), "layer", self._label(row))

    def detail(self) -> str:
        """The cell under the cursor in words: the vector against the control, flips, accuracy, yes-rate, KL."""
        g = self.grid
        if g is None or not 0 <= self.cursor_row < len(g.layers) or not 1 <= self.cursor_column <= len(g.alphas):
            return "the layer column: move right to an alpha"
        c = g.cell(g.layers[self.cursor_row], g.alphas[self.cursor_column - 1])
        coef = ", ".join(f"{x:+.3g}" for x in c.raw_alpha) or "not recorded"
        return (f"layer {c.layer} · α {c.alpha:+.2f} residual (per fold {coef}) · n {c.n}: shift {c.shift:+.2f} "
                f"(rand {c.random_shift:+.2f}, vs rand {beyond_control(c)}) · flip {c.flip_rate:.2f} "
                f"(rand {c.random_flip_rate:.2f}) · acc "
                f"{c.baseline_accuracy:.2f}→{c.accuracy:.2f} · yes {c.baseline_yes_rate:.2f}→{c.yes_rate:.2f} · "
                f"KL {c.kl:.3f} ({random_kl_text(c, g.result.settings.controls)}){split_text(c)}{fix_text(c)}")


class GridView(Vertical):
    """The layer grid with the line for the cell under the cursor."""

    HELP = HELP
    BINDINGS = [CYCLE_CWE]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.border_title = ("Layer grid · verdict shift [green]up[/] [red]down[/] · "
                             "[dim]dim: within the random control ±2 SE[/]")
        self.border_subtitle = "x: every layer at 7 alphas"

    def compose(self) -> ComposeResult:
        yield Static("x: evaluate every layer at 7 alphas (residual units)", id="grid-note")
        yield GridTable(id="grid-table")
        yield Static("", id="grid-detail")
        yield Static("", id="grid-pick")

    @property
    def table(self) -> GridTable:
        return self.query_one(GridTable)

    def show_grid(self, grid: Any, marked: int | None, keep_cursor: bool = False) -> None:
        """``grid``: an engine.ops.LayerAlphaGrid; ``marked``: the steering layer."""
        s = grid.result.settings
        self.query_one("#grid-note", Static).update(
            f"{grid.n} held-out files ({files_of(grid.cwe)}) · {s.folds} folds by "
            f"{s.split} · {s.method} per fold · α: residual norms")
        self.table.show_grid(grid, marked, keep_cursor)
        self.query_one("#grid-pick", Static).update(pick_text(grid))
        self.show_pick()
        self.border_subtitle = f"{grid.result.source} · f: CWE · w: the table"
        self.show_detail()

    def on_resize(self) -> None:
        self.show_pick()

    def show_pick(self) -> None:
        """The honest pick's line, where the pane is tall enough to keep every grid row beside it (80×24 is not:
        ``z`` zooms)."""
        self.query_one("#grid-pick", Static).display = self.size.height >= PICK_MIN_HEIGHT

    def action_cycle_cwe(self) -> None:
        grid = self.table.grid
        if grid is not None:
            self.show_grid(layer_alpha_grid(grid.result, next_cwe(grid.result, grid.cwe), grid.picks),
                           self.table.marked, keep_cursor=True)

    def show_detail(self) -> None:
        self.query_one("#grid-detail", Static).update(self.table.detail() if self.table.grid is not None else "")

    def on_data_table_cell_highlighted(self, event: DataTable.CellHighlighted) -> None:
        event.stop()  # the cell under the grid's cursor: its line under the grid
        self.show_detail()


def common_folder(ids: list[str]) -> str:
    """The folder prefix (up to a ``/``) that every id shares, "" when they share none or there is one id."""
    if len(ids) < 2:
        return ""
    first, last = min(ids), max(ids)
    n = next((i for i, (a, b) in enumerate(zip(first, last)) if a != b), min(len(first), len(last)))
    return first[:first.rfind("/", 0, n) + 1]


def split_text(row: Any) -> str:
    """An evaluation made with attribution (``eval --attribution``, then opened): the shift's direct part and the
    later layers' part; "" without."""
    if row.direct_shift is None or row.through_shift is None:  # not computed
        return ""
    return f" · shift split: direct {row.direct_shift:+.2f}, through later layers {row.through_shift:+.2f}"


def fix_text(row: Any) -> str:
    """An evaluation that scored the fix sites (``F``, ``eval --fix-site``): the preference's shift against the
    random control's and beyond it; empty otherwise."""
    if row.fix_shift is None or row.random_fix_shift is None:
        return ""
    return (f" · fix site ({row.fix_n} pairs): {row.fix_shift:+.2f} nats (rand {row.random_fix_shift:+.2f}), "
            f"vs rand {fix_beyond_control(row)}")


def _layers(result: Any, layer: int) -> str:
    """What a row filed under ``layer`` steered, in words: ``layer 2``, or ``layers 1+2`` steered at once."""
    what = steered_layers(result.settings, layer)
    return f"layer{'s' if '+' in what else ''} {what}"


class FilesTable(DataTable):
    """The held-out files of one cell of an evaluation (``engine.ops.held_out_files``); Enter selects a file's
    pair."""

    COLUMNS = ("file", "", "yes", "shift", "rand", "score", "fold", "KL")
    SPLIT = ("direct", "through")  # with the evaluation's attribution
    FIX = ("fix Δ", "fix rand")  # with the evaluation's fix_site (a vulnerable file: its pair's)

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns(*self.COLUMNS)
        self.files: list[Any] = []

    def show_files(self, files: list[Any]) -> None:
        """One row per file, the most telling columns first (80 columns show them); the ids' common folder
        prefix is left out (the line under the table gives the whole id). An evaluation with attribution adds
        each file's direct and later-layer parts of its shift; one that scored the fix sites, on each vulnerable
        file its pair's fix-site shift with the vector and the controls'."""
        split = bool(files) and all(h.direct is not None for h in files)
        fix = any(h.fix_shift is not None for h in files)
        self.clear(columns=True)
        self.add_columns(*self.COLUMNS, *(self.SPLIT if split else ()), *(self.FIX if fix else ()))
        self.files = files
        prefix = common_folder([h.id for h in files])
        scale = max((abs(h.shift) for h in files), default=0.0)
        for h in files:
            verdict = f"{'y' if h.yes_before else 'n'}→{'y' if h.yes_after else 'n'}{' ✗' if h.flipped else ''}"
            rand = f"{h.random_shift:+.2f}" + (f" {h.random_flips}/{h.controls}✗" if h.random_flips else "")
            self.add_row(h.id[len(prefix):], "V" if h.label else "P", Text(verdict, style="bold" if h.flipped else ""),
                         Text(f"{h.shift:+.2f}", style=delta_style(h.shift, scale)), rand, f"{h.baseline:+.2f}",
                         str(h.fold), "" if h.kl is None else f"{h.kl:.3f}",
                         *((f"{h.direct:+.2f}", f"{h.through:+.2f}") if split else ()),
                         *(() if not fix else ("", "") if h.fix_shift is None
                           else (f"{h.fix_shift:+.2f}", f"{h.random_fix_shift:+.2f}")))
        self.move_cursor(row=0)

    def detail(self) -> str:
        if not self.files or not 0 <= self.cursor_row < len(self.files):
            return ""
        h = self.files[self.cursor_row]
        truth = "vulnerable" if h.label else "patched"
        return (f"{h.id} ({h.cwe}, {truth}, pair {h.pair}) · fold {h.fold} threshold {h.threshold:+.3f} · score "
                f"{h.baseline:+.3f} → {h.steered:+.3f} with the vector, {h.random:+.3f} with the random control"
                f"{'s (mean)' if h.controls > 1 else ''} · Enter: select its pair")


class FilesView(Vertical):
    """The held-out files behind one row or cell of the table, the sweep or the grid (``h``)."""

    HELP = HELP
    BINDINGS = [CYCLE_CWE]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.border_title = "Held-out files · [bold]✗[/] the vector flipped the verdict"
        self.came_from = "table"  # the view `h` returns to
        self.shown: tuple[Any, int, float, str, str] | None = None  # (result, layer, alpha, CWE, the cell in words)

    def compose(self) -> ComposeResult:
        yield Static("", id="files-note")
        yield FilesTable(id="files-table")
        yield Static("", id="files-detail")

    @property
    def table(self) -> FilesTable:
        return self.query_one(FilesTable)

    def show_files(self, result: Any, layer: int, alpha: float, cwe: str, what: str) -> None:
        """The files of ``cwe`` at (``layer``, ``alpha``) of ``result``; ``what``: the cell in words."""
        self.shown = (result, layer, alpha, cwe, what)
        files = held_out_files(result, layer, alpha, cwe)
        self.table.show_files(files)
        if files:
            flipped = sum(h.flipped for h in files)
            by_control = sum(h.random_flips > 0 for h in files)
            note = (f"{what} · {len(files)} held-out files ({files_of(cwe)}) · the vector flipped {flipped}, a "
                    f"random control {by_control}")
        else:
            note = (f"{what}: no per-file records (a session written before they were kept: x, a or e re-runs "
                    "it)")
        self.query_one("#files-note", Static).update(note)
        self.border_subtitle = f"{result.source} · Enter: select the pair · f: CWE · h: back"
        self.show_detail()

    def action_cycle_cwe(self) -> None:
        """The same cell's files of the next CWE, then of all of them again (as the grid's and the sweep's f)."""
        if self.shown is not None:
            result, layer, alpha, cwe, what = self.shown
            self.show_files(result, layer, alpha, next_cwe(result, cwe), what)

    def show_detail(self) -> None:
        self.query_one("#files-detail", Static).update(self.table.detail())

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()  # the file under the cursor: its line under the table
        self.show_detail()


class EvalView(Vertical):
    """The evaluation table with its detail line, the alpha sweep, or the layer grid (``w`` cycles)."""

    BINDINGS = [
        Binding("a", "app.sweep", "Alpha sweep", id="sweep",
                tooltip="the held-out evaluation of the steering layer at 7 alphas, plotted"),
        Binding("x", "app.grid", "Layer grid", id="grid",
                tooltip="the held-out evaluation of every layer at 7 alphas in residual units"),
        Binding("w", "switch_view", "View", id="eval_view", tooltip="the table, the alpha sweep or the layer grid"),
        Binding("h", "files", "Files", id="eval_files",
                tooltip="the held-out files behind the row, the cell or the sweep's current alpha"),
        Binding("y", "app.toggle_split", "Split shifts", id="eval_split", show=False,
                tooltip="the next e, a and x split each shift: the vector's direct read-out, the later layers'"),
        Binding("F", "app.toggle_fix_site", "Fix sites", id="eval_fix_site", show=False,
                tooltip="the next e, a and x also score what the model would write at each pair's fix site"),
        Binding("C", "app.toggle_per_cwe", "Per-CWE vectors", id="eval_per_cwe", show=False,
                tooltip="the next e, a and x steer each CWE with a vector built from its own training pairs"),
    ]

    def __init__(self, table: EvalPane, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table = table
        self.note = ""

    def compose(self) -> ComposeResult:
        yield self.table
        yield Static("", id="eval-detail")
        yield SweepView(id="sweep")
        yield GridView(id="grid")
        yield FilesView(id="files")

    def on_mount(self) -> None:
        self.show_view("table")

    @property
    def view(self) -> str:
        if self.query_one(SweepView).display:
            return "sweep"
        if self.query_one(FilesView).display:
            return "files"
        return "grid" if self.query_one(GridView).display else "table"

    def _focusable(self, view: str) -> Any:
        return {"table": self.table, "sweep": self.query_one(SweepView), "grid": self.query_one(GridTable),
                "files": self.query_one(FilesTable)}[view]

    def show_view(self, view: str) -> None:
        had_focus = self.has_focus_within
        self.table.display = view == "table"
        self.query_one("#eval-detail", Static).display = view == "table"
        self.query_one(SweepView).display = view == "sweep"
        self.query_one(GridView).display = view == "grid"
        self.query_one(FilesView).display = view == "files"
        if had_focus:
            self._focusable(view).focus()

    def action_switch_view(self) -> None:
        view = self.view if self.view in VIEWS else self.query_one(FilesView).came_from
        self.show_view(VIEWS[(VIEWS.index(view) + 1) % len(VIEWS)])

    def shown_cell(self) -> tuple[Any, int, float, str, str] | None:
        """(result, layer, alpha, CWE, the cell in words) of the row of the table, the cell of the grid, or the
        sweep's alpha nearest the current one (its largest without one); None when the view shows none."""
        view = self.view
        if view == "table":
            t = self.table
            if t.result is None or not 0 <= t.cursor_row < len(t.results):
                return None
            r = t.results[t.cursor_row]
            return t.result, r.layer, r.alpha, r.cwe, f"{_layers(t.result, r.layer)} · α {r.alpha:+.3g}"
        if view == "grid":
            g = self.query_one(GridTable)
            if g.grid is None or not 0 <= g.cursor_row < len(g.grid.layers) or \
                    not 1 <= g.cursor_column <= len(g.grid.alphas):
                return None
            layer, alpha = g.grid.layers[g.cursor_row], g.grid.alphas[g.cursor_column - 1]
            what = f"{_layers(g.grid.result, layer)} · α {alpha:+.2f} residual"
            return g.grid.result, layer, alpha, g.grid.cwe, what
        if view == "sweep":
            sw = self.query_one(SweepView)
            if sw.sweep is None or sw.curve is None:
                return None
            alphas = sw.curve.alphas
            alpha = max(alphas) if sw.alpha is None else min(alphas, key=lambda a: (abs(a - sw.alpha), -a))
            return (sw.sweep.result, sw.curve.layer, alpha, sw.curve.cwe,
                    f"{_layers(sw.sweep.result, sw.curve.layer)} · α {alpha:+.3g}")
        return None

    def action_files(self) -> None:
        """The held-out files of the row, cell or sweep point in view; from the files, back to that view."""
        files = self.query_one(FilesView)
        if self.view == "files":
            self.show_view(files.came_from)
            return
        cell = self.shown_cell()
        if cell is None:
            self.app.notify("no evaluation row or grid cell in view (e, a or x first; in the grid, move right to "
                            "an alpha)", title="held-out files", severity="warning")
            return
        files.came_from = self.view
        files.show_files(*cell)
        self.show_view("files")

    def focus_shown(self) -> None:
        """Focus what is shown: the table, the sweep or the grid."""
        self._focusable(self.view).focus()

    def show_result(self, result: Any, note: str) -> None:
        self.note = note
        self.table.show_result(result)
        self.show_view("table")
        self.show_detail()

    def show_sweep(self, sweep: Any, note: str, alpha: float | None = None) -> None:
        self.query_one(SweepView).show_sweep(sweep, note, alpha)
        self.show_view("sweep")

    def show_grid(self, grid: Any, marked: int | None) -> None:
        self.query_one(GridView).show_grid(grid, marked)
        self.show_view("grid")

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table is self.table:  # the row under the table's cursor: its line under the table
            self.show_detail()

    def show_detail(self) -> None:
        lines = [f"[yellow]{self.note}[/]"] if self.note else []
        detail = self.table.detail()
        if detail:
            lines.append(detail)
        self.query_one("#eval-detail", Static).update("\n".join(lines))
