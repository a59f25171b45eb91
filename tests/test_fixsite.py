"""The fix-site preference: log p(patched continuation) − log p(vulnerable continuation) at a pair's fix site,
against hand teacher forcing through plain transformers with a torch forward hook doing the same steering."""

from __future__ import annotations

import pytest
import torch

from steertui.engine import fixsite
from steertui.engine.data import Pair, Sample, load_dataset
from steertui.engine.steering import Steer
from tolerances import FORWARD, logit_tol

LAYER, ALPHA = 2, 8.0


def _sample(sid: str, label: str, code: str) -> Sample:
    return Sample(id=sid, part="builtin", cwe="cwe-787", cwe_name="Out-of-bounds Write", language="c", label=label,
                  code=code, ground_truth="", source_path="", rel_path="", sha256="", source="builtin examples")


def _pair(vuln: str, patched: str) -> Pair:
    return Pair("t/pair-1", _sample("t/1", "vulnerable", vuln), _sample("t/p_1", "patched", patched))


def test_a_choice_is_the_vulnerable_file_with_either_hunk_up_to_the_shared_line_after_it(demo_model):
    vuln = "int f(int n) {\n    int buf[4];\n\n    buf[n] = 1;\n\n    return buf[0];\n}\n"
    patched = "int f(int n) {\n    int buf[4];\n\n    if (n < 4)\n        buf[n] = 1;\n\n    return buf[0];\n}\n"
    c = fixsite.fix_site_choice(demo_model, _pair(vuln, patched))
    # the prompt ends on the last line of text before the hunk; the blank line before it opens both sides,
    # and both end at the first non-blank line the files share after it
    assert c.prompt == "int f(int n) {\n    int buf[4];" and c.line == 4 and c.dropped_lines == 0
    assert c.vulnerable == "\n\n    buf[n] = 1;\n\n    return buf[0];"
    assert c.patched == "\n\n    if (n < 4)\n        buf[n] = 1;\n\n    return buf[0];"
    assert c.anchor == "\n    return buf[0];"
    # a patch that only appends at the end of the file leaves the vulnerable side empty: no choice, one line
    with pytest.raises(fixsite.GenDiffError, match="vulnerable side of its fix site is empty"):
        fixsite.fix_site_choice(demo_model, _pair("int a;\nint b;\n", "int a;\nint b;\nint c;\n"))
    choices, skipped = fixsite.fix_site_choices(demo_model, [_pair("int a;\nint b;\n", "int a;\nint b;\nint c;\n")])
    assert choices == [None] and len(skipped) == 1 and "t/pair-1" in skipped[0]


def test_every_secllmholmes_choice_is_the_text_of_either_file(demo_model, shared_dataset):
    """prompt + vulnerable continuation is a run of the vulnerable file's lines; prompt + patched continuation is
    the same run with the hunk replaced by the patched file's; both fit the context."""
    for pair in load_dataset(shared_dataset).select(parts=["hand-crafted"]).pairs:
        c = fixsite.fix_site_choice(demo_model, pair)
        vuln, patched = pair.vulnerable.code.splitlines(), pair.patched.code.splitlines()
        assert "\n".join(vuln[c.dropped_lines:]).startswith(c.prompt + c.vulnerable), pair.id
        v_lines, p_lines = (c.prompt + c.vulnerable).splitlines(), (c.prompt + c.patched).splitlines()
        head = c.line - 1 - c.dropped_lines  # the vulnerable lines before the hunk
        assert v_lines[:head] == p_lines[:head] and v_lines[-1] == p_lines[-1] and c.vulnerable != c.patched
        assert "\n".join(p_lines[head:]) in "\n".join(patched), pair.id
        for text in (c.vulnerable, c.patched):
            n = len(demo_model.tokenizer(c.prompt)["input_ids"]) + len(
                demo_model.tokenizer(text, add_special_tokens=False)["input_ids"])
            assert n <= demo_model.context_length


def _hand_logprob(model, prompt: str, continuation: str, delta=None, mode="all") -> float:
    """Sum of log p(token_j | prompt + tokens_<j) of one unpadded row through plain transformers; the steering
    added by a forward hook at the prompt's columns, the continuation's, or all."""
    p_ids = model.tokenizer(prompt)["input_ids"]
    c_ids = model.tokenizer(continuation, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([p_ids + c_ids])
    handle = None
    if delta is not None:
        cols = torch.arange(ids.shape[1])
        keep = {"all": cols >= 0, "prompt": cols < len(p_ids), "generated": cols >= len(p_ids)}[mode]
        mask = keep.float()[None, :, None]
        handle = model.hf_module(model.adapter.block_path(LAYER)).register_forward_hook(
            lambda _m, _i, out: out + mask * delta)
    try:
        with torch.no_grad():
            logits = model.hf(input_ids=ids).logits[0].float()
    finally:
        if handle is not None:
            handle.remove()
    logp = logits[len(p_ids) - 1: -1].log_softmax(-1)
    return float(logp.gather(-1, torch.tensor(c_ids)[:, None]).sum()), len(c_ids)


@pytest.mark.parametrize("mode", ["all", "prompt", "generated"])
def test_logprobs_equal_hand_teacher_forcing_through_plain_transformers(demo_model, mode):
    """Three pairs batched (prompts and continuations of different lengths: left and right padding) give each
    side's summed log-prob as one unpadded row through plain HF with the steering in a forward hook."""
    pairs = list(load_dataset("builtin").pairs)[:3]
    choices = [fixsite.fix_site_choice(demo_model, p) for p in pairs]
    assert len({len(c.prompt) for c in choices}) == 3
    g = torch.Generator().manual_seed(3)
    v = torch.randn(demo_model.d_model, generator=g)
    v = v / v.norm()
    steers = [Steer(LAYER, v, ALPHA, positions=mode)]
    got = fixsite.choice_logprobs(demo_model, choices, steers, chunk_size=4)  # two chunks: 2 pairs, then 1
    plain = fixsite.choice_logprobs(demo_model, choices)
    assert got.shape == (3, 2)
    for r, c in enumerate(choices):
        for side, text in enumerate((c.vulnerable, c.patched)):
            want, n = _hand_logprob(demo_model, c.prompt, text, ALPHA * v, mode)
            assert abs(float(got[r, side]) - want) <= n * logit_tol(demo_model, FORWARD), (r, side, mode)
            base, _ = _hand_logprob(demo_model, c.prompt, text)
            assert abs(float(plain[r, side]) - base) <= n * logit_tol(demo_model, FORWARD)
    assert not torch.equal(got, plain)  # the steering moved every pair's log-probs
    assert fixsite.preferences(got) == [float(x) for x in got[:, 1] - got[:, 0]]


def test_alpha_zero_is_the_unsteered_pass_bit_for_bit(demo_model):
    pairs = list(load_dataset("builtin").pairs)[:4]
    choices = [fixsite.fix_site_choice(demo_model, p) for p in pairs]
    v = torch.ones(demo_model.d_model)
    assert torch.equal(fixsite.choice_logprobs(demo_model, choices, [Steer(LAYER, v, 0.0)]),
                       fixsite.choice_logprobs(demo_model, choices))
