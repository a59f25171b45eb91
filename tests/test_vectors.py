"""Vectors and diagnostics: mean difference by hand, PCA sign, probe, AUROC, safetensors round trip."""

from __future__ import annotations

import pytest
import torch

from steertui.engine.build import build_vectors
from steertui.engine.data import load_dataset
from steertui.engine.vectors import auroc, consistency, diagnose, direction
from tolerances import EPS32, EPS64, FORWARD, SAME_OP, f32_tol


@pytest.fixture(scope="module")
def built(demo_model):
    pairs = load_dataset("builtin").pairs
    return pairs, build_vectors(demo_model, pairs, readout="last", method="mean-diff", seed=0)


def test_mean_diff_equals_hand_computation(demo_model, built):
    pairs, result = built
    n = demo_model.n_layers
    assert result.vectors.layers == list(range(n))
    diffs, states = [], []
    for p in pairs:
        pair = []
        for code in (p.vulnerable.code, p.patched.code):
            ids = torch.tensor([demo_model.tokenizer(code)["input_ids"]])
            with torch.no_grad():
                hs = demo_model.hf(input_ids=ids, output_hidden_states=True).hidden_states
            pair.append(torch.stack([hs[i + 1][0, -1] for i in range(n - 1)]))
        diffs.append(pair[0] - pair[1])
        states += pair
    want = torch.stack(diffs).mean(0)  # [n-1, D]
    for i in range(n - 1):
        # padded batches against one text alone: a whole forward's rounding, at the magnitude of the states
        # that are subtracted (the difference itself can be much smaller than they are)
        tol = f32_tol([s[i] for s in states], ulps=FORWARD)
        torch.testing.assert_close(result.vectors.vectors[i], want[i], rtol=0, atol=tol)
        assert result.vectors.vectors[i].norm() > 0


def test_cwe_directions_by_hand(demo_model, built):
    """Each CWE's mean difference against every other CWE's and against the built vector: cosines computed here
    with plain torch from the build's own activations, in the order the CWEs first appear."""
    from steertui.engine.build import cwe_directions

    pairs, result = built
    acts = result.activations
    directions = cwe_directions(acts, result.vectors.vectors)
    assert sorted(directions) == acts.layers
    cwes = list(dict.fromkeys(p.cwe for p in pairs))
    for k, layer in enumerate(acts.layers):
        c = directions[layer]
        assert c.layer == layer and list(c.cwes) == cwes
        assert list(c.n_pairs) == [sum(p.cwe == cwe for p in pairs) for cwe in cwes]
        assert c.chance == pytest.approx(demo_model.d_model ** -0.5)
        means = {cwe: torch.stack([acts.vulnerable[i, k] - acts.patched[i, k] for i, p in enumerate(pairs)
                                   if p.cwe == cwe]).double().mean(0) for cwe in cwes}
        v = result.vectors.vectors[layer].double()
        for i, a in enumerate(cwes):
            assert c.to_vector[i] == pytest.approx(float(means[a] @ v / (means[a].norm() * v.norm())), abs=1e-12)
            for j, b in enumerate(cwes):
                want = float(means[a] @ means[b] / (means[a].norm() * means[b].norm()))
                assert c.cosine[i][j] == pytest.approx(want, abs=1e-12)
            assert c.cosine[i][i] == pytest.approx(1.0, abs=1e-12)
        # the mean-diff vector is the mean of all differences: every CWE's direction leans towards it here
        assert sum(c.to_vector) > 0


def test_diagnostics_by_hand(built):
    pairs, result = built
    acts = result.activations
    d1 = result.diagnostics[1]
    a, b = acts.vulnerable[:, 1], acts.patched[:, 1]
    assert d1.layer == 1 and d1.n_pairs == len(pairs)
    # the same formula on the same float32 activations as the engine: exactly equal
    assert d1.residual_norm == float(0.5 * (a.norm(dim=1).mean() + b.norm(dim=1).mean()))
    assert d1.consistency == consistency(a - b)
    # the engine averages the differences in float64 and keeps the vector in float32: one rounding of each
    # element, and the float32 norm's sum of D squares summed in its own order
    mean = (a - b).double().mean(0)
    assert d1.norm_ratio == pytest.approx(float(mean.norm()) / d1.residual_norm, rel=SAME_OP * EPS32, abs=0)
    assert d1.folds_pairs == 5 and d1.folds_cwe == 8
    assert 0.0 <= d1.auroc_pairs <= 1.0 and 0.0 <= d1.auroc_cwe <= 1.0


def test_auroc_and_consistency_known_values():
    assert auroc([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0]) == 1.0
    assert auroc([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0]) == 0.0
    assert auroc([0.5, 0.5], [1, 0]) == 0.5
    assert auroc([0.3, 0.1, 0.2], [1, 0, 1]) == 1.0
    assert auroc([1.0], [1]) is None
    same = torch.tensor([[1.0, 2.0], [2.0, 4.0], [0.5, 1.0]])
    # cosines of parallel rows, computed in float64: 1 up to a few roundings (normalising, a 2-term dot product)
    assert consistency(same) == pytest.approx(1.0, rel=0, abs=SAME_OP * EPS64)
    assert consistency(torch.tensor([[1.0, 0.0], [0.0, 1.0]])) == 0.0  # 1·0 + 0·1: exact in any precision


def test_pca_and_probe_directions():
    g = torch.Generator().manual_seed(0)
    axis = torch.tensor([3.0, 0.0, 0.0, 0.0])
    patched = torch.randn(20, 4, generator=g)
    vuln = patched + axis + 0.1 * torch.randn(20, 4, generator=g)
    mean = (vuln - patched).mean(0)
    for method in ("pca", "probe"):
        v = direction(vuln, patched, method)
        unit = v / v.norm()
        assert float(unit @ mean) > 0, "oriented toward vulnerable"
        # the length is the projection of the mean difference (float64 in the engine, float32 here): the
        # float32 roundings of a 4-term dot product and a norm, at the magnitude of the mean
        assert float(v.norm()) == pytest.approx(float(mean @ unit), rel=0, abs=f32_tol(mean.norm(), ulps=SAME_OP))
    # statistics, not rounding: a shift of 3 along one axis under noise of 0.1 is found almost exactly and
    # separates the two sides almost perfectly
    assert torch.nn.functional.cosine_similarity(direction(vuln, patched, "pca"), axis, dim=0) > 0.99
    flipped = direction(patched, vuln, "pca")
    assert float(flipped @ axis) < 0
    diag = diagnose(vuln[:, None], patched[:, None], [0], "probe", cwes=["cwe-1"] * 10 + ["cwe-2"] * 10)
    assert diag[0].auroc_pairs > 0.95 and diag[0].auroc_cwe > 0.95 and diag[0].consistency > 0.9
