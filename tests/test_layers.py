"""`steertui layers`: one real forward; every block's output is [1, seq, d_model]; zero and NaN outputs are flagged."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import tiny_models
from steertui.engine.layers import (FLAG_INF, FLAG_NAN, FLAG_ZERO, TOP_DIMS, VALUES_SHOWN, module_detail,
                                    probe_layers, sparkline)
from steertui.errors import ModulePathError
from steertui.engine.model import LoadedModel


def test_layers_json_on_demo_model(demo_model_path, demo_model):
    out = subprocess.run([sys.executable, "-m", "steertui", "layers", "--model", str(demo_model_path), "--json"],
                         capture_output=True, text=True, check=True)
    rows = json.loads(out.stdout)
    assert all({"path", "type", "shape", "dtype", "flags"} <= set(r) for r in rows)
    by_path = {r["path"]: r for r in rows}
    n_tokens = by_path["transformer.wte"]["shape"][1]
    assert n_tokens > 10
    for i in range(demo_model.n_layers):
        block = by_path[f"transformer.h.{i}"]
        assert block["type"] == "tensor" and block["access"] == f"model.transformer.h[{i}].output"
        assert block["shape"] == [1, n_tokens, demo_model.d_model] and block["flags"] == []
        attn = by_path[f"transformer.h.{i}.attn"]
        assert attn["type"] == "tuple" and attn["access"] == f"model.transformer.h[{i}].attn.output[0]"
        assert [e["type"] for e in attn["elements"]] == ["tensor", "NoneType"]
    assert not [r["path"] for r in rows if r["flags"]]
    assert by_path["lm_head"]["shape"] == [1, n_tokens, demo_model.info.vocab_size]
    assert by_path[""]["access"] == "model.output.logits"


def test_values_match_a_plain_forward(demo_model):
    report = probe_layers(demo_model, "int x = 1;")
    enc = demo_model.encode(["int x = 1;"])
    with torch.no_grad():
        hs = demo_model.hf(**enc, output_hidden_states=True).hidden_states
    row = {m.path: m for m in report.modules}["transformer.h.0"]
    # the probe hooks the same forward of the same prompt and takes the same norm and mean: exactly equal
    assert row.norm_mean == float(hs[1][0].norm(dim=-1).mean())


def test_zero_nan_and_inf_outputs_are_flagged():
    hf, tok = tiny_models.build("gpt_bigcode")
    with torch.no_grad():
        hf.transformer.h[1].mlp.c_proj.weight.zero_()
        hf.transformer.h[1].mlp.c_proj.bias.zero_()
        hf.transformer.h[2].attn.c_proj.bias[0] = float("nan")
    s = LoadedModel.from_modules(hf, tok)
    report = probe_layers(s, "int main(void) { return 0; }")
    flags = {m.path: m.flags for m in report.modules}
    assert FLAG_ZERO in flags["transformer.h.1.mlp.c_proj"] and FLAG_ZERO in flags["transformer.h.1.mlp"]
    assert flags["transformer.h.1"] == [], "the residual stream is not zero"
    assert FLAG_NAN in flags["transformer.h.2.attn"] and FLAG_NAN in flags["transformer.h.2"]
    with torch.no_grad():
        hf.transformer.h[2].attn.c_proj.bias[0] = float("inf")
    report = probe_layers(s, "int main(void) { return 0; }")
    assert FLAG_INF in {m.path: m.flags for m in report.modules}["transformer.h.2.attn.c_proj"]


def test_module_values_equal_a_plain_forwards_hidden_states(demo_model):
    """What the detail shows of each block (statistics, per-token norms, values and largest components at the
    last token) is computed from the very tensors a plain ``output_hidden_states`` forward returns."""
    prompt = "char buf[8];\nstrcpy(buf, argv[1]);\n"
    report = probe_layers(demo_model, prompt)
    enc = demo_model.encode([prompt])
    with torch.no_grad():
        hs = demo_model.hf(**enc, output_hidden_states=True).hidden_states
    assert report.tokens == [demo_model.tokenizer.decode([t]) for t in enc["input_ids"][0].tolist()]
    n = demo_model.n_layers
    # hidden_states[i + 1] is block i's output, except the last, which transformers gives after the final norm
    pairs = [(f"transformer.h.{i}", hs[i + 1]) for i in range(n - 1)] + [("transformer.ln_f", hs[n])]
    for path, h in pairs:
        v = report.module(path).values
        x = h[0].double()
        assert v.per_position and v.count == x.numel() == v.finite
        assert v.token_norms == x.norm(dim=-1).tolist()
        assert v.last == x[-1, :VALUES_SHOWN].tolist()
        assert [i for i, _ in v.top] == x[-1].abs().topk(TOP_DIMS).indices.tolist()
        assert [val for _, val in v.top] == [x[-1, i].item() for i, _ in v.top]
        assert (v.mean, v.min, v.max) == (x.mean().item(), x.min().item(), x.max().item())
        assert v.std == pytest.approx(x.std(unbiased=False).item(), rel=1e-12)
    logits = report.module("lm_head").values
    assert logits.token_norms is not None and len(logits.token_norms) == enc["input_ids"].shape[1]


def test_the_access_that_looks_right_and_is_not_is_named_with_what_it_gives(demo_model):
    report = probe_layers(demo_model, "int x = 1;")
    S, D = report.n_tokens, demo_model.d_model
    block = report.module("transformer.h.1")
    assert block.access == "model.transformer.h[1].output"
    assert block.other_access == \
        f"model.transformer.h[1].output[0] is batch row 0, shape ({S}, {D}): not the hidden state"
    attn = report.module("transformer.h.1.attn")
    assert attn.other_access == (f"model.transformer.h[1].attn.output is a tuple (tensor (1, {S}, {D}), NoneType): "
                                 "the tensor is [0]")
    root = report.module("")
    assert root.other_access.startswith("model.output is a CausalLMOutput") and root.other_access.endswith(".logits")
    lines = dict(module_detail(report, block))
    assert lines["read"].startswith("model.transformer.h[1].output  ← steering reads")
    assert lines["not"] == block.other_access
    assert lines["module"] == f"transformer.h.1 · GPTBigCodeBlock · tensor (1, {S}, {D}) float32 on cpu · called 1×"
    top = block.values.top
    assert lines["largest |x|"].startswith(f"[{top[0][0]}] {top[0][1]:+.4g}")


def test_a_module_is_found_by_its_path_or_its_access_expression(demo_model):
    report = probe_layers(demo_model, "int x = 1;")
    for name in ("transformer.h.2.attn", "model.transformer.h[2].attn.output[0]", "model.transformer.h[2].attn"):
        assert report.module(name).path == "transformer.h.2.attn"
    assert report.module("model").path == report.module("").path == ""
    with pytest.raises(ModulePathError, match=r"no module 'h\.2' — did you mean transformer\.h\.2\?"):
        report.module("h.2")
    with pytest.raises(ModulePathError, match=r"no module 'transformer\.h\.9' — did you mean transformer\.h\.\d"):
        report.module("transformer.h.9")


def test_non_finite_values_are_counted_and_shown_first():
    hf, tok = tiny_models.build("gpt_bigcode")
    with torch.no_grad():
        hf.transformer.h[2].attn.c_proj.bias[5] = float("nan")
    report = probe_layers(LoadedModel.from_modules(hf, tok), "int main(void) { return 0; }")
    m = report.module("transformer.h.2.attn.c_proj")
    v = m.values
    assert v.count - v.finite == report.n_tokens  # one NaN component per position
    assert v.top[0][0] == 5 and v.top[0][1] != v.top[0][1]  # NaN leads the largest components
    lines = dict(module_detail(report, m))
    assert f"{report.n_tokens:,} not finite" in lines["values"] and lines["flags"] == "nan"


def test_sparkline_keeps_a_spike_and_scales_from_the_smallest():
    assert sparkline([1, 2, 3, 4, 5], 10) == "▁▃▅▆█"
    assert sparkline([3.0, 3.0], 4) == "▁▁"
    spiky = [1.0] * 40
    spiky[17] = 9.0
    line = sparkline(spiky, 8)
    assert len(line) == 8 and line.count("█") == 1 and set(line) == {"▁", "█"}


def test_layers_module_on_the_command_line(demo_model_path):
    run = [sys.executable, "-m", "steertui", "layers", "--model", str(demo_model_path)]
    out = subprocess.run(run + ["--module", "model.transformer.h[1].output"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "transformer.h.1 · GPTBigCodeBlock" in out.stdout and "output[0] is batch row 0" in out.stdout
    as_json = json.loads(subprocess.run(run + ["--module", "transformer.h.1", "--json"], capture_output=True,
                                        text=True, check=True).stdout)
    assert as_json["path"] == "transformer.h.1" and len(as_json["values"]["token_norms"]) == as_json["shape"][1]
    bad = subprocess.run(run + ["--module", "h.1"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip().splitlines() == [
        f"steertui: error: {demo_model_path} has no module 'h.1' — did you mean transformer.h.1? `steertui layers` "
        "lists every module's path"]
