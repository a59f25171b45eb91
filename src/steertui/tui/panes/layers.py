"""The layer-access pane: every block's real output type, shape and flags, and its nnsight access path."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable


class LayersPane(DataTable):
    """One row per module of the last probe; blocks in bold, flagged modules in red."""

    BORDER_TITLE = "Layers"
    HELP = """\
## Layers
One real forward of a short C function. Each row is a module: the exact nnsight access path that reaches
its hidden state, the real output type (tensor, or tuple and which element), shape, dtype, mean norm, and
flags for outputs that are all zero or hold NaN/inf.
"""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns("access path", "shape", "flags", "type", "dtype", "‖x‖")
        self.loading = True

    def show_report(self, report: Any) -> None:
        self.loading = False
        self.clear()
        for m in report.modules:
            kind = m.type if m.type != "tuple" else "tuple(" + ", ".join(
                "T" if e.shape is not None else e.type for e in m.elements) + ")"
            flags = ", ".join(m.flags) or "ok"
            style = "red" if m.flags else ("bold" if m.is_block else "")
            row = [m.access, str(tuple(m.shape)) if m.shape else "-", flags, kind[:28], m.dtype or "-",
                   f"{m.norm_mean:.3g}" if m.norm_mean is not None else "-"]
            self.add_row(*[f"[{style}]{c}[/]" if style else c for c in row], key=m.path or "<root>")
        self.border_subtitle = f"{report.n_layers} blocks · {len(report.flagged())} flagged"
