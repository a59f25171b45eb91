"""The steering pane: vectors built from the loaded pairs, one row per layer with its diagnostics, and the same
diagnostics plotted over layers below the table."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable

from steertui.tui.panes.plots import DiagnosticsPlot


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return "-" if x is None or x != x else format(x, spec)


class SteerPane(DataTable):
    """Rows are layers; the highlighted row is the layer that steering writes to."""

    BORDER_TITLE = "Steer"
    HELP = """\
## Steer
`b` builds one contrastive vector per layer from every loaded pair with the current method (`m`; by default
the mean difference, vulnerable minus patched, read at each file's last token; Escape cancels). Each row is
a layer: `‖v‖` the vector's norm, `‖v‖/‖h‖` its norm over the mean residual norm there, `cons` the
consistency of the per-pair differences (mean pairwise cosine), and the held-out AUROC of projecting onto
the vector: `AUC pair` with pairs held out (k-fold),
`AUC CWE` leaving one CWE out. An AUROC near 0.5 means the direction does not separate vulnerable from
patched files it was not built from.

`m` cycles the method of the next build: `mean-diff`, `pca` (the first singular direction of the per-pair
differences) or `probe` (an L2-regularised logistic regression's direction); both are signed towards
vulnerable and scaled to the mean difference's length along them. `p` cycles where the vector is
added: `all` positions, only the `prompt` pass, or only the `generated` tokens (which changes nothing in the
single-forward views, next tokens and lens).

The highlighted row is the steering layer. `+` / `-` change alpha by one step (1/4 of the mean residual norm
over the vector norm), `0` sets it to zero. `t` shows the next tokens of the selected pair's vulnerable file,
baseline against steered.

Below the table the same diagnostics are plotted over layers: the held-out AUROC, `AUC pair` (green) and
`AUC CWE` (yellow), with the chance line at 0.5 (grey); beside it `‖v‖/‖h‖` (magenta). The red vertical line
is the steering layer.
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


class SteerView(Vertical):
    """The steering table above its plot (laid out in app.tcss); the table keeps the focus and the keys."""

    def __init__(self, table: SteerPane, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table = table

    def compose(self) -> ComposeResult:
        yield self.table
        with Horizontal(id="steer-plots"):
            yield DiagnosticsPlot("auroc", id="steer-auroc")
            yield DiagnosticsPlot("norm", id="steer-norm")
