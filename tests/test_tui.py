"""Pilot tests: the console loads the demo model and the data in workers and shows what was computed."""

from __future__ import annotations

import io
import tomllib
from contextlib import asynccontextmanager

import pytest
import tomli_w
from rich.console import Console

from steertui.tui.app import SteerApp
from steertui.tui.panes.dataset import DatasetPane
from steertui.tui.panes.layers import LayersPane


async def _settle(app, pilot):
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def _until(pilot, condition, tries=600):
    """Let the app run until ``condition()`` holds (a cancelled job's thread reports after its worker ended)."""
    for _ in range(tries):
        if condition():
            return
        await pilot.pause(0.05)
    assert condition()


@asynccontextmanager
async def _console(demo_model_path, *, build=False, size=(100, 30)):
    """The console on the demo model and the builtin examples, settled; with ``build``, after pressing b."""
    app = SteerApp(model=str(demo_model_path), dataset="builtin")
    async with app.run_test(size=size) as pilot:
        await _settle(app, pilot)
        if build:
            await pilot.press("b")
            await _settle(app, pilot)
        yield app, pilot


async def test_console_shows_layers_and_pairs(demo_model_path):
    async with _console(demo_model_path, size=(120, 40)) as (app, pilot):
        assert not app.failures, app.failures
        assert app.model is not None and app.layers_report is not None
        layers = app.query_one(LayersPane)
        assert layers.row_count == len(app.layers_report.modules)
        blocks = app.layers_report.blocks()
        assert len(blocks) == app.model.n_layers
        assert all(b.shape == [1, app.layers_report.n_tokens, app.model.d_model] and not b.flags for b in blocks)
        pairs = app.query_one(DatasetPane)
        assert pairs.row_count == len(app.dataset.pairs) > 0
        assert "builtin examples" in pairs.border_title
        await pilot.press("l")
        assert app.focused is layers
        await pilot.press("d")
        assert app.focused is pairs


async def test_layers_detail_follows_the_cursor_and_brackets_walk_the_blocks(demo_model_path):
    """Under the module table, the module under the cursor: the engine's detail lines, line for line; `]`/`[`
    move the cursor from block to block."""
    from steertui.engine.layers import module_detail

    async with _console(demo_model_path, size=(160, 48)) as (app, pilot):
        report, layers = app.layers_report, app.query_one(LayersPane)
        detail = app.query_one("#layers-detail")

        def shown() -> list[str]:  # the detail as the pane draws it, at its width
            out = Console(width=detail.content_size.width, file=io.StringIO(), color_system=None)
            out.print(detail.content)
            return [line.rstrip() for line in out.file.getvalue().splitlines()]

        await pilot.press("l")
        assert detail.display and layers.cursor_row == 0
        assert shown()[0].split(maxsplit=1)[1].startswith(f"{report.modules[0].path} · ")
        blocks = [r for r, m in enumerate(report.modules) if m.is_block]
        for want in blocks:
            await pilot.press("right_square_bracket")
            assert layers.cursor_row == want
        await pilot.press("right_square_bracket")  # past the last block: the cursor stays
        assert layers.cursor_row == blocks[-1]
        await pilot.press("left_square_bracket")
        assert layers.cursor_row == blocks[-2]
        await pilot.pause()
        m = report.modules[blocks[-2]]
        lines = module_detail(report, m, 10_000)
        text = "\n".join(shown())
        for label, line in lines:
            if label == "‖x‖ by token":  # as wide as the pane allows
                continue
            assert f"{label} {line}".strip() in text, (label, line)
        assert f"model.transformer.h[{m.layer}].output[0] is batch row 0" in text

        # r: the probe runs on the selected pair's verdict prompt, and the pane says so
        from steertui.engine import ops

        await pilot.press("d", "down", "down", "r")
        await _settle(app, pilot)
        pair = app.selected_pair()
        want = ops.verdict_prompt(app.model, pair).text
        assert app.layers_report.prompt == want and pair.id == app.dataset.pairs[2].id
        assert app.layers_report.n_tokens == app.model.encode([want])["input_ids"].shape[1] > report.n_tokens
        assert layers.border_subtitle.endswith(f"the verdict prompt of {pair.id}, {app.layers_report.n_tokens} tokens")
        assert layers.row_count == len(app.layers_report.modules)


async def test_tokens_tab_shows_where_the_verdict_is_written(demo_model_path):
    """`w` in the Tokens tab: the verdict attribution by layer under the next tokens (a live preview computes it
    for the result on screen), the headless numbers exactly; `t` then records the usual steps only; `w` again
    brings the plot back."""
    from steertui.engine import ops
    from steertui.engine.steering import Steer
    from steertui.tui.panes.plots import LensTargetPlot
    from steertui.tui.panes.tokens import AttributionTable

    async with _console(demo_model_path, build=True, size=(120, 48)) as (app, pilot):
        await pilot.press("plus", "plus", "n", "t")
        await _settle(app, pilot)
        assert app.tokens.result.attribution is None
        table, plot = app.query_one(AttributionTable), app.query_one(LensTargetPlot)
        assert plot.display and not table.display
        await pilot.press("w")
        await _until(pilot, lambda: app.tokens.result.attribution is not None and not app.steer_jobs())
        await _settle(app, pilot)
        assert table.display and not plot.display and app.tokens.live
        d, n = app.steering_layer(), app.model.n_layers
        headless = ops.next_tokens(app.model, app.selected_pair(), [Steer(d.layer, app.build.vectors[d.layer],
                                                                          app.alpha())], attribution=True)
        want, got = headless.attribution, app.tokens.result.attribution
        assert got.to_dict() == {**want.to_dict(), "steers": got.to_dict()["steers"]}
        assert table.row_count == n + 3  # embed, every layer, const, score
        for i, (b, s) in enumerate(zip(want.baseline.layers, want.steered.layers)):
            row = [str(c) for c in table.get_row_at(1 + i)]
            assert row[0] == f"{'▸' if i == d.layer else ' '}{i}"
            assert row[1:4] == [f"{b.attn:+.2f}→{s.attn:+.2f}", f"{b.mlp:+.2f}→{s.mlp:+.2f}",
                                f"{s.steer:+.2f}" if s.steer else ""]
            assert row[4] == f"{s.total - b.total:+.2f}"
        assert str(table.get_row_at(n + 2)[1]) == f"{want.baseline.score:+.2f}→{want.steered.score:+.2f}"
        kinds = [st.kind for st in app.recorder.steps]
        await pilot.press("t")
        await _settle(app, pilot)
        assert app.tokens.result.attribution is not None and not app.tokens.live
        assert [st.kind for st in app.recorder.steps] == kinds + ["top_tokens", "lens"]
        await pilot.press("w")
        assert plot.display and not table.display


async def test_console_survives_a_bad_model(tmp_path):
    app = SteerApp(model=str(tmp_path / "missing"), dataset="builtin")
    async with app.run_test(size=(100, 30)) as pilot:
        await _settle(app, pilot)
        assert app.model is None
        assert [f.job for f in app.failures] == ["load model"]
        assert "does not exist" in app.failures[0].error


async def test_console_opens_a_session(demo_model_path):
    from pathlib import Path

    from steertui.engine.session.store import read_session

    path = Path(__file__).resolve().parents[1] / "sessions" / "demo-tour.toml"
    doc = read_session(path)
    app = SteerApp(session_file=str(path))
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        assert not app.failures, app.failures
        assert len(app.session_steps) == len(doc.steps) > 0
        assert app.model.info.weights_sha256 == doc.model.weights_sha256
        assert app.dataset is not None and app.dataset.source.label == "builtin examples"
        assert app.query_one(LayersPane).row_count > 0


def test_cli_session_bad_file_exits_2(tmp_path, capsys):
    from steertui.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    assert main(["--session", str(bad)]) == 2
    assert "bad.toml" in capsys.readouterr().err


