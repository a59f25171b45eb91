"""Plots in the console: the per-layer diagnostics over layers in the Steer pane, the alpha sweep of the steering
layer (a held-out evaluation over 7 alphas, recorded as one evaluate step that replays), and the evaluation table
that fits 80 columns with the rest of a row in the line under it."""

from __future__ import annotations

import dataclasses
import math

import pytest

from steertui.engine import ops
from steertui.tui.app import ALPHA_STEP, SWEEP_STEPS
from steertui.tui.panes.evaluate import EvalPane, EvalView, SweepView
from steertui.tui.panes.plots import DiagnosticsPlot

from test_tui import _console, _settle, _until


def test_sweep_alphas_are_symmetric_around_zero():
    assert ops.sweep_alphas(3.0) == (-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0)
    assert ops.sweep_alphas(-1.5, 5) == (-1.5, -0.75, 0.0, 0.75, 1.5)
    # the settings of `e` (folds by pair, vectors rebuilt per fold, raw coefficients) over the sweep's alphas
    one = ops.layer_eval_settings(2, 3.0, "pca")
    assert ops.sweep_eval_settings(2, ops.sweep_alphas(3.0), "pca") == dataclasses.replace(one, alphas=ops.sweep_alphas(3.0))


def test_alpha_sweep_is_the_evaluation_over_its_alphas_and_replays(demo_model, tmp_path):
    """The headless sweep and its recorded twin give the same curve; the curve is the evaluation's per-file
    records averaged; the recording is one evaluate step that replay --check reproduces."""
    from steertui.cli import main
    from steertui.engine.data import load_dataset
    from steertui.engine.session import SessionRecorder, read_session
    from steertui.engine.session.recorded import alpha_sweep

    data = load_dataset("builtin")
    pairs = [p for p in data.pairs if p.cwe in ("cwe-22", "cwe-77", "cwe-79")]
    alphas = ops.sweep_alphas(6.0, 5)
    headless = ops.alpha_sweep(demo_model, pairs, 1, alphas, "mean-diff")
    rec = SessionRecorder.new(demo_model, data, path=tmp_path / "sweep.toml")
    recorded = alpha_sweep(rec, pairs, 1, alphas, "mean-diff")
    rec.close()
    assert recorded.curve == headless.curve
    c, files = headless.curve, headless.result.files
    assert c.alphas == alphas and c.n == len(files) == 2 * len(pairs)
    mid = alphas.index(0.0)
    # alpha 0 is the unsteered model: the same mean score and yes-rate, for the vector and the control
    assert c.score[mid] == c.random_score[mid] == pytest.approx(c.baseline_score, abs=1e-9)
    assert c.yes_rate[mid] == c.random_yes_rate[mid] == c.baseline_yes_rate
    top = next(x for x in files[0]["steered"] if x["alpha"] == alphas[-1])
    assert c.score[-1] == pytest.approx(sum(next(x["score"] for x in f["steered"] if x["alpha"] == alphas[-1])
                                            for f in files) / len(files), rel=1e-12)
    assert top["raw_alpha"] == alphas[-1]  # raw coefficients, as `e` applies them
    doc = read_session(tmp_path / "sweep.toml")
    assert [st.kind for st in doc.steps] == ["evaluate"]
    # the curve comes from the rows, so the recorded rows give the same curve, float for float
    from steertui.engine.session.resume import recorded_evaluation

    assert ops.sweep_curve(recorded_evaluation(doc, doc.steps[0])) == headless.curve
    assert tuple(doc.steps[0].inputs.alphas) == alphas
    assert main(["replay", str(tmp_path / "sweep.toml"), "--check"]) == 0


async def test_steer_pane_plots_the_diagnostics_over_layers(demo_model_path):
    async with _console(demo_model_path, build=True, size=(80, 24)) as (app, pilot):
        plots = list(app.query(DiagnosticsPlot))
        layers = [d.layer for d in app.build.diagnostics]
        assert [p.kind for p in plots] == ["auroc", "norm"]
        assert all(p.plotted == layers and p.marked == app.steering_layer().layer for p in plots)
        assert all(p.region.height >= 5 and p.region.width >= 20 for p in plots)  # both fit beside the table
        steer = app.query_one("#steer")
        assert steer.region.height >= len(layers) + 3  # every layer's row is on screen
        before = app.steering_layer().layer
        await pilot.press("s", "up" if layers.index(before) else "down")
        await pilot.pause()
        assert app.steering_layer().layer != before
        assert all(p.marked == app.steering_layer().layer for p in plots)
        await _settle(app, pilot)


