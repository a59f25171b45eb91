"""A table wider than the terminal leaves out its least needed columns (named in a line under it) and cuts no
cell short; printed to a file or a pipe it keeps every column at its natural width."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table

from steertui.commands import _tables

ROOT = Path(__file__).resolve().parents[1]


def _terminal(width: int) -> Console:
    return Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None)


def _file(width: int) -> Console:
    return Console(file=io.StringIO(), width=width, color_system=None)


def _left_out(out: str, width: int) -> list[str]:
    """The headers named by the line under a table ([] when there is none)."""
    flat = " ".join(out.split())
    m = re.search(rf"left out to fit {width} columns: (.*?) \(a wider terminal", flat)
    return m.group(1).split(", ") if m else []


def _tour_evaluation():
    from steertui.engine.session import read_session
    from steertui.engine.session.resume import recorded_evaluation

    doc = read_session(ROOT / "sessions" / "demo-tour.toml")
    return recorded_evaluation(doc, next(s for s in doc.steps if s.kind == "evaluate"))


@pytest.mark.parametrize("width", [80, 100, 120, 200])
def test_the_evaluation_table_leaves_out_columns_in_order_and_keeps_every_number_whole(width):
    from steertui.commands.eval import DROP_FIRST, _print_table
    from steertui.engine.ops import beyond_control

    result = _tour_evaluation()
    c = _terminal(width)
    _print_table(result, ["hand-crafted"], c)
    out = c.file.getvalue()
    assert "…" not in out and max(map(len, out.splitlines())) <= width
    dropped = _left_out(out, width)
    assert dropped == list(DROP_FIRST[: len(dropped)])  # the least needed first, in the declared order
    assert (dropped == []) == (width == 200) and len(dropped) < len(DROP_FIRST)
    header = next(line for line in out.splitlines() if "layer" in line and "vs rand" in line)
    for name in ("layer", "alpha", "cwe", "shift", "vs rand"):
        assert name in header
    for r in result.rows:  # the shift and the shift beyond the control, as the table writes them, whole
        assert f"{r.shift:+.3f}" in out and beyond_control(r) in out


def test_printed_to_a_file_the_evaluation_table_keeps_every_column():
    from steertui.commands.eval import DROP_FIRST, _print_table

    result = _tour_evaluation()
    c = _file(80)
    _print_table(result, ["hand-crafted"], c)
    out = c.file.getvalue()
    assert "…" not in out and "left out" not in out
    header = " ".join(line for line in out.splitlines() if "┃" in line)
    assert all(name in header for name in DROP_FIRST)
    assert max(map(len, out.splitlines())) > 80  # the table at its own width, not the console's
    prose = [line for line in out.splitlines() if line.startswith("vs rand:")]
    assert prose and len(prose[0]) <= 80  # the lines around it keep the console's width


@pytest.mark.parametrize("width", [80, 100, 120])
def test_the_layers_table_keeps_every_access_path_its_type_and_flags(demo_model, width):
    from steertui.commands.layers import _print_table
    from steertui.engine.layers import DEFAULT_PROMPT, probe_layers

    report = probe_layers(demo_model, DEFAULT_PROMPT)
    c = _terminal(width)
    _print_table(report, report.modules, c)
    out = c.file.getvalue()
    assert "…" not in out and max(map(len, out.splitlines())) <= width
    lines = out.splitlines()
    for m in report.modules:  # each path whole at the start of its own line, with its flags at the end
        line = next(line for line in lines if line.startswith(m.access + " "))
        assert line.rstrip().endswith(", ".join(m.flags) or "ok")
    assert "module" in _left_out(out, width)


def test_the_bench_table_keeps_each_rows_ratio_target_and_check():
    from steertui.commands.bench import print_table
    from steertui.engine.bench import BenchReport, ratio_text

    report = BenchReport.from_dict(json.loads((ROOT / "tests" / "data" / "bench-quick-eval.json").read_text()))
    for width in (80, 120, 240):
        c = _terminal(width)
        print_table(report, c)
        out = c.file.getvalue()
        assert "…" not in out and max(map(len, out.splitlines())) <= width
        flat = " ".join(re.sub(r"[│┃]", " ", out).split())
        for r in report.results:
            assert r.name in out and ratio_text(r.ratio) in out
            assert " ".join(r.check.split()) in flat  # the check's words all there, in order, wrapped or not
        assert (_left_out(out, width) == []) == (width == 240)


def test_a_table_that_fits_is_printed_as_it_is():
    table = Table()
    for name in ("a", "b"):
        table.add_column(name)
    table.add_row("1.25", "x y")
    c = _terminal(40)
    assert _tables.print_table(c, table, ("a", "b")) == []
    assert [col.header for col in table.columns] == ["a", "b"] and "left out" not in c.file.getvalue()
    # and a column of prose folds a word longer than its width instead of ending it in "…"
    wide = Table()
    wide.add_column("path")
    wide.add_row("model.transformer.h[{layer}].output" * 3)
    c = _terminal(40)
    _tables.print_table(c, wide)
    assert "…" not in c.file.getvalue()
    cells = "".join(re.sub(r"[│┃┏┓┗┛━┡┩└┘─ ]", "", line) for line in c.file.getvalue().splitlines()[3:])
    assert cells == "model.transformer.h[{layer}].output" * 3
