"""The adapter reads the right hidden state for every listed architecture, and steering through the engine
equals the same addition made by a plain torch forward hook."""

from __future__ import annotations

import pytest
import torch

import tiny_models
from steertui.engine import steering
from steertui.engine.model import LoadedModel
from tolerances import FORWARD, f32_tol, logit_tol

PROMPTS = ["int main(void) {\n    char buf[16];", "def f(x):", "strcpy(buf, argv[1]);\n    printf(\"%s\", buf);"]
EXPECTED_PATHS = {
    "gpt_bigcode": ("transformer.wte", "transformer.h", "transformer.ln_f", "lm_head"),
    "gpt2": ("transformer.wte", "transformer.h", "transformer.ln_f", "lm_head"),
    "llama": ("model.embed_tokens", "model.layers", "model.norm", "lm_head"),
    "mistral": ("model.embed_tokens", "model.layers", "model.norm", "lm_head"),
    "qwen2": ("model.embed_tokens", "model.layers", "model.norm", "lm_head"),
    "starcoder2": ("model.embed_tokens", "model.layers", "model.norm", "lm_head"),
}


@pytest.fixture(scope="module", params=tiny_models.ARCHS)
def arch_session(request):
    hf, tok = tiny_models.build(request.param)
    return request.param, LoadedModel.from_modules(hf, tok, request.param)


def _positions(mask):
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def test_adapter_finds_modules(arch_session):
    arch, s = arch_session
    a = s.adapter
    assert (a.embed, a.blocks, a.final_norm, a.unembed) == EXPECTED_PATHS[arch]
    assert a.n_layers == 3 and a.d_model == 32 and not a.guessed
    # transformers 5: every listed architecture's block returns a plain tensor, so .output is the hidden
    # state and .output[0] would be batch row 0.
    assert a.block_output.kind == "tensor"
    assert a.block_access(2) == f"model.{EXPECTED_PATHS[arch][1]}[2].output"
    assert all(a.block_access_template.format(layer=i) == a.block_access(i) for i in range(a.n_layers))


def test_hidden_state_matches_output_hidden_states(arch_session):
    """Engine layer i == hidden_states[i+1] for i < n-1; the last entry of hidden_states is the last block's
    output *after* the final norm, for every listed architecture."""
    _arch, s = arch_session
    text = [PROMPTS[0]]
    res = steering.forward(s, text, read_layers=range(s.n_layers))
    ref = s.hf(**s.encode(text), output_hidden_states=True)
    n = s.n_layers
    assert len(ref.hidden_states) == n + 1
    for i in range(n - 1):
        assert res.hidden[i].shape == (1, ref.hidden_states[0].shape[1], 32)
        torch.testing.assert_close(res.hidden[i], ref.hidden_states[i + 1], rtol=0, atol=0)
    last = res.hidden[n - 1]
    # the block output is not the normed state (they differ far beyond any rounding) ...
    assert not torch.allclose(last, ref.hidden_states[n], rtol=0, atol=f32_tol(last, ulps=FORWARD))
    # ... and the final norm of it is: the same kernels on the same tensor, as are the logits, so exactly
    torch.testing.assert_close(s.hf_module(s.adapter.final_norm)(last), ref.hidden_states[n], rtol=0, atol=0)
    torch.testing.assert_close(res.logits, ref.logits, rtol=0, atol=0)
    assert s.adapter.hidden_states_last_normed


def test_batch_reads_each_rows_last_real_token(arch_session):
    _arch, s = arch_session
    lengths = [len(s.tokenizer(p)["input_ids"]) for p in PROMPTS]
    assert len(set(lengths)) == 3, "prompts must have different lengths for this test"
    batched = steering.forward(s, PROMPTS, read_layers=range(s.n_layers), read="last")
    assert batched.attention_mask[:, -1].all(), "left padding puts every row's last real token in the last column"
    for row, prompt in enumerate(PROMPTS):
        single = steering.forward(s, [prompt], read_layers=range(s.n_layers), read="last")
        # a left-padded batch against one prompt alone: rounding of a whole forward, at the states' magnitude
        for i in range(s.n_layers):
            assert batched.hidden[i].shape == (3, 32)
            want = single.hidden[i][0]
            torch.testing.assert_close(batched.hidden[i][row], want, rtol=0, atol=f32_tol(want, ulps=FORWARD))
        torch.testing.assert_close(batched.logits[row, -1], single.logits[0, -1], rtol=0, atol=logit_tol(s, FORWARD))


