"""Generation diff against plain ``transformers.generate`` with a torch forward hook doing the same steering.

Exact token ids and exact lengths are pinned to plain HF computed in the same test (a multi-token generation
must really produce N tokens), log-probs to a hand teacher-forced forward, and EOS cutting to a steer that
forces EOS from the second generated token on."""

from __future__ import annotations

import difflib
import json
import threading

import pytest
import torch

from steertui.engine import gendiff
from steertui.engine.steering import Steer
from steertui.errors import CancelledError
from tolerances import FORWARD, logit_tol

PROMPTS = ["int main(int argc, char **argv) {\n    char buf[16];", "def handler(request):\n    name ="]
LAYER, ALPHA, N = 2, 32.0, 12


def _vector(session, seed=5):
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(session.d_model, generator=g)
    return v / v.norm()


def _step_hook(session, layer, delta, mode):
    """A forward hook adding ``delta`` on generate()'s prompt pass (call 0), its later steps, or both."""
    calls = [0]

    def hook(_m, _i, out):
        step = calls[0]
        calls[0] += 1
        return out + delta if mode == "all" or (mode == "prompt") == (step == 0) else out

    return session.hf_module(session.adapter.block_path(layer)).register_forward_hook(hook)


def _hf_generate(session, layer=None, delta=None, mode="all", n=N, stop_at_eos=False):
    """Plain HF greedy generation of PROMPTS (batched, left-padded); new ids per row, cut after EOS."""
    enc = session.encode(PROMPTS)
    handle = _step_hook(session, layer, delta, mode) if delta is not None else None
    extra = {} if stop_at_eos else {"min_new_tokens": n}
    try:
        with torch.no_grad():
            out = session.hf.generate(**enc, max_new_tokens=n, do_sample=False,
                                      pad_token_id=session.tokenizer.pad_token_id, **extra)
    finally:
        if handle is not None:
            handle.remove()
    eos, rows = session.tokenizer.eos_token_id, []
    for row in out[:, enc["input_ids"].shape[1]:].tolist():
        if stop_at_eos and eos in row:
            row = row[: row.index(eos) + 1]
        rows.append(row)
    return rows


def _hf_logprobs(session, prompt, new_ids, layer=None, delta=None, mode="all"):
    """Hand teacher forcing of one unpadded row: log p(new_ids[j] | prompt + new_ids[:j]), steering masked to
    prompt columns (< P), generated columns (>= P) or all."""
    prompt_ids = session.encode([prompt])["input_ids"][0].tolist()
    P = len(prompt_ids)
    ids = torch.tensor([prompt_ids + list(new_ids)])
    handle = None
    if delta is not None:
        cols = torch.arange(ids.shape[1])
        keep = {"all": cols >= 0, "prompt": cols < P, "generated": cols >= P}[mode]
        mask = keep.float()[None, :, None]
        handle = session.hf_module(session.adapter.block_path(layer)).register_forward_hook(
            lambda _m, _i, out: out + mask * delta)
    try:
        with torch.no_grad():
            logits = session.hf(input_ids=ids).logits[0].float()
    finally:
        if handle is not None:
            handle.remove()
    logp = logits[P - 1: P - 1 + len(new_ids)].log_softmax(-1)
    return logp.gather(-1, torch.tensor(new_ids)[:, None])[:, 0].tolist()


