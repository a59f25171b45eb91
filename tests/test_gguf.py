"""GGUF control vectors: a session's vector exported for llama.cpp (``--control-vector``) and repeng, checked with
the reference GGUF reader (the ``gguf`` package from llama.cpp), and control vectors written by the reference
writer the way repeng and llama.cpp's cvector-generator write them, read back into steertui. A file that is not
a control vector is one message naming it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType, GGUFReader, GGUFWriter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from steertui.cli import main
from steertui.engine.gguf import GGUF_FORMAT, STEERTUI_KEY
from steertui.engine.session.export import EXPORT_FORMAT, export_vector, import_vector, read_vector_file
from steertui.engine.session.store import SessionError, read_session, read_vectors
from steertui.engine.steering import vector_sha256


def _field(reader: GGUFReader, key: str):
    return reader.fields[key].contents()


def _write(path, tensors: dict[str, np.ndarray], hint: str = "gpt_bigcode", arch: str = "controlvector") -> None:
    """A control vector as repeng's export_gguf writes it, with the reference writer."""
    w = GGUFWriter(str(path), arch)
    w.add_string(f"{arch}.model_hint", hint)
    w.add_uint32(f"{arch}.layer_count", len(tensors))
    for name, t in tensors.items():
        w.add_tensor(name, t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def test_an_exported_vector_is_a_control_vector_the_reference_reader_reads(tour, tmp_path):
    doc = read_session(tour)
    held = read_vectors(doc, tour)["vuln"]
    out = export_vector(tour, "vuln", tmp_path / "vuln.gguf")
    reader = GGUFReader(str(out))
    assert _field(reader, "general.architecture") == "controlvector"
    assert _field(reader, "controlvector.model_hint") == doc.model.model_type == "gpt_bigcode"
    assert _field(reader, "controlvector.layer_count") == 2
    assert [t.name for t in reader.tensors] == ["direction.1", "direction.2"]  # direction.K: block K's output
    for t in reader.tensors:
        assert t.tensor_type == GGMLQuantizationType.F32 and list(t.shape) == [doc.model.d_model]
        assert torch.equal(torch.from_numpy(np.array(t.data)), held[int(t.name.split(".")[1])])
    about = json.loads(_field(reader, STEERTUI_KEY))
    assert about["format"] == EXPORT_FORMAT and about["name"] == "vuln"
    assert about["read_at"] == "model.transformer.h[{layer}].output"
    assert about["sha256"] == {str(L): vector_sha256(v) for L, v in held.items()}
    assert about["pair_ids"] == doc.vectors[0].pair_ids and len(about["pair_ids"]) == 8


def test_an_exported_control_vector_comes_back_as_it_was(tour, tmp_path, demo_model, capsys):
    """Read back by steertui: the same tensors, the pairs it was built from (so they are left out), no note; the
    verdict steered with it equals the one steered with the safetensors export."""
    held = read_vectors(read_session(tour), tour)["vuln"]
    gguf_file = export_vector(tour, "vuln", tmp_path / "vuln.gguf")
    st_file = export_vector(tour, "vuln", tmp_path / "vuln.safetensors")
    got = import_vector(gguf_file, demo_model)
    assert got.format == GGUF_FORMAT and got.name == "vuln" and got.layers == [1, 2]
    assert all(torch.equal(got.vectors[L], held[L]) for L in held)
    assert got.pair_ids == import_vector(st_file, demo_model).pair_ids and got.notes == ()
    assert main(["vectors", str(gguf_file)]) == 0
    out = capsys.readouterr().out
    assert "gguf control vector · every tensor matches its sha256" in " ".join(out.split())
    scores = []
    for f in (gguf_file, st_file):
        assert main(["verdict", "builtin/CWE-79/pair-2", "--vectors", str(f), "--layer", "2", "--alpha", "3",
                     "--json"]) == 0
        data = json.loads(capsys.readouterr().out)
        scores.append((data["score_steered"], data["top_tokens"]))
    assert scores[0] == scores[1]


def test_a_control_vector_written_as_repeng_writes_it_imports(tmp_path, demo_model):
    rng = np.random.default_rng(0)
    d = demo_model.d_model
    a, b = rng.standard_normal(d).astype(np.float32), rng.standard_normal(d).astype(np.float32)
    path = tmp_path / "honesty.gguf"
    _write(path, {"direction.1": a, "direction.3": b})
    got = import_vector(path, demo_model)
    assert got.format == GGUF_FORMAT and got.name == "honesty" and got.layers == [1, 3]
    assert torch.equal(got.vectors[1], torch.from_numpy(a)) and torch.equal(got.vectors[3], torch.from_numpy(b))
    assert got.pair_ids == ()
    assert any("a GGUF control vector for model type gpt_bigcode" in n for n in got.notes)
    assert not any("model hint" in n for n in got.notes)
    info = read_vector_file(path)
    assert info.about["honesty"]["sha256"] == {"1": vector_sha256(got.vectors[1]), "3": vector_sha256(got.vectors[3])}
    # made for another architecture: said, not refused (a vector can be tried on a sibling model)
    _write(tmp_path / "other.gguf", {"direction.2": a}, hint="llama")
    assert "its model hint is llama, the model is gpt_bigcode" in import_vector(tmp_path / "other.gguf",
                                                                                demo_model).notes


def _bad(tmp_path, kind: str):
    d = 128
    v = np.ones(d, dtype=np.float32)
    path = tmp_path / f"{kind}.gguf"
    if kind == "f16":
        _write(path, {"direction.1": v.astype(np.float16)})
    elif kind == "zero":
        _write(path, {"direction.0": v, "direction.1": v})
    elif kind == "weights":
        _write(path, {"token_embd.weight": np.ones((4, d), dtype=np.float32)}, arch="llama")
    elif kind == "sizes":
        _write(path, {"direction.1": v, "direction.2": v[:64]})
    elif kind == "not gguf":
        path.write_bytes(b"PK\x03\x04 not a gguf file at all")
    else:
        _write(path, {"direction.1": v, "direction.2": v})
        raw = path.read_bytes()
        if kind == "cut data":
            path.write_bytes(raw[:-100])
        elif kind == "cut header":
            path.write_bytes(raw[:40])
        elif kind == "huge count":
            path.write_bytes(raw[:8] + (2**60).to_bytes(8, "little") + raw[16:])
    return path


@pytest.mark.parametrize("kind, key, says", [
    ("not gguf", "header", "not a GGUF file (it does not start with 'GGUF')"),
    ("f16", "direction.1", "tensor direction.1 has ggml type 1, not F32 (0)"),
    ("zero", "direction.0", "llama.cpp never steers block 0's output"),
    ("weights", "token_embd.weight", "not direction.K (is this a model's weights?)"),
    ("sizes", "tensors", "the direction tensors differ in size (64, 128)"),
    ("cut data", "direction.2", "data lies beyond the end of the file"),
    ("cut header", "key 0", "the file ends inside key 0 (it is 40 bytes; truncated?)"),
    ("huge count", "header", "more than the file holds"),
])
def test_a_file_that_is_not_a_control_vector_is_one_message(tmp_path, kind, key, says):
    path = _bad(tmp_path, kind)
    with pytest.raises(SessionError) as err:
        read_vector_file(path)
    assert err.value.key == key and says in str(err.value) and str(path) in str(err.value), str(err.value)
    assert "give a GGUF control vector" in str(err.value)


def test_an_altered_export_and_a_layer_llama_cpp_cannot_hold_are_refused(tour, tmp_path, demo_model, capsys):
    out = export_vector(tour, "vuln", tmp_path / "vuln.gguf")
    raw = bytearray(out.read_bytes())
    raw[-4] ^= 0x01  # one bit of the last layer's last value
    out.write_bytes(bytes(raw))
    with pytest.raises(SessionError, match=r"direction.2: the tensor does not match its sha256"):
        read_vector_file(out)
    assert main(["--vectors", str(out)]) == 2
    assert "does not match its sha256" in capsys.readouterr().err

    from steertui.engine.data import load_dataset
    from steertui.engine.session import SessionRecorder

    builtin = load_dataset("builtin")
    path = tmp_path / "zero.toml"
    rec = SessionRecorder.new(demo_model, builtin, path)
    rec.build_vectors(list(builtin.pairs)[:2], name="v", layers=[0, 1], seed=0)
    rec.close()
    with pytest.raises(SessionError, match=r"cannot hold layer 0: llama.cpp never steers block 0's output — "
                                           r"export its other layers \(--layers 1\)"):
        export_vector(path, "v", tmp_path / "v.gguf")
    assert export_vector(path, "v", tmp_path / "v.gguf", layers=[1]).is_file()
    with pytest.raises(SessionError, match=r"a .safetensors file .* or a .gguf file"):
        export_vector(path, "v", tmp_path / "v.bin", layers=[1])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=6),
       st.one_of(st.none(), st.integers(0, 10_000)))
