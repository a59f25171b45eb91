"""Prompts are checked against the model's context before the model runs, and one loaded model can be called
from several threads at once: every tokenizer and model call goes through its lock."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
import torch

from steertui.engine import gendiff, lens, steering
from steertui.errors import ContextLengthError
from test_bad_input import _error_line, _run

REPO = Path(__file__).resolve().parents[1]
LONG = "int x = 1;\n" * 600  # about 3,000 tokens: past the demo model's 1,024
PROMPT = "int main(void) {\n    char buf[16];"


# ---- context ------------------------------------------------------------------------------------------------
def test_context_length_is_the_configs(demo_model):
    assert demo_model.context_length == demo_model.hf.config.n_positions == 1024


@pytest.mark.parametrize("call", ["forward", "generate", "lens", "top_tokens", "generation_diff"])
def test_a_prompt_past_the_context_is_refused_before_the_model_runs(demo_model, call):
    s = demo_model
    n = len(s.tokenizer(LONG)["input_ids"])
    assert n > s.context_length
    run = {"forward": lambda: steering.forward(s, [PROMPT, LONG]),
           "generate": lambda: steering.generate(s, [LONG], max_new_tokens=4),
           "lens": lambda: lens.logit_lens(s, LONG),
           "top_tokens": lambda: gendiff.top_tokens(s, [LONG], []),
           "generation_diff": lambda: gendiff.generation_diff(s, [PROMPT, LONG], [], max_new_tokens=4,
                                                               batch_size=1)}[call]
    with pytest.raises(ContextLengthError) as err:
        run()
    text = str(err.value)
    assert f"{n} tokens" in text and "context of 1024" in text and "data budget" in text, text


def test_new_tokens_past_the_context_say_how_many_fit(demo_model):
    s = demo_model
    n = len(s.tokenizer(PROMPT)["input_ids"])
    with pytest.raises(ContextLengthError, match=rf"{n} tokens \+ 2000 new tokens.*at most {1024 - n} new tokens"):
        steering.generate(s, [PROMPT], max_new_tokens=2000)
    with pytest.raises(ContextLengthError, match="at most"):
        gendiff.generation_diff(s, [PROMPT], [], max_new_tokens=2000)
    # exactly filling the context is allowed, and generates
    out = steering.generate(s, [PROMPT], max_new_tokens=1024 - n, stop_at_eos=False)
    assert len(out.new_ids[0]) == 1024 - n


@pytest.mark.parametrize("prompts", [[""], [PROMPT, ""]])
def test_an_empty_prompt_is_refused(demo_model, prompts):
    with pytest.raises(ContextLengthError, match="empty"):
        steering.forward(demo_model, prompts)
    with pytest.raises(ContextLengthError, match="empty"):
        steering.generate(demo_model, prompts, max_new_tokens=2)


@pytest.mark.parametrize("prompt, says", [("", "empty"), (LONG, "context of 1024")], ids=["empty", "too-long"])
def test_layers_command_refuses_bad_prompts_with_one_line(prompt, says):
    proc = _run("layers", "--prompt", prompt)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert says in _error_line(proc)


def test_replay_of_a_generation_past_the_context_is_one_line(tmp_path):
    for name in ("demo-tour.toml", "demo-tour.safetensors"):
        shutil.copy(REPO / "sessions" / name, tmp_path / name)
    toml = tmp_path / "demo-tour.toml"
    text = toml.read_text()
    assert text.count("max_new_tokens = 8") == 1
    toml.write_text(text.replace("max_new_tokens = 8", "max_new_tokens = 5000"))
    proc = _run("replay", str(toml), "--check", timeout=300)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = _error_line(proc)
    assert "5000 new tokens" in line and "at most" in line, line


# ---- threads ------------------------------------------------------------------------------------------------
def test_one_model_hammered_from_threads_gives_the_single_threaded_results(demo_model):
    """Tokenizer calls with different padding/truncation settings, encodes, forwards, lenses and target
    lookups from four threads at once: each result equals the single-threaded one."""
    s = demo_model
    texts = [PROMPT, "def f(x):\n    return x", "strcpy(buf, argv[1]);", LONG[:200]]
    ops = {
        "encode": lambda: s.encode(texts)["input_ids"].tolist(),
        "truncated": lambda: s.encode(texts, max_length=5)["input_ids"].tolist(),
        "tokenizer": lambda: s.tokenizer(texts[1:], padding="max_length", max_length=40, truncation=True)["input_ids"],
        "single": lambda: s.tokenizer(texts[0])["input_ids"],
        "token_id": lambda: s.token_id(" Yes"),
        "forward": lambda: steering.forward(s, texts[:2], logits_at="last").logits,
        "lens": lambda: lens.logit_lens(s, texts[0], k=2, target=" Yes").layers,
    }
    want = {name: fn() for name, fn in ops.items()}
    errors: list[BaseException] = []
    mismatches: list[str] = []

    def hammer(offset: int) -> None:
        names = list(ops)
        try:
            for i in range(60):
                name = names[(i + offset) % len(names)]
                got = ops[name]()
                same = torch.equal(got, want[name]) if isinstance(got, torch.Tensor) else got == want[name]
                if not same:
                    mismatches.append(name)
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    assert not mismatches, mismatches


def test_the_tokenizer_is_locked_and_still_configurable(demo_model):
    tok = demo_model.tokenizer
    assert tok.padding_side == "left"
    tok.padding_side = "right"
    try:
        assert tok("a b", "c")["input_ids"]
        assert demo_model.tokenizer.padding_side == "right"
    finally:
        tok.padding_side = "left"
    assert len(tok) == len(tok._tokenizer) <= demo_model.info.vocab_size
    assert tok.decode(tok.encode("int x;", add_special_tokens=False)) == "int x;"
