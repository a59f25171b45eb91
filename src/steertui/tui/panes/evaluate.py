"""The evaluation pane: does steering the selected layer shift the verdict on held-out files, per CWE, against a
random vector of equal norm."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable


class EvalPane(DataTable):
    """One row per alpha and CWE (and `all`), as `steertui eval` prints them."""

    BORDER_TITLE = "Evaluate"
    HELP = """\
## Evaluate
`e` runs the held-out evaluation of `steertui eval` for the steering layer at alphas −a, 0 and +a (a: the
current alpha, or one step when it is 0) on every loaded pair. Pairs are split into 3 folds stratified by CWE;
each fold builds its own mean-difference vector from its training pairs only (not the vector in the Steer
pane) and fixes its verdict threshold on its training files' unsteered scores. Per alpha and CWE:
`shift` the mean change of the verdict score logit(" Yes") − logit(" No") on held-out files, `rand` the same
for a random vector of equal norm (the control: a shift no larger than it means nothing), `flip` and
`rflip` the share of verdicts that changed with each, `acc` and `yes` the accuracy and share of "yes"
verdicts before → after (all "yes" or all "no" is visible here), `KL` the mean per-token KL(steered ‖ plain)
on held-out patched files read as code. Alpha 0 must show exactly zero shift, flips and KL.
"""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns("α", "CWE", "n", "shift", "rand", "flip", "rflip", "acc", "yes", "KL")
        self.border_subtitle = "e: evaluate the steering layer"

    def show_result(self, result: Any) -> None:
        self.clear()
        for r in result.rows:
            bold = r.cwe == "all"
            cells = [f"{r.alpha:+.3g}", r.cwe, str(r.n), f"{r.shift:+.2f}", f"{r.random_shift:+.2f}",
                     f"{r.flip_rate:.2f}", f"{r.random_flip_rate:.2f}", f"{r.baseline_accuracy:.2f}→{r.accuracy:.2f}",
                     f"{r.baseline_yes_rate:.2f}→{r.yes_rate:.2f}", f"{r.kl:.3f}"]
            self.add_row(*[f"[b]{c}[/]" if bold else c for c in cells])
        s = result.settings
        self.border_subtitle = (f"layer {', '.join(map(str, s.layers))} · {s.folds} folds by {s.split} · "
                                f"{result.source} · {len(result.truncated)} files truncated")
