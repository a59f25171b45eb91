"""The lens grid shows what the engine computed: one row per layer, the prompt's last positions as columns, each
cell the layer's real top token there; the delta view is the target's log-probability change; the detail line
spells out the cell under the cursor."""

from __future__ import annotations

import math

import pytest
import torch
from textual.app import App

from steertui.engine import lens
from steertui.engine.steering import Steer
from steertui.tui.panes.lens import LensGrid, LensPane, log_delta, token_label

PROMPT = "int main(void) {\n    char buf[16];\n    gets(buf);\n    return 0;\n}\nIs it vulnerable? Answer:"


class _Host(App):
    def compose(self):
        yield LensPane(id="lens")


@pytest.fixture(scope="module")
def diff(demo_model):
    s = demo_model
    v = torch.randn(s.d_model, generator=torch.Generator().manual_seed(5))
    return lens.lens_diff(s, PROMPT, [Steer(1, v / v.norm() * 20, 1.0)], k=5, positions=slice(-16, None),
                          target=" Yes")


def _cell_text(grid: LensGrid, row: int, col: int) -> str:
    return str(grid.get_cell_at((row, col))).rstrip()


@pytest.mark.parametrize("size, at_least", [((80, 24), 8), ((160, 48), 16)])
async def test_grid_holds_the_engines_top_tokens_for_the_last_positions(diff, size, at_least):
    app = _Host()
    async with app.run_test(size=size) as pilot:
        pane = app.query_one(LensPane)
        pane.show_lens(diff)
        await pilot.pause()
        grid = pane.grid
        base = diff.baseline
        assert grid.row_count == len(base.layers)
        assert len(grid.shown) >= min(at_least, len(base.positions))
        assert grid.shown[-1] == len(base.positions) - 1, "the last position is always shown"
        for r, layer in enumerate(base.layers):
            for c, j in enumerate(grid.shown, start=1):
                assert _cell_text(grid, r, c) == token_label(layer.top[j][0].text).rstrip()
        assert "max |Δp|" in str(pane.border_subtitle) and "baseline" in str(pane.border_subtitle)

        await pilot.press("w")  # steered
        last_row = len(base.layers) - 1
        steered_top = diff.steered.layers[last_row].top[grid.shown[-1]][0].text
        assert _cell_text(grid, last_row, len(grid.shown)) == token_label(steered_top).rstrip()
        assert "steered" in str(pane.border_subtitle)

        await pilot.press("w")  # delta of log p(" Yes")
        b, s = base.layers[last_row], diff.steered.layers[last_row]
        j = grid.shown[-1]
        d = log_delta(b.target_prob[j], s.target_prob[j])
        assert math.isfinite(d) and abs(d) > 0.01, "the steering must move the target for this test"
        assert float(_cell_text(grid, last_row, len(grid.shown))) == pytest.approx(d, abs=0.051)


async def test_detail_line_follows_the_cursor(diff):
    app = _Host()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(LensPane)
        pane.show_lens(diff)
        pane.focus()
        await pilot.pause()
        grid = pane.grid
        grid.move_cursor(row=2, column=len(grid.shown))
        await pilot.pause()
        text = grid.detail()
        j = grid.shown[-1]
        b = diff.baseline.layers[2]
        assert text.startswith(f"layer 2 · position {diff.baseline.positions[j]}")
        assert f"{b.top[j][0].text!r} {b.top[j][0].prob:.2f}" in text
        assert f"rank {b.target_rank[j]}" in text and f"rank {diff.steered.layers[2].target_rank[j]}" in text


async def test_target_key_asks_for_a_token_and_posts_it(diff):
    got = []

    class Host(_Host):
        def on_lens_grid_target_changed(self, message):
            got.append(message.target)

    app = Host()
    async with app.run_test(size=(80, 24)) as pilot:
        pane = app.query_one(LensPane)
        pane.show_lens(diff)
        pane.focus()
        await pilot.pause()
        await pilot.press("T")
        box = app.query_one("#lens-target")
        assert box.display and box.has_focus and box.value == " Yes"
        box.value = " No"
        await pilot.press("enter")
        await pilot.pause()
        assert got == [" No"] and not box.display and pane.grid.has_focus
