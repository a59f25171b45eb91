"""`steertui verdict ID`: the Tokens tab headless. Its JSON is the engine's next tokens and attribution for that
file's verdict prompt with the asked steering, exactly; bad flags are one line and exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steertui.cli import main
from steertui.engine import ops, verdict
from steertui.engine.data import load_dataset
from steertui.engine.session.export import import_vector
from steertui.engine.steering import Steer

VECTORS = Path(__file__).resolve().parents[1] / "sessions" / "demo-tour-vuln.safetensors"


def _json(capsys, *argv) -> dict:
    assert main(["verdict", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_pair_steered_equals_the_engine(demo_model, capsys):
    pair = load_dataset("builtin").pairs[0]
    data = _json(capsys, pair.id, "--vectors", str(VECTORS), "--layer", "2", "--alpha", "3")
    prompt = verdict.build_prompt(demo_model, pair.vulnerable.code, pair.vulnerable.cwe_name, pair.vulnerable.id,
                                  pair=pair)
    v = import_vector(VECTORS, demo_model).vectors[2]
    want = ops.next_tokens(demo_model, prompt.text, [Steer(2, v, 3.0)], attribution=True)
    assert data["sample"] == pair.vulnerable.id and data["label"] == 1 and data["cwe"] == pair.cwe
    assert data["prompt_tokens"] == demo_model.encode([prompt.text])["input_ids"].shape[1]
    assert (data["score_baseline"], data["score_steered"]) == (want.score_baseline, want.score_steered)
    assert data["top_tokens"] == want.row.to_dict()
    assert data["attribution"]["steered"] == want.attribution.steered.to_dict()
    assert data["attribution"]["baseline"] == want.attribution.baseline.to_dict()
    assert [(s["layer"], s["alpha"], s["positions"]) for s in data["steers"]] == [(2, 3.0, "all")]
    assert any("was built from this pair" in n for n in data["vector_file"]["notes"])
    from steertui.engine.fixsite import fix_site_preference  # which version of the fix it would rather write

    assert data["fix_site"] == fix_site_preference(demo_model, pair, [Steer(2, v, 3.0)]).to_dict()
    assert data["fix_site"]["baseline"] != data["fix_site"]["steered"]


def test_a_patched_sample_alone_is_its_own_prompt(demo_model, capsys):
    pair = load_dataset("builtin").pairs[1]
    data = _json(capsys, pair.patched.id)
    prompt = verdict.build_prompt(demo_model, pair.patched.code, pair.patched.cwe_name, pair.patched.id, pair=pair)
    want = ops.next_tokens(demo_model, prompt.text, attribution=True)
    assert data["sample"] == pair.patched.id and data["label"] == 0 and data["vector_file"] is None
    assert data["score_baseline"] == want.score_baseline == data["score_steered"]
    assert data["attribution"]["steered"] is None and data["steers"] == []
    assert data["attribution"]["baseline"]["check"] < 1e-4
    assert main(["verdict", pair.patched.id]) == 0  # the table
    out = capsys.readouterr().out
    assert "the verdict score written by layer" in out and f"{want.score_baseline:+.3f}" in out
    # the sample's pair's fix site, unsteered (the same for either file of the pair)
    assert data["fix_site"]["baseline"] == data["fix_site"]["steered"]
    assert f"fix site of {pair.id}" in out and f"{data['fix_site']['baseline_preference']:+.2f} nats" in out


@pytest.mark.parametrize("argv, message", [
    (["builtin/CWE-22/pair-9"], "no sample or pair 'builtin/CWE-22/pair-9' in builtin examples — did you mean"),
    (["builtin/CWE-22/pair-1", "--layer", "2"], "--layer and --alpha steer with a vector, and no --vectors FILE"),
    (["builtin/CWE-22/pair-1", "--vectors", str(VECTORS)], "--vectors needs --alpha"),
    (["builtin/CWE-22/pair-1", "--vectors", str(VECTORS), "--layer", "1,2", "--alpha", "1,2,3"],
     "--alpha has 3 values for 2 layer(s) (1, 2)"),
    (["builtin/CWE-22/pair-1", "--vectors", str(VECTORS), "--layer", "9", "--alpha", "1"], "layer 9"),
    (["builtin/CWE-22/pair-1", "--vectors", "/no/such.safetensors", "--alpha", "1"], "/no/such.safetensors"),
    (["builtin/CWE-22/pair-1", "--vector", "x"], "--vector names a vector of --vectors FILE"),
])
def test_bad_flags_are_one_line_and_exit_2(argv, message, capsys):
    assert main(["verdict", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_alphas_in_residual_norms_use_the_consoles_unit_for_an_imported_vector(demo_model, tmp_path, capsys):
    """``--alpha-scale residual``: alpha 1 is the layer's mean residual norm over the loaded pairs the vector was
    not built from, the unit the console's import records for it (``import_vectors`` diagnostics), so the
    coefficient applied is alpha × that norm ÷ the vector's norm; a vector built from every loaded pair cannot be
    scaled there, and says so."""
    from steertui.engine.session import SessionRecorder

    builtin = load_dataset("builtin")
    pair = builtin.pairs[-1]
    imported = import_vector(VECTORS, demo_model)
    rec = SessionRecorder.new(demo_model, builtin, tmp_path / "console.toml")
    diags = {d.layer: d for d in rec.import_vectors(imported, list(builtin.pairs)).diagnostics}
    kept, left_out = imported.held_out(p.id for p in builtin.pairs)
    assert len(left_out) == 8 and len(kept) == len(builtin.pairs) - 8 and pair.id in kept
    data = _json(capsys, pair.id, "--vectors", str(VECTORS), "--alpha", "0.5,-0.25", "--alpha-scale", "residual")
    scale = data["vector_file"]["residual"]
    assert scale["pairs"] == len(kept) and data["vector_file"]["alpha"] == [0.5, -0.25]
    for s, a in zip(data["steers"], (0.5, -0.25)):
        d = diags[s["layer"]]
        assert scale["residual_norm"][str(s["layer"])] == d.residual_norm
        assert s["alpha"] == a * d.residual_norm / d.vector_norm
    raw = _json(capsys, pair.id, "--vectors", str(VECTORS), "--alpha",
                ",".join(repr(s["alpha"]) for s in data["steers"]))  # the same coefficients, given raw
    assert raw["score_steered"] == data["score_steered"] and raw["top_tokens"] == data["top_tokens"]
    assert main(["verdict", pair.id, "--vectors", str(VECTORS), "--alpha", "0.5", "--alpha-scale", "residual"]) == 0
    out = capsys.readouterr().out
    assert f"the {len(kept)} loaded pairs the vector was not built from" in " ".join(out.split())

    rec.build_vectors(list(builtin.pairs), name="every", layers=[1], seed=0)
    rec.close()
    assert main(["verdict", pair.id, "--vectors", str(tmp_path / "console.safetensors"), "--vector", "every",
                 "--alpha", "1", "--alpha-scale", "residual"]) == 2
    err = capsys.readouterr().err
    assert f"every loaded pair ({len(builtin.pairs)}) was used to build vector 'every'" in err
    assert "give raw alphas" in err


def test_a_file_longer_than_the_context_is_counted_without_a_false_alarm(demo_model_path):
    """Whole files are tokenized to count and cut them; the tokenizer's "will result in indexing errors" warning
    (once per tokenizer) is not given (what runs is fitted to the context first)."""
    import logging

    from steertui.engine.model import LoadedModel

    model = LoadedModel.load(str(demo_model_path), device="cpu", dtype="float32")  # a tokenizer that never warned
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())
    logger = logging.getLogger("transformers")
    logger.addHandler(handler)
    try:
        ids = model.tokenizer("int x;\n" * 2000)["input_ids"]
    finally:
        logger.removeHandler(handler)
    assert len(ids) > model.context_length
    assert not [m for m in seen if "indexing errors" in m], seen
