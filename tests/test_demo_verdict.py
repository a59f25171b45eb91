"""The demo model answers the vulnerability question, and steering moves that answer: behaviour that only a working
pipeline shows. Every number here comes from files the model never trained on (the builtin examples are checked
disjoint from its training data by scripts/train_demo_model.py), and every steering number from held-out pairs:
vectors and thresholds are fit on each fold's training pairs only (``evaluate``)."""

from __future__ import annotations

import pytest
import torch

from steertui.engine.build import build_vectors
from steertui.engine.data import load_builtin
from steertui.engine.evaluate import EvalSettings, direction_effect, evaluate
from steertui.engine.steering import forward
from steertui.engine.verdict import answer_tokens, sample_prompts

ALPHA = 1.0  # in units of the layer's mean residual norm (--alpha-scale residual), as in the model card
MARGIN = 0.3  # the vector must beat a random vector of equal norm by this much, in yes-rate, in both directions


@pytest.fixture(scope="module")
def builtin():
    return load_builtin()


@pytest.fixture(scope="module")
def answer_probs(demo_session, builtin):
    """p(" Yes"), p(" No") at the answer slot of every builtin file, one forward per file."""
    answers = answer_tokens(demo_session)
    samples = list(builtin.samples)
    prompts = sample_prompts(demo_session, samples, [builtin.pair_of(s) for s in samples])
    out = []
    for s, p in zip(samples, prompts):
        assert not p.truncated, s.id  # the context holds every builtin file whole
        probs = forward(demo_session, [p.text], logits_at="last").logits[0].float().softmax(-1)
        out.append((s, probs[answers.yes_id].item(), probs[answers.no_id].item()))
    return out


def test_answers_yes_or_no_on_the_builtin_files(answer_probs):
    mass = [py + pn for _, py, pn in answer_probs]
    assert len(mass) == 32
    assert sum(mass) / len(mass) >= 0.9, f"mean answer mass {sum(mass) / len(mass):.3f}"


def test_plain_argmax_verdict_is_right_on_most_builtin_files(answer_probs):
    right = [(py > pn) == bool(s.label_int) for s, py, pn in answer_probs]
    yes = [py > pn for _, py, pn in answer_probs]
    acc = sum(right) / len(right)
    assert acc >= 0.75, f"accuracy {acc:.3f}, yes-rate {sum(yes) / len(yes):.3f}"
    assert 0 < sum(yes) < len(yes)  # not one answer for everything


@pytest.fixture(scope="module")
def best_layer(demo_session, builtin):
    diags = build_vectors(demo_session, list(builtin.pairs), seed=0).diagnostics
    return max(diags, key=lambda d: (d.auroc_pairs or 0.0, -d.layer))


@pytest.fixture(scope="module")
def held_out_effect(demo_session, builtin, best_layer):
    settings = EvalSettings(layers=(best_layer.layer,), alphas=(-ALPHA, 0.0, ALPHA), alpha_scale="residual",
                            folds=3, seed=0)
    result = evaluate(demo_session, list(builtin.pairs), settings)
    return result, direction_effect(result.files, best_layer.layer, ALPHA)


def test_best_layer_separates_held_out_pairs(best_layer):
    assert best_layer.auroc_pairs is not None and best_layer.auroc_pairs > 0.5, best_layer


def test_steering_moves_the_verdict_both_ways_more_than_a_random_vector(held_out_effect):
    result, e = held_out_effect
    report = (f"layer {e.layer} alpha ±{e.alpha:g}: patched yes-rate up {e.up:+.2f} (random {e.up_random:+.2f}), "
              f"vulnerable yes-rate down {e.down:+.2f} (random {e.down_random:+.2f}), "
              f"KL {e.kl_up:.3f} / {e.kl_down:.3f}")
    print(report)
    assert e.n_patched == e.n_vulnerable == 16
    assert e.up - e.up_random >= MARGIN, report
    assert e.down - e.down_random >= MARGIN, report
    assert e.kl_up > 0 and e.kl_down > 0, report  # steering has a fluency cost, and it is measured


def test_alpha_zero_changes_nothing(held_out_effect):
    result, _ = held_out_effect
    for f in result.files:
        zero = [x for x in f["steered"] if x["alpha"] == 0.0]
        assert zero and all(x["score"] == f["baseline_score"] for x in zero)  # the same batches: bit for bit
    assert torch.isfinite(torch.tensor([f["baseline_score"] for f in result.files])).all()
