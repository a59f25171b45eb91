"""`eval --attribution`: each held-out file's steered shift split into what the added vector writes straight into
the answer (its direct part) and what the layers after it change, checked against an independent
``verdict_attribution`` of the same file, prompt and coefficient; recorded in a session and replayed."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from steertui.cli import main
from steertui.engine.attribution import verdict_attribution
from steertui.engine.data import load_dataset
from steertui.engine.evaluate import EvalSettings, evaluate
from steertui.engine.session.export import import_vector
from steertui.engine.steering import Steer
from steertui.engine.verdict import sample_prompts
from tolerances import FORWARD, logit_tol

VECTORS = Path(__file__).resolve().parents[1] / "sessions" / "demo-tour-vuln.safetensors"


def _mean(values) -> float:
    return math.fsum(values) / len(values)


def _counting_forwards(monkeypatch) -> list[int]:
    """Count the traced forwards the verdict scoring runs (``verdict.forward``), with their rows."""
    import steertui.engine.verdict as verdict

    calls, real = [], verdict.forward

    def counted(model, texts, **kwargs):
        calls.append(len(texts))
        return real(model, texts, **kwargs)

    monkeypatch.setattr(verdict, "forward", counted)
    return calls


def test_each_files_shift_splits_into_the_vectors_direct_part_and_the_later_layers(demo_model, monkeypatch):
    pairs = [p for p in load_dataset("builtin").pairs if p.cwe in ("cwe-22", "cwe-77", "cwe-79")]
    v = import_vector(VECTORS, demo_model).vectors[1]
    settings = EvalSettings(layers=(1,), alphas=(0.0, 3.0), folds=2, kl_tokens=8, vector="vuln", attribution=True)
    calls = _counting_forwards(monkeypatch)
    result = evaluate(demo_model, pairs, settings, vectors={1: v})
    with_split = list(calls)
    prompts = {p.sample_id: p.text for p in sample_prompts(demo_model, [s for p in pairs for s in p.samples], pairs)}
    checked = 0
    for f in result.files:
        for x in f["steered"]:
            if x["alpha"] == 0.0:
                assert x["direct"] == 0.0 and x["through"] == 0.0  # the two rows are the same computation
                continue
            split = verdict_attribution(demo_model, prompts[f["id"]], [Steer(1, v, x["raw_alpha"])])
            b, s = split.baseline, split.steered
            # the evaluation reads its split in its own scoring forwards (a left-padded batch of the fold's
            # files), the independent split in one forward of this file alone: the same math, another batch
            tol = logit_tol(demo_model, FORWARD)
            assert x["direct"] == pytest.approx(s.layers[1].steer, abs=tol) and x["raw_alpha"] == 3.0
            # through: the blocks after the steered one (2 and 3); their parts' change
            assert x["through"] == pytest.approx(sum(q.attn + q.mlp - p.attn - p.mlp
                                                     for p, q in zip(b.layers[2:], s.layers[2:])), abs=tol)
            # the rest is the final norm's rescaling of what was written before the push (the residual up to the
            # steered block is the same on both sides) and of the constant; all of it adds up to the scored shift
            norm = (s.embed - b.embed) + sum(q.attn + q.mlp - p.attn - p.mlp
                                             for p, q in zip(b.layers[:2], s.layers[:2])) + (s.constant - b.constant)
            shift = x["score"] - f["baseline_score"]
            assert x["direct"] + x["through"] + norm == pytest.approx(shift, abs=1e-4)
            assert abs(x["direct"]) > 0.05
            checked += 1
    assert checked == len(result.files) == 2 * len(pairs)
    for r in result.rows:
        group = [x for f in result.files if r.cwe in ("all", f["cwe"]) for x in f["steered"] if x["alpha"] == r.alpha]
        assert r.direct_shift == _mean([x["direct"] for x in group])
        assert r.through_shift == _mean([x["through"] for x in group])
    calls.clear()
    plain = evaluate(demo_model, pairs, EvalSettings(layers=(1,), alphas=(0.0, 3.0), folds=2, kl_tokens=8,
                                                     vector="vuln"), vectors={1: v})
    assert all(r.direct_shift is None and r.through_shift is None for r in plain.rows)  # not asked: not computed
    assert [f["steered"] for f in plain.files] == [  # the scores are the same, bit for bit
        [{**x, "direct": None, "through": None} for x in f["steered"]] for f in result.files]
    # the split is read in the scoring forwards themselves: not one forward more, not one row more
    assert calls == with_split
    assert sum(calls) == len(result.files) * (1 + len(settings.alphas) * (1 + settings.controls))


def _recorded(tmp_path, demo_model) -> Path:
    """A session whose one step is a 2-layer × 2-alpha evaluation with attribution."""
    from steertui.engine.session import SessionRecorder

    builtin = load_dataset("builtin")
    pairs = [p for p in builtin.pairs if p.cwe in ("cwe-22", "cwe-77")]
    path = tmp_path / "split.toml"
    rec = SessionRecorder.new(demo_model, builtin, path)
    rec.evaluate(pairs, EvalSettings(layers=(2, 3), alphas=(-1.0, 1.0), alpha_scale="residual", folds=2,
                                     kl_tokens=8, attribution=True))
    rec.close()
    return path


def test_attribution_is_recorded_and_replayed(tmp_path, demo_model, capsys):
    from steertui.engine.session import read_session

    path = _recorded(tmp_path, demo_model)
    step = read_session(path).steps[0]
    assert step.inputs.attribution and all(len(f.direct) == len(f.through) == 4 for f in step.outputs.files)
    assert all(r.direct_shift is not None and r.through_shift is not None for r in step.outputs.rows)
    assert main(["replay", str(path), "--check"]) == 0
    capsys.readouterr()
    assert main(["eval", "--dataset", "builtin", "--cwe", "22", "--layers", "2", "--alpha=-1,1", "--folds", "2",
                 "--kl-tokens", "8", "--alpha-scale", "residual", "--attribution"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "direct" in out and "through" in out and "the network's response" in out


async def test_an_opened_session_shows_the_split_of_the_cell_under_the_cursor(tmp_path, demo_model):
    from steertui.tui.app import SteerApp
    from steertui.tui.panes.evaluate import GridTable

    from test_tui import _settle

    path = _recorded(tmp_path, demo_model)
    async with SteerApp(session_file=str(path)).run_test(size=(120, 40)) as pilot:
        app = pilot.app
        await _settle(app, pilot)
        assert not app.failures, app.failures
        grid = app.query_one(GridTable)
        grid.focus()
        await pilot.press("right")
        cell = app.grid.cell(app.grid.layers[grid.cursor_row], app.grid.alphas[grid.cursor_column - 1])
        detail = " ".join(str(app.query_one("#grid-detail").render()).split())
        assert f"shift split: direct {cell.direct_shift:+.2f}, through later layers {cell.through_shift:+.2f}" \
            in detail


def test_a_model_whose_score_cannot_be_split_is_refused_before_any_forward(monkeypatch):
    import torch

    import tiny_models
    from steertui.engine.model import LoadedModel
    from steertui.errors import SteertuiError

    hf, tok = tiny_models.build("gpt2")
    model = LoadedModel.from_modules(hf, tok)
    hf.transformer.ln_f = torch.nn.Identity()

    def no_forward(*_args, **_kwargs):
        raise AssertionError("a forward ran")

    monkeypatch.setattr("steertui.engine.evaluate.pair_activations", no_forward)
    pairs = load_dataset("builtin").pairs[:4]
    with pytest.raises(SteertuiError, match="the final norm is a Identity, neither a LayerNorm nor an RMSNorm"):
        evaluate(model, pairs, EvalSettings(layers=(1,), alphas=(0.0, 1.0), attribution=True))


async def test_y_makes_the_consoles_next_evaluation_split_each_shift(demo_model_path):
    """`y` in the evaluation pane: the next `e` computes (and records) the split, and the line under the table
    gives it; `y` again turns it off."""
    from test_tui import _console, _settle

    async with _console(demo_model_path, build=True) as (app, pilot):
        await pilot.press("plus", "plus", "v", "y", "e")
        await _settle(app, pilot)
        assert not app.failures, app.failures
        got = app.evaluation
        assert got.settings.attribution and app.recorder.steps[-1].inputs.attribution
        row = got.rows[0]
        assert row.alpha < 0 and row.direct_shift is not None and row.direct_shift != 0
        detail = " ".join(str(app.query_one("#eval-detail").render()).split())
        assert f"shift split: direct {row.direct_shift:+.2f}, through later layers {row.through_shift:+.2f}" in detail
        # the held-out files of that row: each file's parts in two more columns, the row's means of them
        from steertui.engine.ops import held_out_files
        from steertui.tui.panes.evaluate import FilesTable

        await pilot.press("h")
        await pilot.pause()
        table, files = app.query_one(FilesTable), held_out_files(got, row.layer, row.alpha, row.cwe)
        assert [str(c.label) for c in table.columns.values()][-2:] == ["direct", "through"]
        assert str(table.get_row_at(0)[-2]) == f"{files[0].direct:+.2f}"
        assert _mean([h.direct for h in files]) == row.direct_shift
        await pilot.press("h", "y", "e")
        await _settle(app, pilot)
        assert not app.evaluation.settings.attribution and "shift split" not in str(
            app.query_one("#eval-detail").render())