@pytest.mark.parametrize("mode", ["all", "prompt", "generated"])
def test_generations_equal_hf_generate_with_hook(demo_model, mode):
    s = demo_model
    v = _vector(s)
    res = gendiff.generation_diff(s, PROMPTS, [Steer(LAYER, v, ALPHA, positions=mode)], max_new_tokens=N,
                                  stop_at_eos=False)
    base_ref = _hf_generate(s)
    steer_ref = _hf_generate(s, LAYER, ALPHA * v, mode)
    assert [list(r.baseline.ids) for r in res.rows] == base_ref
    assert [list(r.steered.ids) for r in res.rows] == steer_ref
    assert base_ref != steer_ref, "the steering must change at least one generation"
    for prompt, row in zip(PROMPTS, res.rows):
        assert row.prompt == prompt
        assert len(row.baseline.ids) == N and len(row.steered.ids) == N  # really N tokens, not one
        assert len(row.baseline.logprobs) == N and len(row.steered.texts) == N
        assert row.baseline.consistent and row.steered.consistent and row.consistent
        assert not row.baseline.stopped_at_eos and not row.steered.stopped_at_eos
        # batched, left-padded, KV-cached steps against one unpadded full forward: log-probs after a whole
        # forward's rounding
        tol = logit_tol(s, FORWARD)
        assert row.baseline.logprobs == pytest.approx(_hf_logprobs(s, prompt, row.baseline.ids), abs=tol)
        assert row.steered.logprobs == pytest.approx(
            _hf_logprobs(s, prompt, row.steered.ids, LAYER, ALPHA * v, mode), abs=tol)
        assert all(lp <= 0 for lp in row.steered.logprobs)
        assert row.steered.texts == tuple(s.tokenizer.decode([t]) for t in row.steered.ids)
        assert row.steered.text == s.tokenizer.decode(list(row.steered.ids), skip_special_tokens=True)
        a, b = list(row.baseline.ids), list(row.steered.ids)
        first = next((j for j in range(N) if a[j] != b[j]), None)
        assert row.first_divergence == first
        if mode == "generated":  # the first token comes from the unsteered prompt pass
            assert a[0] == b[0]
        rebuilt = []  # applying the opcodes to the baseline gives the steered ids
        for op in row.ops:
            rebuilt += a[op.a0: op.a1] if op.tag == "equal" else b[op.b0: op.b1]
            assert op.baseline_texts == tuple(s.tokenizer.decode([t]) for t in a[op.a0: op.a1])
            assert op.steered_texts == tuple(s.tokenizer.decode([t]) for t in b[op.b0: op.b1])
        assert rebuilt == b


def _eos_vector(session):
    """A direction that the final norm and unembedding turn into EOS: the residual direction whose decoded
    next-token distribution puts the most mass on EOS (a few deterministic gradient steps; the norm makes the
    scale irrelevant once the direction dominates the residual)."""
    eos = session.tokenizer.eos_token_id
    norm, head = session.hf_module(session.adapter.final_norm), session.hf_module(session.adapter.unembed)
    w = head.weight[eos].detach().float()
    d = (w - w.mean()).clone().requires_grad_(True)
    opt = torch.optim.Adam([d], lr=0.05)
    with torch.enable_grad():
        for _ in range(200):
            opt.zero_grad()
            loss = -head(norm(d[None].to(head.weight.dtype))).float().log_softmax(-1)[0, eos]
            loss.backward()
            opt.step()
    d = d.detach()
    assert int(head(norm(d[None])).argmax()) == eos
    return d / d.norm()


def test_eos_stops_each_row_and_is_cut(demo_model):
    """Steer hard towards EOS on generation steps only: the prompt pass picks a normal first token, the next
    step picks EOS and the row stops there. Baseline rows run to N (or their own EOS), as plain HF does."""
    s = demo_model
    last, eos = s.n_layers - 1, s.tokenizer.eos_token_id
    d = _eos_vector(s)
    steer = Steer(last, d, 1e4, positions="generated")
    res = gendiff.generation_diff(s, PROMPTS, [steer], max_new_tokens=N, stop_at_eos=True)
    steer_ref = _hf_generate(s, last, 1e4 * d.to(s.hf.dtype), "generated", stop_at_eos=True)
    base_ref = _hf_generate(s, stop_at_eos=True)
    assert [list(r.steered.ids) for r in res.rows] == steer_ref
    assert [list(r.baseline.ids) for r in res.rows] == base_ref
    for row in res.rows:
        ids = row.steered.ids
        assert ids[-1] == eos and len(ids) <= 2 and eos not in ids[:-1]
        assert row.steered.stopped_at_eos and row.steered.consistent and row.baseline.consistent
        assert len(row.steered.logprobs) == len(ids)
        tol = logit_tol(s, FORWARD)  # as in test_generations_equal_hf_generate_with_hook
        assert row.steered.logprobs == pytest.approx(
            _hf_logprobs(s, row.prompt, ids, last, 1e4 * d, "generated"), abs=tol)
        assert row.baseline.logprobs == pytest.approx(_hf_logprobs(s, row.prompt, row.baseline.ids), abs=tol)
        assert row.baseline.stopped_at_eos == (row.baseline.ids[-1] == eos)
        assert row.first_divergence is not None and row.first_divergence <= 1
        assert s.tokenizer.eos_token not in row.steered.text


