"""``steertui eval --json`` can be read without guessing: every row of the table is recomputed from the per-file
records, ``--layers all`` is every layer, and ``--alpha-scale residual`` measures alpha in the layer's mean
residual norm. Structural checks only: nothing here depends on the demo model being good at the task."""

from __future__ import annotations

import json
import math

import pytest
import torch

from steertui.cli import main
from steertui.engine import evaluate as evaluate_module
from steertui.engine.build import pair_activations
from steertui.engine.data import load_dataset
from steertui.engine.evaluate import EvalSettings, evaluate

EPS32 = torch.finfo(torch.float32).eps

ROW_KEYS = {"layer", "alpha", "cwe", "n", "shift", "accuracy", "flip_rate", "random_shift", "random_flip_rate", "kl",
            "n_kl", "baseline_accuracy", "baseline_yes_rate", "yes_rate", "random_kl", "answer_mass", "raw_alpha",
            "baseline_score", "random_yes_rate", "excess_se", "random_shift_max"}
FILE_KEYS = {"id", "pair", "cwe", "label", "fold", "threshold", "p_yes", "p_no", "baseline_score", "steered",
             "fix_baseline"}


@pytest.fixture(scope="module")
def eval_json(tmp_path_factory, demo_model_path) -> dict:
    out = tmp_path_factory.mktemp("eval") / "out.json"
    code = main(["eval", "--model", str(demo_model_path), "--dataset", "builtin", "--layers", "1,3",
                 "--alpha=-1,0,1", "--alpha-scale", "residual", "--folds", "2", "--kl-tokens", "16",
                 "--json", str(out)])
    assert code == 0
    return json.loads(out.read_text())


def _mean(values: list[float]) -> float:
    # math.fsum is exactly rounded, so the mean does not depend on the order of the files: the engine and this
    # test may sum in any order and still agree to the last bit
    return math.fsum(values) / len(values)


def _recompute(files: list[dict], layer: int, alpha: float, cwe: str) -> dict:
    group = [f for f in files if cwe == "all" or f["cwe"] == cwe]
    st = [next(x for x in f["steered"] if x["layer"] == layer and x["alpha"] == alpha) for f in group]
    yes_b = [f["baseline_score"] > f["threshold"] for f in group]
    yes_s = [x["score"] > f["threshold"] for f, x in zip(group, st)]
    yes_r = [x["random_score"] > f["threshold"] for f, x in zip(group, st)]
    truth = [f["label"] == 1 for f in group]
    patched = [x for f, x in zip(group, st) if f["label"] == 0]
    folds = {f["fold"]: x["raw_alpha"] for f in files for x in f["steered"] if x["layer"] == layer
             and x["alpha"] == alpha}
    return {
        "n": len(group),
        "shift": _mean([x["score"] - f["baseline_score"] for f, x in zip(group, st)]),
        "random_shift": _mean([x["random_score"] - f["baseline_score"] for f, x in zip(group, st)]),
        "accuracy": _mean([float(s == y) for s, y in zip(yes_s, truth)]),
        "baseline_accuracy": _mean([float(b == y) for b, y in zip(yes_b, truth)]),
        "flip_rate": _mean([float(s != b) for s, b in zip(yes_s, yes_b)]),
        "random_flip_rate": _mean([float(r != b) for r, b in zip(yes_r, yes_b)]),
        "baseline_yes_rate": _mean([float(b) for b in yes_b]),
        "yes_rate": _mean([float(s) for s in yes_s]),
        "answer_mass": _mean([f["p_yes"] + f["p_no"] for f in group]),
        "kl": _mean([x["kl"] for x in patched]), "random_kl": _mean([x["random_kl"] for x in patched]),
        "n_kl": len(patched),
        "raw_alpha": [folds[k] for k in sorted(folds)],
        "baseline_score": _mean([f["baseline_score"] for f in group]),
        "random_yes_rate": _mean([float(r) for r in yes_r]),
        "excess_se": _pair_se(group, st),
        "random_shift_max": _mean([x["random_score"] - f["baseline_score"] for f, x in zip(group, st)]),  # 1 control
    }


