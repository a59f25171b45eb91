"""Activation extraction equals hand computations from transformers' own hidden states."""

from __future__ import annotations

import threading

import pytest
import torch

from steertui.engine.activations import extract, token_diff_masks, tokenize
from steertui.engine.data import load_dataset
from steertui.errors import CancelledError
from tolerances import FORWARD, f32_tol


@pytest.fixture(scope="module")
def builtin():
    return load_dataset("builtin")


def _reference_states(session, text):
    """Per-layer hidden states [S, D] of one unpadded text: hidden_states[i+1] for i < n-1, and a plain
    forward hook for the last block (transformers' last entry is after the final norm)."""
    ids = torch.tensor([session.tokenizer(text)["input_ids"]])
    last = {}
    block = session.hf_module(session.adapter.block_path(session.n_layers - 1))
    handle = block.register_forward_hook(lambda _m, _i, out: last.setdefault("h", out))
    try:
        with torch.no_grad():
            hs = session.hf(input_ids=ids, output_hidden_states=True).hidden_states
    finally:
        handle.remove()
    return [hs[i + 1][0] for i in range(session.n_layers - 1)] + [last["h"][0]]


def test_token_diff_masks():
    a, b = token_diff_masks([1, 2, 3, 4, 5], [1, 2, 9, 4, 5])
    assert a == [False, False, True, False, False] and b == [False, False, True, False, False]
    a, b = token_diff_masks([1, 2, 3], [1, 2, 7, 8, 3])  # pure insertion on b: a marks the edit point
    assert b == [False, False, True, True, False] and a == [False, False, True]
    assert token_diff_masks([1, 2], [1, 2]) == ([False, False], [False, False])


@pytest.mark.parametrize("readout", ["last", "mean"])
def test_readouts_equal_hand_computation(demo_model, builtin, readout):
    texts = [p.vulnerable.code for p in builtin.pairs[:5]]
    lengths = {len(demo_model.tokenizer(t)["input_ids"]) for t in texts}
    assert len(lengths) > 1, "the batch must need padding"
    acts = extract(demo_model, texts, readout=readout, chunk_size=3)
    assert acts.values.shape == (5, demo_model.n_layers, demo_model.d_model)
    assert acts.layers == list(range(demo_model.n_layers)) and not any(acts.truncated)
    for k, text in enumerate(texts):
        ref = _reference_states(demo_model, text)
        for i in range(demo_model.n_layers):
            want = ref[i][-1] if readout == "last" else ref[i].mean(0)
            # padded batches of 3 against one text alone: a whole forward's rounding at the states' magnitude
            tol = f32_tol(ref[i], ulps=FORWARD)
            torch.testing.assert_close(acts.values[k, i], want, rtol=0, atol=tol)
    assert all(v.abs().sum() > 0 for v in acts.values.flatten(0, 1)), "no silent zero vectors"


def test_diff_readout_and_chunking(demo_model, builtin):
    pair = builtin.pairs[0]
    ids, _ = tokenize(demo_model, [pair.vulnerable.code, pair.patched.code], None)
    mv, mp = token_diff_masks(ids[0], ids[1])
    assert 0 < sum(mv) < len(mv) and 0 < sum(mp) < len(mp)
    acts = extract(demo_model, [pair.vulnerable.code, pair.patched.code], readout="diff", diff_masks=[mv, mp],
                   ids=ids, layers=[1, 3])
    assert acts.layers == [1, 3] and acts.n_readout_tokens == [sum(mv), sum(mp)]
    for k, (text, mask) in enumerate([(pair.vulnerable.code, mv), (pair.patched.code, mp)]):
        ref = _reference_states(demo_model, text)
        sel = torch.tensor(mask)
        for j, layer in enumerate([1, 3]):
            # a padded batch of two against one text alone: a whole forward's rounding at the states' magnitude
            tol = f32_tol(ref[layer], ulps=FORWARD)
            torch.testing.assert_close(acts.values[k, j], ref[layer][sel].mean(0), rtol=0, atol=tol)
    texts = [p.patched.code for p in builtin.pairs[:4]]
    one = extract(demo_model, texts, chunk_size=1, layers=[2])
    four = extract(demo_model, texts, chunk_size=4, layers=[2])
    # one text per forward against a padded batch of four: the same rounding, at the readouts' magnitude
    torch.testing.assert_close(one.values, four.values, rtol=0, atol=f32_tol(one.values, ulps=FORWARD))


def test_progress_cancel_and_truncation(demo_model, builtin):
    texts = [p.vulnerable.code for p in builtin.pairs[:5]]
    seen = []
    acts = extract(demo_model, texts, chunk_size=2, progress=lambda d, t: seen.append((d, t)), max_length=16)
    assert seen == [(2, 5), (4, 5), (5, 5)]
    assert all(acts.truncated) and set(acts.n_tokens) == {16}
    cancel = threading.Event()

    def stop_after_first(done, total):
        cancel.set()

    with pytest.raises(CancelledError, match="after 2 of 5"):
        extract(demo_model, texts, chunk_size=2, progress=stop_after_first, cancel=cancel)
