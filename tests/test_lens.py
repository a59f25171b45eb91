"""Logit lens and next-token comparison against plain transformers on the demo model.

Every expected value is computed here from plain HF calls (``output_hidden_states``, real logits, and a torch
forward hook doing the steering addition), never hard-coded for one particular model."""

from __future__ import annotations

import json
import threading

import pytest
import torch

from steertui.engine import gendiff, lens
from steertui.engine.steering import Steer
from steertui.errors import CancelledError, SteertuiError
from tolerances import EPS32, FORWARD, ROUNDING, SAME_OP, TINY32, logit_tol

PROMPT = "int main(int argc, char **argv) {\n    char buf[16];\n    strcpy(buf, argv[1]);"
PROMPTS = [PROMPT, "def handler(request):\n    name =", "#include <stdio.h>\n"]
LAYER = 2


def _vector(session, seed=3):
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(session.d_model, generator=g)
    return v / v.norm()


def _hf_logits(session, text, layer=None, delta=None, hidden=False):
    """Plain HF forward of one unpadded prompt, optionally adding ``delta`` at block ``layer`` with a hook."""
    enc = session.encode([text])
    handle = None
    if delta is not None:
        block = session.hf_module(session.adapter.block_path(layer))
        handle = block.register_forward_hook(lambda _m, _i, out: out + delta)
    try:
        with torch.no_grad():
            return session.hf(**enc, output_hidden_states=hidden)
    finally:
        if handle is not None:
            handle.remove()


def _full_probs(entries, vocab):
    """Scatter a top-k list (k == vocab) into a full probability vector (robust to ties in ordering)."""
    out = torch.full((vocab,), float("nan"))
    for t in entries:
        out[t.id] = t.prob
    assert not out.isnan().any()
    return out


def _assert_topk(entries, probs, k, rel):
    """``entries`` are a valid top-k of the distribution ``probs`` [V] (robust to the order of near-ties);
    ``rel``: the relative tolerance of probabilities computed two ways (see ``tolerances.logit_tol``)."""
    assert len(entries) == k and len({t.id for t in entries}) == k
    ref = probs.topk(k).values
    got = torch.tensor([t.prob for t in entries])
    torch.testing.assert_close(got, ref, rtol=rel, atol=0)
    torch.testing.assert_close(probs[[t.id for t in entries]], got, rtol=rel, atol=0)
    assert [t.rank for t in entries] == list(range(1, k + 1))


def _assert_rank(rank, probs, tid, rel):
    """1-based ``rank`` of ``tid`` in ``probs``, allowing tokens whose probability ties it within ``rel``."""
    p = float(probs[tid])
    assert int((probs > p * (1 + rel)).sum()) + 1 <= rank <= int((probs >= p * (1 - rel)).sum())


def _same_top(a, b, rel):
    """Two top-k lists of the same distribution computed two ways: the same probabilities within ``rel``
    (float32 rounding of the logits, relative to p); membership may differ only by a near-tie at the k-th place."""
    assert [x.prob for x in a] == pytest.approx([y.prob for y in b], rel=rel, abs=0)
    pa, pb = {t.id: t.prob for t in a}, {t.id: t.prob for t in b}
    for t in pa.keys() & pb.keys():
        assert pa[t] == pytest.approx(pb[t], rel=rel, abs=0)
    for t in pa.keys() ^ pb.keys():
        assert pa.get(t, pb.get(t)) == pytest.approx(a[-1].prob, rel=rel, abs=0)


def _lens_probs(session, text, layer=None, delta=None):
    """The logit lens by hand, [n_layers, S, V]: softmax(unembed(norm(hidden_states[i+1]))) for i < n-1 and the
    real output distribution for the last layer (a plain HF forward, optionally steered by a hook)."""
    out = _hf_logits(session, text, layer, delta, hidden=True)
    ln_f, head = session.hf_module(session.adapter.final_norm), session.hf_module(session.adapter.unembed)
    with torch.no_grad():
        lens_ = [head(ln_f(out.hidden_states[i + 1]))[0].float().softmax(-1) for i in range(session.n_layers - 1)]
    return torch.stack(lens_ + [out.logits[0].float().softmax(-1)])


