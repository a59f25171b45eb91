"""Rich tables printed whole, never with a number cut short.

Rich fits a table to the console by shrinking its columns and ending the cells that no longer fit with "…": a
shift of ``-1.46±0.52`` becomes ``-1.46±0…``. Here a table that is wider than the terminal leaves out its least
needed columns instead (in the order the caller names them), and a line under it says which; printed to a file
(a pipe, a saved report) it keeps every column at its natural width.
"""

from __future__ import annotations

from typing import Any, Sequence


def natural_width(console: Any, table: Any) -> int:
    """The columns ``table`` takes when nothing in it is cut: its longest line rendered without a width limit (a
    measurement alone misses a table's edge padding)."""
    from rich.segment import Segment

    lines = console.render_lines(table, console.options.update_width(100_000), pad=False)
    return max((Segment.get_line_length(line) for line in lines), default=0)


def fits(console: Any, table: Any, width: int) -> bool:
    """Whether ``table`` printed ``width`` columns wide cuts nothing: the widths Rich gives its columns there hold
    every cell of a column that does not wrap and the longest word (or the ``min_width``) of one that does, and
    add up to no more than the width. (Rich's own measurement of a table is not what it renders: it counts edge
    padding a table may not draw, and ignores how it squeezes a table that does not fit.)"""
    extra = table._extra_width  # borders and edge padding
    widths = table._calculate_column_widths(console, console.options.update_width(width - extra))
    if sum(widths) + extra > width:
        return False
    wide = console.options.update_width(100_000)
    for w, column in zip(widths, table.columns):
        need = table._measure_column(console, wide, column)
        if w < (need.maximum if column.no_wrap else need.minimum):
            return False
    return True


def fit_columns(console: Any, table: Any, drop: Sequence[str], width: int) -> list[str]:
    """Remove the columns whose headers are in ``drop``, in that order, until ``table`` :func:`fits` ``width``
    columns, or nothing in ``drop`` is left; the headers removed."""
    dropped: list[str] = []
    for name in drop:
        if fits(console, table, width):
            break
        at = next((i for i, c in enumerate(table.columns) if c.header == name), None)
        if at is not None:
            del table.columns[at]  # a column holds its own cells: the rows stay aligned
            dropped.append(name)
    return dropped


def print_table(console: Any, table: Any, drop: Sequence[str] = (), where: str = "--json") -> list[str]:
    """Print ``table`` whole. On a terminal narrower than the table, the columns in ``drop`` are left out one by one
    until it fits, and a line names them and where they are (``where``); to a file or a pipe, the table is printed
    at its natural width (the lines around it keep the console's). A cell still too long for its column (a
    module path, a time stamp) folds onto the next line instead of ending in "…". Returns the headers left out."""
    for column in table.columns:
        if column.overflow == "ellipsis" and not column.no_wrap:
            column.overflow = "fold"
    if not console.is_terminal:
        width = console.width  # print() takes no width above the console's own: widen it for the table alone
        console.width = max(width, natural_width(console, table))
        try:
            console.print(table, crop=False)
        finally:
            console.width = width
        return []
    width = console.width - 1  # a table without borders that fills the terminal exactly loses its last cell
    dropped = fit_columns(console, table, drop, width)
    console.print(table, width=width)
    if dropped:
        console.print(f"[dim]left out to fit {console.width} columns: {', '.join(dropped)} (a wider terminal shows "
                      f"them; {where} has every number)[/]")
    return dropped
