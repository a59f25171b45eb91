"""The next-token pane: top-k of one verdict prompt, baseline against steered, with KL and the verdict score."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable


class TokensPane(DataTable):
    """One row per rank: the baseline token and probability beside the steered ones."""

    BORDER_TITLE = "Next tokens"
    HELP = """\
## Next tokens
The selected pair's vulnerable file in the verdict prompt (code, then the question for its CWE, then
`Answer:`), and the model's next-token top-k there: baseline on the left, with the current steering on the
right, KL(steered ‖ baseline) in nats, and the verdict score logit(" Yes") − logit(" No") on both sides.
A changed token is marked `*`.
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