def test_alpha_zero_gives_identical_sides(demo_model):
    s = demo_model
    res = gendiff.generation_diff(s, PROMPTS, [Steer(LAYER, _vector(s), 0.0, positions="prompt")],
                                  max_new_tokens=6, stop_at_eos=False)
    for row in res.rows:
        assert row.baseline.ids == row.steered.ids and len(row.baseline.ids) == 6
        assert row.baseline.logprobs == row.steered.logprobs
        assert row.first_divergence is None
        assert [op.tag for op in row.ops] == ["equal"]


def test_chunks_progress_and_json(demo_model):
    s = demo_model
    steer = Steer(LAYER, _vector(s), ALPHA)
    seen = []
    whole = gendiff.generation_diff(s, PROMPTS, [steer], max_new_tokens=5)
    parts = gendiff.generation_diff(s, PROMPTS, [steer], max_new_tokens=5, batch_size=1,
                                    progress=lambda *a: seen.append(a))
    assert seen == [("baseline", 1, 8), ("steered", 2, 8), ("score-baseline", 3, 8), ("score-steered", 4, 8),
                    ("baseline", 5, 8), ("steered", 6, 8), ("score-baseline", 7, 8), ("score-steered", 8, 8)]
    for a, b in zip(whole.rows, parts.rows):
        assert a.baseline.ids == b.baseline.ids and a.steered.ids == b.steered.ids
        # batches of two against one prompt alone: log-probs after a whole forward's rounding
        assert a.steered.logprobs == pytest.approx(b.steered.logprobs, abs=logit_tol(s, FORWARD))
    d = json.loads(json.dumps(whole.to_dict()))
    assert d["max_new_tokens"] == 5 and d["steers"][0]["layer"] == LAYER
    row = d["rows"][0]
    assert set(row) == {"prompt", "baseline", "steered", "ops", "first_divergence", "consistent"}
    assert row["steered"]["ids"] == list(whole.rows[0].steered.ids)


def test_cancel_between_runs(demo_model):
    s = demo_model
    ev = threading.Event()
    stages = []

    def progress(stage, done, total):
        stages.append(stage)
        if stage == "baseline":
            ev.set()

    with pytest.raises(CancelledError):
        gendiff.generation_diff(s, PROMPTS, [Steer(LAYER, _vector(s), ALPHA)], max_new_tokens=3, cancel=ev,
                                progress=progress)
    assert stages == ["baseline"]
    with pytest.raises(CancelledError):
        gendiff.generation_diff(s, PROMPTS, [], max_new_tokens=3, cancel=ev)


class _SetAfter(threading.Event):
    """An event that reports itself set from its n-th check on (a deterministic Escape in mid-run)."""

    def __init__(self, n):
        super().__init__()
        self.n, self.checks = n, 0

    def is_set(self):
        self.checks += 1
        return self.checks >= self.n or super().is_set()


