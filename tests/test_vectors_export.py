"""`steertui vectors`: a session's vectors listed and checked, one exported to a standalone safetensors file that
another tool can read with safetensors alone and apply where its metadata says."""

from __future__ import annotations

import json
import re

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from steertui.cli import main
from steertui.engine.session.export import EXPORT_FORMAT, export_vector, read_vector_file, session_vector_file
from steertui.engine.session.store import SessionError, read_session, read_vectors



def test_export_holds_the_sessions_vector_and_says_where_it_applies(tour, tmp_path):
    doc = read_session(tour)
    held = read_vectors(doc, tour)["vuln"]
    out = export_vector(tour, "vuln", tmp_path / "vuln.safetensors")
    # read with safetensors alone, as another tool would
    with safe_open(str(out), framework="pt") as fh:
        meta = fh.metadata()
        tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    assert sorted(tensors) == [f"layer.{L}" for L in sorted(held)]
    assert all(torch.equal(tensors[f"layer.{L}"], held[L]) and tensors[f"layer.{L}"].dtype == torch.float32
               for L in held)
    rec = doc.vectors[0]
    build = next(st for st in doc.steps if st.kind == "build_vectors")
    assert meta["format"] == EXPORT_FORMAT and meta["name"] == "vuln" and meta["model"] == doc.model.spec
    assert meta["read_at"] == rec.read_at == "model.transformer.h[{layer}].output"
    assert (meta["method"], meta["readout"]) == (rec.method, rec.readout)
    assert meta["weights_sha256"] == doc.model.weights_sha256 and json.loads(meta["d_model"]) == doc.model.d_model
    assert json.loads(meta["sha256"]) == rec.sha256 and json.loads(meta["pair_ids"]) == rec.pair_ids
    assert json.loads(meta["residual_norm"]) == {str(d.layer): d.residual_norm for d in build.outputs.diagnostics}
    info = read_vector_file(out)
    assert info.format == EXPORT_FORMAT and list(info.vectors) == ["vuln"]
    assert info.about["vuln"]["seed"] == rec.seed and info.about["vuln"]["vector_norm"]["2"] == \
        pytest.approx(float(held[2].norm()), rel=1e-6)
    # the session's own reading carries the same metadata
    assert session_vector_file(tour).about["vuln"] == info.about["vuln"]
    # --layers keeps only those
    only = read_vector_file(export_vector(tour, "vuln", tmp_path / "two.safetensors", layers=[2]))
    assert list(only.vectors["vuln"]) == [2] and list(only.about["vuln"]["sha256"]) == ["2"]


def test_the_exported_vector_added_by_a_plain_hook_where_read_at_says_is_the_sessions_steering(tour, tmp_path,
                                                                                                demo_model):
    """A reader of the file alone: add alpha * layer.L to the output of the block its read_at names, with a torch
    forward hook; the logits are the engine's steered logits for the same steer."""
    from steertui.engine import steering
    from steertui.engine.steering import Steer

    info = read_vector_file(export_vector(tour, "vuln", tmp_path / "vuln.safetensors"))
    about, layer, alpha = info.about["vuln"], 2, 3.0
    v = info.vectors["vuln"][layer]
    access = about["read_at"].format(layer=layer)  # model.transformer.h[2].output
    module_path = re.sub(r"\[(\d+)\]", r".\1", access.removeprefix("model.").removesuffix(".output"))
    block = demo_model.hf.get_submodule(module_path)
    enc = demo_model.encode(["int main(void) {\n    char buf[8];"])
    handle = block.register_forward_hook(lambda _m, _i, out: out + alpha * v)
    try:
        with torch.no_grad():
            hooked = demo_model.hf(**enc).logits[0, -1].float()
    finally:
        handle.remove()
    engine = steering.forward(demo_model, enc, steers=[Steer(layer, v, alpha)], logits_at="last").logits[0].float()
    assert torch.allclose(hooked, engine, atol=1e-5, rtol=0)
    with torch.no_grad():
        plain = demo_model.hf(**enc).logits[0, -1].float()
    assert (hooked - plain).abs().max() > 1e-2  # the vector does something there


def test_vectors_command_lists_exports_and_reads_back(tour, tmp_path, capsys):
    assert main(["vectors", str(tour)]) == 0
    text = capsys.readouterr().out
    assert "every tensor matches its sha256" in text and "model.transformer.h[{layer}].output" in text
    assert "5a41dd59d938f3fb" in text  # layer 1's sha256, as recorded
    # the session's sidecar alone: its tensors are checked against its own sha256 metadata too
    assert main(["vectors", str(tour.with_suffix(".safetensors"))]) == 0
    assert "every tensor matches its sha256" in " ".join(capsys.readouterr().out.split())
    out = tmp_path / "v.safetensors"
    assert main(["vectors", str(tour), "--export", "vuln", "--out", str(out), "--layers", "1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == EXPORT_FORMAT and list(data["vectors"]["vuln"]["layers"]) == ["1"]
    assert main(["vectors", str(tour.with_suffix(".safetensors")), "--json"]) == 0  # the sidecar itself
    assert sorted(json.loads(capsys.readouterr().out)["vectors"]["vuln"]["layers"]) == ["1", "2"]


@pytest.mark.parametrize("args, says", [
    (["missing.toml"], "no such session file"),
    (["{tour}", "--export", "nope", "--out", "{tmp}/x.safetensors"], "holds no vector 'nope' (it holds: vuln)"),
    (["{tour}", "--export", "vuln", "--out", "{tmp}/x.bin"], "an exported vector is a .safetensors file"),
    (["{tour}", "--export", "vuln", "--out", "{tmp}/x.safetensors", "--layers", "7"], "has no layer [7]"),
    (["{tour}", "--export", "vuln"], "--export and --out go together"),
    (["{tmp}/missing.safetensors"], "no such file"),
])
def test_bad_input_is_one_line_and_exit_2(tour, tmp_path, capsys, args, says):
    argv = ["vectors"] + [a.format(tour=tour, tmp=tmp_path) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert says in err and len(err.splitlines()) == 1


def test_altered_or_foreign_files_are_refused(tour, tmp_path):
    out = export_vector(tour, "vuln", tmp_path / "v.safetensors")
    raw = bytearray(out.read_bytes())
    raw[-1] ^= 0x01  # one bit of the last float
    (tmp_path / "altered.safetensors").write_bytes(bytes(raw))
    with pytest.raises(SessionError, match="does not match its sha256"):
        read_vector_file(tmp_path / "altered.safetensors")
    save_file({"w": torch.zeros(3)}, str(tmp_path / "foreign.safetensors"))  # no metadata, not named by layer
    with pytest.raises(SessionError, match="it holds tensors named w, not by layer"):
        read_vector_file(tmp_path / "foreign.safetensors")
    save_file({"layer.1": torch.zeros(3)}, str(tmp_path / "other.safetensors"), metadata={"format": "gguf/1"})
    with pytest.raises(SessionError, match="its format is 'gguf/1', not 'steertui.vectors/1'"):
        read_vector_file(tmp_path / "other.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(SessionError, match="not a readable safetensors file"):
        read_vector_file(tmp_path / "junk.safetensors")
    # the session's sidecar altered: listing the session stops at its recorded sha256
    side = tour.with_suffix(".safetensors")
    raw = bytearray(side.read_bytes())
    raw[-1] ^= 0x01
    side.write_bytes(bytes(raw))
    with pytest.raises(SessionError, match="does not match its recorded sha256"):
        session_vector_file(tour)