class _CountCalls:
    """Counts forward calls of block 0 (one per forward pass)."""

    def __init__(self, session):
        self.n = 0
        self.handle = session.hf_module(session.adapter.block_path(0)).register_forward_hook(self._hook)

    def _hook(self, *_):
        self.n += 1

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.handle.remove()


def test_final_layer_lens_is_the_real_output_distribution(demo_model):
    s = demo_model
    V, n = s.info.vocab_size, s.n_layers
    ref = _hf_logits(s, PROMPT).logits[0].float().softmax(-1)
    res = lens.logit_lens(s, PROMPT, k=V, positions=[0, 5, -2, -1], layers=[n - 1], target=7)
    assert res.positions == (0, 5, len(res.token_ids) - 2, len(res.token_ids) - 1)
    assert [x.layer for x in res.layers] == [n - 1]
    # the lens unembeds the chosen positions, the model all of them: one matmul over another number of rows
    rel = logit_tol(s, SAME_OP)
    assert res.final_logits_check <= rel  # a largest |dp|, and p <= 1
    last = res.layers[0]
    for j, p in enumerate(res.positions):
        # every token's probability; below float32's smallest normal number a probability has no relative precision
        torch.testing.assert_close(_full_probs(last.top[j], V), ref[p], rtol=rel, atol=TINY32)
        assert last.target_prob[j] == pytest.approx(float(ref[p, 7]), rel=rel, abs=0)
        _assert_rank(last.target_rank[j], ref[p], 7, rel)
        assert [t.rank for t in last.top[j]] == list(range(1, V + 1))


def test_every_layer_matches_manual_hf_computation_in_one_forward(demo_model):
    """Lens at layer i == softmax(lm_head(ln_f(hidden_states[i+1]))) for i < n-1, and at n-1 the real
    logits; all layers and positions come from ONE forward pass."""
    s = demo_model
    n, k = s.n_layers, 8
    out = _hf_logits(s, PROMPT, hidden=True)
    ln_f, head = s.hf_module(s.adapter.final_norm), s.hf_module(s.adapter.unembed)
    with torch.no_grad():
        manual = [head(ln_f(out.hidden_states[i + 1]))[0].softmax(-1) for i in range(n - 1)]
    manual.append(out.logits[0].softmax(-1))
    # a one-token string among layer 1's likeliest tokens (byte pieces may not round-trip through text)
    tid = next(t for t in manual[1][-1].topk(50).indices.tolist() if s.token_id(s.tokenizer.decode([t])) == t)
    target = s.tokenizer.decode([tid])
    with _CountCalls(s) as calls:
        res = lens.logit_lens(s, PROMPT, k=k, positions=slice(None), target=target)
    assert calls.n == 1, "the lens must be one forward pass for all layers"
    assert res.target_id == tid and [x.layer for x in res.layers] == list(range(n))
    assert res.positions == tuple(range(len(res.token_ids)))
    assert list(res.token_ids) == s.encode([PROMPT])["input_ids"][0].tolist()
    rel = logit_tol(s, SAME_OP)  # the same hidden states; norm, unembedding and softmax run as other ops
    for i, layer in enumerate(res.layers):
        for p in res.positions:
            got = layer.top[p]
            _assert_topk(got, manual[i][p], k, rel)
            assert [t.text for t in got] == [s.tokenizer.decode([t.id]) for t in got]
            assert layer.target_prob[p] == pytest.approx(float(manual[i][p, tid]), rel=rel, abs=0)
            _assert_rank(layer.target_rank[p], manual[i][p], tid, rel)


