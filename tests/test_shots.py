"""Few-shot verdict prompts (`eval --shots`, `verdict --shots`): one example pair of the file's CWE before its
prompt, its vulnerable file answered " Yes" and its patched file " No"; scores against plain transformers on the
exact text."""

from __future__ import annotations

import json

import pytest
import torch

from steertui.cli import main
from steertui.engine.data import load_dataset
from steertui.engine.evaluate import EvalSettings, evaluate
from steertui.engine.verdict import TEMPLATE, code_limit, sample_prompts, shot_examples, shot_prefix
from steertui.errors import SteertuiError
from tolerances import FORWARD, logit_tol


@pytest.fixture(scope="module")
def data(shared_dataset):
    ds = load_dataset(shared_dataset)
    hand = [p for p in ds.select(parts=["hand-crafted"]).pairs if p.cwe in ("cwe-22", "cwe-787")]
    shots = {p.cwe: p for p in ds.select(parts=["few-shot"]).pairs}
    return hand, shots


def test_the_prefix_is_the_example_pair_answered(data):
    _hand, shots = data
    ex = shots["cwe-787"]
    question = ("\n\nQuestion: Does this code contain instances of the security vulnerability known as "
                f"{ex.vulnerable.cwe_name}?\nAnswer:")
    assert shot_prefix(ex) == (ex.vulnerable.code.rstrip("\n") + question + " Yes\n\n"
                               + ex.patched.code.rstrip("\n") + question + " No\n\n")
    assert shot_prefix(ex, " yes", " no").endswith("Answer: no\n\n")


def _hf_score(model, text, answers):
    ids = torch.tensor([model.tokenizer(text)["input_ids"]])
    with torch.no_grad():
        logits = model.hf(input_ids=ids).logits[0, -1]
    return float(logits[answers.yes_id] - logits[answers.no_id])


def test_the_evaluation_scores_each_file_after_its_cwes_example(demo_model, data):
    hand, shots = data
    examples = [shots["cwe-22"], shots["cwe-787"]]
    settings = EvalSettings(layers=(2,), alphas=(0.0, 0.5), folds=2, kl_tokens=8, alpha_scale="residual",
                            shot_pairs=tuple(e.id for e in examples))
    res = evaluate(demo_model, hand, settings, examples=examples)
    assert res.prompt_template == "{shots}" + TEMPLATE and res.settings.shot_pairs == settings.shot_pairs
    samples = [p.vulnerable for p in hand] + [p.patched for p in hand]
    prompts = sample_prompts(demo_model, samples, hand, {c: shot_prefix(e) for c, e in shot_examples(examples,
                                                                                                       hand).items()})
    by_id = {f["id"]: f for f in res.files}
    checked = 0
    for s, prompt in zip(samples, prompts):
        assert prompt.text.startswith(shot_prefix(shots[s.cwe]))
        if prompt.truncated:
            continue
        assert prompt.text == shot_prefix(shots[s.cwe]) + TEMPLATE.format(code=s.code.rstrip("\n"),
                                                                           cwe_name=s.cwe_name)
        # the recorded unsteered score is the plain model's on that exact text
        assert by_id[s.id]["baseline_score"] == pytest.approx(_hf_score(demo_model, prompt.text, res.answers),
                                                               abs=logit_tol(demo_model, FORWARD))
        checked += 1
    assert checked >= 8
    # zero-shot scores of the same files differ: the examples are in the prompt
    plain = evaluate(demo_model, hand, EvalSettings(layers=(2,), alphas=(0.0,), folds=2, kl_tokens=8))
    zero = {f["id"]: f["baseline_score"] for f in plain.files}
    assert all(abs(zero[i] - f["baseline_score"]) > 1e-3 for i, f in by_id.items())


def test_examples_and_settings_must_agree(demo_model, data):
    hand, shots = data
    with pytest.raises(SteertuiError, match="few-shot examples need their ids in the settings"):
        evaluate(demo_model, hand, EvalSettings(layers=(2,), alphas=(1.0,), folds=2), examples=[shots["cwe-22"]])
    with pytest.raises(SteertuiError, match="no few-shot example pair of cwe-787"):
        evaluate(demo_model, hand, EvalSettings(layers=(2,), alphas=(1.0,), folds=2, shot_pairs=(shots["cwe-22"].id,)),
                 examples=[shots["cwe-22"]])
    with pytest.raises(SteertuiError, match="leaving 0 for the code"):
        code_limit(demo_model, "Out-of-bounds Write", context=200, prefix=shot_prefix(shots["cwe-787"]))