def test_right_padded_batch_reads_each_rows_last_real_token(arch_session):
    """Handed a right-padded encoding, read="last" and logits_at="last" take each row's last real token from
    the mask, not the last column (which is padding for the shorter rows); steering applies the same way."""
    _arch, s = arch_session
    s.tokenizer.padding_side = "right"
    try:
        enc = s.tokenizer(PROMPTS, return_tensors="pt", padding=True)
    finally:
        s.tokenizer.padding_side = "left"
    enc = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"]}
    assert not enc["attention_mask"][:, -1].all(), "the shorter rows must end in padding for this test"
    steer = steering.Steer(layer=1, vector=torch.randn(32, generator=torch.Generator().manual_seed(3)), alpha=2.0)
    batched = steering.forward(s, enc, steers=[steer], read_layers=range(s.n_layers), read="last",
                               logits_at="last")
    assert batched.logits.shape == (3, s.info.vocab_size)
    for row, prompt in enumerate(PROMPTS):
        single = steering.forward(s, [prompt], steers=[steer], read_layers=range(s.n_layers), read="last",
                                  logits_at="last")
        for i in range(s.n_layers):
            want = single.hidden[i][0]
            torch.testing.assert_close(batched.hidden[i][row], want, rtol=0, atol=f32_tol(want, ulps=FORWARD))
        torch.testing.assert_close(batched.logits[row], single.logits[0], rtol=0, atol=logit_tol(s, FORWARD))


def _hook_logits(s, texts, layer, delta):
    enc = s.encode(texts)
    block = s.hf_module(s.adapter.block_path(layer))
    handle = block.register_forward_hook(lambda _m, _i, out: out + delta)
    try:
        with torch.no_grad():
            return s.hf(**enc, position_ids=_positions(enc["attention_mask"])).logits
    finally:
        handle.remove()


def _hook_generate(s, texts, layer, delta, n):
    enc = s.encode(texts)
    block = s.hf_module(s.adapter.block_path(layer))
    handle = block.register_forward_hook(lambda _m, _i, out: out + delta)
    try:
        with torch.no_grad():
            out = s.hf.generate(**enc, max_new_tokens=n, do_sample=False, min_new_tokens=n,
                                pad_token_id=s.tokenizer.pad_token_id)
        return out[:, enc["input_ids"].shape[1]:]
    finally:
        handle.remove()


def test_steering_equals_torch_hook(arch_session):
    _arch, s = arch_session
    g = torch.Generator().manual_seed(1)
    v = torch.randn(32, generator=g)
    steer = steering.Steer(layer=1, vector=v, alpha=3.0)
    res = steering.forward(s, PROMPTS, steers=[steer])
    ref = _hook_logits(s, PROMPTS, 1, 3.0 * v)
    # the same batch, the same addition at the same block: the same kernels on the same inputs, so exactly
    torch.testing.assert_close(res.logits, ref, rtol=0, atol=0)
    plain = steering.forward(s, PROMPTS)
    assert not torch.allclose(plain.logits, res.logits, rtol=0, atol=logit_tol(s, FORWARD)), \
        "the steering must change the logits beyond rounding"

    gen = steering.generate(s, PROMPTS, steers=[steer], max_new_tokens=6, stop_at_eos=False)
    ref_ids = _hook_generate(s, PROMPTS, 1, 3.0 * v, 6)
    assert [row for row in gen.new_ids] == ref_ids.tolist()
    base = steering.generate(s, PROMPTS, max_new_tokens=6, stop_at_eos=False)
    assert base.new_ids == _hook_generate(s, PROMPTS, 1, 0.0 * v, 6).tolist()


def test_alpha_zero_reproduces_baseline(arch_session):
    _arch, s = arch_session
    v = torch.ones(32) * 100.0
    zero = steering.Steer(layer=0, vector=v, alpha=0.0)
    a = steering.forward(s, PROMPTS, steers=[zero]).logits
    b = steering.forward(s, PROMPTS).logits
    assert torch.equal(a, b)
    ga = steering.generate(s, PROMPTS, steers=[zero], max_new_tokens=5, stop_at_eos=False)
    gb = steering.generate(s, PROMPTS, max_new_tokens=5, stop_at_eos=False)
    assert torch.equal(ga.sequences, gb.sequences)