def test_positions_window_and_defaults(demo_model):
    s = demo_model
    S = len(s.encode([PROMPT])["input_ids"][0])
    assert lens.logit_lens(s, PROMPT, k=2).positions == (S - 1,)
    assert lens.logit_lens(s, PROMPT, k=2, positions=-3).positions == (S - 3,)
    assert lens.logit_lens(s, PROMPT, k=2, positions=slice(-4, None, 2)).positions == (S - 4, S - 2)
    full = lens.logit_lens(s, PROMPT, k=3, positions=slice(None))
    window = lens.logit_lens(s, PROMPT, k=3, positions=[1, -1])
    rel = logit_tol(s, SAME_OP)  # the same forward; the unembedding runs over another number of positions
    for a, b in zip(full.layers, window.layers):
        _same_top(b.top[0], a.top[1], rel)
        _same_top(b.top[1], a.top[-1], rel)
    with pytest.raises(lens.LensError, match="position 999 is outside the prompt"):
        lens.logit_lens(s, PROMPT, positions=[999])
    with pytest.raises(lens.LensError, match="select no token"):
        lens.logit_lens(s, PROMPT, positions=slice(5, 2))
    with pytest.raises(lens.LensError, match="k=0"):
        lens.logit_lens(s, PROMPT, k=0)


def test_target_must_be_one_token(demo_model):
    s = demo_model
    multi = "strcpy(buf, argv[1]); return 0;"
    assert len(s.tokenizer(multi, add_special_tokens=False)["input_ids"]) > 1
    with pytest.raises(lens.TargetTokenError, match=r"target 'strcpy\(buf, argv\[1\]\); return 0;' is \d+ tokens"):
        lens.logit_lens(s, PROMPT, target=multi)
    with pytest.raises(SteertuiError, match="outside the vocabulary"):
        lens.logit_lens(s, PROMPT, target=s.info.vocab_size)
    by_text = lens.logit_lens(s, PROMPT, k=3, target=";")
    by_id = lens.logit_lens(s, PROMPT, k=3, target=s.token_id(";"))
    assert by_text.target_id == by_id.target_id == s.token_id(";")
    assert [x.target_prob for x in by_text.layers] == [x.target_prob for x in by_id.layers]


def test_lens_diff_steered_minus_baseline(demo_model):
    s = demo_model
    n = s.n_layers
    v = _vector(s)
    steer = Steer(LAYER, v, 8.0)
    with _CountCalls(s) as calls:
        diff = lens.lens_diff(s, PROMPT, [steer], k=5, positions=[-2, -1], target=";")
    assert calls.n == 1
    plain = lens.logit_lens(s, PROMPT, k=5, positions=[-2, -1], target=";")
    steered = lens.logit_lens(s, PROMPT, k=5, positions=[-2, -1], target=";", steers=[steer])
    rel = logit_tol(s, FORWARD)  # a batch of two rows against a batch of one
    for got, want in ((diff.baseline, plain), (diff.steered, steered)):
        for a, b in zip(got.layers, want.layers):
            for x, y in zip(a.top, b.top):
                _same_top(x, y, rel)
            assert a.target_prob == pytest.approx(b.target_prob, rel=rel, abs=0)
    # layers before the steered one are untouched (both rows are the same computation up to there, as with
    # alpha 0: exactly zero); the steered final layer is the hooked HF output
    for i in range(LAYER):
        assert diff.deltas[i].target_delta == (0.0, 0.0)
    ref = _hf_logits(s, PROMPT, LAYER, 8.0 * v).logits[0, -1].softmax(-1)
    base_ref = _hf_logits(s, PROMPT).logits[0, -1].softmax(-1)
    tid = s.token_id(";")
    # a difference of two probabilities, each within rel · p <= rel
    assert diff.deltas[n - 1].target_delta[1] == pytest.approx(float(ref[tid] - base_ref[tid]), abs=2 * rel)
    for d, b, st in zip(diff.deltas, diff.baseline.layers, diff.steered.layers):
        # the same two float32 probabilities, subtracted in float32 by the engine and in float64 here
        assert d.target_delta == pytest.approx([y - x for x, y in zip(b.target_prob, st.target_prob)],
                                               rel=ROUNDING * EPS32, abs=0)
        for j in range(2):
            ids = {t.id for t in b.top[j]} | {t.id for t in st.top[j]}
            assert {t.id for t in d.top[j]} == ids
            deltas = [abs(t.delta) for t in d.top[j]]
            assert deltas == sorted(deltas, reverse=True)
    last = {t.id: t for t in diff.deltas[n - 1].top[1]}
    for tid_, t in last.items():
        assert t.baseline == pytest.approx(float(base_ref[tid_]), rel=rel, abs=0)
        assert t.steered == pytest.approx(float(ref[tid_]), rel=rel, abs=0)
    assert any(abs(t.delta) > 2 * rel for t in last.values()), "the steering must move a probability beyond rounding"
    json.loads(json.dumps(diff.to_dict()))


