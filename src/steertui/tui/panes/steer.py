"""The steering pane: vectors built from the loaded pairs, one row per layer with its diagnostics, and below the
table the same diagnostics plotted over layers, or the per-CWE directions at the steering layer."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import DataTable, Input

from steertui.tui.panes.lens import delta_style
from steertui.tui.panes.plots import DiagnosticsPlot

CWE_CELL = 5  # characters of a cosine cell: a space and "+.12"


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None or x != x else format(x, spec)


class SteerPane(DataTable):
    """Rows are layers; the highlighted row is the layer that steering writes to (and the pinned ones, ●)."""

    BORDER_TITLE = "Steer"
    BINDINGS = [Binding("space", "app.pin", "Pin layer", show=False,
                        tooltip="keep the steering layer at its alpha when the cursor moves on, or stop")]
    HELP = """\
## Steer
`b` builds one contrastive vector per layer from every loaded pair with the current method (`m`; by default
the mean difference, vulnerable minus patched, read at each file's last token; Escape cancels). Each row is
a layer: `‖v‖` the vector's norm, `‖v‖/‖h‖` its norm over the mean residual norm there, `cons` the
consistency of the per-pair differences (mean pairwise cosine), and the held-out AUROC of projecting onto
the vector: `AUC pair` with pairs held out (k-fold),
`AUC CWE` leaving one CWE out. An AUROC near 0.5 means the direction does not separate vulnerable from
patched files it was not built from.

Vectors imported with `i` (a path, then a name if the file holds several) or `steertui --vectors FILE` show
`(given)` in the subtitle: their rows are their layers, and `AUC pair` is the AUROC of projecting the loaded
pairs onto them, leaving out the pairs they were built from, where the file says. `AUC CWE` is `-`. `e`, `a`
and `x` steer with them as they are in every fold.

`m` cycles the method of the next build: `mean-diff`, `pca` (the first singular direction of the per-pair
differences) or `probe` (an L2-regularised logistic regression's direction); both are signed towards
vulnerable and scaled to the mean difference's length along them. `p` cycles where the vector is
added: `all` positions, only the `prompt` pass, or only the `generated` tokens (which changes nothing in the
single-forward views, next tokens and lens).

The highlighted row is the steering layer. `+` / `-` change alpha by one step (1/4 of the mean residual norm
over the vector norm), `0` sets it to zero. `space` pins the steering layer at its alpha (`●`): it stays in the
steering when the cursor moves on, so several layers steer at once, each at its own alpha (the cursor on a
pinned layer changes its pin; `space` again unpins it). The subtitle lists every layer that steers. `e` then
evaluates them at once, as they steer (×1), not at all and opposed (×−1), each with its own random control;
`a` sweeps them at once from ×−2 to ×2 of their alphas. `t` shows the next tokens of the
selected pair's vulnerable file, baseline against steered.

Below the table the same diagnostics are plotted over layers: the held-out AUROC, `AUC pair` (green) and
`AUC CWE` (yellow), with the chance line at 0.5 (grey); beside it `‖v‖/‖h‖` (magenta). The red vertical line
is the steering layer.

`w` shows instead the CWE directions at the steering layer: is there one vulnerable-minus-patched direction,
or one per CWE? Each row is a CWE (with its number of pairs): `v` the cosine of its own mean difference with
the built vector, then its cosine with every other CWE's (green alike, red opposed). Two unrelated directions
have a cosine of about ±1/√d_model (dim below that); a CWE with one or two pairs has a noisy direction.
Recorded with the vectors in the session (`replay --check` compares them); `w` again shows the plots. On a
small terminal, `tab` moves the focus to it, where the arrows scroll it and `z` shows it whole; `s` comes back.
"""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns("layer", "‖v‖", "‖v‖/‖h‖", "cons", "AUC pair", "AUC CWE")  # fits 80 columns
        self.border_subtitle = "b: build vectors from the pairs"

    def show_build(self, result: Any) -> None:
        self.clear()
        for d in result.diagnostics:
            self.add_row(str(d.layer), _fmt(d.vector_norm, ".3g"), _fmt(d.norm_ratio), _fmt(d.consistency),
                         _fmt(d.auroc_pairs), _fmt(d.auroc_cwe), key=str(d.layer))

    def show_steering(self, description: str) -> None:
        self.border_subtitle = description

    def mark_pinned(self, pinned: Any) -> None:
        """A ● before the layer of each row whose layer is in ``pinned``."""
        from textual.coordinate import Coordinate

        for row, key in enumerate(self.rows):
            layer = int(key.value)
            self.update_cell_at(Coordinate(row, 0), f"●{layer}" if layer in pinned else str(layer))


class CweTable(DataTable):
    """Rows: CWEs; columns: the cosine with the built vector, then with each CWE's direction (same order). The
    steering table keeps the focus after ``w``; ``tab`` brings it here to scroll a table larger than the pane."""

    shown: Any = None
    HELP = SteerPane.HELP

    def on_mount(self) -> None:
        self.show_cursor = False
        self.cell_padding = 0  # each cell carries its own leading space: 8 CWEs fit 100 columns

    def show_directions(self, directions: Any) -> None:
        """``directions``: an engine.build.CweDirections or its session record, or None (vectors opened from a
        session recorded before steertui recorded them)."""
        if self.row_count and directions is self.shown:  # the same layer (an alpha changed): nothing to redo
            return
        self.shown = directions
        self.clear(columns=True)
        if directions is None:
            self.border_title = "CWE directions"
            self.border_subtitle = "not recorded with these vectors: b rebuilds them"
            return
        c = directions
        self.add_column("CWE (pairs) ")
        self.add_column(" v".rjust(CWE_CELL))
        for cwe in c.cwes:
            self.add_column(cwe.removeprefix("cwe-").rjust(CWE_CELL))
        for i, cwe in enumerate(c.cwes):
            cells = [f"{cwe} ({c.n_pairs[i]}) ", self._cell(c.to_vector[i], c.chance)]
            cells += [self._cell(x, c.chance, diagonal=i == j) for j, x in enumerate(c.cosine[i])]
            self.add_row(*cells)
        self.border_title = f"CWE directions at layer {c.layer} · cosine, [green]alike[/] [red]opposed[/]"
        self.border_subtitle = f"dim: |cos| < {c.chance:.2f} (chance, 1/√d) · w: plots · tab: scroll it"

    @staticmethod
    def _cell(x: float, chance: float, diagonal: bool = False) -> Text:
        text = f"{x:+.2f}".replace("0.", ".").replace("+1.00", "1.00").rjust(CWE_CELL)
        if diagonal:
            return Text(text, style="dim")
        return Text(text, style="dim" if abs(x) < chance else delta_style(x, 1.0))


class ImportBox(Input):
    """Where `i` asks for a vectors file to import (Escape closes it)."""

    BINDINGS = [Binding("escape", "close", "Close", show=False)]

    def action_close(self) -> None:
        self.display = False
        self.screen.query_one(SteerPane).focus()


class SteerView(Vertical):
    """The steering table above its plot or the CWE directions (laid out in app.tcss); the table keeps the focus
    and the keys (`tab` takes the focus to the CWE table, to scroll it)."""

    # not in the footer: focusing the pane (every b does) then changes no key the footer shows, and the footer is
    # not rebuilt while the build's thread computes (a rebuild there was the event loop's longest wait, 25-60 ms)
    BINDINGS = [Binding("w", "switch_view", "Plots/CWEs", id="steer_view", show=False,
                        tooltip="the diagnostics plotted over layers, or the per-CWE directions")]

    def __init__(self, table: SteerPane, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table = table

    def compose(self) -> ComposeResult:
        yield self.table
        with Horizontal(id="steer-plots"):
            yield DiagnosticsPlot("auroc", id="steer-auroc")
            yield DiagnosticsPlot("norm", id="steer-norm")
        yield CweTable(id="steer-cwe")
        yield ImportBox(placeholder="vectors file (.safetensors, .gguf), then a space and a name if it holds "
                        "several · Escape: close", id="steer-import")

    class ImportRequested(Message):
        """A vectors file to import (``name``: which of its vectors, or None for its only one)."""

        def __init__(self, path: str, name: str | None) -> None:
            super().__init__()
            self.path, self.name = path, name

    def on_mount(self) -> None:
        self.query_one("#steer-norm", DiagnosticsPlot).border_subtitle = "w: CWE directions"
        self.query_one(ImportBox).display = False
        self.show_view("plots")

    def ask_import(self) -> None:
        box = self.query_one(ImportBox)
        box.display = True
        box.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """``PATH`` or ``PATH NAME``: a path that is a file as typed is taken whole (it may hold spaces)."""
        from pathlib import Path

        event.stop()
        event.input.display = False
        self.table.focus()
        text = event.value.strip()
        if not text:
            return
        path, name = text, None
        if not Path(text).expanduser().is_file() and " " in text:
            path, name = (part.strip() for part in text.rsplit(" ", 1))
        self.post_message(self.ImportRequested(str(Path(path).expanduser()), name or None))

    @property
    def view(self) -> str:
        return "cwe" if self.query_one(CweTable).display else "plots"

    def action_switch_view(self) -> None:
        self.show_view("plots" if self.view == "cwe" else "cwe")

    def show_view(self, view: str) -> None:
        cwe = self.query_one(CweTable)
        if view != "cwe" and cwe.has_focus:
            self.table.focus()
        self.query_one("#steer-plots").display = view == "plots"
        cwe.display = view == "cwe"
