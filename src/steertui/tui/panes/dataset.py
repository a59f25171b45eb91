"""The dataset pane: vulnerable/patched pairs with their CWE, part, caveats, and the data source."""

from __future__ import annotations

from typing import Any

from textual.widgets import DataTable


class DatasetPane(DataTable):
    BORDER_TITLE = "Pairs"
    HELP = """\
## Pairs
The vulnerable/patched pairs of the current data source. The source is named in the pane's title:
results on the builtin examples are not benchmark results. A `!` marks a sample with a known label caveat.
"""

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns("pair", "cwe", "lang", "!")
        self.loading = True

    def show_dataset(self, dataset: Any) -> None:
        self.loading = False
        self.clear()
        for pair in dataset.pairs:
            self.add_row(pair.id, pair.cwe, pair.language, "!" if pair.caveats else "", key=pair.id)
        self.border_title = f"Pairs · {dataset.source.label}"
        self.border_subtitle = f"{len(dataset.pairs)} pairs · {len(dataset.warnings)} warnings"