def test_lens_diff_alpha_zero_is_all_zero(demo_model):
    s = demo_model
    diff = lens.lens_diff(s, PROMPT, [Steer(LAYER, _vector(s), 0.0)], k=4, target=";")
    for d, b, st in zip(diff.deltas, diff.baseline.layers, diff.steered.layers):
        assert d.target_delta == (0.0,)
        assert all(t.delta == 0.0 for row in d.top for t in row)
        assert b.top == st.top


def test_top_tokens_alpha_zero(demo_model):
    s = demo_model
    res = gendiff.top_tokens(s, PROMPTS, [Steer(LAYER, _vector(s), 0.0)], k=5)
    assert len(res.rows) == len(PROMPTS)
    for row in res.rows:
        assert row.kl == 0.0
        assert row.baseline == row.steered
        assert all(c.rank_change == 0 and c.baseline_prob == c.steered_prob for c in row.changes)


def test_top_tokens_kl_and_ranks_equal_hand_computation(demo_model):
    s = demo_model
    v = _vector(s)
    with _CountCalls(s) as calls:
        res = gendiff.top_tokens(s, PROMPTS, [Steer(LAYER, v, 8.0)], k=5)
    assert calls.n == 2, "one batched forward per side"
    for prompt, row in zip(PROMPTS, res.rows):
        assert row.prompt == prompt
        lb = _hf_logits(s, prompt).logits[0, -1].float().log_softmax(-1)
        ls = _hf_logits(s, prompt, LAYER, 8.0 * v).logits[0, -1].float().log_softmax(-1)
        kl = float((ls.exp() * (ls - lb)).sum())
        assert kl > 0 and row.kl > 0
        # a batch of three padded prompts against one alone; KL = sum p_s (log p_s - log p_b) moves by
        # sum |dp_s| |log p_s - log p_b| + sum p_s (|d log p_s| + |d log p_b|) <= tol · (spread + 2)
        tol = logit_tol(s, FORWARD)
        spread = float((ls.exp() * (ls - lb).abs()).sum())
        assert row.kl == pytest.approx(kl, rel=0, abs=tol * (spread + 2))
        _assert_topk(row.baseline, lb.exp(), 5, tol)
        _assert_topk(row.steered, ls.exp(), 5, tol)
        ids = list(dict.fromkeys([t.id for t in row.baseline] + [t.id for t in row.steered]))
        assert [c.id for c in row.changes] == ids
        for c in row.changes:
            _assert_rank(c.baseline_rank, lb.exp(), c.id, tol)
            _assert_rank(c.steered_rank, ls.exp(), c.id, tol)
            assert c.baseline_prob == pytest.approx(float(lb[c.id].exp()), rel=tol, abs=0)
            assert c.steered_prob == pytest.approx(float(ls[c.id].exp()), rel=tol, abs=0)
            assert c.rank_change == c.baseline_rank - c.steered_rank
    json.loads(json.dumps(res.to_dict()))