async def test_console_builds_vectors_and_steers_the_next_tokens(demo_model_path):
    import torch

    from steertui.engine import gendiff, ops, verdict
    from steertui.engine.build import build_vectors
    from steertui.engine.steering import Steer
    from steertui.tui.app import ALPHA_STEP
    from steertui.tui.panes.steer import SteerPane
    from steertui.tui.panes.tokens import TokensPane
    from tolerances import EPS64, FORWARD, SAME_OP, logit_tol

    async with _console(demo_model_path, build=True) as (app, pilot):
        assert not app.failures, app.failures
        s, pairs = app.model, list(app.dataset.pairs)
        ref = build_vectors(s, pairs, method="mean-diff", readout="last", seed=0)
        assert app.build.diagnostics == ref.diagnostics  # the pane shows exactly what the engine computes
        assert all(torch.equal(app.build.vectors[L], ref.vectors.vectors[L]) for L in range(s.n_layers))
        assert app.query_one(SteerPane).row_count == s.n_layers and app.focused is app.query_one(SteerPane)
        best = max(ref.diagnostics, key=lambda d: d.auroc_pairs)
        assert app.steering_layer().layer == best.layer

        await pilot.press("plus", "plus")
        d = app.steering_layer()
        # the console's formula: the same three float64 operations, however grouped at most two roundings apart
        assert app.alpha_steps == 2
        assert app.alpha() == pytest.approx(2 * ALPHA_STEP * d.residual_norm / d.vector_norm, rel=2 * EPS64, abs=0)
        await pilot.press("d", "down", "t")  # second pair, vulnerable file
        await _settle(app, pilot)
        assert not app.failures, app.failures
        pair, result = pairs[1], app.tokens.result
        assert result.sample_id == pair.vulnerable.id
        prompt = verdict.build_prompt(s, pair.vulnerable.code, pair.vulnerable.cwe_name).text
        assert result.prompt.text == prompt  # the file fits: the verdict prompt is the whole file
        steer = [Steer(d.layer, ref.vectors.vectors[d.layer], app.alpha())]
        # the job is the headless operation, recorded: the same numbers exactly
        headless = ops.next_tokens(s, pair, steer)
        assert [t.id for t in headless.row.steered] == [t.id for t in result.row.steered]
        assert (headless.row.kl, headless.score_baseline, headless.score_steered) == \
            (result.row.kl, result.score_baseline, result.score_steered)
        for side in ("baseline", "steered"):  # (the recorded steer carries the vector's name, this one none)
            assert [x.to_dict() for x in getattr(headless.lens, side).layers] == \
                [x.to_dict() for x in getattr(result.lens, side).layers]
        assert [x.to_dict() for x in headless.lens.deltas] == [x.to_dict() for x in result.lens.deltas]
        want = gendiff.top_tokens(s, [prompt], steer, k=10).rows[0]
        got = result.row
        assert [t.id for t in got.baseline] == [t.id for t in want.baseline]
        assert [t.id for t in got.steered] == [t.id for t in want.steered]
        # the console ran the same call on the same prompt and vector: a replay, so exactly equal; and the KL is
        # not 0, which it is exactly when both sides are the same computation (alpha 0, below)
        assert got.kl == want.kl and got.kl > 0
        answers = verdict.answer_tokens(s)
        tol = logit_tol(s, FORWARD)  # the score read from the top-token forward against the verdict's own forward
        assert result.answers == answers
        assert result.score_baseline == pytest.approx(float(verdict.score(s, [prompt], answers)[0]), abs=tol)
        assert result.score_steered == pytest.approx(
            float(verdict.score(s, [prompt], answers, steers=steer)[0]), abs=tol)
        assert result.score_steered != pytest.approx(result.score_baseline, abs=tol)
        assert app.query_one(TokensPane).row_count == 10 and "KL" in app.query_one(TokensPane).border_subtitle

        # the lens at the same slot, baseline and steered, equals the engine's
        from steertui.engine.lens import lens_diff
        from steertui.tui.panes.lens import LensPane

        # the grid's window: the prompt's last 16 positions, the answer slot last
        want_lens, lens = lens_diff(s, prompt, steer, k=5, target=" Yes", positions=slice(-16, None)), result.lens
        assert lens.baseline.positions == tuple(range(len(lens.baseline.token_ids) - 16, len(lens.baseline.token_ids)))
        for side in ("baseline", "steered"):
            a, b = getattr(lens, side), getattr(want_lens, side)
            assert [[[t.id for t in col] for col in x.top] for x in a.layers] == \
                [[[t.id for t in col] for col in x.top] for x in b.layers]
            assert [x.target_prob for x in a.layers] == [x.target_prob for x in b.layers]  # a replay
        # the lens of the last layer against the real output: one matmul over another number of rows
        assert lens.baseline.final_logits_check <= logit_tol(s, SAME_OP) and lens.baseline.target_text == " Yes"
        assert app.query_one(LensPane).grid.row_count == s.n_layers
        assert [st.kind for st in app.recorder.steps] == ["build_vectors", "top_tokens", "lens"]
        # under the table: p(" Yes") at the answer slot by layer, both sides, the steered layer marked
        from steertui.tui.panes.plots import LensTargetPlot

        plot = app.query_one(LensTargetPlot)
        assert plot.plotted == list(range(s.n_layers)) and plot.marked == [d.layer]
        assert plot.values == ([x.target_prob[-1] for x in want_lens.baseline.layers],
                               [x.target_prob[-1] for x in want_lens.steered.layers])
        assert plot.values[0] != plot.values[1]  # steering moved it
        assert plot.values[0][:d.layer] == plot.values[1][:d.layer]  # layers before the steered one cannot see it
        # the last layer is the model's output: p(" Yes") from the top-token forward
        for side, logits in enumerate(result.top.logits):
            assert plot.values[side][-1] == pytest.approx(float(logits[0].softmax(-1)[answers.yes_id]), abs=1e-5)
        assert "Yes" in plot.border_title and plot.region.height >= 5
        await pilot.resize_terminal(80, 24)  # too short for both: the table keeps all its rows
        await pilot.pause()
        assert not plot.display and app.query_one(TokensPane).region.height >= 10 + 3
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert plot.display

        await pilot.press("s", "0", "t")  # alpha 0: both sides identical, KL exactly 0
        await _settle(app, pilot)
        result = app.tokens.result
        assert app.alpha() == 0.0 and result.row.kl == 0.0
        assert [t.id for t in result.row.baseline] == [t.id for t in result.row.steered]
        assert result.score_steered == result.score_baseline
        assert all(d == 0.0 for x in result.lens.deltas for d in x.target_delta)


async def test_pinned_layers_steer_together_and_come_back_from_the_session(demo_model_path):
    from textual.coordinate import Coordinate

    from steertui.engine import ops
    from steertui.engine.session.store import read_session
    from steertui.engine.steering import Steer
    from steertui.tui.panes.steer import SteerPane

    async with _console(demo_model_path, build=True) as (app, pilot):
        pane, vectors = app.query_one(SteerPane), app.build.vectors
        await pilot.press("space")  # alpha 0: nothing to pin
        assert app.pinned == {} and any("alpha 0" in n.message for n in app._notifications)
        first = app.steering_layer().layer
        await pilot.press("plus", "plus", "space")
        a1 = app.alpha()
        assert app.pinned == {first: (2, a1)} and a1 != 0
        assert str(pane.get_cell_at(Coordinate(pane.cursor_row, 0))) == f"●{first}"
        assert "(pinned)" in str(pane.border_subtitle)
        second = (first + 1) % app.model.n_layers
        pane.move_cursor(row=second)
        await pilot.pause()
        await pilot.press("minus")  # the next layer at one step: both steer
        a2 = app.alpha()
        assert app.steering_layer().layer == second and app.alpha_steps == 1 and a2 != 0
        want = [{"vector": "v1", "layer": L, "alpha": a, "positions": "all"}
                for L, a in sorted({first: a1, second: a2}.items())]
        assert app.current_steering() == want
        assert f"also @{first} x{a1:+.3g}" in str(pane.border_subtitle)
        await pilot.press("t")
        await _settle(app, pilot)
        assert not app.failures, app.failures
        steers = [Steer(L, vectors[L], a) for L, a in sorted({first: a1, second: a2}.items())]
        headless = ops.next_tokens(app.model, app.selected_pair(), steers)
        got = app.tokens.result
        assert [t.id for t in got.row.steered] == [t.id for t in headless.row.steered]
        assert (got.row.kl, got.score_steered) == (headless.row.kl, headless.score_steered)
        alone = ops.next_tokens(app.model, app.selected_pair(), steers[1:] if first < second else steers[:1])
        assert got.score_steered != alone.score_steered  # the pinned layer steers too
        doc = read_session(app.recorder.path)
        assert [iv.model_dump() for iv in doc.steps[-1].inputs.steers] == want
        # e evaluates the steering as it is: both layers at once, each at its own alpha in residual norms
        from steertui.tui.app import ALPHA_STEP
        from steertui.tui.panes.evaluate import EvalPane

        await pilot.press("e")
        await _settle(app, pilot)
        assert not app.failures, app.failures
        s = app.evaluation.settings
        assert s.layers == tuple(sorted((first, second))) and s.alphas == (-1.0, 0.0, 1.0)
        assert s.together == tuple({first: 2 * ALPHA_STEP, second: 1 * ALPHA_STEP}[L] for L in s.layers)
        assert s.alpha_scale == "residual" and {r.layer for r in app.evaluation.rows} == {s.layers[0]}
        assert "layers at once" in str(app.query_one(EvalPane).border_subtitle)
        await pilot.press("a")  # and the sweep: multipliers of both alphas from ×−2 to ×2, ×1 marked
        await _settle(app, pilot)
        assert not app.failures, app.failures
        sw = app.sweep.result.settings
        assert sw.together == s.together and sw.layers == s.layers and sw.alphas == ops.sweep_alphas(2.0)
        assert app.sweep.curve.layer == s.layers[0] and app.query_one("#sweep").alpha == 1.0
        assert f"layers {'+'.join(map(str, s.layers))} were chosen" in str(app.query_one("#sweep-note").render())
        assert f"[L{'+'.join(map(str, s.layers))} α" in str(app.query_one("#sweep-pick").render())
        from steertui.cli import main

        assert main(["replay", str(app.recorder.path), "--check"]) == 0
        await pilot.press("s")
        # back on the pinned layer: its own alpha, exactly; the keys change the pin
        pane.move_cursor(row=first)
        await pilot.pause()
        assert app.alpha_steps == 2 and app.alpha() == a1
        await pilot.press("plus")
        assert app.pinned[first][0] == 3 and app.pinned[first][1] == app.alpha()
        path = app.recorder.path
    # the session opened again: both layers pinned, at the recorded alphas exactly
    again = SteerApp(session_file=str(path))
    async with again.run_test(size=(100, 30)) as pilot:
        await _settle(again, pilot)
        assert not again.failures, again.failures
        assert again.current_steering() == want and set(again.pinned) == {first, second}
        assert again.steering_layer().layer == min(first, second)
        await pilot.press("s", "space")  # unpinned, and the cursor moved: that layer no longer steers
        again.query_one(SteerPane).move_cursor(row=max(first, second))
        await pilot.pause()
        assert [iv["layer"] for iv in again.current_steering()] == [max(first, second)]


