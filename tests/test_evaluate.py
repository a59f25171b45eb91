"""The verdict score and the held-out evaluation: alpha 0 changes nothing, a nonzero alpha moves the score."""

from __future__ import annotations

import json

import pytest
import torch

from steertui.cli import main
from steertui.engine.data import load_dataset
from steertui.engine.evaluate import EvalSettings, evaluate, make_folds
from steertui.engine.steering import Steer
from steertui.engine.verdict import answer_tokens, best_threshold, build_prompt, score
from steertui.errors import SteertuiError
from tolerances import FORWARD, logit_tol


def test_answer_tokens_are_single(demo_model):
    a = answer_tokens(demo_model)
    assert demo_model.tokenizer(" Yes", add_special_tokens=False)["input_ids"] == [a.yes_id]
    assert demo_model.tokenizer(" No", add_special_tokens=False)["input_ids"] == [a.no_id]
    with pytest.raises(SteertuiError, match="answer ' Absolutely-not' is"):
        answer_tokens(demo_model, no=" Absolutely-not")


def test_score_equals_plain_logits(demo_model):
    ds = load_dataset("builtin")
    samples = [ds.pairs[0].vulnerable, ds.pairs[3].patched, ds.pairs[5].vulnerable]
    prompts = [build_prompt(demo_model, s.code, s.cwe_name, s.id).text for s in samples]
    assert prompts[0].endswith("known as " + samples[0].cwe_name + "?\nAnswer:")
    a = answer_tokens(demo_model)
    got = score(demo_model, prompts, a, chunk_size=2)
    for k, text in enumerate(prompts):
        ids = torch.tensor([demo_model.tokenizer(text)["input_ids"]])
        with torch.no_grad():
            logits = demo_model.hf(input_ids=ids).logits[0, -1]
        # padded batches of two against one prompt alone: a logit difference after a whole forward's rounding
        assert float(got[k]) == pytest.approx(float(logits[a.yes_id] - logits[a.no_id]),
                                              abs=logit_tol(demo_model, FORWARD))
    v = torch.randn(demo_model.d_model, generator=torch.Generator().manual_seed(0))
    steered = score(demo_model, prompts, a, steers=[Steer(2, v, 8.0)], chunk_size=2)
    assert not torch.allclose(steered, got, rtol=0, atol=logit_tol(demo_model, FORWARD))  # moved beyond rounding


def test_best_threshold():
    assert best_threshold([-2.0, -1.0, 1.0, 2.0], [0, 0, 1, 1]) == 0.0
    assert best_threshold([3.0, 4.0, 5.0, 6.0], [0, 0, 1, 1]) == 4.5


def test_folds_cover_every_pair_once():
    ds = load_dataset("builtin")
    folds = make_folds(ds.pairs, "pairs", 2, seed=3)
    assert sorted(i for f in folds for i in f) == list(range(len(ds.pairs)))
    assert all({ds.pairs[i].cwe for i in f} == set(ds.cwes) for f in folds), "stratified by CWE"
    cwe = make_folds(ds.pairs, "cwe", 0, seed=0)
    assert len(cwe) == len(ds.cwes) and all(len({ds.pairs[i].cwe for i in f}) == 1 for f in cwe)
    with pytest.raises(SteertuiError, match="unknown split"):
        make_folds(ds.pairs, "files", 2, 0)


def test_alpha_zero_is_exact_and_alpha_moves_the_score(demo_model):
    pairs = load_dataset("builtin").pairs
    res = evaluate(demo_model, pairs, EvalSettings(layers=(2,), alphas=(0.0, 8.0), folds=2, kl_tokens=32))
    rows = {(r.alpha, r.cwe): r for r in res.rows}
    cwes = sorted({p.cwe for p in pairs})
    assert len(res.rows) == 2 * (len(cwes) + 1)
    for cwe in cwes + ["all"]:
        zero = rows[(0.0, cwe)]
        assert zero.shift == 0.0 and zero.flip_rate == 0.0 and zero.kl == 0.0
        assert zero.random_shift == 0.0 and zero.random_flip_rate == 0.0
        assert zero.accuracy == zero.baseline_accuracy
    assert rows[(0.0, "all")].n == 2 * len(pairs) and rows[(0.0, "cwe-787")].n == 4
    moved = rows[(8.0, "all")]
    assert moved.shift != 0.0 and moved.kl > 0.0 and moved.random_kl > 0.0
    assert moved.random_shift != moved.shift
    assert res.answers.yes == " Yes" and res.source == "builtin examples"


