"""Verdict attribution: the verdict score split into the embeddings', each layer's attention's and MLP's, and the
steering's direct contributions. The parts add up to the score, and each equals the same split computed from a
plain torch forward with hooks, on the demo model and on a tiny model of every supported architecture."""

from __future__ import annotations

import pytest
import torch

import tiny_models
from steertui.engine import ops
from steertui.engine.attribution import verdict_attribution
from steertui.engine.data import load_dataset
from steertui.engine.model import LoadedModel
from steertui.engine.steering import Steer
from steertui.engine.verdict import AnswerTokens, answer_tokens
from steertui.errors import SteertuiError


def _by_hand(model: LoadedModel, prompt: str, answers: AnswerTokens, steer: Steer | None = None):
    """(embed, [(attn, mlp)], the steer's part) from plain torch hooks: block and MLP outputs at the last token,
    the final norm's scale frozen at the last block's output, read through W[yes] − W[no]."""
    hf, adapter = model.hf, model.adapter
    blocks = model.hf_module(adapter.blocks)
    outs, mlps, handles = {}, {}, []

    def block_hook(i):
        def hook(_m, _i, out):
            h = adapter.hidden(out)
            if steer is not None and i == steer.layer:
                h += steer.alpha * steer.vector.to(h.dtype)
            outs[i] = h[0, -1].double().clone()
        return hook

    for i, b in enumerate(blocks):
        handles.append(b.register_forward_hook(block_hook(i)))
        handles.append(b.mlp.register_forward_hook(lambda _m, _i, out, i=i: mlps.__setitem__(i, out[0, -1].double())))
    enc = model.encode([prompt])
    try:
        with torch.no_grad():
            hs = hf(**enc, output_hidden_states=True).hidden_states
    finally:
        for h in handles:
            h.remove()
    norm = model.hf_module(adapter.final_norm)
    x = outs[len(blocks) - 1]
    layer_norm = isinstance(norm, torch.nn.LayerNorm)
    eps = norm.eps if layer_norm else norm.variance_epsilon if hasattr(norm, "variance_epsilon") else norm.eps
    sigma = (x.var(unbiased=False) + eps).sqrt() if layer_norm else (x.pow(2).mean() + eps).sqrt()
    w = model.hf_module(adapter.unembed).weight.double()
    u = norm.weight.double() * (w[answers.yes_id] - w[answers.no_id]) / sigma

    def read(c):
        return float(((c - c.mean()) if layer_norm else c) @ u)

    prev, parts = hs[0][0, -1].double(), []
    for i in range(len(blocks)):
        added = steer.alpha * steer.vector.double() if steer is not None and i == steer.layer else 0.0
        parts.append((read(outs[i] - prev - mlps[i] - added), read(mlps[i])))
        prev = outs[i]
    return read(hs[0][0, -1].double()), parts, read(steer.alpha * steer.vector.double()) if steer else 0.0


def _assert_matches(side, embed, parts, steer_part, steer_layer=None):
    assert side.embed == pytest.approx(embed, abs=1e-5)
    for p, (attn, mlp) in zip(side.layers, parts):
        assert p.attn == pytest.approx(attn, abs=1e-5) and p.mlp == pytest.approx(mlp, abs=1e-5)
        assert p.steer == (pytest.approx(steer_part, abs=1e-6) if p.layer == steer_layer else 0.0)
    total = side.embed + sum(p.total for p in side.layers) + side.constant
    assert side.check == pytest.approx(abs(total - side.score), abs=1e-12) and side.check < 1e-4


def test_the_parts_add_up_to_the_score_and_equal_a_hooked_forward(demo_model):
    pair = load_dataset("builtin").pairs[3]
    v = torch.randn(demo_model.d_model, generator=torch.Generator().manual_seed(5))
    steer = Steer(2, v, 2.5)
    nt = ops.next_tokens(demo_model, pair, [steer], attribution=True)
    split, answers = nt.attribution, nt.answers
    assert (split.norm, split.split) == ("layernorm", True) and len(split.baseline.layers) == demo_model.n_layers
    # the score is the one the next tokens show (their own forwards)
    assert split.baseline.score == pytest.approx(nt.score_baseline, abs=1e-4)
    assert split.steered.score == pytest.approx(nt.score_steered, abs=1e-4)
    _assert_matches(split.baseline, *_by_hand(demo_model, nt.prompt.text, answers))
    # the steer's own part: alpha·v read like any other part, at the steered side's frozen scale
    embed, parts, steer_part = _by_hand(demo_model, nt.prompt.text, answers, steer)
    assert abs(steer_part) > 0.1
    _assert_matches(split.steered, embed, parts, steer_part, steer_layer=2)
    # without steering there is one side, and next tokens leave the attribution out unless asked
    plain = verdict_attribution(demo_model, nt.prompt.text)
    assert plain.steered is None and plain.baseline.score == pytest.approx(split.baseline.score, abs=1e-5)
    assert ops.next_tokens(demo_model, pair, [steer]).attribution is None