async def test_console_cancels_a_build(demo_model_path):
    from textual.system_commands import SystemCommandsProvider

    async with _console(demo_model_path) as (app, pilot):
        assert app.check_action("cancel", ()) is None  # nothing runs: Escape is not offered
        with app.model.lock:  # the build waits for the model, so Escape comes before its first chunk is done
            await pilot.press("b")
            [worker] = app.steer_jobs()
            assert app.check_action("cancel", ()) is True
            assert "Cancel" in [h.text async for h in SystemCommandsProvider(app.screen).discover()]
            await pilot.press("escape")
            assert worker.cancelled_event.is_set()  # the event the engine reads between chunks
        await _until(pilot, lambda: app.cancelled)  # the job's thread stops at its next check and says so
        assert [c.job for c in app.cancelled] == ["build vectors"] and "cancelled" in app.cancelled[0].detail
        assert app.build is None and not app.failures and app.recorder.steps == []
        assert app.query_one("#steer").row_count == 0
        assert app.check_action("cancel", ()) is None
        await pilot.press("b")  # the next build runs to its end
        await _settle(app, pilot)
        assert app.build is not None and not app.failures, app.failures


async def test_help_panel_shows_the_focused_panes_help_and_the_keys(demo_model_path):
    import io

    from rich.console import Console
    from textual.widgets import HelpPanel, Markdown
    from textual.widgets._key_panel import BindingsTable

    def keys_text() -> str:
        out = Console(file=io.StringIO(), width=200, record=True)
        out.print(app.screen.query_one(BindingsTable).render_bindings_table())
        return out.export_text()

    async with _console(demo_model_path, build=True, size=(120, 36)) as (app, pilot):
        await pilot.press("s", "question_mark")
        await pilot.pause()
        panel = app.screen.query_one(HelpPanel)
        assert panel.query_one("#widget-help", Markdown).source.startswith("## Steer")
        keys = keys_text()  # every key that can run now, hidden ones too, with what it does
        assert "Build vectors one vector per layer" in keys and "Alpha 0 no steering" in keys and "Method" in keys
        await pilot.press("d")  # the panel follows the focus
        await pilot.pause()
        assert panel.query_one("#widget-help", Markdown).source.startswith("## Pairs")
        await pilot.press("f1")  # ? and F1 show and hide it
        await pilot.pause()
        assert not app.screen.query(HelpPanel)


async def test_zoom_fills_the_screen_with_the_focused_pane(demo_model_path):
    from textual.widgets import TabbedContent

    async with _console(demo_model_path, size=(100, 30)) as (app, pilot):
        for key, pane_id, maximized in (("s", "steer", "tabs"), ("o", "code", "tabs"), ("d", "pairs", "pairs")):
            await pilot.press(key)
            await pilot.pause()
            pane = app.query_one(f"#{pane_id}")
            before = pane.region.width
            await pilot.press("z")
            await pilot.pause()
            # the pane, or the tabs holding it, fill the screen
            assert app.screen.maximized is app.query_one(f"#{maximized}") and pane.region.width == app.size.width
            assert pane.region.width > before
            await pilot.press("z")  # z again restores the layout
            await pilot.pause()
            assert app.screen.maximized is None and pane.region.width == before
        assert isinstance(app.query_one("#tabs"), TabbedContent)


