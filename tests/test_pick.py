"""The layer × alpha search scored honestly: each fold's held-out files are steered with the cell that did best
on the other folds' files (``pick_on_other_folds``), so no file helps choose the cell it is scored with."""

from __future__ import annotations

import json
import math

import pytest

from steertui.cli import main
from steertui.engine import ops
from steertui.engine.data import load_dataset
from steertui.engine.evaluate import pick_on_other_folds
from steertui.errors import SteertuiError


@pytest.fixture(scope="module")
def grid(demo_model):
    return ops.layer_grid(demo_model, load_dataset("builtin").pairs, (1, 3), (-0.5, -0.25, 0.0, 0.25, 0.5),
                          "mean-diff")


def _excess(files, layer, alpha) -> float:
    vals = [x["score"] - sum(x["random_scores"]) / len(x["random_scores"])
            for f in files for x in f["steered"] if (x["layer"], x["alpha"]) == (layer, alpha)]
    return sum(vals) / len(vals)


def test_each_fold_steers_with_the_cell_best_on_the_other_folds(grid):
    files = grid.result.files
    cells = [(L, a) for L in grid.layers for a in grid.alphas if a != 0]
    for direction, sign in (("up", 1.0), ("down", -1.0)):
        pick = pick_on_other_folds(files, direction)
        assert [c.fold for c in pick.folds] == [0, 1, 2]
        for c in pick.folds:
            others = [f for f in files if f["fold"] != c.fold]
            by_hand = max(cells, key=lambda cell: sign * _excess(others, *cell))
            assert (c.layer, c.alpha) == by_hand and c.excess == pytest.approx(_excess(others, *by_hand), abs=1e-9)
            assert sign * c.alpha > 0  # on the demo model the push along the vector wins in its direction
        # the picked row is every file scored at its own fold's cell, in the table's columns
        at = {c.fold: (c.layer, c.alpha) for c in pick.folds}
        chosen = [next(x for x in f["steered"] if (x["layer"], x["alpha"]) == at[f["fold"]]) for f in files]
        row = pick.all
        assert row.n == len(files) == grid.n and (row.layer, row.alpha) == (-1, sign)
        assert row.shift == pytest.approx(sum(x["score"] - f["baseline_score"] for f, x in zip(files, chosen))
                                          / len(files), abs=1e-9)
        assert row.random_shift == pytest.approx(sum(x["random_score"] - f["baseline_score"]
                                                     for f, x in zip(files, chosen)) / len(files), abs=1e-9)
        assert {r.cwe for r in pick.rows} == {f["cwe"] for f in files} | {"all"}
        # the grid's best cell read off the grid is the best of its rows, and the honest pick does no better
        best = max(cells, key=lambda cell: sign * (grid.cell(*cell).shift - grid.cell(*cell).random_shift))
        c = grid.cell(*best)
        assert pick.hindsight[:2] == best and pick.hindsight[2] == pytest.approx(c.shift - c.random_shift, abs=1e-9)
        assert grid.best(direction) == pytest.approx(pick.hindsight, abs=1e-9)
        assert sign * (row.shift - row.random_shift) <= sign * pick.hindsight[2] + 1e-9
    assert set(grid.picks) == {"up", "down"} and grid.pick_row("up") == pick_on_other_folds(files, "up").all


def test_a_fold_cannot_pick_on_its_own_files(grid):
    """Making one cell look best on fold 0's own files alone moves nothing of fold 0's pick; the other folds,
    which may see those files, follow the change."""
    files = grid.result.files
    before = pick_on_other_folds(files, "up")
    layer, alpha = 1, 0.25  # a small push: not the pick of any fold before
    assert all((c.layer, c.alpha) != (layer, alpha) for c in before.folds)
    rigged = []
    for f in files:
        steered = [dict(x, score=x["score"] + 1000.0) if f["fold"] == 0 and (x["layer"], x["alpha"]) == (layer, alpha)
                   else x for x in f["steered"]]
        rigged.append({**f, "steered": steered})
    after = pick_on_other_folds(rigged, "up")
    assert after.folds[0] == before.folds[0]
    assert all((c.layer, c.alpha) == (layer, alpha) for c in after.folds[1:])
    assert after.hindsight[:2] == (layer, alpha)  # read off the grid, the rigged cell wins


