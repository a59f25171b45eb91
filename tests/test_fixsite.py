"""The fix-site preference: log p(patched continuation) − log p(vulnerable continuation) at a pair's fix site,
against hand teacher forcing through plain transformers with a torch forward hook doing the same steering."""

from __future__ import annotations

import math

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
    # the line before the fix site alone fills the context: no window of whole lines fits, no choice
    long_line = "int a = " + " + ".join(str(k) for k in range(900)) + ";"
    with pytest.raises(fixsite.GenDiffError, match="the line before its fix site and the longer version"):
        fixsite.fix_site_choice(demo_model, _pair(f"int z;\n{long_line}\nint b;\nint c;\n",
                                                  f"int z;\n{long_line}\nint b2;\nint c;\n"))


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
        assert c.prompt_tokens == len(demo_model.tokenizer(c.prompt)["input_ids"])
        assert c.tail_tokens == max(len(demo_model.tokenizer(t, add_special_tokens=False)["input_ids"])
                                    for t in (c.vulnerable, c.patched))


def _hand_logprob(model, prompt: str, continuation: str, delta=None, mode="all") -> tuple[float, int]:
    """Sum of log p(token_j | prompt + tokens_<j) of one unpadded row through plain transformers, the steering
    added by a forward hook at the prompt's columns, the continuation's, or all (test_gendiff's hand teacher
    forcing), and the number of tokens."""
    from test_gendiff import _hf_logprobs

    c_ids = model.tokenizer(continuation, add_special_tokens=False)["input_ids"]
    return math.fsum(_hf_logprobs(model, prompt, c_ids, LAYER, delta, mode)), len(c_ids)


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


# ---- in the held-out evaluation ----------------------------------------------------------------------------------
def _given_vector(model):
    from pathlib import Path

    from steertui.engine.session.export import import_vector

    path = Path(__file__).resolve().parents[1] / "sessions" / "demo-tour-vuln.safetensors"
    return import_vector(path, model).vectors[1]


def _mean(values):
    return math.fsum(values) / len(values)


def test_the_evaluation_scores_each_held_out_pairs_fix_site_as_the_module_does(demo_model):
    """Every vulnerable file's record holds its pair's preference unsteered, steered with the fold's coefficient
    and under its random control: each equal, bit for bit, to choice_logprobs of the fold's held-out pairs with
    that steer (the same batches); alpha 0 reproduces the unsteered preference; the rows are the records' means;
    the verdict scores are those of the evaluation without it."""
    from steertui.engine.evaluate import EvalSettings, evaluate, random_control

    pairs = [p for p in load_dataset("builtin").pairs if p.cwe in ("cwe-22", "cwe-77", "cwe-79")]
    v = _given_vector(demo_model)
    settings = EvalSettings(layers=(1,), alphas=(0.0, 3.0), folds=2, kl_tokens=8, vector="vuln", fix_site=True)
    result = evaluate(demo_model, pairs, settings, vectors={1: v})
    choices = {p.id: fixsite.fix_site_choice(demo_model, p) for p in pairs}
    by_pair = {f["pair"]: f for f in result.files if f["label"] == 1}
    assert len(by_pair) == len(pairs) and result.fix_skipped == []
    for fold in result.folds:
        test = fold["test_pairs"]
        held = [choices[p] for p in test]
        base = fixsite.preferences(fixsite.choice_logprobs(demo_model, held, chunk_size=settings.chunk_size))
        steer = [Steer(1, v, 3.0, label="vector")]
        steered = fixsite.preferences(fixsite.choice_logprobs(demo_model, held, steer, chunk_size=8))
        control = random_control(v.float().cpu(), settings.seed, fold["fold"], 1)
        rand = fixsite.preferences(fixsite.choice_logprobs(demo_model, held, [Steer(1, control, 3.0)], chunk_size=8))
        for j, pid in enumerate(test):
            f = by_pair[pid]
            cells = {x["alpha"]: x for x in f["steered"]}
            assert f["fix_baseline"] == base[j] and cells[0.0]["fix"] == base[j]
            assert cells[3.0]["fix"] == steered[j] and cells[3.0]["random_fix"] == [rand[j]]
            assert steered[j] != base[j]
    assert all(f["fix_baseline"] is None and all(x["fix"] is None for x in f["steered"])
               for f in result.files if f["label"] == 0)  # the preference is the pair's, on its vulnerable file
    for r in result.rows:
        group = [f for f in by_pair.values() if r.cwe in ("all", f["cwe"])]
        cell = [next(x for x in f["steered"] if x["alpha"] == r.alpha) for f in group]
        assert r.fix_n == len(group)
        assert r.fix_shift == _mean([x["fix"] - f["fix_baseline"] for f, x in zip(group, cell)])
        assert r.random_fix_shift == _mean([x["random_fix"][0] - f["fix_baseline"] for f, x in zip(group, cell)])
    plain = evaluate(demo_model, pairs, EvalSettings(layers=(1,), alphas=(0.0, 3.0), folds=2, kl_tokens=8,
                                                     vector="vuln"), vectors={1: v})
    assert all(r.fix_shift is None and r.fix_n is None for r in plain.rows)  # not asked: not computed
    assert [[x["score"] for x in f["steered"]] for f in plain.files] == [
        [x["score"] for x in f["steered"]] for f in result.files]
    assert "fix_site_skipped" in result.to_dict() and "fix_site_skipped" not in plain.to_dict()