async def test_console_diffs_steered_continuations(demo_model_path):
    from steertui.engine import gendiff, ops
    from steertui.engine.ops import NEW_TOKENS
    from steertui.engine.steering import Steer
    from steertui.tui.panes.generate import GenPane

    async with _console(demo_model_path, build=True) as (app, pilot):
        await pilot.press("plus", "plus", "plus", "plus", "g")
        await _settle(app, pilot)
        assert not app.failures, app.failures
        s, pair, d = app.model, app.dataset.pairs[0], app.steering_layer()
        fp = gendiff.fix_site_prompt(s, pair, NEW_TOKENS)
        assert app.generation.result.prompt == fp
        steer = [Steer(d.layer, app.build.vectors[d.layer], app.alpha())]
        want = gendiff.generation_diff(s, [fp.text], steer, max_new_tokens=NEW_TOKENS).rows[0]
        got = app.generation.result.row
        # the job is the headless operation, recorded: the same continuation
        headless = ops.fix_site_continuation(s, pair, steer)
        assert headless.prompt == fp and headless.row.to_dict() == got.to_dict()
        assert got.baseline.ids == want.baseline.ids and got.steered.ids == want.steered.ids
        for side in (got.baseline, got.steered):  # real multi-token continuations, or a visible stop at EOS
            assert len(side.ids) == NEW_TOKENS or side.stopped_at_eos
        assert got.baseline.ids != got.steered.ids and got.first_divergence == want.first_divergence
        pane = app.query_one(GenPane)
        assert app.focused is pane and f"first difference at token {got.first_divergence + 1}" in pane.border_subtitle
        body = str(pane.query_one("#gen-body").render())
        assert f"baseline: {len(got.baseline.ids)} tokens" in body and f"steered: {len(got.steered.ids)} tokens" in body
        assert fp.patched_line.strip() in body
        # which of the two versions the model would rather write there, without and with the steering
        from steertui.engine.fixsite import fix_site_preference

        fix = fix_site_preference(s, pair, steer)
        assert app.generation.result.fix == headless.fix == fix and fix.shift != 0
        assert (f"log p patched − vulnerable: {fix.baseline_preference:+.2f} → steered "
                f"{fix.steered_preference:+.2f} ({fix.shift:+.2f} nats)" in " ".join(body.split()))

        # the token cursor starts at the first difference; the line under it reads that token from both runs
        steps = app.generation.result.steps
        assert {**steps.to_dict(), "steers": None} == {**headless.steps.to_dict(), "steers": None}  # labels differ
        assert [st.id for st in steps.steered] == list(got.steered.ids)
        j = got.first_divergence
        assert pane.cursor == j

        def step_line() -> str:
            return str(pane.query_one("#gen-step").render())

        b, st = steps.baseline[j], steps.steered[j]
        line = step_line()
        assert f"token {j + 1} of {len(got.steered.ids)}" in line and "the sides differ" in line
        assert f"log p {b.logprob[0]:.2f} → {b.logprob[1]:.2f}  rank {b.rank[0]} → {b.rank[1]}" in line
        assert " ".join(f"{d:+5.1f}" for d in st.lens_delta) in line
        assert f"log p {st.logprob[0]:.2f} → {st.logprob[1]:.2f}  rank {st.rank[0]} → {st.rank[1]}" in line
        await pilot.press("home")
        assert pane.cursor == 0 and "token 1 of" in step_line()
        await pilot.press("right", "right")
        assert pane.cursor == 2
        await pilot.press("end", "right")
        assert pane.cursor == len(got.steered.ids) - 1
        changed = sorted(set().union(*[range(op.b0, op.b1) for op in got.ops if op.tag != "equal"],
                                     *[range(op.a0, op.a1) for op in got.ops if op.tag != "equal"]))
        await pilot.press("home", "right_square_bracket")
        assert pane.cursor == changed[0] == j
        await pilot.press("right_square_bracket")
        assert pane.cursor == (changed[1] if len(changed) > 1 else j)
        await pilot.press("left_square_bracket")
        assert pane.cursor == j
        # w: every token coloured by how the steering moved its log-prob (the lens grid's delta colours)
        from steertui.tui.panes.generate import side_text
        from steertui.tui.panes.lens import delta_style

        await pilot.press("w")
        assert pane.view == "delta" and "log-prob change, steered − baseline run" in pane.border_subtitle
        deltas = tuple(x.delta for x in steps.steered)
        text = side_text(got.steered.texts, set(), "", deltas=deltas)
        assert [str(span.style) for span in text.spans] == [delta_style(d) for d in deltas]
        # where they part (same prefix), the steering moved the steered side's token up against the baseline's
        assert deltas[j] > steps.baseline[j].delta
        await pilot.press("w")
        assert pane.view == "diff"

        # on a small terminal the continuations scroll so that the token cursor stays above its docked reading:
        # its rows on both sides, or where they do not fit together (80×24), the baseline's
        def cursor_visible() -> bool:
            first, last = pane.cursor_rows(pane.body)
            top, rows = pane.scroll_y, pane.scrollable_content_region.height
            step = pane.query_one("#gen-step")
            assert step.outer_size.height == pane.docked_rows(pane.detail)  # counted as laid out
            visible = rows - step.outer_size.height
            return top <= first < top + visible and (last < top + visible or last - first >= visible)

        await pilot.resize_terminal(80, 24)
        await pilot.press("end")
        await pilot.pause()
        assert pane.max_scroll_y > 0 and pane.scroll_y > 0 and cursor_visible()
        at_end = pane.scroll_y
        await pilot.press("home")
        await pilot.pause()
        assert pane.scroll_y < at_end and cursor_visible()
        await pilot.resize_terminal(100, 30)

        # everything made in the console is in an autosaved session that replays to the same results
        from steertui.cli import main
        from steertui.engine.session.store import read_session
        from steertui.paths import sessions_dir

        assert app.recorder is not None and app.recorder.path.parent == sessions_dir()
        doc = read_session(app.recorder.path)
        assert [st.kind for st in doc.steps] == ["build_vectors", "generate"]
        assert doc.steps[1].outputs.rows[0].steered_ids == list(got.steered.ids)
        assert doc.steering.interventions[0].vector == app.vector_name == "v1"
        assert main(["replay", str(app.recorder.path), "--check"]) == 0


async def test_console_continues_a_saved_session_with_its_vectors(tmp_path):
    import shutil
    from pathlib import Path

    from steertui.cli import main
    from steertui.engine.session.store import read_session
    from steertui.tui.panes.evaluate import EvalPane
    from steertui.tui.panes.steer import CweTable, SteerPane

    src = Path(__file__).resolve().parents[1] / "sessions"
    for name in ("demo-tour.toml", "demo-tour.safetensors"):
        shutil.copy(src / name, tmp_path / name)
    path = tmp_path / "demo-tour.toml"
    doc = read_session(path)
    build = next(st for st in doc.steps if st.kind == "build_vectors")
    app = SteerApp(session_file=str(path))
    async with app.run_test(size=(100, 30)) as pilot:
        await _settle(app, pilot)
        assert not app.failures, app.failures
        # the recorded vectors are in the steering pane, with the diagnostics recorded when they were built
        assert app.build is not None and app.build.name == build.inputs.vector == "vuln"
        assert [d.layer for d in app.build.diagnostics] == build.inputs.layers
        assert app.query_one(SteerPane).row_count == len(build.inputs.layers)
        # and their CWE directions as recorded (w shows them at the steering layer)
        assert app.build.cwe == {c.layer: c for c in build.outputs.cwe_directions} and app.build.cwe
        # its last evaluation, as recorded (not re-run), in the evaluation table
        evaluation = [st for st in doc.steps if st.kind == "evaluate"][-1]
        shown = app.query_one(EvalPane)
        assert [(r.layer, r.alpha, r.cwe, r.n, r.shift, r.kl) for r in shown.results] == \
            [(r.layer, r.alpha, r.cwe, r.n, r.shift, r.kl) for r in evaluation.outputs.rows]
        assert shown.row_count == len(evaluation.outputs.rows)
        assert "as recorded in the session (not re-run)" in str(app.query_one("#eval-detail").render())
        await pilot.press("s", "w")
        await pilot.pause()
        table, layer = app.query_one(CweTable), app.steering_layer().layer
        assert table.display and table.border_title.startswith(f"CWE directions at layer {layer} ")
        assert table.row_count == len(app.build.cwe[layer].cwes)
        await pilot.press("plus", "t")
        await _settle(app, pilot)
        assert not app.failures, app.failures
        alpha = app.alpha()
    after = read_session(path)
    assert [st.kind for st in after.steps] == [st.kind for st in doc.steps] + ["top_tokens", "lens"]
    assert after.steering.interventions[0].vector == "vuln" and after.steering.interventions[0].alpha == alpha != 0
    assert main(["replay", str(path), "--check"]) == 0


async def test_console_evaluates_the_steering_layer(demo_model_path):
    from steertui.engine.evaluate import EvalSettings, evaluate
    from steertui.tui.panes.evaluate import EvalPane

    async with _console(demo_model_path, build=True) as (app, pilot):
        await pilot.press("plus", "plus", "e")
        await _settle(app, pilot)
        assert not app.failures, app.failures
        d, alpha = app.steering_layer(), app.alpha()
        settings = EvalSettings(layers=(d.layer,), alphas=(-alpha, 0.0, alpha), method="mean-diff", readout="last",
                                split="pairs", seed=0, folds=3)
        want = evaluate(app.model, list(app.dataset.pairs), settings)
        got = app.evaluation
        n_groups = len({p.cwe for p in app.dataset.pairs}) + 1  # every CWE and "all"
        assert len(got.rows) == len(want.rows) == 3 * n_groups
        for a, b in zip(got.rows, want.rows):
            assert (a.layer, a.alpha, a.cwe, a.n) == (b.layer, b.alpha, b.cwe, b.n)
            # the console ran the same evaluation on the same pairs and settings: a replay, so exactly equal
            assert a.shift == b.shift and a.flip_rate == b.flip_rate
            assert a.random_shift == b.random_shift and a.yes_rate == b.yes_rate
        zero = [r for r in got.rows if r.alpha == 0.0]
        assert zero and all(r.shift == 0.0 and r.flip_rate == 0.0 and r.kl == 0.0 for r in zero)
        assert app.query_one(EvalPane).row_count == len(got.rows) and app.focused is app.query_one(EvalPane)
        assert [st.kind for st in app.recorder.steps] == ["build_vectors", "evaluate"]


