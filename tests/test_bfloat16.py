"""What bfloat16 does to the verdict score, measured on CPU with the demo model and the 32 builtin files.

The score reads the logits at the answer slot through the float32 head (final norm and unembedding in float32,
``LoadedModel.float32_head``), so what remains is the rounding of the bfloat16 hidden states. Measured here:
bfloat16 against float32 differ by at most 0.058 (scores span -7.7 to +4.1), and scoring one prompt per forward
against 8 per forward by at most 0.008; reading the model's own bfloat16 logits instead gives 0.060 and 0.063. The
bounds below are kept from an earlier demo model (measured 0.069 and 0.039 there), about twice those figures."""

from __future__ import annotations

import pytest
import torch

from steertui.engine import steering, verdict
from steertui.engine.data import load_dataset

TO_FLOAT32 = 0.15  # measured 0.058 (0.069 on an earlier demo model)
TO_OTHER_CHUNKING = 0.08  # measured 0.008 (0.039 on an earlier demo model)


@pytest.fixture(scope="module")
def bf16_session(demo_model_path):
    from steertui.engine.model import LoadedModel

    return LoadedModel.load(str(demo_model_path), device="cpu", dtype="bfloat16")


@pytest.fixture(scope="module")
def prompts(demo_model):
    pairs = list(load_dataset("builtin").pairs)
    samples = [s for p in pairs for s in p.samples]
    return [p.text for p in verdict.sample_prompts(demo_model, samples, pairs)]


def _bf16_logit_scores(session, prompts, answers, chunk):
    """The score from the model's own bfloat16 logits (what the float32 head replaces)."""
    out = torch.zeros(len(prompts))
    for start in range(0, len(prompts), chunk):
        rows = list(range(start, min(start + chunk, len(prompts))))
        logits = steering.forward(session, [prompts[r] for r in rows]).logits[:, -1].float()
        out[rows] = logits[:, answers.yes_id] - logits[:, answers.no_id]
    return out


def test_bfloat16_verdict_scores_against_float32_and_another_chunking(demo_model, bf16_session, prompts):
    answers = verdict.answer_tokens(demo_model)
    ref = verdict.score(demo_model, prompts, answers, chunk_size=8)
    b8 = verdict.score(bf16_session, prompts, answers, chunk_size=8)
    b1 = verdict.score(bf16_session, prompts, answers, chunk_size=1)
    assert len(prompts) == 32 and float(ref.abs().max()) > 1.0
    to_f32, to_chunk = float((b8 - ref).abs().max()), float((b8 - b1).abs().max())
    assert 0 < to_f32 <= TO_FLOAT32, to_f32
    assert to_chunk <= TO_OTHER_CHUNKING, to_chunk
    # every verdict whose float32 score is clearly away from 0 keeps its sign in bfloat16
    clear = ref.abs() > 2 * TO_FLOAT32
    assert torch.equal((b8 > 0)[clear], (ref > 0)[clear])
    # the float32 head is what removes the logits' own rounding: the bfloat16 logits move more with the chunking
    old8, old1 = (_bf16_logit_scores(bf16_session, prompts, answers, c) for c in (8, 1))
    assert to_chunk < float((old8 - old1).abs().max())
    assert to_f32 <= float((old8 - ref).abs().max())


def test_float32_head_is_float32_and_agrees_with_the_model(bf16_session):
    s = bf16_session
    res = steering.forward(s, ["int main(void) {"], read_layers=[s.n_layers - 1], logits_at="last")
    assert res.logits.dtype == torch.float32 and res.logits.shape == (1, s.info.vocab_size)
    own = steering.forward(s, ["int main(void) {"]).logits[0, -1].float()
    # the model's bfloat16 logits are the float32 ones rounded to 8 bits of mantissa (and its bf16 norm)
    assert float((res.logits[0] - own).abs().max()) <= float(own.abs().max()) * 2 ** -6