def test_fix_site_scores_are_recorded_replayed_and_printed(tmp_path, demo_model, capsys):
    import json

    from steertui.cli import main
    from steertui.engine.evaluate import EvalSettings
    from steertui.engine.session import SessionRecorder, read_session
    from steertui.engine.session.ops import file_records, files_from_records

    builtin = load_dataset("builtin")
    pairs = [p for p in builtin.pairs if p.cwe in ("cwe-22", "cwe-77")]
    path = tmp_path / "fix.toml"
    rec = SessionRecorder.new(demo_model, builtin, path)
    result = rec.evaluate(pairs, EvalSettings(layers=(2,), alphas=(-1.0, 1.0), alpha_scale="residual", folds=2,
                                              kl_tokens=8, controls=2, fix_site=True))
    rec.close()
    step = read_session(path).steps[0]
    assert step.inputs.fix_site
    vulnerable = [f for f in step.outputs.files if f.label == 1]
    assert len(vulnerable) == len(pairs) and all(len(f.fix) == 2 and len(f.random_fix) == 4 for f in vulnerable)
    assert all(f.fix_baseline is None and not f.fix for f in step.outputs.files if f.label == 0)
    assert all(r.fix_n == (len(pairs) if r.cwe == "all" else 2) for r in step.outputs.rows)
    # the records read back are the evaluation's, field for field (each cell's coefficient from the rows)
    back = files_from_records(step.inputs, step.outputs)
    assert [(f["fix_baseline"], [(x["fix"], x["random_fix"]) for x in f["steered"]]) for f in back] == [
        (f["fix_baseline"], [(x["fix"], x["random_fix"]) for x in f["steered"]]) for f in result.files]
    assert file_records(step.inputs, back) == step.outputs.files
    assert main(["replay", str(path), "--check"]) == 0
    capsys.readouterr()
    assert main(["report", str(path)]) == 0  # the session's report prints the recorded fix-site table
    out = " ".join(capsys.readouterr().out.split())
    assert "fix-site preference" in out and "fix vs rand" in out
    row = next(r for r in step.outputs.rows if r.cwe == "all")  # and the step's line gives its fix-site shift
    assert f"fix site {row.fix_shift:+.3g} (rand {row.random_fix_shift:+.3g})" in out
    out_json = tmp_path / "e.json"
    assert main(["eval", "--dataset", "builtin", "--cwe", "22", "--layers", "1,2", "--alpha=-1,1", "--folds", "2",
                 "--kl-tokens", "8", "--alpha-scale", "residual", "--fix-site", "--json", str(out_json)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "fix-site preference" in out and "fix vs rand" in out
    assert "fix site beyond rand" in out  # the cell picked on the other folds, with its fix-site shift
    # the fix-site grid under the verdict's: layers × alphas, each cell beyond its control or dim
    assert "fix-site preference shift (nats) over the 2 held-out pairs with a fix site" in out
    data = json.loads(out_json.read_text())
    assert data["settings"]["fix_site"] is True and data["fix_site_skipped"] == []
    # what was scored, pair by pair: the choice without its prompt's text
    cwe22 = [p for p in builtin.pairs if p.cwe == "cwe-22"]
    assert data["fix_sites"] == [{k: v for k, v in fixsite.fix_site_choice(demo_model, p).to_dict().items()
                                  if k != "prompt"} for p in cwe22]
    assert all(r["fix_n"] == 2 for r in data["results"])


def test_a_recorded_fix_site_list_of_the_wrong_length_is_refused(tmp_path, demo_model):
    """A session whose file record holds fix-site scores for fewer cells than its step has is one line naming
    the field (session.store's checks), not a crash when it is read."""
    import re

    from steertui.engine.evaluate import EvalSettings
    from steertui.engine.session import SessionRecorder, read_session
    from steertui.engine.session.store import SessionError

    builtin = load_dataset("builtin")
    pairs = [p for p in builtin.pairs if p.cwe in ("cwe-22", "cwe-77")]
    path = tmp_path / "fix.toml"
    rec = SessionRecorder.new(demo_model, builtin, path)
    rec.evaluate(pairs, EvalSettings(layers=(2,), alphas=(1.0,), folds=2, kl_tokens=8, fix_site=True))
    rec.close()
    text = path.read_text()
    broken = re.sub(r"(\nfix = \[)[^\]]*\]", r"\1]", text, count=1)
    assert broken != text
    path.write_text(broken)
    with pytest.raises(SessionError, match=r"files\[0\]\.fix: has 0 values, the step.s 1 cells .* need 1"):
        read_session(path)
    assert "\nfix_site = true" in text
    path.write_text(text.replace("\nfix_site = true", "\nfix_site = false"))
    with pytest.raises(SessionError, match=r"files\[0\]\.fix_baseline: the step did not score the fix site"):
        read_session(path)


async def test_F_makes_the_consoles_next_evaluation_score_the_fix_sites(demo_model_path):
    """`F` in the evaluation pane: the next `e` scores (and records) each held-out pair's fix site, the line under
    the table gives the row's shift against the control's; `F` again turns it off."""
    from test_tui import _console, _settle

    async with _console(demo_model_path, build=True) as (app, pilot):
        await pilot.press("plus", "plus", "v", "F", "e")
        await _settle(app, pilot)
        assert not app.failures, app.failures
        got = app.evaluation
        assert got.settings.fix_site and app.recorder.steps[-1].inputs.fix_site
        row = got.rows[0]
        assert row.fix_n is not None and row.fix_n > 0 and row.fix_shift != 0
        detail = " ".join(str(app.query_one("#eval-detail").render()).split())
        assert (f"fix site ({row.fix_n} pairs): {row.fix_shift:+.2f} nats (rand {row.random_fix_shift:+.2f})"
                in detail)
        # the held-out files of that row: each vulnerable file its pair's fix-site shift and the controls'
        from steertui.engine.ops import held_out_files
        from steertui.tui.panes.evaluate import FilesTable

        await pilot.press("h")
        await pilot.pause()
        table, files = app.query_one(FilesTable), held_out_files(got, row.layer, row.alpha, row.cwe)
        assert [str(c.label) for c in table.columns.values()][-2:] == ["fix Δ", "fix rand"]
        for r, h in enumerate(files):
            cells = [str(c) for c in table.get_row_at(r)[-2:]]
            assert cells == (["", ""] if h.label == 0 else [f"{h.fix_shift:+.2f}", f"{h.random_fix_shift:+.2f}"])
        assert _mean([h.fix_shift for h in files if h.label == 1]) == pytest.approx(row.fix_shift, abs=1e-9)
        await pilot.press("h")
        # the alpha sweep plots the fix-site shift against alpha beside the verdict, from the same rows
        from steertui.engine.ops import sweep_curve

        await pilot.press("a")
        await _settle(app, pilot)
        assert not app.failures, app.failures
        c = app.sweep.curve
        rows = {r.alpha: r for r in app.sweep.result.rows if r.cwe == "all"}
        assert c.fix == tuple(rows[a].fix_shift for a in c.alphas) and c.fix[c.alphas.index(0.0)] == 0.0
        assert c.random_fix == tuple(rows[a].random_fix_shift for a in c.alphas)
        assert c == sweep_curve(app.sweep.result) and app.query_one("#sweep-fix").display
        await pilot.press("F", "e")
        await _settle(app, pilot)
        assert not app.evaluation.settings.fix_site and "fix site" not in str(app.query_one("#eval-detail").render())


def test_long_files_are_batched_only_as_many_as_fit_the_context(demo_model, shared_dataset):
    """Real-world files fill the demo model's context: a prompt windowed for its own short continuation and
    another pair's longer continuation do not fit one batch. Such choices go to separate batches, and every
    choice's log-probs are those it gets alone (up to another batch's rounding)."""
    pairs = [p for p in load_dataset(shared_dataset).select(parts=["real-world"]).pairs
             if p.cwe in ("cwe-476", "cwe-787")]
    choices = [c for c in fixsite.fix_site_choices(demo_model, pairs)[0] if c is not None]

    def length(text, special=True):
        return len(demo_model.tokenizer(text, add_special_tokens=special)["input_ids"])

    prompts = [length(c.prompt) for c in choices]
    tails = [max(length(c.vulnerable, False), length(c.patched, False)) for c in choices]
    naive = [range(i, min(i + 4, len(choices))) for i in range(0, len(choices), 4)]  # 4 pairs per chunk of 8
    assert any(max(prompts[i] for i in g) + max(tails[i] for i in g) > demo_model.context_length for g in naive)
    chunks = fixsite._chunks(demo_model, choices, 4)
    assert [i for g in chunks for i in g] == list(range(len(choices))) and len(chunks) > len(naive)
    assert all(max(prompts[i] for i in g) + max(tails[i] for i in g) <= demo_model.context_length for g in chunks)
    batched = fixsite.choice_logprobs(demo_model, choices, chunk_size=8)
    for i, c in enumerate(choices):
        alone = fixsite.choice_logprobs(demo_model, [c])[0]
        assert torch.allclose(batched[i], alone, atol=tails[i] * logit_tol(demo_model, FORWARD), rtol=0)


def test_a_confirmation_on_long_real_world_files_scores_their_fix_sites(shared_dataset, tmp_path, capsys):
    """eval --fix-site --confirm-part: the confirmation on real-world files (prompts windowed to the context)
    scores every confirmation pair's fix site, and says so beside its verdict shift."""
    import json

    from steertui.cli import main

    out = tmp_path / "c.json"
    assert main(["eval", "--dataset", str(shared_dataset), "--layers", "3", "--alpha=-1,1", "--alpha-scale",
                 "residual", "--fix-site", "--confirm-part", "real-world", "--cwe", "476", "--cwe", "787",
                 "--folds", "2", "--kl-tokens", "8", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    n = len(data["confirmed"]["pairs"])
    text = " ".join(capsys.readouterr().out.split())
    for direction, cell in data["confirmed"]["cells"].items():
        r = cell["result"]
        assert r["fix_n"] == n and r["fix_shift"] is not None, direction
        assert f"over {n} pairs" in text
