"""Loading: local folders, bad paths, offline hub ids, eval mode, no autograd, layer checks."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import tiny_models
from steertui.cli import main
from steertui.engine.model import LoadedModel
from steertui.errors import LayerIndexError, ModelLoadError


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny-bigcode")
    hf, tok = tiny_models.build("gpt_bigcode")
    hf.train()  # saved from train mode on purpose: loading must still give eval mode
    hf.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_load_local_folder(tiny_folder):
    s = LoadedModel.load(str(tiny_folder), device="cpu")
    assert not s.hf.training and all(not m.training for m in s.hf.modules())
    assert all(not p.requires_grad for p in s.hf.parameters())
    assert s.info.model_type == "gpt_bigcode" and s.info.n_layers == 3 and s.info.d_model == 32
    assert s.info.dtype == "float32" and s.info.device == "cpu" and len(s.info.weights_sha256) == 64
    assert s.tokenizer.padding_side == "left"
    # two identical forwards agree exactly (dropout off)
    enc = s.encode(["int x = 1;"])
    with torch.no_grad():
        assert torch.equal(s.hf(**enc).logits, s.hf(**enc).logits)


def test_bfloat16_on_cpu(tiny_folder):
    s = LoadedModel.load(str(tiny_folder), device="cpu", dtype="bf16")
    assert s.hf.dtype == torch.bfloat16 and s.info.dtype == "bfloat16"


@pytest.mark.parametrize("spec, message", [
    ("/nonexistent/model", "model path '/nonexistent/model' does not exist"),
    ("./no/such/dir", "does not exist"),
])
def test_missing_path(spec, message):
    with pytest.raises(ModelLoadError, match=message):
        LoadedModel.load(spec)


def test_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelLoadError, match="is not a model folder"):
        LoadedModel.load(str(tmp_path))


def test_broken_model_folder(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "no-such-architecture"}')
    with pytest.raises(ModelLoadError, match="could not load model"):
        LoadedModel.load(str(tmp_path))


def test_hub_id_not_in_cache_is_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelLoadError, match="not in the local Hugging Face cache.*hf download"):
        LoadedModel.load("bigcode/starcoderbase-1b")


def test_unknown_dtype_and_missing_cuda(tiny_folder):
    with pytest.raises(ModelLoadError, match="unknown dtype 'int3'"):
        LoadedModel.load(str(tiny_folder), dtype="int3")
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="CUDA is not available"):
            LoadedModel.load(str(tiny_folder), device="cuda")


def test_layer_index_checks(tiny_folder):
    s = LoadedModel.load(str(tiny_folder))
    assert s.check_layer(-1) == 2 and s.check_layer(0) == 0
    with pytest.raises(LayerIndexError, match="layer 3 is out of range .*3 layers.*0..2"):
        s.check_layer(3)
    from steertui.engine import steering
    with pytest.raises(LayerIndexError):
        steering.forward(s, ["x"], read_layers=[7])


def test_vector_of_wrong_size(tiny_folder):
    from steertui.engine import steering
    from steertui.errors import VectorError

    s = LoadedModel.load(str(tiny_folder))
    with pytest.raises(VectorError, match="has 7 dimensions.*d_model=32"):
        steering.forward(s, ["x"], steers=[steering.Steer(0, torch.ones(7), 1.0)])


@pytest.mark.parametrize("argv, needle", [
    (["layers", "--model", "/nonexistent/m"], "does not exist"),
    (["layers", "--model", "/"], "is not a model folder"),
])
def test_cli_bad_model_exits_2_with_one_line(argv, needle):
    out = subprocess.run([sys.executable, "-m", "steertui", *argv], capture_output=True, text=True)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("steertui: error:") and needle in lines[0]
    assert "Traceback" not in out.stderr


def test_cli_main_returns_2(capsys):
    assert main(["layers", "--model", "/nonexistent/m"]) == 2
    assert "does not exist" in capsys.readouterr().err