def test_a_kl_limit_is_kept_and_refusals_name_what_to_do(grid):
    files = grid.result.files
    kls = sorted(grid.cell(L, a).kl for L in grid.layers for a in grid.alphas if a != 0)
    limit = kls[1]
    pick = pick_on_other_folds(files, "up", max_kl=limit)
    assert all(c.kl <= limit for c in pick.folds) and pick.max_kl == limit
    assert all(abs(c.alpha) == 0.25 for c in pick.folds)  # the larger pushes cost more KL than the limit
    with pytest.raises(SteertuiError, match=r"no cell has a mean KL within 1e-09 on the files outside fold 0 — "):
        pick_on_other_folds(files, "up", max_kl=1e-9)
    with pytest.raises(SteertuiError, match="needs at least 2 folds"):
        pick_on_other_folds([f for f in files if f["fold"] == 0], "up")
    one_cell = [{**f, "steered": [x for x in f["steered"] if (x["layer"], x["alpha"]) == (1, 0.5)]} for f in files]
    with pytest.raises(SteertuiError, match="fewer than 2 steered cells"):
        pick_on_other_folds(one_cell, "up")
    with pytest.raises(SteertuiError, match="unknown direction 'sideways'"):
        pick_on_other_folds(files, "sideways")


def test_the_grid_line_and_the_eval_json(grid, demo_model_path, tmp_path, capsys):
    line = ops.pick_text(grid)
    up, down = grid.pick_row("up"), grid.pick_row("down")
    assert line.startswith("cell picked on the other folds, beyond rand: ↑ " + ops.beyond_control(up))
    assert f"· ↓ {ops.beyond_control(down)}" in line and f"vs grid's best {grid.best('up')[2]:+.2f}" in line
    out = tmp_path / "e.json"
    assert main(["eval", "--model", str(demo_model_path), "--dataset", "builtin", "--layers", "1,3",
                 "--alpha-scale", "residual", "--alpha=-0.5,-0.25,0,0.25,0.5", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    for direction in ("up", "down"):
        want = pick_on_other_folds(grid.result.files, direction)
        got = data["picked"][direction]
        assert [(c["layer"], c["alpha"]) for c in got["folds"]] == [(c.layer, c.alpha) for c in want.folds]
        all_row = next(r for r in got["results"] if r["cwe"] == "all")
        assert math.isclose(all_row["shift"], want.all.shift, abs_tol=1e-9)
    assert "cell picked on the other folds" in printed and "↑ towards yes: fold 0: layer" in printed
    # a fluency budget: only cells whose mean KL on the other folds is within it
    limit = sorted(grid.cell(L, a).kl for L in grid.layers for a in grid.alphas if a != 0)[1]
    assert main(["eval", "--model", str(demo_model_path), "--dataset", "builtin", "--layers", "1,3",
                 "--alpha-scale", "residual", "--alpha=-0.5,-0.25,0,0.25,0.5", "--pick-max-kl", repr(limit),
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    want = pick_on_other_folds(grid.result.files, "up", max_kl=limit)
    assert data["picked"]["up"]["max_kl"] == limit and all(c["kl"] <= limit for c in data["picked"]["up"]["folds"])
    got = [(c["layer"], c["alpha"]) for c in data["picked"]["up"]["folds"]]
    assert got == [(c.layer, c.alpha) for c in want.folds]
    assert f"mean KL ≤ {limit:g}" in printed and "the grid's best cell read off the grid within the KL limit" in printed
    with pytest.raises(SystemExit) as exit_:
        main(["eval", "--model", str(demo_model_path), "--dataset", "builtin", "--layers", "1", "--alpha", "1",
              "--pick-max-kl", "nan"])
    assert exit_.value.code == 2
    assert "--pick-max-kl: 'nan' is not a finite number of 0 or more" in capsys.readouterr().err
