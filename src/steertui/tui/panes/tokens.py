"""The next-token pane: top-k of one verdict prompt, baseline against steered, with KL and the verdict score."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable

from steertui.tui.panes.lens import delta_style, token_label
from steertui.tui.panes.plots import LensTargetPlot


class TokensPane(DataTable):
    """One row per rank: the baseline token and probability beside the steered ones."""

    BORDER_TITLE = "Next tokens"
    BINDINGS = [Binding("w", "app.toggle_attribution", "Plot / by layer", id="attribution",
                        tooltip="under the table: the lens target by layer, or the verdict score written by "
                        "each layer's attention and MLP and by the steering (one more forward)")]
    HELP = """\
## Next tokens
The selected pair's vulnerable file in the verdict prompt (code, then the question for its CWE, then
`Answer:`), and the model's next-token top-k there: baseline on the left, with the current steering on the
right, KL(steered ‖ baseline) in nats, and the verdict score logit(" Yes") − logit(" No") on both sides.
A changed token is marked `*`. Under the table (when the terminal has 30 rows or more), the lens target's
probability (`T` in the lens pane changes it; default ` Yes`) at the answer slot at every layer, baseline
(blue) and steered (green), the steered layer marked red: where in the network the verdict forms, and where
the steering moves it. The last layer's value is the model's own output.

`w` shows instead where the verdict score is written: its direct contribution from the embeddings, from each
layer's attention and MLP, and from the steering added at a layer, baseline → steered, with the change
(steered − baseline) of each layer's total. The final norm's scale is frozen at each side's final residual,
which makes the split exact: the rows add up to the score (the bottom line gives the check). A steer's own
row is its direct effect; the change of the later layers' rows is what they did with it. One more forward of
both rows per update while it is shown; `w` again returns to the plot.
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
        shots = result.prompt.shot_pair
        self.border_title = f"Next tokens · {result.sample_id}" + (f" after {shots}" if shots else "")
        how = "live preview (t records it)" if getattr(message, "live", False) else "recorded"
        self.border_subtitle = (f"KL {row.kl:.4f} · verdict {result.score_baseline:+.3f} → "
                                f"{result.score_steered:+.3f} · {', '.join(message.steers) or 'no steering'} · {how}")


PLOT_MIN_HEIGHT = 20  # rows the tab needs for the plot beside all ten rows of the table (80×24 has 15)


def _pair(b: float | None, s: float | None) -> str:
    """A baseline → steered cell (the baseline alone without a steered side)."""
    if b is None:
        return "-"
    return f"{b:+.2f}" if s is None else f"{b:+.2f}→{s:+.2f}"


class AttributionTable(DataTable):
    """The verdict score's direct contributions by layer (engine.attribution.VerdictAttribution): per layer its
    attention, its MLP and the steering added there, baseline → steered, and the change of the layer's total."""

    BORDER_TITLE = "Verdict written by layer"

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True

    def show(self, split: Any) -> None:
        """``split``: an engine.attribution.VerdictAttribution."""
        b, s = split.baseline, split.steered
        self.clear(columns=True)
        self.add_columns("layer", "attn", "mlp" if split.split else "-", "steer", "Δ total")
        scale = max([abs(sp.total - bp.total) for bp, sp in zip(b.layers, s.layers)] if s else [0.0]) or 1.0
        steered = {int(x["layer"]) for x in split.steers}
        self.add_row("embed", _pair(b.embed, s.embed if s else None), "", "", "")
        for i, bp in enumerate(b.layers):
            sp = s.layers[i] if s else None
            delta = Text(f"{sp.total - bp.total:+.2f}", style=delta_style(sp.total - bp.total, scale)) if sp else ""
            self.add_row(f"{'▸' if bp.layer in steered else ' '}{bp.layer}", _pair(bp.attn, sp.attn if sp else None),
                         _pair(bp.mlp, sp.mlp if sp else None), f"{sp.steer:+.2f}" if sp and sp.steer else "",
                         delta, key=str(bp.layer))
        self.add_row("const", _pair(b.constant, s.constant if s else None), "", "", "")
        score = _pair(b.score, s.score if s else None)
        worst = max(b.check, s.check if s else 0.0)
        self.add_row(Text("score", style="bold"), Text(score, style="bold"), "", "", f"±{worst:.0e}")
        a = split.answers
        self.border_subtitle = (f"direct contributions to logit({a.yes!r}) − logit({a.no!r}), final "
                                f"{'LayerNorm' if split.norm == 'layernorm' else 'RMSNorm'} scale frozen; rows sum "
                                f"to the score within {worst:.0e}")


class TokensView(Vertical):
    """The next-token table above the plot of the lens target by layer (when the tab is tall enough for both);
    the table keeps the focus and the keys."""

    def __init__(self, table: TokensPane, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table = table
        self.has_target = False  # the lens on screen follows a target token
        self.by_layer = False  # `w`: the attribution table instead of the plot
        self.has_split = False  # the result on screen has its attribution

    def on_resize(self) -> None:
        self.show_plot()

    def show_plot(self) -> None:
        tall = self.size.height >= PLOT_MIN_HEIGHT
        self.query_one(LensTargetPlot).display = self.has_target and tall and not self.by_layer
        self.query_one(AttributionTable).display = self.has_split and tall and self.by_layer

    def compose(self) -> ComposeResult:
        yield self.table
        yield LensTargetPlot(id="tokens-target")
        yield AttributionTable(id="tokens-split")

    def show_tokens(self, message: Any) -> None:
        """The table, and the plot from the same result's lens at its last lensed position (the answer slot)."""
        self.table.show_tokens(message)
        split = message.result.attribution
        self.has_split = split is not None
        if split is not None:
            self.query_one(AttributionTable).show(split)
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