def test_generic_fallback_guesses_and_says_so():
    """A GPT-NeoX model has no entry in the table: the generic search finds its parts and says it guessed."""
    import transformers as T

    torch.manual_seed(0)
    cfg = T.GPTNeoXConfig(vocab_size=tiny_models.VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                          num_attention_heads=4, max_position_embeddings=128, bos_token_id=0, eos_token_id=0)
    hf = T.AutoModelForCausalLM.from_config(cfg)
    s = LoadedModel.from_modules(hf, tiny_models.tokenizer(), "neox")
    a = s.adapter
    assert a.guessed and a.family == "generic"
    assert (a.embed, a.blocks, a.final_norm, a.unembed) == (
        "gpt_neox.embed_in", "gpt_neox.layers", "gpt_neox.final_layer_norm", "lm_head")
    assert any("gpt_neox.layers" in note for note in a.notes)
    res = steering.forward(s, [PROMPTS[0]], read_layers=[0, 1])
    ref = s.hf(**s.encode([PROMPTS[0]]), output_hidden_states=True)
    torch.testing.assert_close(res.hidden[1], ref.hidden_states[2], rtol=0, atol=0)


def test_no_adapter_and_no_fallback_is_a_clear_error():
    from types import SimpleNamespace

    from steertui.engine.adapters import build_adapter
    from steertui.errors import ModelLoadError

    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config = SimpleNamespace(model_type="odd")
            self.proj = torch.nn.Linear(4, 4)

    with pytest.raises(ModelLoadError, match="no adapter for model type 'odd'"):
        build_adapter(Odd())