async def test_console_evaluates_every_layer_in_a_grid(demo_model_path):
    """`x` in the evaluation pane: every layer at 7 alphas in residual units (±3 steps), the headless grid's
    held-out evaluation, recorded as one step; the cells are its shifts, the steering layer is marked,
    the line under the grid spells out the cell under the cursor, and `w` cycles table, sweep and grid."""
    from steertui.engine import ops
    from steertui.engine.vectors import raw_alpha
    from steertui.tui.panes.evaluate import EvalView, GridTable

    async with _console(demo_model_path, build=True, size=(120, 40)) as (app, pilot):
        await pilot.press("plus", "v", "x")
        await _settle(app, pilot)
        await _until(pilot, lambda: app.grid is not None and not app.steer_jobs(), tries=2000)
        await _settle(app, pilot)
        assert not app.failures, app.failures
        grid, n = app.grid, app.model.n_layers
        # the headless grid's settings (tests/test_evaluate.py checks what layer_grid computes with them)
        assert grid.result.settings == ops.grid_eval_settings(range(n), ops.sweep_alphas(0.75), "mean-diff")
        assert grid.layers == tuple(range(n)) and grid.alphas == (-0.75, -0.5, -0.25, 0.0, 0.25, 0.5, 0.75)
        assert grid.cells == ops.layer_alpha_grid(grid.result).cells and len(grid.cells) == 7 * n
        table = app.query_one(GridTable)
        assert app.query_one(EvalView).view == "grid" and app.focused is table
        assert table.row_count == n and len(table.columns) == 1 + len(grid.alphas)
        steering = app.steering_layer().layer
        for i, layer in enumerate(grid.layers):
            row = table.get_row_at(i)
            assert str(row[0]) == f"{'▸' if layer == steering else ' '}{layer}"
            assert [str(c).strip() for c in row[1:]] == [f"{grid.cell(layer, a).shift:+.2f}" for a in grid.alphas]
        # the cursor starts on the steering layer at alpha 0; one step right is +0.25
        assert (table.cursor_row, table.cursor_column) == (grid.layers.index(steering), 4)
        await pilot.press("right")
        cell = grid.cell(steering, 0.25)
        detail = str(app.query_one("#grid-detail").render())
        assert detail.startswith(f"layer {steering} · α +0.25 residual") and f"shift {cell.shift:+.2f}" in detail
        assert f"rand {cell.random_shift:+.2f}" in detail
        step = app.recorder.steps[-1]
        assert [st.kind for st in app.recorder.steps] == ["build_vectors", "evaluate"]
        assert step.inputs.alpha_scale == "residual" and step.inputs.layers == list(range(n))
        from steertui.engine.session.replay import summarize  # how an opened session lists the step

        top = max(grid.cells.values(), key=lambda c: abs(c.shift))
        assert summarize("evaluate", step.outputs).startswith(
            f"{n} layer(s) × 7 alphas; largest shift {top.shift:+.3g} at layer {top.layer} α {top.alpha:g} ")
        # Enter on a cell steers with it: another layer, two steps up
        other = next(layer for layer in grid.layers if layer != steering)
        table.move_cursor(row=grid.layers.index(other), column=1 + grid.alphas.index(0.5))
        await pilot.press("enter")
        await _settle(app, pilot)
        await _until(pilot, lambda: app.preview_timer is None and not app.steer_jobs())
        d = app.steering_layer()
        assert d.layer == other and app.alpha_steps == 2
        # the grid marks the new steering layer, and its cursor stays on the cell
        assert [str(table.get_row_at(i)[0]) for i in range(n)] == [f"{'▸' if x == other else ' '}{x}"
                                                                    for x in grid.layers]
        assert (table.cursor_row, table.cursor_column) == (grid.layers.index(other), 1 + grid.alphas.index(0.5))
        assert app.current_steering() == [{"vector": app.build.name, "layer": other, "positions": "all",
                                           "alpha": raw_alpha(0.5, d.residual_norm, d.vector_norm)}]
        assert app.tokens is not None and app.tokens.live  # the next tokens followed, as a preview
        # f: the grid of each CWE's held-out files in turn, then every file again; the cursor stays on its cell
        cwes = sorted({p.cwe for p in app.dataset.pairs})
        table.focus()
        shown = []
        for _ in range(len(cwes) + 1):
            await pilot.press("f")
            g = table.grid
            shown.append(g.cwe)
            assert g.cells == ops.layer_alpha_grid(grid.result, g.cwe).cells
            assert [[str(c).strip() for c in table.get_row_at(i)[1:]] for i in range(n)] == \
                [[f"{g.cell(layer, a).shift:+.2f}" for a in g.alphas] for layer in g.layers]
            assert (table.cursor_row, table.cursor_column) == (grid.layers.index(other), 1 + grid.alphas.index(0.5))
            note = str(app.query_one("#grid-note").render())
            assert note.startswith(f"{g.n} held-out files ({'every CWE' if g.cwe == 'all' else g.cwe})")
            # the honest pick's line reads the same CWE's files (tests/test_pick.py checks what it computes)
            pick = app.query_one("#grid-pick")
            assert pick.display and str(pick.render()) == ops.pick_text(g) and g.pick_row("up").cwe == g.cwe
        assert shown == cwes + ["all"] and table.grid.cells == grid.cells
        # each CWE's cells are means over its own files: n-weighted, they make the cell over every file
        cell = (other, 0.5)
        parts = [ops.layer_alpha_grid(grid.result, c).cell(*cell) for c in cwes]
        assert sum(p.n for p in parts) == grid.n
        assert sum(p.n * p.shift for p in parts) / grid.n == pytest.approx(grid.cell(*cell).shift, abs=1e-9)
        views = []
        for _ in range(3):
            await pilot.press("w")
            views.append(app.query_one(EvalView).view)
        assert views == ["table", "sweep", "grid"]


async def test_steer_pane_shows_the_cwe_directions_of_the_steering_layer(demo_model_path):
    """`w` in the Steer pane: the per-CWE directions at the steering layer in place of the plots; they follow the
    steering layer; the steering table keeps the focus and the keys."""
    from steertui.tui.panes.steer import CweTable, SteerPane, SteerView

    async with _console(demo_model_path, build=True) as (app, pilot):
        view, table, steer = app.query_one(SteerView), app.query_one(CweTable), app.query_one(SteerPane)
        assert view.view == "plots" and not table.display
        await pilot.press("s", "w")
        await pilot.pause()
        assert view.view == "cwe" and table.display and app.focused is steer
        for _ in range(2):  # the layer the build selected, then the next one
            c = app.build.cwe[app.steering_layer().layer]
            assert table.border_title.startswith(f"CWE directions at layer {c.layer} ")
            assert table.row_count == len(c.cwes) == len({p.cwe for p in app.dataset.pairs})
            for i, cwe in enumerate(c.cwes):
                cells = [str(x).strip() for x in table.get_row_at(i)]
                assert cells[0] == f"{cwe} ({c.n_pairs[i]})"
                assert float(cells[1]) == pytest.approx(c.to_vector[i], abs=0.005)  # "+.77"
                assert cells[2 + i] == "1.00"
            await pilot.press("down" if steer.cursor_row + 1 < steer.row_count else "up")
            await _settle(app, pilot)
        await pilot.press("w")
        assert view.view == "plots" and not table.display


async def test_the_cwe_directions_scroll_where_they_do_not_fit(demo_model_path):
    """At 80×24 the CWE table is larger than its place: tab gives it the focus, the arrows scroll it, and w
    hides it again with the focus back on the steering table."""
    from steertui.tui.panes.steer import CweTable, SteerPane, SteerView

    async with _console(demo_model_path, build=True, size=(80, 24)) as (app, pilot):
        view, table, steer = app.query_one(SteerView), app.query_one(CweTable), app.query_one(SteerPane)
        await pilot.press("s", "w")
        await pilot.pause()
        assert view.view == "cwe" and app.focused is steer and table.max_scroll_y > 0
        layer = app.steering_layer().layer
        await pilot.press("tab")
        assert app.focused is table
        await pilot.press("down", "down")
        await pilot.pause()
        assert table.scroll_y > 0 and app.steering_layer().layer == layer  # the arrows scroll, not the layer
        await pilot.press("w")
        await pilot.pause()
        assert view.view == "plots" and not table.display and app.focused is steer