def test_any_damaged_control_vector_reads_or_is_one_message(tmp_path, exported_gguf, changes, cut):
    """Bytes changed anywhere (header, keys, tensor table, data) or the file cut anywhere: it reads, or it is a
    SessionError; never another exception."""
    raw = bytearray(exported_gguf)
    for at, value in changes:
        raw[at % len(raw)] = value
    if cut is not None:
        raw = raw[:cut % len(raw)]
    path = tmp_path / "damaged.gguf"
    path.write_bytes(bytes(raw))
    try:
        info = read_vector_file(path)
    except SessionError:
        return
    assert all(t.dtype == torch.float32 and t.dim() == 1 for v in info.vectors.values() for t in v.values())


@pytest.fixture(scope="module")
def exported_gguf(tmp_path_factory) -> bytes:
    import shutil
    from pathlib import Path

    folder = tmp_path_factory.mktemp("gguf")
    repo = Path(__file__).resolve().parents[1] / "sessions"
    for name in ("demo-tour.toml", "demo-tour.safetensors"):
        shutil.copy(repo / name, folder / name)
    return export_vector(folder / "demo-tour.toml", "vuln", folder / "vuln.gguf").read_bytes()


def test_a_models_gguf_weights_given_as_a_vector_is_one_line_and_exit_2(tmp_path):
    """As a user runs it: `eval --vectors` a model's GGUF weights (a common mix-up) is one error line naming the
    file and the tensor, exit code 2, no traceback."""
    import subprocess
    import sys

    path = _bad(tmp_path, "weights")
    proc = subprocess.run([sys.executable, "-m", "steertui", "eval", "--vectors", str(path), "--alpha", "1"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    lines = [ln for ln in proc.stderr.splitlines() if "error:" in ln]
    assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert str(path) in lines[0] and "token_embd.weight" in lines[0] and "is this a model's weights?" in lines[0]
