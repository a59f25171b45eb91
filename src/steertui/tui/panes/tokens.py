"""The next-token pane: top-k of one verdict prompt, baseline against steered, with KL and the verdict score."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable

from steertui.tui.panes.lens import token_label
from steertui.tui.panes.plots import LensTargetPlot


class TokensPane(DataTable):
    """One row per rank: the baseline token and probability beside the steered ones."""

    BORDER_TITLE = "Next tokens"
    HELP = """\
## Next tokens
The selected pair's vulnerable file in the verdict prompt (code, then the question for its CWE, then
`Answer:`), and the model's next-token top-k there: baseline on the left, with the current steering on the
right, KL(steered ‖ baseline) in nats, and the verdict score logit(" Yes") − logit(" No") on both sides.
A changed token is marked `*`. Under the table (when the terminal has 30 rows or more), the lens target's
probability (`T` in the lens pane changes it; default ` Yes`) at the answer slot at every layer, baseline
(blue) and steered (green), the steered layer marked red: where in the network the verdict forms, and where
the steering moves it. The last layer's value is the model's own output.
"""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns("#", "baseline", "p", "steered", "p", "")
        self.border_subtitle = "t: compute for the selected pair"

    def show_tokens(self, message: Any) -> None:
        """``message``: a TokensComputed (its ``result`` is an engine.ops.NextTokens)."""
        self.clear()
        result = message.result
        row = result.row
        for b, s in zip(row.baseline, row.steered):
            self.add_row(str(b.rank), repr(b.text), f"{b.prob:.3f}", repr(s.text), f"{s.prob:.3f}",
                         "" if b.id == s.id else "*")
        self.border_title = f"Next tokens · {result.sample_id}"
        how = "live preview (t records it)" if getattr(message, "live", False) else "recorded"
        self.border_subtitle = (f"KL {row.kl:.4f} · verdict {result.score_baseline:+.3f} → "
                                f"{result.score_steered:+.3f} · {', '.join(message.steers) or 'no steering'} · {how}")


PLOT_MIN_HEIGHT = 20  # rows the tab needs for the plot beside all ten rows of the table (80×24 has 15)


class TokensView(Vertical):
    """The next-token table above the plot of the lens target by layer (when the tab is tall enough for both);
    the table keeps the focus and the keys."""

    def __init__(self, table: TokensPane, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table = table
        self.has_target = False  # the lens on screen follows a target token

    def on_resize(self) -> None:
        self.show_plot()

    def show_plot(self) -> None:
        self.query_one(LensTargetPlot).display = self.has_target and self.size.height >= PLOT_MIN_HEIGHT

    def compose(self) -> ComposeResult:
        yield self.table
        yield LensTargetPlot(id="tokens-target")

    def show_tokens(self, message: Any) -> None:
        """The table, and the plot from the same result's lens at its last lensed position (the answer slot)."""
        self.table.show_tokens(message)
        lens = message.result.lens
        diff = getattr(lens, "deltas", None) is not None
        base, steered = (lens.baseline, lens.steered) if diff else (lens, None)
        plot = self.query_one(LensTargetPlot)
        self.has_target = base.target_id is not None
        self.show_plot()
        if not self.has_target:
            return
        layers = [layer.layer for layer in base.layers]
        marked = sorted({int(s["layer"]) for s in steered.steers}) if steered is not None else []
        plot.show(layers, [layer.target_prob[-1] for layer in base.layers],
                  None if steered is None else [layer.target_prob[-1] for layer in steered.layers], marked,
                  token_label(base.target_text or "", 12))