async def test_evaluation_table_fits_80_columns_with_a_detail_line(demo_model_path):
    async with _console(demo_model_path, build=True, size=(80, 24)) as (app, pilot):
        await pilot.press("plus", "plus", "e")
        await _settle(app, pilot)
        assert not app.failures, app.failures
        table = app.query_one(EvalPane)
        assert table.row_count == len(app.evaluation.rows)
        # no column is cut off: the table is no wider than the pane
        assert table.virtual_size.width <= table.scrollable_content_region.width
        # a shift that means nothing next to the control is dim, as in the grid (alpha 0 always is)
        from steertui.engine.ops import within_control

        shifts = [table.get_row_at(i)[3] for i in range(table.row_count)]
        assert [s.plain for s in shifts] == [f"{r.shift:+.2f}" for r in app.evaluation.rows]
        assert ["dim" in str(s.spans) for s in shifts] == [within_control(r) for r in app.evaluation.rows]
        assert any(r.alpha == 0 for r in app.evaluation.rows) and all(
            within_control(r) for r in app.evaluation.rows if r.alpha == 0)
        detail = app.query_one("#eval-detail")
        n = len(app.dataset.pairs)
        text = str(detail.render())
        assert f"was chosen on all {n} pairs, these held-out files included" in text
        r = app.evaluation.rows[0]
        assert f"flip {r.flip_rate:.2f}" in text and f"KL {r.kl:.3f}" in text
        await pilot.press("down")
        await pilot.pause()
        r = app.evaluation.rows[1]
        assert f"α {r.alpha:+.3g} {r.cwe} (n {r.n})" in str(detail.render())


async def test_alpha_sweep_plots_the_verdict_against_alpha(demo_model_path):
    async with _console(demo_model_path, build=True, size=(80, 24)) as (app, pilot):
        await pilot.press("plus")
        await pilot.press("v")
        await pilot.pause()
        assert app.check_action("sweep", ()) is True
        await pilot.press("a")
        await _settle(app, pilot)
        assert not app.failures, app.failures
        d = app.steering_layer()
        top = SWEEP_STEPS * ALPHA_STEP * d.residual_norm / d.vector_norm
        sweep = app.sweep
        assert len(sweep.curve.alphas) == 7 and sweep.curve.alphas[3] == 0.0
        assert sweep.curve.alphas[-1] == pytest.approx(top, rel=1e-12) and sweep.curve.alphas[0] == -sweep.curve.alphas[-1]
        assert sweep.curve.layer == d.layer and sweep.result.settings.method == app.build.method
        assert all(math.isfinite(x) for x in sweep.curve.score + sweep.curve.random_score)
        # at the steering layer, the vector (vulnerable minus patched) pushes the verdict towards " Yes" at +A more
        # than the random vector of equal norm does
        c = sweep.curve
        assert c.score[-1] - c.baseline_score > max(0.0, c.random_score[-1] - c.baseline_score)
        # recorded as one evaluate step over the sweep's alphas
        steps = app.recorder.steps
        assert [st.kind for st in steps] == ["build_vectors", "evaluate"]
        assert tuple(steps[-1].inputs.alphas) == sweep.curve.alphas
        view, swept = app.query_one(EvalView), app.query_one(SweepView)
        assert view.view == "sweep" and swept.curve is sweep.curve and app.focused is swept
        assert f"{sweep.curve.n} held-out files (every CWE)" in str(app.query_one("#sweep-note").render())
        assert sweep.curve.fix is None and not app.query_one("#sweep-fix").display  # fix sites not scored (`F`)
        first = sorted({p.cwe for p in app.dataset.pairs})[0]
        await pilot.press("f")  # the curve of one CWE's held-out files, from its rows
        assert swept.curve == ops.sweep_curve(sweep.result, d.layer, first) and swept.curve.cwe == first
        assert swept.curve.n < sweep.curve.n and swept.curve.score != sweep.curve.score
        assert f"{swept.curve.n} held-out files ({first})" in str(app.query_one("#sweep-note").render())
        # the alpha picked on the other folds, for the same CWE's files (tests/test_pick.py: what it computes)
        pick = app.query_one("#sweep-pick")
        assert str(pick.render()) == ops.pick_text(ops.layer_alpha_grid(sweep.result, first))
        assert str(pick.render()).startswith("cell picked on the other folds, beyond rand: ↑ ") and \
            f"[L{d.layer} α" in str(pick.render())
        await pilot.press("w")  # the layer grid (none computed yet), then the table, then the sweep again
        await pilot.pause()
        assert view.view == "grid" and app.focused is app.query_one("#grid-table")
        await pilot.press("w")
        await pilot.pause()
        assert view.view == "table" and app.focused is app.query_one(EvalPane)
        await pilot.press("w")
        await pilot.pause()
        assert view.view == "sweep" and app.focused is swept
        await pilot.press("s", "down")  # another layer: the sweep on screen is stale
        assert "stale: the layer changed" in str(swept.border_subtitle)
        await _settle(app, pilot)


async def test_alpha_sweep_is_cancelled_by_escape(demo_model_path):
    async with _console(demo_model_path, build=True) as (app, pilot):
        await _until(pilot, lambda: app.tokens is not None)  # the build's live preview
        await _settle(app, pilot)
        await pilot.press("v")
        await pilot.pause()
        with app.model.lock:  # the sweep waits for the model, so Escape comes before its first step is done
            await pilot.press("a")
            [worker] = app.steer_jobs()
            await pilot.press("escape")
            assert worker.cancelled_event.is_set()
        await _until(pilot, lambda: app.cancelled)
        assert [c.job for c in app.cancelled] == ["alpha sweep"] and app.sweep is None and not app.failures
        assert [st.kind for st in app.recorder.steps] == ["build_vectors"]
        assert "cancelled" in str(app.query_one("#sweep").border_subtitle)
