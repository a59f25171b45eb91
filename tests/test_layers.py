"""`steertui layers`: one real forward; every block's output is [1, seq, d_model]; zero and NaN outputs are flagged."""

from __future__ import annotations

import json
import subprocess
import sys

import torch

import tiny_models
from steertui.engine.layers import FLAG_INF, FLAG_NAN, FLAG_ZERO, probe_layers
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