def test_cancel_inside_a_generation(demo_model):
    s, stages = demo_model, []
    ev = _SetAfter(3)  # the stage check passes, then generation checks at its steps
    with pytest.raises(CancelledError, match="generation cancelled"):
        gendiff.generation_diff(s, PROMPTS, [Steer(LAYER, _vector(s), ALPHA)], max_new_tokens=20, cancel=ev,
                                progress=lambda stage, done, total: stages.append(stage))
    assert stages == [] and ev.checks < 20  # stopped inside the baseline run, long before its 20 steps


def test_bad_requests_are_clear_errors(demo_model):
    with pytest.raises(gendiff.GenDiffError, match="no prompts"):
        gendiff.generation_diff(demo_model, [], [])
    with pytest.raises(gendiff.GenDiffError, match="max_new_tokens=0"):
        gendiff.generation_diff(demo_model, PROMPTS, [], max_new_tokens=0)


def test_token_diff_opcodes():
    ops, first = gendiff.token_diff([1, 2, 3, 4], [1, 2, 9, 4, 5], str)
    assert [(o.tag, o.a0, o.a1, o.b0, o.b1) for o in ops] == [
        ("equal", 0, 2, 0, 2), ("replace", 2, 3, 2, 3), ("equal", 3, 4, 3, 4), ("insert", 4, 4, 4, 5)]
    assert ops[1].baseline_texts == ("3",) and ops[1].steered_texts == ("9",)
    assert first == 2
    assert gendiff.token_diff([1, 2], [1, 2, 3], str)[1] == 2
    assert gendiff.token_diff([1, 2], [1, 2], str)[1] is None
    assert gendiff.token_diff([7, 1], [1], str)[0][0].tag == "delete"