def test_cancel_before_start_runs_nothing(demo_model):
    s = demo_model
    ev = threading.Event()
    ev.set()
    with _CountCalls(s) as calls:
        with pytest.raises(CancelledError):
            lens.logit_lens(s, PROMPT, cancel=ev)
        with pytest.raises(CancelledError):
            lens.lens_diff(s, PROMPT, [Steer(LAYER, _vector(s), 1.0)], cancel=ev)
        with pytest.raises(CancelledError):
            gendiff.top_tokens(s, PROMPTS, [Steer(LAYER, _vector(s), 1.0)], cancel=ev)
    assert calls.n == 0


def test_lens_result_is_json_data(demo_model):
    s = demo_model
    res = lens.logit_lens(s, PROMPT, k=3, positions=[0, -1], target=";", steers=[Steer(1, _vector(s), 2.0)])
    d = json.loads(json.dumps(res.to_dict()))
    assert d["positions"] == list(res.positions) and d["target_id"] == s.token_id(";")
    assert len(d["layers"]) == s.n_layers and len(d["layers"][0]["top"]) == 2
    top = d["layers"][-1]["top"][1][0]
    assert set(top) == {"id", "text", "prob", "rank"} and isinstance(top["prob"], float) and top["rank"] == 1
    assert d["steers"][0]["layer"] == 1 and d["steers"][0]["alpha"] == 2.0
    assert d["token_texts"] == [s.tokenizer.decode([t]) for t in res.token_ids]


def test_window_is_lensed_in_chunks_with_the_same_result(demo_model, monkeypatch):
    """A small memory budget splits the window into chunks of positions inside the same single forward.

    The hidden states are the same; only the norm, unembedding and softmax run over chunks of another number of
    rows, so the results agree up to float32 rounding of the logits (SAME_OP), and the discrete parts (top-k
    ids, target ranks) agree except where two tokens' probabilities tie within that rounding."""
    s = demo_model
    v = _vector(s)
    steer = Steer(LAYER, v, 4.0)
    whole = lens.lens_diff(s, PROMPT, [steer], k=4, positions=slice(None), target=";")
    monkeypatch.setattr(lens, "LENS_BUDGET", 3 * 2 * s.info.vocab_size)  # 3 positions per chunk (2 rows)
    with _CountCalls(s) as calls:
        parts = lens.lens_diff(s, PROMPT, [steer], k=4, positions=slice(None), target=";")
    assert calls.n == 1
    rel = logit_tol(s, SAME_OP)
    assert parts.baseline.final_logits_check <= rel  # a largest |dp|, and p <= 1
    for a, b in zip(whole.deltas, parts.deltas):
        # a difference of two probabilities, each within rel · p <= rel
        assert a.target_delta == pytest.approx(b.target_delta, rel=0, abs=2 * rel)
        assert len(b.top) == len(parts.baseline.positions)
    tid = s.token_id(";")
    for side, delta in (("baseline", None), ("steered", 4.0 * v)):
        by_hand = _lens_probs(s, PROMPT, LAYER, delta)  # only to tell near-ties apart: ranks are checked on it
        for a, b in zip(getattr(whole, side).layers, getattr(parts, side).layers):
            for x, y in zip(a.top, b.top):
                _same_top(x, y, rel)
            assert a.target_prob == pytest.approx(b.target_prob, rel=rel, abs=0)
            for p, (ra, rb) in enumerate(zip(a.target_rank, b.target_rank)):
                if ra != rb:  # only a near-tie with the target may move its rank
                    _assert_rank(ra, by_hand[a.layer, p], tid, logit_tol(s, FORWARD))
                    _assert_rank(rb, by_hand[a.layer, p], tid, logit_tol(s, FORWARD))
