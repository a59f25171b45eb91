"""The layer-access pane: every module's real output type, shape and flags, its nnsight access path, and under
the table what the module under the cursor holds."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

LABEL_WIDTH = 13  # the detail's label column ("‖x‖ by token")
WIDE = 72  # from this width of the tab, the detail's labels get a column of their own


class LayersPane(DataTable):
    """One row per module of the last probe; blocks in bold, flagged modules in red."""

    BORDER_TITLE = "Layers"
    BINDINGS = [Binding("right_square_bracket", "block(1)", "Next block", show=False,
                        tooltip="the cursor to the next block (a layer's output)"),
                Binding("left_square_bracket", "block(-1)", "Previous block", show=False,
                        tooltip="the cursor to the previous block")]
    HELP = """\
## Layers
One real forward of a short C function (`r`: of the selected pair's verdict prompt). Each row is a module:
the exact nnsight access path that reaches its tensor, the real output type (tensor, or tuple and which
element), shape, dtype, mean norm, and flags for outputs that are all zero or hold NaN/inf. Under the table, the module under the cursor: the access
that reads it and the one that looks right and is not (`.output[0]` on a block that returns a tensor is
batch row 0, not the hidden state), its values (mean, std, min, max), each token's norm as a sparkline
with the largest and smallest (an attention sink is one token far above the rest; a dead read is all low),
the first values at the last token and its largest components. `]` / `[` move to the next and previous
block (a layer's output, in bold). `r` probes again, on the selected pair's verdict prompt (the text the
next tokens and the evaluation run on): the subtitle names what was run.
"""

    def on_mount(self) -> None:
        self.blocks: list[int] = []  # the rows of the blocks, in order
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns("access path", "shape", "flags", "type", "dtype", "‖x‖")
        self.loading = True

    def show_report(self, report: Any, prompt: str = "a short C function") -> None:
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
        self.blocks = [r for r, m in enumerate(report.modules) if m.is_block]
        self.border_subtitle = (f"{report.n_layers} blocks · {len(report.flagged())} flagged · "
                                f"{prompt}, {report.n_tokens} tokens")

    def action_block(self, step: int) -> None:
        """Move the cursor to the next (``step`` 1) or previous (-1) block row, if there is one."""
        here = self.cursor_row
        rows = [r for r in self.blocks if (r > here if step > 0 else r < here)]
        if rows:
            self.move_cursor(row=rows[0] if step > 0 else rows[-1])

    def on_data_table_row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        view = self.parent
        if isinstance(view, LayersView):
            view.show_detail()


class LayersView(Vertical):
    """The module table above the detail of the module under its cursor; the table keeps the focus and keys."""

    def __init__(self, table: LayersPane, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.table = table
        self.report: Any = None

    def compose(self) -> ComposeResult:
        yield self.table
        yield Static("", id="layers-detail")

    def show_report(self, report: Any, prompt: str = "a short C function") -> None:
        self.report = report
        self.table.show_report(report, prompt)
        self.show_detail()

    def on_resize(self) -> None:
        self.show_detail()

    def show_detail(self) -> None:
        detail = self.query_one("#layers-detail", Static)
        table = self.table
        if self.report is None or not table.row_count:
            detail.display = False
            return
        from steertui.engine.layers import module_detail

        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        m = self.report.module("" if key == "<root>" else key)
        wide = self.size.width >= WIDE
        room = max(8, self.size.width - (LABEL_WIDTH + 4 if wide else len("‖x‖ by token") + 3))
        lines = module_detail(self.report, m, room)
        if wide:  # labels in their own column, each line wrapped beside its label
            shown: Any = Table.grid(padding=(0, 1), expand=True)
            shown.add_column(width=LABEL_WIDTH, justify="right", style="dim", no_wrap=True)
            shown.add_column(ratio=1)
            for label, line in lines:
                shown.add_row(label, Text(line, style="red" if label in ("not", "flags") else ""))
        else:  # narrow (80 columns): each label leads its line, so the text keeps the width
            shown = Text()
            for i, (label, line) in enumerate(lines):
                shown.append(("\n" if i else "") + (f"{label} " if label else ""), style="dim")
                shown.append(line, style="red" if label in ("not", "flags") else "")
        detail.update(shown)
        detail.display = True
