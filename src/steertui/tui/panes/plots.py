"""The console's plots (textual-plot): per-layer diagnostics over layers, and the verdict against alpha.

Both are read-only pictures of results the panes already hold: they take no focus (their pan and zoom keys would
shadow the console's), and each names its lines in its border title, in the lines' colours.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from textual.app import ComposeResult
from textual.containers import Grid
from textual.geometry import Region
from textual.strip import Strip
from textual_hires_canvas import Canvas
from textual_plot import HiResMode, PlotWidget
from textual_plot.plot_widget import Legend

BRAILLE = HiResMode.BRAILLE
CHANCE = "grey50"  # the chance line, and the unsteered level
MARK = "bold red"  # the steering layer, the current alpha
SERIES = (("pair", "green"), ("CWE", "yellow"), ("‖v‖/‖h‖", "magenta"))  # AUROC by pair, leaving a CWE out; norm ratio
VECTOR, RANDOM = "green", "yellow"


def key(*items: tuple[str, str]) -> str:
    """A one-line legend in markup: each name after a line of its colour."""
    return " ".join(f"[{style}]━[/] {name}" for name, style in items)


def _value(x: float | None) -> float:
    return float("nan") if x is None or not math.isfinite(x) else float(x)


class PlotCanvas(Canvas):
    """A plot's canvas that works out its base style once per paint. The canvas reads ``rich_style`` for every
    line it renders, and Textual computes it afresh each time from all of the widget's ancestors: in the Steer
    pane that was 178 computations, about 15 ms of a 40 ms repaint, for one value that a paint cannot change."""

    _paint_style: Any = None

    def render_lines(self, crop: Region) -> list[Strip]:
        self._paint_style = super().rich_style
        try:
            return super().render_lines(crop)
        finally:
            self._paint_style = None

    @property
    def rich_style(self) -> Any:
        return self._paint_style if self._paint_style is not None else super().rich_style


class Plot(PlotWidget, can_focus=False):
    """A PlotWidget with small margins (tick labels only) that never takes focus."""

    DEFAULT_CSS = """
    Plot { height: 1fr; width: 1fr; min-height: 5; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_pan_and_zoom=False, **kwargs)

    def compose(self) -> ComposeResult:
        """PlotWidget's own widgets (the margins and plot area in a grid, then the legend), on PlotCanvas."""
        with Grid():
            for part in ("margin-top", "margin-left", "plot", "margin-bottom"):
                yield PlotCanvas(1, 1, id=part)
        yield Legend(id="legend")

    def on_mount(self) -> None:
        self.margin_top, self.margin_bottom, self.margin_left = 0, 1, 6  # no axis labels: the title names them


class DiagnosticsPlot(Plot):
    """One kind of per-layer diagnostic over layers, the steering layer marked by a red vertical line: the
    held-out AUROC (by pair, and leaving a CWE out) with the chance line at 0.5, or the vector's norm over the
    layer's mean residual norm."""

    def __init__(self, kind: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.kind = kind  # "auroc" or "norm"
        self.series = SERIES[:2] if kind == "auroc" else SERIES[2:]
        self.border_title = ("AUROC " if kind == "auroc" else "") + key(*self.series)
        self.plotted: list[int] = []  # the layers on the x axis
        self.marked: int | None = None

    def show(self, diagnostics: Sequence[Any], layer: int | None) -> None:
        """Plot ``diagnostics`` (engine.vectors.LayerDiagnostics or their records) with ``layer`` marked."""
        self.plotted, self.marked = [d.layer for d in diagnostics], layer
        self.clear()
        if not diagnostics:
            return
        x = self.plotted
        lo, hi = min(x), max(x)
        if self.kind == "auroc":
            columns = [[_value(d.auroc_pairs) for d in diagnostics], [_value(d.auroc_cwe) for d in diagnostics]]
            self.plot([lo, hi], [0.5, 0.5], line_style=CHANCE, hires_mode=BRAILLE)
        else:
            columns = [[_value(d.norm_ratio) for d in diagnostics]]
        for (name, style), y in zip(self.series, columns):
            self.plot(x, y, line_style=style, hires_mode=BRAILLE, label=name)
        if layer is not None:
            self.add_v_line(layer, line_style=MARK)
        values = [y for col in columns for y in col if math.isfinite(y)] + ([0.5] if self.kind == "auroc" else [0.0])
        pad = 0.08 * (max(values) - min(values) or 1.0)
        self.set_ylimits(max(0.0, min(values) - pad), max(values) + pad)
        self.set_xlimits(lo, hi if hi > lo else lo + 1)
        self.set_xticks(x if len(x) <= 8 else None)


class SweepPlot(Plot):
    """One verdict measure against alpha: the vector's line, the random control's, and the unsteered level."""

    def show(self, alphas: Sequence[float], vector: Sequence[float], random: Sequence[float], baseline: float,
             limits: tuple[float, float] | None = None, mark: float | None = None) -> None:
        self.clear()
        lo, hi = min(alphas), max(alphas)
        self.plot([lo, hi], [baseline, baseline], line_style=CHANCE, hires_mode=BRAILLE)
        self.plot(alphas, random, line_style=RANDOM, hires_mode=BRAILLE, label="random")
        self.plot(alphas, vector, line_style=VECTOR, hires_mode=BRAILLE, label="vector")
        if mark is not None and lo <= mark <= hi:
            self.add_v_line(mark, line_style=MARK)
        self.set_xlimits(lo, hi if hi > lo else lo + 1)
        if limits is not None:
            self.set_ylimits(*limits)
        else:
            values = [v for v in (*vector, *random, baseline) if math.isfinite(v)] or [0.0]
            pad = 0.05 * (max(values) - min(values) or 1.0)
            self.set_ylimits(min(values) - pad, max(values) + pad)
        self.set_xticks([lo, 0.0, hi] if lo < 0 < hi else None)


BASELINE = "dodger_blue1"


class LensTargetPlot(Plot):
    """The lens target's probability at the answer slot at every layer, baseline and steered, the steered layers
    marked: where in the network the verdict forms, and where the steering moves it."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.plotted: list[int] = []
        self.values: tuple[list[float], list[float]] = ([], [])
        self.marked: list[int] = []

    def show(self, layers: Sequence[int], baseline: Sequence[float], steered: Sequence[float] | None,
             marked: Sequence[int], target: str) -> None:
        """``steered`` None: nothing is steered (one line)."""
        self.plotted, self.marked = list(layers), list(marked)
        self.values = (list(baseline), list(steered) if steered is not None else list(baseline))
        self.clear()
        series = [("baseline", BASELINE)] + ([("steered", VECTOR)] if steered is not None else [])
        self.border_title = f"p({target}) at the answer slot by layer: " + key(*series)
        if not layers:
            return
        lo, hi = min(layers), max(layers)
        self.plot(list(layers), list(baseline), line_style=BASELINE, hires_mode=BRAILLE, label="baseline")
        if steered is not None:
            self.plot(list(layers), list(steered), line_style=VECTOR, hires_mode=BRAILLE, label="steered")
        for layer in marked:
            self.add_v_line(layer, line_style=MARK)
        self.set_ylimits(0.0, 1.0)
        self.set_xlimits(lo, hi if hi > lo else lo + 1)
        self.set_xticks(list(layers) if len(layers) <= 8 else None)