def test_concurrent_callers_are_serialised_by_the_lock(demo_model):
    """A lens and a generation diff started from two worker threads at once both finish with the results of
    sequential runs (two concurrent traces on one model would break nnsight)."""
    from steertui.engine import lens

    s = demo_model
    steer = Steer(LAYER, _vector(s), ALPHA)
    got, errors = {}, []

    def run(name, fn):
        try:
            got[name] = fn()
        except Exception as err:  # pragma: no cover - reported below
            errors.append(err)

    def gen():
        return gendiff.generation_diff(s, PROMPTS, [steer], max_new_tokens=4)

    def look():
        return lens.logit_lens(s, PROMPTS[0], k=3, steers=[steer])

    want_gen, want_lens = gen(), look()
    threads = [threading.Thread(target=run, args=("gen", gen)), threading.Thread(target=run, args=("lens", look))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    assert [r.steered.ids for r in got["gen"].rows] == [r.steered.ids for r in want_gen.rows]
    assert got["lens"].layers == want_lens.layers


# ---- the fix-site prompt ------------------------------------------------------------------------------------
def _pair(dataset_spec, pair_id):
    from steertui.engine.data import load_dataset

    return next(p for p in load_dataset(dataset_spec).pairs if p.id == pair_id)


def test_fix_site_prompt_stops_before_the_first_changed_code_line(demo_model):
    pair = _pair("builtin", "builtin/CWE-22/pair-1")
    fp = gendiff.fix_site_prompt(demo_model, pair)
    vuln, patched = pair.vulnerable.code.splitlines(), pair.patched.code.splitlines()
    # lines 1-12 are shared, line 13 is where the patch inserts its path check before the snprintf
    assert vuln[:12] == patched[:12] and vuln[12] != patched[12]
    assert fp.line == 13 and fp.dropped_lines == 0
    assert fp.text == "\n".join(vuln[:12]).rstrip("\n") and not fp.text.endswith("\n")
    assert fp.vulnerable_line == "" and fp.patched_line.strip().startswith("if (requested[0] == '/'")

    # a hunk of only #define / blank lines is skipped for the first hunk that changes code
    pair = _pair("builtin", "builtin/CWE-77/pair-1")
    fp = gendiff.fix_site_prompt(demo_model, pair)
    first_hunk = next(i for i, (a, b) in enumerate(zip(pair.vulnerable.code.splitlines(),
                                                        pair.patched.code.splitlines())) if a != b)
    assert fp.line > first_hunk + 1 and any(c.isalpha() for c in fp.patched_line)


def test_fix_site_prompts_on_secllmholmes_fit_and_are_shared_by_both_files(demo_model, shared_dataset):
    from steertui.engine.data import count_tokens, load_dataset

    ds = load_dataset(shared_dataset)
    dropped = 0
    for pair in ds.pairs:
        fp = gendiff.fix_site_prompt(demo_model, pair, max_new_tokens=32)
        assert fp.text.strip() and not fp.text.endswith("\n"), pair.id
        assert count_tokens(demo_model.tokenizer, fp.text) <= demo_model.context_length - 32, pair.id
        # the prompt is the vulnerable file's own text, and the patch changes no line of code before it
        assert fp.text in pair.vulnerable.code, pair.id
        vuln, patched = pair.vulnerable.code.splitlines(), pair.patched.code.splitlines()
        for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(a=vuln, b=patched, autojunk=False).get_opcodes():
            if tag != "equal" and 0 < i1 < fp.line - 1:
                assert all(gendiff._not_code(x) for x in vuln[i1:i2] + patched[j1:j2]), (pair.id, i1)
        dropped += fp.dropped_lines > 0
    assert dropped > 0  # real-world files are longer than the demo model's 1024-token context


def test_top_tokens_logit_diff_is_the_verdict_score(demo_model):
    from steertui.engine import verdict

    s = demo_model
    answers = verdict.answer_tokens(s)
    steer = [Steer(LAYER, _vector(s), ALPHA)]
    res = gendiff.top_tokens(s, PROMPTS, steer, k=3)
    for row, prompt in enumerate(PROMPTS):
        base, steered = res.logit_diff(answers.yes_id, answers.no_id, row)
        tol = logit_tol(s, FORWARD)  # a batch of two prompts against one alone: a logit difference's rounding
        assert base == pytest.approx(float(verdict.score(s, [prompt], answers)[0]), abs=tol)
        assert steered == pytest.approx(float(verdict.score(s, [prompt], answers, steers=steer)[0]), abs=tol)
        assert base != pytest.approx(steered, abs=tol)
    assert "logits" not in res.to_dict()


def _hf_lens(session, prompt, new_ids, layer=None, delta=None, mode="all"):
    """Hand teacher forcing of one unpadded row with forward hooks: per layer, log p(new_ids[j]) of that block's
    output (after any steering) through the final norm and unembedding, [layers, T]; and the output log-probs
    at the same columns [T, V]."""
    prompt_ids = session.encode([prompt])["input_ids"][0].tolist()
    P, T = len(prompt_ids), len(new_ids)
    ids = torch.tensor([prompt_ids + list(new_ids[:-1])])
    handles, states = [], {}
    if delta is not None:
        cols = torch.arange(ids.shape[1])
        keep = {"all": cols >= 0, "prompt": cols < P, "generated": cols >= P}[mode]
        mask = keep.float()[None, :, None]
        handles.append(session.hf_module(session.adapter.block_path(layer)).register_forward_hook(
            lambda _m, _i, out: out + mask * delta))
    for i in range(session.n_layers):  # registered after the steering hook: they see the steered output
        handles.append(session.hf_module(session.adapter.block_path(i)).register_forward_hook(
            lambda _m, _i, out, i=i: states.__setitem__(i, out[0])))
    try:
        with torch.no_grad():
            logits = session.hf(input_ids=ids).logits[0].float()
    finally:
        for h in handles:
            h.remove()
    norm, head = session.hf_module(session.adapter.final_norm), session.hf_module(session.adapter.unembed)
    cols, tok = torch.arange(P - 1, P + T - 1), torch.tensor(list(new_ids))
    with torch.no_grad():
        lens = [head(norm(states[i][cols])).float().log_softmax(-1)[torch.arange(T), tok]
                for i in range(session.n_layers)]
    return torch.stack(lens), logits[cols].log_softmax(-1)


@pytest.mark.parametrize("mode", ["all", "generated"])
def test_continuation_lens_equals_hand_teacher_forcing_through_every_layer(demo_model, mode):
    s = demo_model
    v = _vector(s)
    steer = [Steer(LAYER, v, ALPHA, positions=mode)]
    prompt = PROMPTS[0]
    row = gendiff.generation_diff(s, [prompt], steer, max_new_tokens=N, stop_at_eos=False).rows[0]
    assert row.baseline.ids != row.steered.ids
    got = gendiff.continuation_lens(s, prompt, row, steer, k=3)
    assert got.k == 3 and got.final_logits_check < 1e-5 and got.steers[0]["layer"] == LAYER
    tol = logit_tol(s, FORWARD)
    for side, steps in ((row.baseline, got.baseline), (row.steered, got.steered)):
        assert [st.id for st in steps] == list(side.ids) and len(steps) == N
        assert [st.text for st in steps] == list(side.texts)
        for run, delta in ((0, None), (1, ALPHA * v)):
            lens, out = _hf_lens(s, prompt, side.ids, LAYER, delta, mode)
            assert [st.lens[run] for st in steps] == [pytest.approx(c, abs=tol) for c in lens.T.tolist()]
            chosen = out[torch.arange(N), torch.tensor(list(side.ids))]
            assert [st.logprob[run] for st in steps] == pytest.approx(chosen.tolist(), abs=tol)
            # the last layer's lens is the output; ranks and the top-k are the output's
            assert [st.lens[run][-1] for st in steps] == pytest.approx([st.logprob[run] for st in steps], abs=1e-6)
            assert [st.rank[run] for st in steps] == [int((o > c).sum()) + 1 for o, c in zip(out, chosen)]
            assert [[t.id for t in st.top[run]] for st in steps] == out.topk(3).indices.tolist()
    # each side's own run gives the generation's log-probs; greedy tokens rank first in their own run
    assert [st.logprob[0] for st in got.baseline] == pytest.approx(list(row.baseline.logprobs), abs=tol)
    assert [st.logprob[1] for st in got.steered] == pytest.approx(list(row.steered.logprobs), abs=tol)
    assert all(st.rank[0] == 1 for st in got.baseline) and all(st.rank[1] == 1 for st in got.steered)
    first = row.first_divergence
    # where they part, each run ranks the other side's token below its own (the same prefix up to there)
    assert got.steered[first].rank[0] > 1 and got.baseline[first].rank[1] > 1
    assert got.steered[first].delta > got.baseline[first].delta
    if mode == "generated":  # the first token is predicted by the prompt pass, which this mode leaves alone
        assert got.steered[0].logprob[0] == got.steered[0].logprob[1]
        assert got.steered[0].lens_delta == (0.0,) * s.n_layers
    else:  # layers before the steered one cannot see the vector
        assert all(d == 0.0 for d in got.steered[first].lens_delta[:LAYER])
    json.dumps(got.to_dict())


def test_continuation_lens_with_no_steering_reads_the_same_on_both_runs(demo_model):
    s = demo_model
    row = gendiff.generation_diff(s, [PROMPTS[1]], [], max_new_tokens=6).rows[0]
    got = gendiff.continuation_lens(s, PROMPTS[1], row, [])
    for st in got.baseline + got.steered:
        assert st.lens[0] == st.lens[1] and st.delta == 0.0 and st.top[0] == st.top[1]
    assert len(got.baseline[0].top[0]) == 3


def test_continuation_lens_cancel_before_it_runs(demo_model):
    s = demo_model
    row = gendiff.generation_diff(s, [PROMPTS[1]], [], max_new_tokens=2).rows[0]
    flag = threading.Event()
    flag.set()
    with pytest.raises(CancelledError):
        gendiff.continuation_lens(s, PROMPTS[1], row, [], cancel=flag)
