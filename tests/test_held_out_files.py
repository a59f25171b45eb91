"""The held-out files behind an evaluation's row (``engine.ops.held_out_files``, the Eval tab's `h`): each file's
scores and verdicts at one cell, which add up to the row exactly, the files the vector flipped first."""

from __future__ import annotations

import math

import pytest

from steertui.engine import ops
from steertui.engine.data import load_dataset
from steertui.engine.evaluate import EvalSettings, evaluate


@pytest.fixture(scope="module")
def result(demo_model):
    pairs = load_dataset("builtin").pairs
    return evaluate(demo_model, pairs, EvalSettings(layers=(1, 2), alphas=(-1.0, 0.0, 1.0), alpha_scale="residual",
                                                    controls=3, kl_tokens=16))


def _mean(values) -> float:
    return math.fsum(values) / len(values)


def test_the_files_of_a_row_add_up_to_the_row(result):
    checked = 0
    for r in result.rows:
        files = ops.held_out_files(result, r.layer, r.alpha, r.cwe)
        assert len(files) == r.n > 0 and all(r.cwe in ("all", h.cwe) for h in files)
        assert _mean([h.shift for h in files]) == r.shift
        assert _mean([float(h.flipped) for h in files]) == r.flip_rate
        assert _mean([float(h.yes_after) for h in files]) == r.yes_rate
        assert _mean([float(h.yes_before) for h in files]) == r.baseline_yes_rate
        assert _mean([float(h.yes_after == bool(h.label)) for h in files]) == r.accuracy
        assert _mean([h.baseline for h in files]) == r.baseline_score
        kls = [h.kl for h in files if h.kl is not None]
        assert len(kls) == r.n_kl and _mean(kls) == r.kl
        assert all((h.kl is None) == bool(h.label) for h in files)  # the KL is the patched file's
        # with 3 controls the row's random columns are means over the controls
        assert _mean([h.random_shift for h in files]) == pytest.approx(r.random_shift, abs=1e-12)
        assert _mean([h.random_flips / h.controls for h in files]) == pytest.approx(r.random_flip_rate, abs=1e-12)
        assert all(h.controls == 3 for h in files)
        if r.alpha == 0:
            assert all(h.shift == 0 and not h.flipped for h in files)
        checked += 1
    assert checked == len(result.rows) == 2 * 3 * 9


def test_the_flipped_files_come_first_then_the_largest_shifts_beyond_the_control(result):
    files = ops.held_out_files(result, 2, 1.0)
    flipped = [h for h in files if h.flipped]
    assert 0 < len(flipped) < len(files)
    assert files[:len(flipped)] == flipped
    for part in (flipped, files[len(flipped):]):
        excess = [abs(h.shift - h.random_shift) for h in part]
        assert excess == sorted(excess, reverse=True)
    assert {h.id for h in files} == {f["id"] for f in result.files}
    assert ops.held_out_files(result, 3, 1.0) == [] and ops.held_out_files(result, 2, 0.5) == []
