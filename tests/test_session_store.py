"""Saving without losing anything: atomic writes, a failed save, a killed save, the sidecar, the sessions folder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from steertui.cli import main
from steertui.engine.session import (
    SessionError,
    SessionSaveError,
    list_sessions,
    new_session_path,
    read_session,
    read_vectors,
    resolve_session_file,
    sidecar_name,
    write_session,
)
from steertui import atomic
from steertui.engine.session import store
from steertui.engine.session.store import from_data, tensor_key
from steertui.engine.steering import vector_sha256

D = 8


def make_doc(vectors: dict[str, dict[int, torch.Tensor]], n_steps: int = 2, n_tokens: int = 3):
    recs = [{"name": name, "file": "x.safetensors", "layers": sorted(layers), "method": "mean-diff",
             "readout": "last", "d_model": D, "sha256": {str(L): vector_sha256(v) for L, v in layers.items()}}
            for name, layers in vectors.items()]
    row = {"baseline_ids": list(range(n_tokens)), "baseline_text": "x" * n_tokens,
           "baseline_logprobs": [-0.5] * n_tokens, "steered_ids": list(range(n_tokens)),
           "steered_text": "y" * n_tokens, "steered_logprobs": [-0.25] * n_tokens}
    data = {
        "steertui": {"schema": 1, "version": "0.1.0", "python": "3.11", "torch": "2", "transformers": "5",
                     "nnsight": "0.8.1", "created": "2026-01-01T00:00:00+00:00"},
        "model": {"spec": "demo", "name": "demo", "weights_sha256": "", "dtype": "float32", "device": "cpu",
                  "model_type": "gpt_bigcode", "n_layers": 4, "d_model": D, "vocab_size": 100},
        "data": {"label": "builtin examples", "kind": "builtin", "root": "builtin"},
        "vectors": recs,
        "steps": [{"kind": "generate", "inputs": {"prompts": ["p"], "max_new_tokens": n_tokens},
                   "outputs": {"rows": [row]}} for _ in range(n_steps)],
    }
    return from_data(data, "test.toml")


def vecs(seed: int = 0, d: int = D, names=("v1",)) -> dict[str, dict[int, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return {n: {1: torch.randn(d, generator=g), 2: torch.randn(d, generator=g)} for n in names}


def test_write_then_read(tmp_path):
    v = vecs()
    path = write_session(make_doc(v), tmp_path / "s.toml", v)
    assert sidecar_name(path) == "s.safetensors" and (tmp_path / "s.safetensors").is_file()
    doc = read_session(path)
    assert doc.vectors[0].file == "s.safetensors"
    back = read_vectors(doc, path)
    assert torch.equal(back["v1"][2], v["v1"][2])
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~atomic._umask())
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_failed_save_leaves_the_previous_file(tmp_path, monkeypatch):
    v = vecs()
    path = write_session(make_doc(v, n_steps=1), tmp_path / "s.toml", v)
    before = path.read_bytes()

    def boom(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, "replace", boom)
    with pytest.raises(SessionSaveError, match="previous file is intact"):
        write_session(make_doc(v, n_steps=5), path, vecs(1, names=("v1", "v2")))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.safetensors", "s.toml"]
    assert len(read_session(path).steps) == 1


KILL_SCRIPT = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, {tests!r})
    from test_session_store import make_doc, vecs
    from steertui.engine.session import write_session
    path = sys.argv[1]
    v = vecs()
    doc = make_doc(v, n_steps=150, n_tokens=120)  # a few MB of TOML: a save takes a while
    write_session(doc, path, v)
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        doc.steps[-1].outputs.rows[0].baseline_ids[0] = i
        if i % 3 == 0:  # a new vector now and then: the sidecar is rewritten too
            name = f"n{{i}}"
            v[name] = vecs(i)["v1"]
            doc = make_doc(v, n_steps=150, n_tokens=120)
        write_session(doc, path, v)
""")


def test_killing_a_save_leaves_a_loadable_file(tmp_path):
    tests = str(Path(__file__).parent)
    script = tmp_path / "saver.py"
    script.write_text(KILL_SCRIPT.format(tests=tests))
    path = tmp_path / "big.toml"
    for delay in (0.1, 0.7):
        proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
            time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        doc = read_session(path)  # whatever moment the kill hit, the file is a whole session
        assert len(doc.steps) == 150
        vectors = read_vectors(doc, path)
        assert set(vectors) == {v.name for v in doc.vectors}
        assert list_sessions(tmp_path) == [path]  # a temporary file left by the kill never counts