def test_eval_and_verdict_shots_on_the_command_line(shared_dataset, tmp_path, capsys):
    session, out = tmp_path / "shots.toml", tmp_path / "shots.json"
    assert main(["eval", "--dataset", str(shared_dataset), "--cwe", "22,787", "--layers", "2", "--alpha", "0,0.5",
                 "--alpha-scale", "residual", "--folds", "2", "--kl-tokens", "8", "--shots", "--json", str(out),
                 "--record", str(session)]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "every prompt after its CWE's few-shot example pair (2: few-shot/cwe-22/pair, few-shot/cwe-787/pair)" \
        in printed
    assert json.loads(out.read_text())["settings"]["shot_pairs"] == ["few-shot/cwe-22/pair", "few-shot/cwe-787/pair"]
    from steertui.engine.session import read_session

    doc = read_session(session)
    assert doc.steps[0].inputs.shot_pairs == ["few-shot/cwe-22/pair", "few-shot/cwe-787/pair"]
    shot_files = {f for f in doc.data.files if f.startswith("few-shot/")}  # the examples' files, with their sha256
    assert shot_files == {"few-shot/cwe-22", "few-shot/cwe-22-p", "few-shot/cwe-787", "few-shot/cwe-787-p"}
    assert main(["replay", str(session), "--check"]) == 0
    assert "all 1 steps match" in capsys.readouterr().out
    assert main(["report", str(session)]) == 0
    assert "few-shot prompts;" in capsys.readouterr().out
    # the few-shot part cannot be evaluated with its own examples; a dataset without it cannot give any
    assert main(["eval", "--dataset", str(shared_dataset), "--part", "few-shot", "--layers", "2", "--alpha", "1",
                 "--shots"]) == 2
    assert "--shots takes its examples from the few-shot part, which --part evaluates" in capsys.readouterr().err
    assert main(["eval", "--dataset", "builtin", "--layers", "2", "--alpha", "1", "--shots"]) == 2
    assert "--shots needs the few-shot part, and builtin examples has none" in capsys.readouterr().err
    # verdict --shots: the same prompt for one file
    assert main(["verdict", "hand-crafted/CWE-787/pair-1", "--dataset", str(shared_dataset), "--shots",
                 "--json"]) == 0
    v = json.loads(capsys.readouterr().out)
    assert v["shot_pair"] == "few-shot/cwe-787/pair"
    rec = {f.id: f for f in doc.steps[0].outputs.files}["hand-crafted/CWE-787/1"]
    assert v["score_baseline"] == pytest.approx(rec.baseline_score, abs=1e-4)


async def test_S_puts_the_examples_before_the_consoles_verdict_prompts(demo_model_path, shared_dataset):
    """`S`: the next tokens' recorded prompt comes after the selected pair's CWE's example (the Tokens tab says
    which), the next evaluation records its examples and leaves the few-shot pairs out; `S` again: zero-shot. On
    data without a few-shot part, `S` says why it cannot."""
    from test_tui import _settle

    from steertui.tui.app import SteerApp
    from steertui.tui.panes.tokens import TokensPane

    app = SteerApp(model=str(demo_model_path), dataset=str(shared_dataset))
    async with app.run_test(size=(100, 30)) as pilot:
        await _settle(app, pilot)
        await pilot.press("S", "t")
        await _settle(app, pilot)
        assert not app.failures, app.failures
        pair = app.selected_pair()
        example = next(p for p in app.dataset.pairs if p.part == "few-shot" and p.cwe == pair.cwe)
        step = app.recorder.steps[-2]
        assert step.kind == "top_tokens" and step.inputs.prompts[0].startswith(shot_prefix(example))
        assert f"after {example.id}" in str(app.query_one(TokensPane).border_title)
        await pilot.press("b")
        await _settle(app, pilot)
        await pilot.press("plus", "v", "e")
        await _settle(app, pilot)
        assert not app.failures, app.failures
        inputs = app.recorder.steps[-1].inputs
        assert inputs.shot_pairs and all(i.startswith("few-shot/") for i in inputs.shot_pairs)
        assert not any(i.startswith("few-shot/") for i in inputs.pair_ids)
        await pilot.press("S", "t")
        await _settle(app, pilot)
        assert not app.recorder.steps[-2].inputs.prompts[0].startswith(shot_prefix(example))

    app = SteerApp(model=str(demo_model_path), dataset="builtin")
    async with app.run_test(size=(100, 30)) as pilot:
        await _settle(app, pilot)
        await pilot.press("S")
        await pilot.pause()
        assert not app.shots
        assert any("has no few-shot part" in n.message for n in app._notifications)