def _pair_se(group: list[dict], st: list[dict]) -> float:
    """The standard error over pairs of (steered − random) score, each pair's files averaged first; written out
    with statistics.stdev as an independent route."""
    import statistics

    by_pair: dict[str, list[float]] = {}
    for f, x in zip(group, st):
        by_pair.setdefault(f["pair"], []).append(x["score"] - x["random_score"])
    means = [math.fsum(v) / len(v) for v in by_pair.values()]
    return statistics.stdev(means) / math.sqrt(len(means)) if len(means) > 1 else float("nan")


def test_every_row_is_recomputed_from_the_files(eval_json) -> None:
    data = eval_json
    pairs = load_dataset("builtin").pairs
    files, rows = data["files"], data["results"]
    assert data["settings"]["alpha_scale"] == "residual" and data["settings"]["layers"] == [1, 3]
    assert data["truncated"] == []  # the builtin examples fit the context
    # one record per held-out file: every file of every pair exactly once, in its pair's fold
    assert sorted(f["id"] for f in files) == sorted(s.id for p in pairs for s in p.samples)
    test_fold = {pid: fold["fold"] for fold in data["folds"] for pid in fold["test_pairs"]}
    threshold = {fold["fold"]: fold["threshold"] for fold in data["folds"]}
    by_id = {s.id: (p, s) for p in pairs for s in p.samples}
    for f in files:
        assert set(f) == FILE_KEYS and f["fold"] == test_fold[f["pair"]]
        pair, sample = by_id[f["id"]]
        assert (f["pair"], f["cwe"], f["label"]) == (pair.id, pair.cwe, 1 if sample is pair.vulnerable else 0)
        assert f["threshold"] == threshold[f["fold"]]
        assert 0.0 <= f["p_yes"] <= 1.0 and 0.0 <= f["p_no"] <= 1.0 and f["p_yes"] + f["p_no"] <= 1.0 + 4 * EPS32
        # the score and the two probabilities come from the same logits: log p(yes) - log p(no) is the logit
        # difference up to the float32 rounding of the two log-softmax values (a few ulps of their magnitude)
        gap = math.log(f["p_yes"]) - math.log(f["p_no"])
        assert abs(gap - f["baseline_score"]) <= 64 * EPS32 * max(1.0, -math.log(f["p_yes"]), -math.log(f["p_no"]))
        assert [(x["layer"], x["alpha"]) for x in f["steered"]] == [(L, a) for L in (1, 3) for a in (-1.0, 0.0, 1.0)]
        for x in f["steered"]:
            assert (x["kl"] is None) == (f["label"] == 1)  # the KL is read on each pair's patched file
            if x["alpha"] == 0.0:  # alpha 0 adds exactly nothing
                assert x["raw_alpha"] == 0.0 and x["score"] == x["random_score"] == f["baseline_score"]
    assert len(rows) == 2 * 3 * (len({p.cwe for p in pairs}) + 1)
    for row in rows:
        assert ROW_KEYS <= set(row)
        want = _recompute(files, row["layer"], row["alpha"], row["cwe"])
        se, want_se = row.pop("excess_se"), want.pop("excess_se")  # another formula: equal to rounding
        assert {k: row[k] for k in want} == want, (row["layer"], row["alpha"], row["cwe"])
        assert se == pytest.approx(want_se, rel=1e-9, abs=1e-12) and se >= 0.0
        assert (se == 0.0) == (row["alpha"] == 0.0)  # alpha 0: steered = random = unsteered, every file
    # the coefficient each fold applied is alpha times that fold's residual norm over its vector's norm
    for fold in data["folds"]:
        for L in ("1", "3"):
            raw = next(x["raw_alpha"] for f in files if f["fold"] == fold["fold"] for x in f["steered"]
                       if x["layer"] == int(L) and x["alpha"] == 1.0)
            assert raw == fold["residual_norm"][L] / fold["vector_norm"][L]


