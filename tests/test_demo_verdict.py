"""The demo model answers the vulnerability question, and steering moves that answer: behaviour that only a working
pipeline shows. Every number here comes from files the model never trained on (the builtin examples are checked
disjoint from its training data by scripts/train_demo_model.py), and every steering number from held-out pairs:
vectors and thresholds are fit on each fold's training pairs only (``evaluate``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from steertui.engine.build import build_vectors
from steertui.engine.data import load_builtin
from steertui.engine.evaluate import EvalSettings, direction_effect, evaluate
from steertui.engine.steering import forward
from steertui.engine.vectors import best_layer
from steertui.engine.verdict import answer_tokens, sample_prompts

REPO = Path(__file__).resolve().parents[1]
ALPHA = 1.0  # in units of the layer's mean residual norm (--alpha-scale residual), as in the model card
# What the shipped model does (its card, from the saved folder): on the 32 builtin files, answer mass 0.997, plain
# Yes/No accuracy 0.75 (24 of 32) with yes-rate 0.62; at the best layer by held-out AUROC (1), steering at +-1
# raises the patched files' yes-rate by 0.56 (random 0.06) and lowers the vulnerable files' by 0.81 (random 0.31).
# On held-out synthetic shapes (never trained on), at layer 3: up 0.27 (random -0.10), down 0.58 (random -0.04).
# The thresholds below are what a working pipeline on this model must show: a broken one (zero or wrong hidden
# states, a vector that is noise, a verdict read at the wrong slot) answers at chance, one way for every file, or
# moves the verdict no more than the random vector does.
MIN_ACCURACY = 0.75  # chance is 0.5
MARGIN = 0.3  # vector minus random, in yes-rate, both directions, on held-out builtin pairs
MARGIN_SYNTHETIC = 0.3  # vector minus random, in yes-rate, both directions, on held-out synthetic shapes


@pytest.fixture(scope="module")
def builtin():
    return load_builtin()


@pytest.fixture(scope="module")
def answer_probs(demo_model, builtin):
    """p(" Yes"), p(" No") at the answer slot of every builtin file, one forward per file."""
    answers = answer_tokens(demo_model)
    samples = list(builtin.samples)
    prompts = sample_prompts(demo_model, samples, [builtin.pair_of(s) for s in samples])
    out = []
    for s, p in zip(samples, prompts):
        assert not p.truncated, s.id  # the context holds every builtin file whole
        probs = forward(demo_model, [p.text], logits_at="last").logits[0].float().softmax(-1)
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
    assert acc >= MIN_ACCURACY, f"accuracy {acc:.3f}, yes-rate {sum(yes) / len(yes):.3f}"
    assert 0 < sum(yes) < len(yes)  # not one answer for everything


@pytest.fixture(scope="module")
def builtin_best(demo_model, builtin):
    return best_layer(build_vectors(demo_model, list(builtin.pairs), seed=0).diagnostics)


@pytest.fixture(scope="module")
def held_out_effect(demo_model, builtin, builtin_best):
    settings = EvalSettings(layers=(builtin_best.layer,), alphas=(-ALPHA, 0.0, ALPHA), alpha_scale="residual",
                            folds=3, seed=0)
    result = evaluate(demo_model, list(builtin.pairs), settings)
    return result, direction_effect(result.files, builtin_best.layer, ALPHA)


def test_best_layer_separates_held_out_pairs(builtin_best):
    assert builtin_best.auroc_pairs is not None and builtin_best.auroc_pairs > 0.5, builtin_best


def test_steering_moves_the_verdict_both_ways_more_than_a_random_vector(held_out_effect):
    result, e = held_out_effect
    report = (f"layer {e.layer} alpha ±{e.alpha:g}: patched yes-rate up {e.up:+.2f} (random {e.up_random:+.2f}), "
              f"vulnerable yes-rate down {e.down:+.2f} (random {e.down_random:+.2f}), "
              f"KL {e.kl_up:.3f} / {e.kl_down:.3f}")
    print(report)
    assert e.n_patched == e.n_vulnerable == 16
    assert e.up - e.up_random >= MARGIN and e.down - e.down_random >= MARGIN, report
    assert e.kl_up > 0 and e.kl_down > 0, report  # steering has a fluency cost, and it is measured


def test_alpha_zero_changes_nothing(held_out_effect):
    result, _ = held_out_effect
    for f in result.files:
        zero = [x for x in f["steered"] if x["alpha"] == 0.0]
        assert zero and all(x["score"] == f["baseline_score"] for x in zero)  # the same batches: bit for bit
    assert torch.isfinite(torch.tensor([f["baseline_score"] for f in result.files])).all()


@pytest.fixture(scope="module")
def synthetic_pairs(tmp_path_factory):
    """Pairs of the held-out synthetic shapes (never trained on), six per CWE, as a hand-crafted part."""
    import sys

    from steertui.engine.data import load_checkout

    sys.path.insert(0, str(REPO / "scripts"))
    import synth_vulns

    _, held = synth_vulns.split(synth_vulns.generate(synth_vulns.DEFAULT_COUNT, seed=0))
    root = synth_vulns.write_checkout(held, tmp_path_factory.mktemp("synthetic"), per_cwe=6)
    return list(load_checkout(root).select(parts=["hand-crafted"]).pairs)


def test_steering_on_held_out_synthetic_shapes_beats_random_by_the_margin(demo_model, synthetic_pairs):
    assert len(synthetic_pairs) == 48
    best = best_layer(build_vectors(demo_model, synthetic_pairs, seed=0).diagnostics)
    settings = EvalSettings(layers=(best.layer,), alphas=(-ALPHA, 0.0, ALPHA), alpha_scale="residual", folds=3,
                            seed=0)
    e = direction_effect(evaluate(demo_model, synthetic_pairs, settings).files, best.layer, ALPHA)
    report = (f"layer {e.layer}: up {e.up:+.2f} (random {e.up_random:+.2f}), down {e.down:+.2f} "
              f"(random {e.down_random:+.2f}), KL {e.kl_up:.3f} / {e.kl_down:.3f}")
    print(report)
    assert e.up - e.up_random >= MARGIN_SYNTHETIC, report
    assert e.down - e.down_random >= MARGIN_SYNTHETIC, report