def test_eval_cli_on_secllmholmes(shared_dataset, demo_model_path, tmp_path, capsys):
    out = tmp_path / "out.json"
    code = main(["eval", "--model", str(demo_model_path), "--dataset", str(shared_dataset), "--layers", "1",
                 "--alpha", "0,4", "--json", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    assert data["source"].startswith("SecLLMHolmes @ ")
    assert data["settings"]["layers"] == [1] and data["settings"]["alphas"] == [0.0, 4.0]
    rows = data["results"]
    want = {"layer", "alpha", "cwe", "n", "shift", "accuracy", "flip_rate", "random_shift", "random_flip_rate", "kl"}
    assert all(want <= set(r) for r in rows)
    cwes = {"cwe-22", "cwe-77", "cwe-79", "cwe-89", "cwe-190", "cwe-416", "cwe-476", "cwe-787", "all"}
    for alpha in (0.0, 4.0):
        got = {r["cwe"]: r for r in rows if r["alpha"] == alpha}
        assert set(got) == cwes
        assert got["all"]["n"] == 48 and all(got[c]["n"] == 6 for c in cwes - {"all"})
    assert all(r["shift"] == 0.0 and r["flip_rate"] == 0.0 for r in rows if r["alpha"] == 0.0)
    assert "cwe-787" in capsys.readouterr().out


def test_eval_cli_bad_input(capsys):
    assert main(["eval", "--layers", "99", "--alpha", "1", "--dataset", "builtin"]) == 2
    assert "layer 99 is out of range" in capsys.readouterr().err
    assert main(["eval", "--layers", "1", "--alpha", "1", "--dataset", "/no/such/checkout"]) == 2


def test_layer_grid_reads_every_layer_and_alpha_in_residual_units(demo_model):
    """The console's layer × alpha grid: one held-out evaluation in residual units, each cell its row over all
    files; alpha 0 exactly nothing; each fold's coefficient is alpha × its residual norm ÷ its vector's norm; and
    on the demo model a push along the vector moves the verdict more than the random control in both directions."""
    from steertui.engine import ops

    pairs = load_dataset("builtin").pairs
    grid = ops.layer_grid(demo_model, pairs, (3, 1), (0.5, -0.5, 0.0), "mean-diff")
    s = grid.result.settings
    assert s.alpha_scale == "residual" and s.layers == (1, 3) and s.alphas == (-0.5, 0.0, 0.5)
    assert (s.folds, s.split, s.readout, s.seed) == (3, "pairs", "last", 0)
    assert grid.layers == (1, 3) and grid.alphas == (-0.5, 0.0, 0.5) and grid.n == 2 * len(pairs)
    rows = [r for r in grid.result.rows if r.cwe == "all"]
    assert len(rows) == len(grid.cells) == 6
    for r in rows:
        assert grid.cell(r.layer, r.alpha) is r and r.n == grid.n
        for f, fold in enumerate(grid.result.folds):
            norms = fold["residual_norm"][str(r.layer)] / fold["vector_norm"][str(r.layer)]
            assert r.raw_alpha[f] == pytest.approx(r.alpha * norms, rel=1e-6)
    for layer in grid.layers:
        zero = grid.cell(layer, 0.0)
        assert zero.shift == 0.0 and zero.flip_rate == 0.0 and zero.kl == 0.0 and zero.random_shift == 0.0
        up, down = grid.cell(layer, 0.5), grid.cell(layer, -0.5)
        assert up.shift > abs(up.random_shift) and -down.shift > abs(down.random_shift)
        assert up.kl > 0.0 and up.yes_rate >= zero.yes_rate >= down.yes_rate
    # `steertui eval` prints the same grid below its table when it has several layers and alphas
    from rich.console import Console

    from steertui.commands.eval import grid_table

    console = Console(record=True, width=150)
    console.print(grid_table(grid.result))
    text = console.export_text()
    assert "layer × alpha (residual norms)" in text and f"all {grid.n} held-out files" in text
    lines = {line.split("│")[1].strip(): line for line in text.splitlines() if line.count("│") == 5}
    for layer in grid.layers:
        cells = [part.strip() for part in lines[str(layer)].split("│")[2:5]]
        assert cells == [f"{grid.cell(layer, a).shift:+.2f} ({grid.cell(layer, a).random_shift:+.2f})"
                         for a in grid.alphas]


def test_several_random_controls(demo_model, tmp_path):
    """--controls K: K random vectors of the vector's norm per fold and layer; the first is the one-control run's;
    the random columns are the controls' means, random_shift_max the control shift of largest magnitude, and the
    dim rule holds a shift against that largest one. Recorded and replayed."""
    import dataclasses
    import math

    from steertui.engine.evaluate import random_control
    from steertui.engine.ops import within_control
    from steertui.engine.session import SessionRecorder, read_session

    data = load_dataset("builtin")
    pairs = [p for p in data.pairs if p.cwe in ("cwe-22", "cwe-77", "cwe-79")]
    base = EvalSettings(layers=(1,), alphas=(0.0, 2.0), folds=2, kl_tokens=8)
    one = evaluate(demo_model, pairs, base)
    three = evaluate(demo_model, pairs, dataclasses.replace(base, controls=3))
    for f1, f3 in zip(one.files, three.files):
        for x1, x3 in zip(f1["steered"], f3["steered"]):
            assert x3["score"] == x1["score"] and x3["random_score"] == x1["random_score"] == x3["random_scores"][0]
            assert len(x3["random_scores"]) == 3 and x1["random_scores"] == [x1["random_score"]]
            if x3["alpha"] == 0.0:
                assert x3["random_scores"] == [f3["baseline_score"]] * 3
            else:
                assert len(set(x3["random_scores"])) == 3  # three directions, three scores
            # every control's KL on the patched file's neutral code; the first is the one-control run's
            if f3["label"] == 0:
                assert x3["random_kl"] == x1["random_kl"] == x3["random_kls"][0]
                assert x1["random_kls"] == [x1["random_kl"]]
                assert len(x3["random_kls"]) == 3
                assert (len(set(x3["random_kls"])) == 3) if x3["alpha"] else x3["random_kls"] == [0.0] * 3
            else:
                assert x3["random_kls"] is None and x3["kl"] is None
    v = torch.randn(demo_model.d_model, generator=torch.Generator().manual_seed(1))
    rs = [random_control(v, 0, 1, 1, c) for c in range(3)]
    assert all(abs(float(r.norm()) - float(v.norm())) < 1e-4 for r in rs)
    assert max(abs(float(torch.nn.functional.cosine_similarity(rs[i], rs[j], dim=0)))
               for i in range(3) for j in range(i + 1, 3)) < 0.5
    row = next(r for r in three.rows if r.cwe == "all" and r.alpha == 2.0)
    per = [math.fsum(x["random_scores"][c] - f["baseline_score"] for f in three.files for x in f["steered"]
                     if x["alpha"] == 2.0) / len(three.files) for c in range(3)]
    assert row.random_shift == pytest.approx(sum(per) / 3, abs=1e-12)
    assert row.random_shift_max == pytest.approx(max(per, key=abs), abs=1e-12)
    solo = next(r for r in one.rows if r.cwe == "all" and r.alpha == 2.0)
    assert solo.random_shift_max == solo.random_shift  # one control: its own shift
    patched = [x for f in three.files for x in f["steered"] if x["alpha"] == 2.0 and x["kl"] is not None]
    kls = [math.fsum(x["random_kls"][c] for x in patched) / len(patched) for c in range(3)]
    assert row.random_kl == kls[0] and row.random_kl_max == max(kls) and len(set(kls)) == 3
    assert solo.random_kl_max == solo.random_kl == row.random_kl  # one control: its own KL, the first's
    # the dim rule: no larger than the control that moved the verdict most
    probe = dataclasses.replace(row, shift=0.5, random_shift=0.1, random_shift_max=-1.0, excess_se=float("nan"))
    assert within_control(probe) and not within_control(dataclasses.replace(probe, random_shift_max=0.2))
    # recorded with its count, replayed to the same rows
    rec = SessionRecorder.new(demo_model, data, path=tmp_path / "controls.toml")
    rec.evaluate(pairs, dataclasses.replace(base, controls=2))
    rec.close()
    step = read_session(tmp_path / "controls.toml").steps[0]
    assert step.inputs.controls == 2 and step.outputs.rows[0].random_shift_max is not None
    assert main(["replay", str(tmp_path / "controls.toml"), "--check"]) == 0


def test_rows_follow_the_cwe_order_of_everywhere_else_whatever_the_cwe_ids(demo_model):
    """Rows are filed per CWE by number, and a CWE id that is not a number (a dataset folder of another name) comes
    last by name: the same order in every process (a set's order of strings is not), as in data and picks."""
    import dataclasses

    from steertui.engine.data.model import cwe_sort_key

    pairs = [p for p in load_dataset("builtin").pairs if p.cwe in ("cwe-22", "cwe-77", "cwe-787")]
    renamed = [dataclasses.replace(p, vulnerable=dataclasses.replace(p.vulnerable, cwe="misc"),
                                   patched=dataclasses.replace(p.patched, cwe="misc"))
               if p.cwe == "cwe-77" else p for p in pairs]
    res = evaluate(demo_model, renamed, EvalSettings(layers=(1,), alphas=(0.0,), folds=2, kl_tokens=4))
    cwes = [r.cwe for r in res.rows]
    assert cwes == ["cwe-22", "cwe-787", "misc", "all"]
    assert cwes[:-1] == sorted({p.cwe for p in renamed}, key=cwe_sort_key)