def test_layers_all_means_every_layer(demo_model, demo_model_path, tmp_path) -> None:
    out = tmp_path / "all.json"
    assert main(["eval", "--model", str(demo_model_path), "--dataset", "builtin", "--layers", "all", "--alpha", "0",
                 "--folds", "2", "--kl-tokens", "4", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    every = list(range(demo_model.n_layers))
    assert data["settings"]["layers"] == every and data["settings"]["alpha_scale"] == "raw"
    assert sorted({r["layer"] for r in data["results"]}) == every
    assert all(sorted({x["layer"] for x in f["steered"]}) == every for f in data["files"])


def test_residual_scale_alpha_one_adds_the_mean_residual_norm(demo_model, monkeypatch) -> None:
    pairs = load_dataset("builtin").pairs
    layers = (1, 2)
    applied = []  # (layer, label, norm of the vector the model gets) per scoring call that steers
    def spying(real):
        def spy(session, prompts, answers, *, steers=(), **kw):
            for s in steers:
                # the model adds alpha * vector cast to float32 (steering.SteerPlan); measure that vector
                applied.append((s.layer, s.label, float((float(s.alpha) * s.vector.detach().float()).norm())))
            return real(session, prompts, answers, steers=steers, **kw)
        return spy

    # the vector's scores come with the per-file records (score_answers), the controls' as scores alone (score)
    for name in ("score", "score_answers"):
        monkeypatch.setattr(evaluate_module, name, spying(getattr(evaluate_module, name)))
    res = evaluate(demo_model, pairs, EvalSettings(layers=layers, alphas=(1.0,), folds=2, kl_tokens=4,
                                                     alpha_scale="residual"))
    acts = pair_activations(demo_model, pairs, layers=list(layers))
    index = {p.id: k for k, p in enumerate(pairs)}
    expected = []
    for fold in res.folds:  # the engine's call order: fold, layer, then the vector before the random control
        train = [index[pid] for pid in fold["train_pairs"]]
        for k, layer in enumerate(layers):
            vuln, patched = acts.vulnerable[train, k].double(), acts.patched[train, k].double()
            mean_norm = 0.5 * (float(vuln.norm(dim=1).mean()) + float(patched.norm(dim=1).mean()))
            expected += [(layer, "vector", mean_norm), (layer, "random", mean_norm)]
    assert [(L, label) for L, label, _ in applied] == [(L, label) for L, label, _ in expected]
    for (layer, label, got), (_, _, want) in zip(applied, expected):
        # equal up to float32 rounding: the engine takes each file's norm in float32 (this test in float64), and
        # the coefficient alpha * ||h|| / ||v|| times the float32 vector rounds once per element before the norm;
        # each is a relative error of a few EPS32, summed over d_model terms like a random walk
        assert got == pytest.approx(want, rel=64 * EPS32), (layer, label)


def test_cwe_option_keeps_only_those_pairs(demo_model_path, tmp_path, capsys) -> None:
    out = tmp_path / "cwe.json"
    assert main(["eval", "--model", str(demo_model_path), "--dataset", "builtin", "--layers", "1", "--alpha=0,2",
                 "--cwe", "787", "--cwe", "CWE-22", "--folds", "2", "--kl-tokens", "8", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["settings"]["cwes"] == ["cwe-22", "cwe-787"]
    assert sorted({f["cwe"] for f in data["files"]}) == ["cwe-22", "cwe-787"] and len(data["files"]) == 8
    assert sorted({r["cwe"] for r in data["results"]}) == ["all", "cwe-22", "cwe-787"]
    capsys.readouterr()
    assert main(["eval", "--dataset", "builtin", "--layers", "1", "--alpha", "1", "--cwe", "999"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no pairs of 999" in err and "choose from cwe-22, cwe-77" in err