class _TupleBlock(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.fc = torch.nn.Linear(d, d)

    def forward(self, x):
        return (x + self.fc(x), None)  # (hidden, extra) like transformers 4 blocks


class _TupleLM(torch.nn.Module):
    """A minimal causal LM whose blocks return tuples, built from plain torch modules."""

    def __init__(self, d=8, vocab=16, n=3):
        super().__init__()
        from types import SimpleNamespace

        self.config = SimpleNamespace(model_type="tuplenet", num_hidden_layers=n)
        self.embed = torch.nn.Embedding(vocab, d)
        self.layers = torch.nn.ModuleList(_TupleBlock(d) for _ in range(n))
        self.norm = torch.nn.LayerNorm(d)
        self.head = torch.nn.Linear(d, vocab)

    def get_input_embeddings(self):
        return self.embed

    def get_output_embeddings(self):
        return self.head

    def forward(self, input_ids, output_hidden_states=False, **_):
        from types import SimpleNamespace

        h = self.embed(input_ids)
        states = [h]
        for blk in self.layers:
            h = blk(h)[0]
            states.append(h)
        states[-1] = self.norm(h)
        return SimpleNamespace(logits=self.head(self.norm(h)), hidden_states=tuple(states))


def test_tuple_block_output_is_probed_and_indexed():
    """A block returning (hidden, extra) is read at element 0 — found by the probe, not assumed."""
    from steertui.engine.adapters import build_adapter

    torch.manual_seed(0)
    model = _TupleLM()
    a = build_adapter(model)
    assert a.guessed and (a.blocks, a.final_norm, a.embed, a.unembed) == ("layers", "norm", "embed", "head")
    assert (a.block_output.kind, a.block_output.index, a.block_output.length) == ("tuple", 0, 2)
    assert a.block_access(1) == "model.layers[1].output[0]"
    assert a.block_access_template == "model.layers[{layer}].output[0]"  # what a session records for its vectors
    assert a.hidden_states_last_normed is True
    out = model.layers[0](torch.zeros(2, 3, 8))
    assert a.hidden(out).shape == (2, 3, 8)


@pytest.mark.parametrize("positions", ["prompt", "generated"])
def test_generation_with_step_scoped_steering_equals_hook(positions):
    """Prompt-only and generated-only steering match a hook that counts forward calls (step 0 = the prompt)."""
    hf, tok = tiny_models.build("gpt_bigcode")
    s = LoadedModel.from_modules(hf, tok)
    v = torch.randn(32, generator=torch.Generator().manual_seed(2)) * 3
    gen = steering.generate(s, PROMPTS[:2], steers=[steering.Steer(1, v, 2.0, positions)], max_new_tokens=5,
                            stop_at_eos=False)
    calls = {"n": 0}

    def hook(_m, _i, out):
        step = calls["n"]
        calls["n"] += 1
        return out + 2.0 * v if (step == 0) == (positions == "prompt") else out

    enc = s.encode(PROMPTS[:2])
    handle = s.hf_module(s.adapter.block_path(1)).register_forward_hook(hook)
    try:
        with torch.no_grad():
            ref = s.hf.generate(**enc, max_new_tokens=5, min_new_tokens=5, do_sample=False, pad_token_id=0)
    finally:
        handle.remove()
    assert gen.new_ids == ref[:, enc["input_ids"].shape[1]:].tolist()


def test_generation_cancel():
    import threading

    from steertui.errors import CancelledError

    hf, tok = tiny_models.build("gpt_bigcode")
    s = LoadedModel.from_modules(hf, tok)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        steering.generate(s, PROMPTS[:1], max_new_tokens=50, stop_at_eos=False, cancel=cancel)
    assert len(steering.generate(s, PROMPTS[:1], max_new_tokens=4, stop_at_eos=False).new_ids[0]) == 4


def test_head_computes_only_the_columns_read(demo_model):
    """logits_at="last" and the lens have the model's head compute the columns they read, not every position
    (logits_to_keep), and a left-padded batch still gives each row its logits alone (the position ids derived
    from the mask go with it); for the lens, the window's last-layer distribution still equals the model's own."""
    from steertui.engine import lens

    s = demo_model
    head = s.hf_module(s.adapter.unembed)
    rows_in = []
    handle = head.register_forward_hook(lambda _m, inp, _out: rows_in.append(tuple(inp[0].shape)))
    try:
        enc = s.encode(PROMPTS)
        assert not enc["attention_mask"][:, 0].all(), "the shorter rows must be left-padded for this test"
        batched = steering.forward(s, enc, logits_at="last").logits
        assert rows_in == [(3, 1, s.d_model)]
        res = lens.logit_lens(s, PROMPTS[0], positions=slice(-4, None), k=3)
        assert rows_in[1] == (1, 4, s.d_model)
        assert res.final_logits_check < 1e-5
    finally:
        handle.remove()
    for row, prompt in enumerate(PROMPTS):
        with torch.no_grad():
            alone = s.hf(**s.encode([prompt])).logits[0, -1]
        torch.testing.assert_close(batched[row], alone, rtol=0, atol=logit_tol(s, FORWARD))


FIX_PAIRS = (("int f(int n) {\n    int buf[4];\n    buf[n] = 1;\n    return buf[0];\n}\n",
              "int f(int n) {\n    int buf[4];\n    if (n < 4)\n        buf[n] = 1;\n    return buf[0];\n}\n"),
             ("def handler(request):\n    name = request.args.get('name')\n    return f'<p>{name}</p>'\n",
              "def handler(request):\n    name = escape(request.args.get('name'))\n    return f'<p>{name}</p>'\n"))


@pytest.mark.parametrize("mode", ["all", "prompt", "generated"])
def test_fix_site_shared_prefix_equals_hand_teacher_forcing(arch_session, mode):
    """The fix-site scoring runs each prompt once and both continuations on its keys and values (the cache is
    repeated per continuation, the continuations' positions continue each left-padded prompt's): for every
    architecture each side's log-prob equals one unpadded row of prompt + continuation through plain transformers
    with the steering in a forward hook, and the one-forward-per-row path, to float32 rounding per token."""
    from steertui.engine import fixsite
    from test_fixsite import _pair
    from test_gendiff import _hf_logprobs

    _arch, s = arch_session
    assert fixsite.takes_cache(s)
    choices = [fixsite.fix_site_choice(s, _pair(a, b)) for a, b in FIX_PAIRS]
    assert len({c.prompt_tokens for c in choices}) == 2 and len({c.tail_tokens for c in choices}) == 2
    v = torch.randn(32, generator=torch.Generator().manual_seed(5))
    steers = [steering.Steer(layer=1, vector=v, alpha=3.0, positions=mode)]
    shared = fixsite.choice_logprobs(s, choices, steers, shared_prefix=True)
    full = fixsite.choice_logprobs(s, choices, steers, shared_prefix=False)
    tol = logit_tol(s, FORWARD)
    for r, c in enumerate(choices):
        for side, ids in enumerate((c.vulnerable_ids, c.patched_ids)):
            want = sum(_hf_logprobs(s, c.prompt, list(ids), 1, 3.0 * v, mode))
            assert abs(float(shared[r, side]) - want) <= len(ids) * tol, (r, side)
            assert abs(float(full[r, side]) - want) <= len(ids) * tol, (r, side)
    plain = fixsite.choice_logprobs(s, choices, shared_prefix=True)
    assert (shared - plain).abs().max() > 100 * tol  # the steering moved the scores beyond rounding