def test_sidecar_missing_altered_or_wrong_size(tmp_path, capsys):
    v = vecs()
    path = write_session(make_doc(v), tmp_path / "s.toml", v)
    side = tmp_path / "s.safetensors"
    good = side.read_bytes()

    # altered: flip the last bytes (the data of the last tensor)
    side.write_bytes(good[:-4] + bytes(b ^ 0xFF for b in good[-4:]))
    with pytest.raises(SessionError) as info:
        read_vectors(read_session(path), path)
    assert info.value.key.startswith("vectors[0].sha256.") and "does not match its recorded sha256" in str(info.value)
    assert main(["replay", str(path), "--check"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "vectors[0].sha256." in err and "sidecar" in err

    # not safetensors at all
    side.write_bytes(b"not a tensor file")
    with pytest.raises(SessionError, match="not a readable safetensors"):
        read_vectors(read_session(path), path)

    # missing
    side.unlink()
    with pytest.raises(SessionError) as info:
        read_vectors(read_session(path), path)
    assert info.value.key == "vectors[0].file" and "s.safetensors" in str(info.value) and "missing" in str(info.value)
    assert main(["replay", str(path)]) == 2
    assert "vectors[0].file" in capsys.readouterr().err

    # a vector of the wrong size, its sha256 updated so that only the size is wrong
    wide = vecs(d=D + 3)
    store.write_sidecar(side, wide)
    doc = make_doc(v)
    doc.vectors[0].sha256 = {str(L): vector_sha256(t) for L, t in wide["v1"].items()}
    doc.vectors[0].file = "s.safetensors"
    atomic.atomic_write_bytes(path, store.dumps(doc).encode())
    with pytest.raises(SessionError) as info:
        read_vectors(read_session(path), path)
    assert info.value.key == "vectors[0]" and f"{D + 3} dimensions" in str(info.value) and f"d_model={D}" in str(info.value)
    assert main(["replay", str(path), "--check"]) == 2
    assert "d_model" in capsys.readouterr().err


def test_sidecar_superset_still_loads(tmp_path):
    """The TOML on disk may be older than the sidecar (a save killed between the two): every vector it names
    is still in the newer sidecar, unchanged."""
    v = vecs()
    path = write_session(make_doc(v), tmp_path / "s.toml", v)
    more = {**v, **vecs(5, names=("v2",))}
    store.write_sidecar(tmp_path / "s.safetensors", more)
    assert set(read_vectors(read_session(path), path)) == {"v1"}
    assert tensor_key("v1", 2) == "v1/2"


def test_sessions_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("STEERTUI_SESSIONS", str(tmp_path / "sess"))
    first = new_session_path()
    assert first.parent == tmp_path / "sess" and first.suffix == ".toml"
    v = vecs()
    write_session(make_doc(v), first, v)
    second = new_session_path(name=first.stem)
    assert second != first and second.parent == first.parent
    (first.parent / f".{first.name}.abc123.tmp").write_text("partial")
    assert list_sessions() == [first]
    # a bare name is looked up in the sessions folder
    assert resolve_session_file(first.name) == first
    assert resolve_session_file(first.stem) == first
    assert resolve_session_file("nowhere.toml") == Path("nowhere.toml")
    monkeypatch.delenv("STEERTUI_SESSIONS")
    monkeypatch.setenv("STEERTUI_DATA_DIR", str(tmp_path / "data"))
    assert store.default_folder() == tmp_path / "data" / "sessions"
    assert os.environ.get("STEERTUI_SESSIONS") is None


def test_next_save_removes_temporary_files_left_by_a_killed_save(tmp_path):
    import os
    import time

    target = tmp_path / "s.toml"
    stale = tmp_path / ".s.toml.abc123.tmp"
    fresh = tmp_path / ".s.toml.def456.tmp"
    other = tmp_path / ".other.toml.ghi789.tmp"
    for p in (stale, fresh, other):
        p.write_text("partial")
    old = time.time() - atomic.STALE_SECONDS - 60
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    atomic.atomic_write_bytes(target, b"x = 1\n")
    assert target.read_bytes() == b"x = 1\n"
    assert not stale.exists()  # left by a killed save of this file
    assert fresh.exists()  # may belong to a save in progress
    assert other.exists()  # another file's