async def test_console_shows_the_recorded_grid_of_an_opened_session(tmp_path, demo_model):
    """A session whose last evaluation is a layer grid opens with that grid on screen, as recorded (not re-run)."""
    from steertui.engine.data import load_dataset
    from steertui.engine.session import SessionRecorder
    from steertui.engine.ops import pick_text
    from steertui.engine.session.recorded import layer_grid
    from steertui.tui.panes.evaluate import EvalView, GridTable

    builtin = load_dataset("builtin")
    path = tmp_path / "grid.toml"
    rec = SessionRecorder.new(demo_model, builtin, path)
    rec.build_vectors(list(builtin.pairs), name="v", seed=0)
    want = layer_grid(rec, list(builtin.pairs), (1, 2), (-0.5, 0.0, 0.5), "mean-diff")
    rec.close()
    app = SteerApp(session_file=str(path))
    async with app.run_test(size=(100, 30)) as pilot:
        await _settle(app, pilot)
        assert not app.failures, app.failures
        grid, table = app.grid, app.query_one(GridTable)
        assert app.query_one(EvalView).view == "grid" and grid.layers == (1, 2) and grid.alphas == (-0.5, 0.0, 0.5)
        assert grid.n == want.n == 2 * len(builtin.pairs)
        for key, cell in want.cells.items():  # the recorded rows: what the grid computed, to TOML's float
            assert grid.cells[key].shift == cell.shift and grid.cells[key].random_shift == cell.random_shift
        assert [[str(c).strip() for c in table.get_row_at(i)[1:]] for i in range(2)] == \
            [[f"{grid.cell(layer, a).shift:+.2f}" for a in grid.alphas] for layer in grid.layers]
        assert "not re-run" in app.query_one("#grid").border_subtitle
        # the honest pick, from the recorded per-file records: the cells the live grid picked, the same line
        assert want.picks and {d: p.folds for d, p in grid.picks.items()} == \
            {d: p.folds for d, p in want.picks.items()}
        assert str(app.query_one("#grid-pick").render()) == pick_text(want) != ""
        table.focus()
        await pilot.press("right")  # off alpha 0, whose coefficients are all 0
        at = (grid.layers[table.cursor_row], grid.alphas[table.cursor_column - 1])
        cell = grid.cell(*at)
        assert cell.alpha == 0.5 and cell.raw_alpha == want.cell(*at).raw_alpha and len(cell.raw_alpha) == 3
        folds = ", ".join(f"{x:+.3g}" for x in cell.raw_alpha)
        assert f"per fold {folds}" in str(app.query_one("#grid-detail").render())

    # a session written before the file records were kept: the grid's rows, and a line that says why no pick
    data = tomllib.loads(path.read_text())
    assert len(data["steps"][-1]["outputs"].pop("files")) == grid.n
    path.write_text(tomli_w.dumps(data))
    async with SteerApp(session_file=str(path)).run_test(size=(100, 30)) as pilot:
        await _settle(pilot.app, pilot)
        assert not pilot.app.failures, pilot.app.failures
        assert not pilot.app.grid.picks and pilot.app.grid.cells.keys() == want.cells.keys()
        assert str(pilot.app.query_one("#grid-pick").render()).startswith(
            "cell picked on the other folds: not shown, it needs the per-file records, which this session was "
            "written without")


async def test_console_shows_the_recorded_sweep_of_an_opened_session_and_older_files_say_not_recorded(tmp_path,
                                                                                                     demo_model):
    """A session whose last evaluation is an alpha sweep opens with the sweep's plots, the curve read from the
    recorded rows; a file written before rows recorded their mean unsteered score, random yes-rate, answer mass
    and per-fold coefficients opens with the table saying "not recorded", and still replays."""
    from steertui.cli import main
    from steertui.engine import ops
    from steertui.engine.data import load_dataset
    from steertui.engine.session import SessionRecorder
    from steertui.engine.session.recorded import alpha_sweep
    from steertui.engine.vectors import raw_alpha
    from steertui.tui.panes.evaluate import EvalView

    builtin = load_dataset("builtin")
    pairs = [p for p in builtin.pairs if p.cwe in ("cwe-22", "cwe-77", "cwe-79")]
    path = tmp_path / "sweep.toml"
    rec = SessionRecorder.new(demo_model, builtin, path)
    rec.build_vectors(pairs, name="v", seed=0)
    want = alpha_sweep(rec, pairs, 1, ops.sweep_alphas(4.0, 5), "mean-diff")
    rec.set_steering([{"vector": "v", "layer": 1, "alpha": 1.2345, "positions": "prompt"}])
    rec.close()
    async with SteerApp(session_file=str(path)).run_test(size=(100, 30)) as pilot:
        app = pilot.app
        await _settle(app, pilot)
        assert not app.failures, app.failures
        assert app.query_one(EvalView).view == "sweep" and app.sweep.curve == want.curve  # TOML keeps every float
        assert "not re-run" in app.query_one("#sweep").border_subtitle
        # the session's steering is the console's: its layer, its alpha exactly, its positions
        assert app.current_steering() == [{"vector": "v", "layer": 1, "alpha": 1.2345, "positions": "prompt"}]
        await pilot.press("s", "plus")
        d = app.steering_layer()
        assert app.alpha() == pytest.approx(1.2345 + raw_alpha(0.25, d.residual_norm, d.vector_norm), rel=1e-12)
        await pilot.press("0")
        assert app.alpha() == 0.0

    later = ("baseline_score", "random_yes_rate", "answer_mass", "raw_alpha", "excess_se")
    text = path.read_text()
    data = tomllib.loads(text)
    outputs = data["steps"][-1]["outputs"]
    assert len(outputs.pop("files")) == want.result.rows[-1].n  # the per-file records, kept since
    assert all(row.pop(key) is not None for row in outputs["rows"] for key in later)
    path.write_text(tomli_w.dumps(data))
    async with SteerApp(session_file=str(path)).run_test(size=(100, 30)) as pilot:
        app = pilot.app
        await _settle(app, pilot)
        assert not app.failures, app.failures
        assert app.query_one(EvalView).view == "table" and app.sweep is None
        detail = str(app.query_one("#eval-detail").render())
        assert "answer mass not recorded" in detail and "coefficient per fold not recorded" in detail
    assert main(["replay", str(path), "--check"]) == 0  # what it does not record is not compared

    shift = want.result.rows[0].baseline_score
    path.write_text(text.replace(f"baseline_score = {shift!r}\n", f"baseline_score = {shift + 1}\n", 1))
    assert main(["replay", str(path), "--check"]) == 1  # what it records is


async def test_console_method_and_positions(demo_model_path):
    import torch

    from steertui.engine import gendiff, steering
    from steertui.engine.build import build_vectors
    from steertui.engine.ops import NEW_TOKENS

    async with _console(demo_model_path) as (app, pilot):
        # m and p step through the methods and positions the README names, in that order, and wrap around; once
        # m is pressed the Steer pane names the method the next build uses
        methods, positions, lines = [], [], []
        for _ in range(4):
            methods.append(app.method)
            positions.append(app.positions)
            lines.append(app.query_one("#steer").border_subtitle)
            await pilot.press("m", "p")
        assert methods == ["mean-diff", "pca", "probe", "mean-diff"]
        assert positions == ["all", "prompt", "generated", "all"]
        assert lines[1:] == [f"b: build {m} vectors from the pairs (m: method)" for m in methods[1:]]
        assert (app.method, app.positions) == ("pca", "prompt")
        await pilot.press("b")
        await _settle(app, pilot)
        assert not app.failures, app.failures
        ref = build_vectors(app.model, list(app.dataset.pairs), method="pca", readout="last", seed=0)
        assert app.build.method == "pca" and app.build.diagnostics == ref.diagnostics
        assert all(torch.equal(app.build.vectors[L], ref.vectors.vectors[L]) for L in ref.vectors.vectors)
        await pilot.press("p", "plus", "plus", "plus", "plus", "g")  # steer only the generated tokens
        await _settle(app, pilot)
        assert not app.failures, app.failures
        assert "generated positions" in app.query_one("#steer").border_subtitle
        d, fp = app.steering_layer(), app.generation.result.prompt
        want = gendiff.generation_diff(app.model, [fp.text], [steering.Steer(d.layer, ref.vectors.vectors[d.layer],
                                                                               app.alpha(), "generated")],
                                       max_new_tokens=NEW_TOKENS).rows[0]
        got = app.generation.result.row
        assert got.baseline.ids == want.baseline.ids and got.steered.ids == want.steered.ids
        assert got.steered.ids[0] == got.baseline.ids[0]  # the first new token comes from the unsteered prompt pass
        gen = app.recorder.steps[-1]
        assert gen.kind == "generate" and gen.inputs.steers[0].positions == "generated"
        assert app.recorder.steps[0].inputs.method == "pca"


