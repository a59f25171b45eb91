"""Per-CWE vectors in the held-out evaluation: each CWE's held-out pairs steered with the vector built from the
fold's training pairs of that CWE alone, scored in their own batches, against the same scoring done by hand."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from steertui.cli import main
from steertui.engine.build import pair_activations, vectors_from_activations
from steertui.engine.data import load_dataset
from steertui.engine.evaluate import EvalSettings, evaluate
from steertui.engine.steering import Steer
from steertui.engine.vectors import raw_alpha, residual_norm
from steertui.engine.verdict import answer_tokens, sample_prompts, score
from steertui.errors import SteertuiError

LAYER = 2
ROOT = Path(__file__).resolve().parents[1]


def test_each_cwe_is_steered_with_its_own_vector_in_its_own_batch(demo_model):
    pairs = list(load_dataset("builtin").pairs)
    settings = EvalSettings(layers=(LAYER,), alphas=(0.0, 0.75), folds=2, kl_tokens=16, alpha_scale="residual",
                            per_cwe=True)
    res = evaluate(demo_model, pairs, settings)
    n = len(pairs)
    acts = pair_activations(demo_model, pairs, layers=[LAYER], readout="last", chunk_size=8)
    samples = [p.vulnerable for p in pairs] + [p.patched for p in pairs]
    prompts = sample_prompts(demo_model, samples, pairs)
    answers = answer_tokens(demo_model)
    by_id = {f["id"]: f for f in res.files}
    index = {p.id: i for i, p in enumerate(pairs)}
    checked = 0
    for fold in res.folds:
        train = [index[p] for p in fold["train_pairs"]]
        test = [index[p] for p in fold["test_pairs"]]
        resid = residual_norm(acts.vulnerable[train, 0], acts.patched[train, 0])
        assert fold["residual_norm"][str(LAYER)] == pytest.approx(resid, rel=1e-6)
        for cwe in sorted({pairs[i].cwe for i in test}):
            own = [i for i in train if pairs[i].cwe == cwe]
            unit = [i for i in test if pairs[i].cwe == cwe]
            v = vectors_from_activations(acts, "mean-diff", own)[LAYER].float()
            assert fold["vector_norm_by_cwe"][cwe][str(LAYER)] == pytest.approx(float(v.norm()), rel=1e-6)
            coef = raw_alpha(0.75, resid, float(v.norm()))
            rows = unit + [n + i for i in unit]  # the unit as the evaluation scores it: vulnerable, then patched
            texts = [prompts[i].text for i in rows]
            base = score(demo_model, texts, answers, chunk_size=settings.chunk_size)
            steered = score(demo_model, texts, answers, steers=[Steer(LAYER, v, coef)], chunk_size=settings.chunk_size)
            for j, i in enumerate(rows):
                rec = by_id[samples[i].id]
                cell = {x["alpha"]: x for x in rec["steered"]}
                assert rec["baseline_score"] == float(base[j])  # the same batches: bit for bit
                assert cell[0.0]["score"] == rec["baseline_score"]  # alpha 0 reproduces it
                assert cell[0.75]["score"] == float(steered[j])
                assert cell[0.75]["raw_alpha"] == pytest.approx(coef, rel=1e-6)
                checked += 1
            row = next(r for r in res.rows if r.cwe == cwe and r.alpha == 0.75)
            assert any(math.isclose(c, coef, rel_tol=1e-6) for c in row.raw_alpha)
    assert checked == 2 * n
    # the CWEs' vectors differ, so a fold's all row lists each of its coefficients
    every = next(r for r in res.rows if r.cwe == "all" and r.alpha == 0.75)
    assert len(every.raw_alpha) > len(res.folds)
    # and a vector built from all of the fold's pairs moves the verdict otherwise
    shared = evaluate(demo_model, pairs, EvalSettings(layers=(LAYER,), alphas=(0.0, 0.75), folds=2, kl_tokens=16,
                                                      alpha_scale="residual"))
    one = {(r.cwe, r.alpha): r.shift for r in shared.rows}
    assert any(r.shift != one[(r.cwe, r.alpha)] for r in res.rows if r.alpha == 0.75)


def test_per_cwe_refusals(demo_model):
    pairs = list(load_dataset("builtin").pairs)
    with pytest.raises(SteertuiError, match="leaving one CWE out leaves none of its pairs"):
        evaluate(demo_model, pairs, EvalSettings(layers=(1,), alphas=(1.0,), split="cwe", per_cwe=True))
    lonely = [p for p in pairs if p.cwe != "cwe-787"] + [next(p for p in pairs if p.cwe == "cwe-787")]
    with pytest.raises(SteertuiError, match="has no training pair of cwe-787 to build its vector from"):
        evaluate(demo_model, lonely, EvalSettings(layers=(1,), alphas=(1.0,), folds=2, per_cwe=True))
    vec = {1: torch.ones(demo_model.d_model)}
    with pytest.raises(SteertuiError, match="a given vector is not"):
        evaluate(demo_model, pairs, EvalSettings(layers=(1,), alphas=(1.0,), vector="v", per_cwe=True), vectors=vec)


def test_per_cwe_cli_records_and_replays(tmp_path, capsys):
    session = tmp_path / "per-cwe.toml"
    code = main(["eval", "--dataset", "builtin", "--layers", "1,2", "--alpha=-0.5,0.5", "--alpha-scale", "residual",
                 "--folds", "2", "--kl-tokens", "16", "--per-cwe", "--record", str(session)])
    assert code == 0
    out = capsys.readouterr().out
    assert "one per CWE" in out
    assert main(["replay", str(session), "--check"]) == 0
    assert "all 1 steps match" in capsys.readouterr().out
    assert main(["report", str(session)]) == 0  # its one-line summary says what was steered
    assert "a vector per CWE; 2 layer(s) × 2 alphas; largest shift" in " ".join(capsys.readouterr().out.split())
    assert main(["eval", "--dataset", "builtin", "--layers", "1", "--alpha", "1", "--split", "cwe", "--per-cwe"]) == 2
    assert "--split cwe holds out every pair of a CWE" in capsys.readouterr().err


async def test_C_makes_the_consoles_next_evaluation_steer_each_cwe_with_its_own_vector(demo_model_path):
    """`C` in the evaluation pane: the next `e` builds and steers a vector per CWE (recorded), the table's subtitle
    and detail line say so; `C` again turns it off. With imported vectors it says why it cannot."""
    from test_tui import _console, _settle

    from steertui.tui.app import SteerApp

    async with _console(demo_model_path, build=True) as (app, pilot):
        await pilot.press("plus", "plus", "v", "C", "e")
        await _settle(app, pilot)
        assert not app.failures, app.failures
        got = app.evaluation
        assert got.settings.per_cwe and app.recorder.steps[-1].inputs.per_cwe
        assert all("vector_norm_by_cwe" in f for f in got.folds)
        from steertui.tui.panes.evaluate import EvalPane

        pane = app.query_one(EvalPane)
        assert "a vector per CWE" in str(pane.border_subtitle)
        assert "coefficient per fold and CWE" in " ".join(str(app.query_one("#eval-detail").render()).split())
        await pilot.press("C", "e")
        await _settle(app, pilot)
        assert not app.evaluation.settings.per_cwe and not app.recorder.steps[-1].inputs.per_cwe

    vectors = ROOT / "sessions" / "demo-tour-vuln.safetensors"
    app = SteerApp(model=str(demo_model_path), dataset="builtin", vectors_file=str(vectors))
    async with app.run_test(size=(100, 30)) as pilot:
        await _settle(app, pilot)
        assert app.build is not None and app.build.given
        await pilot.press("v", "C")
        await pilot.pause()
        assert app.per_cwe and app.eval_options()["per_cwe"] is False  # imported vectors are steered as they are
        assert any("imported vectors are steered as they are" in n.message for n in app._notifications)