@pytest.mark.parametrize("arch", tiny_models.ARCHS)
def test_every_architecture_splits_exactly(arch):
    hf, tok = tiny_models.build(arch)
    model = LoadedModel.from_modules(hf, tok)
    answers = AnswerTokens("a", "b", 5, 7)
    prompt = "int main(void) { return 0; }"
    v = torch.randn(model.d_model, generator=torch.Generator().manual_seed(1))
    steer = Steer(1, v, 1.5)
    split = verdict_attribution(model, prompt, [steer], answers=answers)
    want_norm = "layernorm" if arch in ("gpt_bigcode", "gpt2", "starcoder2") else "rmsnorm"
    assert split.norm == want_norm and split.split
    _assert_matches(split.baseline, *_by_hand(model, prompt, answers))
    _assert_matches(split.steered, *_by_hand(model, prompt, answers, steer), steer_layer=1)


def test_a_norm_that_is_not_layernorm_or_rmsnorm_is_refused():
    hf, tok = tiny_models.build("gpt2")
    model = LoadedModel.from_modules(hf, tok)
    hf.transformer.ln_f = torch.nn.Identity()
    with pytest.raises(SteertuiError, match="the final norm is a Identity, neither a LayerNorm nor an RMSNorm"):
        verdict_attribution(model, "int x;", answers=AnswerTokens("a", "b", 5, 7))


def test_answers_default_to_the_verdict_tokens(demo_model):
    split = verdict_attribution(demo_model, "int x = 1;\nAnswer:")
    assert split.answers == answer_tokens(demo_model)


def test_a_steer_on_generated_tokens_adds_nothing_in_one_forward(demo_model):
    """`generated` steers act only on generation steps: in the one forward of the split they add nothing, so
    the steered side equals the baseline and no steer part is counted."""
    v = torch.randn(demo_model.d_model, generator=torch.Generator().manual_seed(2))
    prompt = "int x = 1;\nAnswer:"
    split = verdict_attribution(demo_model, prompt, [Steer(1, v, 4.0, positions="generated")])
    assert [p.steer for p in split.steered.layers] == [0.0] * demo_model.n_layers
    assert split.steered.to_dict() == split.baseline.to_dict()
    prompt_only = verdict_attribution(demo_model, prompt, [Steer(1, v, 4.0, positions="prompt")])
    assert prompt_only.steered.layers[1].steer != 0.0 and prompt_only.steered.check < 1e-4


@pytest.mark.parametrize("arch", tiny_models.ARCHS)
def test_a_scored_batch_splits_each_prompt_as_it_alone_would(arch):
    """The evaluation's split is read in its scoring forwards: a left-padded batch of prompts of other lengths.
    Each row's split equals the prompt's own (one forward of it alone), embeddings and positions included, and
    reading the parts leaves the scores as they are without."""
    from steertui.engine.attribution import ScoreSplitter
    from steertui.engine.verdict import score_answers

    from tolerances import FORWARD, logit_tol

    hf, tok = tiny_models.build(arch)
    model = LoadedModel.from_modules(hf, tok)
    answers = AnswerTokens("a", "b", 5, 7)
    prompts = ["int main(void) { return 0; }", "x = 1", "char *p = malloc(n); free(p); free(p);"]
    v = torch.randn(model.d_model, generator=torch.Generator().manual_seed(3))
    steers = [Steer(1, v, 1.5)]
    split = ScoreSplitter(model, answers)
    got = score_answers(model, prompts, answers, steers=steers, chunk_size=3, split=split)
    plain = score_answers(model, prompts, answers, steers=steers, chunk_size=3)
    assert torch.equal(got.score, plain.score) and torch.equal(got.logp_yes, plain.logp_yes)
    tol = logit_tol(model, FORWARD)
    for prompt, side in zip(prompts, got.attributions):
        alone = verdict_attribution(model, prompt, steers, answers=answers).steered
        assert side.score == pytest.approx(alone.score, abs=tol) and side.check < 1e-4
        assert side.embed == pytest.approx(alone.embed, abs=tol)
        for p, q in zip(side.layers, alone.layers):
            assert (p.attn, p.mlp, p.steer) == pytest.approx((q.attn, q.mlp, q.steer), abs=tol)
    base = score_answers(model, prompts, answers, chunk_size=3, split=split).attributions
    assert all(p.steer == 0.0 for side in base for p in side.layers)
    with pytest.raises(ValueError, match="the splitter reads"):
        score_answers(model, prompts, AnswerTokens("a", "c", 5, 9), split=split)