async def test_console_keeps_working_when_sessions_cannot_be_saved(demo_model_path, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the sessions folder should be")
    monkeypatch.setenv("STEERTUI_SESSIONS", str(blocker / "sessions"))
    async with _console(demo_model_path, build=True) as (app, pilot):
        assert [f.job for f in app.failures] == ["save session"]
        assert "not-a-folder" in app.failures[0].error and "STEERTUI_SESSIONS" in app.failures[0].error
        assert app.build is not None and app.recorder.autosave is False
        assert "NOT SAVED" in app.sub_title and "autosaved" not in app.sub_title
        await pilot.press("plus", "t")
        await _settle(app, pilot)
        assert app.tokens is not None and len(app.failures) == 1
        assert [st.kind for st in app.recorder.steps] == ["build_vectors", "top_tokens", "lens"]


async def test_command_palette_offers_the_keys_that_can_run_now(demo_model_path):
    from textual.system_commands import SystemCommandsProvider

    async def commands() -> dict:
        return {h.text: h async for h in SystemCommandsProvider(app.screen).discover()}

    async with _console(demo_model_path) as (app, pilot):
        hits = await commands()
        # before a build: what needs a model and pairs, not what needs vectors or a running job
        assert {"Build vectors", "Next tokens", "Generate", "Re-probe", "Method", "Positions", "Pairs"} <= set(hits)
        assert not {"Alpha +", "Alpha -", "Alpha 0", "Evaluate", "Cancel"} & set(hits)
        # Textual's own commands stand for q, ? / F1 and z, which are not offered a second time
        assert {"Quit", "Keys", "Maximize", "Theme"} <= set(hits) and not {"Help", "Zoom"} & set(hits)
        assert hits["Build vectors"].help == "one vector per layer from every loaded pair, with diagnostics (b)"
        await hits["Build vectors"].command()  # the same action as the key b
        await _settle(app, pilot)
        assert app.build is not None and [st.kind for st in app.recorder.steps] == ["build_vectors"]
        hits = await commands()
        assert {"Alpha +", "Alpha -", "Alpha 0", "Evaluate"} <= set(hits)
        assert hits["Alpha +"].help.endswith("(+ =)")  # both keys of the binding
        await hits["Alpha +"].command()
        assert app.alpha_steps == 1
        await pilot.press("plus")
        assert app.alpha_steps == 2
        hits["Keys"].command()  # Textual's help panel, as ? opens it
        await pilot.pause()
        assert app.screen.query("HelpPanel")


async def test_console_keeps_results_when_a_later_save_fails(demo_model_path, monkeypatch):
    from steertui.engine.session import recorder as recorder_module
    from steertui.engine.session.store import SessionSaveError

    async with _console(demo_model_path, build=True) as (app, pilot):
        assert app.recorder.path.is_file() and not app.failures

        def disk_full(doc, path, vectors=None):
            raise SessionSaveError(path, "", "cannot write: [Errno 28] No space left on device", "free some space")

        monkeypatch.setattr(recorder_module, "write_session", disk_full)
        await pilot.press("plus", "t")
        await _settle(app, pilot)
        assert [f.job for f in app.failures] == ["save session"] and "No space left" in app.failures[0].error
        assert app.tokens is not None and app.tokens.result.row.kl > 0  # the result is still shown
        assert app.recorder.autosave is False
        assert [st.kind for st in app.recorder.steps] == ["build_vectors", "top_tokens", "lens"]


def test_diff_lines_rebuild_both_files(shared_dataset):
    from steertui.engine.data import load_dataset
    from steertui.tui.panes.code import diff_lines

    pairs = list(load_dataset("builtin").pairs) + list(load_dataset(shared_dataset).pairs)
    for pair in pairs:
        lines = diff_lines(pair)
        assert [x for m, x in lines if m in " -"] == pair.vulnerable.code.splitlines(), pair.id
        assert [x for m, x in lines if m in " +"] == pair.patched.code.splitlines(), pair.id
        assert any(m != " " for m, _ in lines), pair.id  # every pair differs somewhere


async def test_code_pane_follows_the_pair_cursor(demo_model_path):
    from steertui.tui.panes.code import CodePane

    async with _console(demo_model_path) as (app, pilot):
        code = app.query_one(CodePane)
        assert code.pair_id == app.dataset.pairs[0].id  # the first pair is shown once the data is loaded
        await pilot.press("d", "down", "down", "o")
        await pilot.pause()
        pair = app.dataset.pairs[2]
        assert code.pair_id == pair.id and app.focused is code
        body = str(code.query_one("#code-body").render())
        assert pair.cwe_name in body and f"{len(pair.vulnerable.code.splitlines()):>4}" in body


async def test_next_tokens_before_any_build_are_the_plain_model(demo_model_path):
    from steertui.engine.lens import LensResult
    from steertui.tui.panes.lens import LensPane

    async with _console(demo_model_path) as (app, pilot):
        await pilot.press("t")
        await _settle(app, pilot)
        assert not app.failures, app.failures
        result = app.tokens.result
        assert result.row.kl == 0.0 and result.score_steered == result.score_baseline and app.tokens.steers == []
        assert isinstance(result.lens, LensResult)  # nothing steered: the plain lens, one side
        assert app.query_one(LensPane).grid.row_count == app.model.n_layers
        assert [st.kind for st in app.recorder.steps] == ["top_tokens", "lens"]


async def test_footer_recomposes_only_when_its_keys_change(demo_model_path, monkeypatch):
    from textual.widget import Widget

    from steertui.tui.footer import SteerFooter

    async with _console(demo_model_path) as (app, pilot):
        footer = app.query_one(SteerFooter)
        def enabled_actions():
            return {action for _, action, _, on, _ in footer._shown[0] if on}

        assert {"build", "tokens", "generate"} <= enabled_actions() and "alpha(1)" not in enabled_actions()
        dataset, app.dataset = app.dataset, None  # setting what the keys need refreshes the footer by itself
        await pilot.pause()
        assert "build" not in enabled_actions()
        app.dataset = dataset
        await pilot.pause()
        assert "build" in enabled_actions()
        recomposed = []  # the footer's real rebuilds (Textual's Widget.recompose), with the keys they showed
        real = Widget.recompose

        async def counting(widget):
            if widget is footer:
                recomposed.append(footer.shown_keys())
            await real(widget)

        monkeypatch.setattr(Widget, "recompose", counting)
        app.refresh_bindings()  # the footer catches up with whatever changed since its last check
        await pilot.pause()
        await pilot.pause()
        assert footer._shown[0] == footer.shown_keys()
        recomposed.clear()
        for _ in range(5):  # what a job's state changes send: nothing the footer shows changes
            app.refresh_bindings()
        await pilot.pause()
        await pilot.pause()
        assert recomposed == []
        keys_before = footer.shown_keys()
        def enabled(keys):
            return {k[1].split("(")[0] for k in keys if k[3]}

        assert "alpha" not in enabled(keys_before)  # no vectors yet: +/- are shown disabled
        from textual.widgets._footer import FooterKey

        def on_screen():  # the key widgets: action and enabled (Textual's FooterKey marks a disabled key so)
            return [(k.action, not k.has_class("-disabled")) for k in footer.query(FooterKey)
                    if not k.has_class("-command-palette")]

        assert ("alpha(1)", False) in on_screen()
        widgets_before = list(footer.query(FooterKey))
        await pilot.press("b")  # vectors built: the steering keys are enabled, and the footer shows them so
        await _settle(app, pilot)
        assert footer._shown[0] == footer.shown_keys() != keys_before
        assert "alpha" in enabled(footer.shown_keys())
        # only enabled flags changed: the same key widgets, enabled in place, no rebuild
        assert recomposed == [] and list(footer.query(FooterKey)) == widgets_before
        shown = {}
        for _, action, _, on, _ in footer.shown_keys():  # one widget per action (its first key)
            shown.setdefault(action, on)
        assert dict(on_screen()) == shown
        assert ("alpha(1)", True) in on_screen()
        footer.show_command_palette = not footer.show_command_palette  # a real change of what is shown: rebuilt
        app.refresh_bindings()
        await _settle(app, pilot)
        assert len(recomposed) == 1


def test_console_ends_when_its_terminal_goes_away(demo_model_path):
    """A console whose terminal hangs up (an SSH connection dropped) exits with 129 instead of spinning on the closed
    terminal. Its own session here, so no hangup signal reaches it: only the terminal check can end it, as under
    `make run`, where make alone receives the signal."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import subprocess
    import sys
    import termios
    import threading
    import time

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "steertui", "--model", str(demo_model_path)], stdin=slave,
                            stdout=slave, stderr=slave, start_new_session=True, env={**os.environ, "TERM": "xterm"})
    os.close(slave)
    seen, stop = bytearray(), threading.Event()

    def drain():  # the console writes to its terminal; keep reading so it never blocks
        while not stop.is_set():
            if select.select([master], [], [], 0.1)[0]:
                try:
                    seen.extend(os.read(master, 65536))
                except OSError:
                    return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        end = time.monotonic() + 60
        while b"steertui" not in seen and proc.poll() is None and time.monotonic() < end:
            time.sleep(0.1)
        assert proc.poll() is None and b"steertui" in seen  # the console is up and drawing
        stop.set()
        reader.join()  # no read left on the terminal's master side: closing it hangs the terminal up
        os.close(master)  # the terminal goes away
        assert proc.wait(timeout=30) == 129
    finally:
        if proc.poll() is None:
            proc.kill()


async def test_an_opened_session_shows_its_last_continuation_as_recorded(tmp_path, demo_model):
    """A session whose last generation is a pair's fix-site continuation opens with it in the Gen tab: the recorded
    tokens and log-probs, read again by both runs through every layer (from the recorded steering), not stale
    while the steering is the one it was made with."""
    from steertui.engine.data import load_dataset
    from steertui.engine.session import SessionRecorder
    from steertui.engine.session.recorded import fix_site_continuation
    from steertui.tui.panes.generate import GenPane

    builtin = load_dataset("builtin")
    path = tmp_path / "gen.toml"
    rec = SessionRecorder.new(demo_model, builtin, path)
    rec.build_vectors(list(builtin.pairs), name="v", seed=0)
    pair = builtin.pairs[0]
    want = fix_site_continuation(rec, pair, steering=[{"vector": "v", "layer": 1, "alpha": 12.0, "positions": "all"}])
    rec.close()
    async with SteerApp(session_file=str(path)).run_test(size=(120, 40)) as pilot:
        app = pilot.app
        await _settle(app, pilot)
        assert not app.failures, app.failures
        gen, pane = app.generation, app.query_one(GenPane)
        assert gen is not None and gen.recorded and gen.result.prompt == want.prompt
        got = gen.result.row
        assert (got.baseline.ids, got.steered.ids) == (want.row.baseline.ids, want.row.steered.ids)
        assert (got.baseline.logprobs, got.steered.logprobs) == (want.row.baseline.logprobs, want.row.steered.logprobs)
        assert (got.baseline.texts, got.ops, got.first_divergence) == (want.row.baseline.texts, want.row.ops,
                                                                         want.row.first_divergence)
        assert got.consistent and gen.steers == ["v@1 x12 (all)"]
        assert {**gen.result.steps.to_dict(), "steers": None} == {**want.steps.to_dict(), "steers": None}
        assert "as recorded in the session (not re-run)" in pane.border_subtitle
        pane.focus()
        await pilot.press("right")  # the cursor moves; the pane still says where its continuation came from
        assert pane.cursor == (want.row.first_divergence or 0) + 1
        assert "as recorded in the session (not re-run)" in pane.border_subtitle
        assert app.current_steering() == [{"vector": "v", "layer": 1, "alpha": 12.0, "positions": "all"}]
        await pilot.press("s", "plus")  # another alpha: now it is stale
        assert "stale: the alpha changed" in pane.border_subtitle


async def test_an_opened_session_puts_the_cursor_on_the_pair_it_worked_on_last(tmp_path, demo_model):
    """The pair of a session's last next tokens (`t`) or continuation, whichever is later, is the selected pair
    when the session opens: the Tokens tab computes its next tokens with the session's steering, and they are the
    recorded ones (the same prompt, steering and model)."""
    from steertui.engine.data import load_dataset
    from steertui.engine.session import SessionRecorder, read_session
    from steertui.engine.session.recorded import fix_site_continuation, next_tokens
    from steertui.engine.session.resume import last_pair

    builtin = load_dataset("builtin")
    steering = [{"vector": "v", "layer": 2, "alpha": 6.0, "positions": "all"}]
    path = tmp_path / "tokens.toml"
    rec = SessionRecorder.new(demo_model, builtin, path)
    rec.build_vectors(list(builtin.pairs), name="v", seed=0)
    fix_site_continuation(rec, builtin.pairs[3], steering=steering, max_new_tokens=4)
    tokens_pair = builtin.pairs[9]
    want = next_tokens(rec, tokens_pair, steering=steering)
    assert last_pair(rec, None) == tokens_pair.id
    rec.close()
    recorded = next(s for s in read_session(path).steps if s.kind == "top_tokens").outputs.rows[0]
    async with SteerApp(session_file=str(path)).run_test(size=(120, 40)) as pilot:
        app = pilot.app
        await _settle(app, pilot)
        assert not app.failures, app.failures
        assert app.selected_pair().id == tokens_pair.id and app.current_steering() == steering
        await _until(pilot, lambda: app.tokens is not None and not app.preview_due)  # the live preview
        await _settle(app, pilot)
        assert app.tokens.result.sample_id == tokens_pair.vulnerable.id
        row = app.tokens.result.row
        assert [t.id for t in row.steered] == recorded.steered_ids == [t.id for t in want.row.steered]
        assert [t.id for t in row.baseline] == recorded.baseline_ids
        assert app.tokens.result.score_steered == want.score_steered

    # a continuation after it: the continuation's pair
    rec = SessionRecorder.open(path, loaded=demo_model, dataset=builtin)
    cont = fix_site_continuation(rec, builtin.pairs[5], steering=steering, max_new_tokens=4)
    assert last_pair(rec, cont) == builtin.pairs[5].id
    rec.close()
    async with SteerApp(session_file=str(path)).run_test(size=(120, 40)) as pilot:
        app = pilot.app
        await _settle(app, pilot)
        assert not app.failures, app.failures
        assert app.selected_pair().id == builtin.pairs[5].id
        assert app.generation.recorded and app.generation.result.prompt.pair_id == builtin.pairs[5].id
        assert "as recorded in the session (not re-run)" in app.query_one("#gen").border_subtitle


async def test_h_lists_the_held_out_files_of_a_grid_cell_and_enter_selects_a_files_pair(tmp_path, demo_model):
    """In the Eval tab, `h` on a cell of the (recorded) layer grid lists that cell's held-out files as
    engine.ops.held_out_files gives them, flipped first; Enter on one selects its pair; `h` returns to the grid."""
    from steertui.engine.data import load_dataset
    from steertui.engine.ops import held_out_files
    from steertui.engine.session import SessionRecorder
    from steertui.engine.session.recorded import layer_grid
    from steertui.tui.panes.evaluate import EvalView, FilesTable, GridTable

    builtin = load_dataset("builtin")
    path = tmp_path / "files.toml"
    rec = SessionRecorder.new(demo_model, builtin, path)
    rec.build_vectors(list(builtin.pairs), name="v", seed=0)
    layer_grid(rec, list(builtin.pairs), (1, 2), (-0.5, 0.0, 0.5), "mean-diff")
    rec.close()
    async with SteerApp(session_file=str(path)).run_test(size=(120, 40)) as pilot:
        app = pilot.app
        await _settle(app, pilot)
        assert not app.failures, app.failures
        view, grid = app.query_one(EvalView), app.query_one(GridTable)
        grid.focus()
        await pilot.press("right")
        layer, alpha = app.grid.layers[grid.cursor_row], app.grid.alphas[grid.cursor_column - 1]
        assert alpha == 0.5
        await pilot.press("h")
        await pilot.pause()
        want = held_out_files(app.grid.result, layer, alpha)
        table = app.query_one(FilesTable)
        assert view.view == "files" and app.focused is table and table.row_count == len(want) == app.grid.n
        # the ids' common folder ("builtin/") is left out of the table; the line under it gives the whole id
        assert [str(table.get_row_at(i)[0]) for i in range(3)] == [h.id.removeprefix("builtin/") for h in want[:3]]
        assert want[0].id in str(app.query_one("#files-detail").render())
        flips = sum(h.flipped for h in want)
        note = str(app.query_one("#files-note").render())
        assert f"layer {layer} · α +0.50 residual · {len(want)} held-out files (every CWE) · the vector flipped " \
               f"{flips}" in " ".join(note.split())
        await pilot.press("f")  # the same cell's files of the first CWE
        await pilot.pause()
        cwe = sorted({h.cwe for h in want})[0]
        assert table.row_count == len([h for h in want if h.cwe == cwe]) == 4
        assert f"4 held-out files ({cwe})" in " ".join(str(app.query_one("#files-note").render()).split())
        for _ in range(8):  # through every CWE back to all of them
            await pilot.press("f")
        await pilot.pause()
        assert table.row_count == len(want)
        await pilot.press("down", "enter")
        await pilot.pause()
        assert app.selected_pair().id == want[1].pair
        await pilot.press("h")
        await pilot.pause()
        assert view.view == "grid" and app.focused is grid


async def test_a_steering_job_that_ends_while_the_console_closes_refreshes_no_keys(demo_model_path):
    """A job (say the live preview) that changes state after the console's screens are gone: no ScreenStackError
    (the keys it would refresh are not there any more)."""
    from types import SimpleNamespace

    from steertui.tui.jobs import STEER_GROUP

    async with _console(demo_model_path) as (app, _pilot):
        pass
    assert not app.screen_stack
    app.on_worker_state_changed(SimpleNamespace(worker=SimpleNamespace(group=STEER_GROUP)))
