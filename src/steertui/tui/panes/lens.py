"""The logit-lens pane: every layer's next-token guess at the verdict slot, baseline against steered."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable


def _tops(row: Any, n: int = 1) -> str:
    return " ".join(f"{t.text!r} {t.prob:.2f}" for t in row[:n])


class LensPane(DataTable):
    """One row per layer: the top tokens of the lens without and with steering, and p(" Yes") on both sides."""

    BORDER_TITLE = "Lens"
    HELP = """\
## Lens
The logit lens at the verdict prompt's last token (`Answer:`), computed with `t`: each layer's hidden state
put through the model's final norm and unembedding, baseline and steered in one batched forward. Per layer:
the top token and its probability on each side, p(" Yes") on each side, and the token whose
probability steering changed most (Δp). The subtitle gives the check that makes the lens trustworthy: at the
last layer it must equal the model's real next-token distribution (max |Δp| shown).
"""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns("layer", "baseline", "steered", "p(Yes)", "most changed")
        self.border_subtitle = "t: compute for the selected pair"

    def show_lens(self, lens: Any) -> None:
        """``lens``: a LensDiff, or a plain LensResult when nothing is steered (both sides are then the same)."""
        self.clear()
        diff = getattr(lens, "deltas", None) is not None
        base, steered = (lens.baseline, lens.steered) if diff else (lens, lens)
        for i, (b, s) in enumerate(zip(base.layers, steered.layers)):
            yes = (f"{b.target_prob[0]:.2g}→{s.target_prob[0]:.2g}" if b.target_prob is not None else "-")
            top = lens.deltas[i].top[0][0] if diff and lens.deltas[i].top and lens.deltas[i].top[0] else None
            moved = f"{top.text!r} {top.delta:+.3f}" if top is not None else "-"
            self.add_row(str(b.layer), _tops(b.top[0]), _tops(s.top[0]), yes, moved, key=str(b.layer))
        self.border_subtitle = (f"last layer vs real softmax: max |Δp| {base.final_logits_check:.1e} · "
                                f"{base.token_texts[-1]!r} at position {base.positions[0]}")
