"""Recording and replaying on the demo model: the example sessions replay, a changed token is caught, the
recorder autosaves every step, and a changed model, dataset file or missing model stops the replay (exit 2)."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest
import tomli_w

from steertui.cli import main
from steertui.engine.data import load_dataset
from steertui.engine.session import STEP_KINDS, SessionRecorder, prepare, read_session, replay, sidecar_name
from steertui.engine.session.replay import ABS_TOL, REL_TOL, compare

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "sessions").glob("*.toml"))
REGENERATE = "regenerate the examples with `python scripts/make_example_sessions.py`"


def copy_session(src: Path, folder: Path) -> Path:
    dst = folder / src.name
    shutil.copy(src, dst)
    side = src.parent / sidecar_name(src)
    if side.exists():
        shutil.copy(side, folder / side.name)
    return dst


def edit(path: Path, change) -> None:
    data = tomllib.loads(path.read_text())
    change(data)
    path.write_text(tomli_w.dumps(data))


@pytest.fixture(scope="module")
def builtin():
    return load_dataset("builtin")


# ---- the examples ---------------------------------------------------------------------------------------
def test_examples_cover_every_step_kind():
    assert EXAMPLES, "no example sessions in sessions/"
    kinds = {s.kind for path in EXAMPLES for s in read_session(path).steps}
    assert kinds == set(STEP_KINDS)
    for path in EXAMPLES:
        doc = read_session(path)
        assert doc.model.spec == "demo" and doc.data.kind == "builtin", path


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_replays_with_check(path, demo_model_path, capsys):
    code = main(["replay", str(path), "--check"])
    out, err = capsys.readouterr()
    assert code == 0, f"{path.name}: {out}{err} ({REGENERATE} if the demo model or the engine changed on purpose)"
    assert f"all {len(read_session(path).steps)} steps match" in out
    assert "tolerance: |replayed - recorded| <= 1e-4 + 1e-3 * |recorded|" in out


def test_altered_token_id_fails_naming_the_step(tmp_path, demo_model_path, capsys):
    src = next(p for p in EXAMPLES if any(s.kind == "generate" for s in read_session(p).steps))
    path = copy_session(src, tmp_path)
    doc = read_session(path)
    gen = next(i for i, s in enumerate(doc.steps) if s.kind == "generate")
    keep = [i for i, s in enumerate(doc.steps) if s.kind in ("layers", "top_tokens")][:1] + [gen]
    index = keep.index(gen)  # a copy with one other step (quick to replay), then the generation
    recorded = doc.steps[gen].outputs.rows[0].steered_ids[1]

    def change(data):
        data["steps"] = [data["steps"][i] for i in keep]
        data["steps"][index]["outputs"]["rows"][0]["steered_ids"][1] = recorded + 1

    edit(path, change)
    assert main(["replay", str(path), "--check"]) == 1
    out = capsys.readouterr().out
    key = f"steps[{index}].outputs.rows[0].steered_ids[1]"
    assert f"[{index}] generate      MISMATCH" in out
    assert f"{key}: recorded {recorded + 1}, replayed {recorded}" in out
    assert f"steps differ: steps[{index}] generate" in out

    assert main(["replay", str(path), "--check", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["tolerance"] == {"abs": ABS_TOL, "rel": REL_TOL,
                                                             "rule": report["tolerance"]["rule"]}
    verdicts = {s["index"]: s for s in report["steps"]}
    assert verdicts[index]["verdict"] == "mismatch" and verdicts[index]["diffs"][0]["path"] == key
    assert all(v["verdict"] == "match" for i, v in verdicts.items() if i != index)


def test_compare_rule():
    out = []
    compare({"a": [1, 2], "x": 1.0, "s": "t", "n": float("nan")},
            {"a": [1, 3], "x": 1.0 + 0.9 * (ABS_TOL + REL_TOL), "s": "t", "n": float("nan")}, "o", out)
    assert [d.path for d in out] == ["o.a[1]"]
    out = []
    compare({"x": 1.0, "l": [1, 2]}, {"x": 1.0 + 2 * (ABS_TOL + REL_TOL), "l": [1]}, "o", out)
    assert [d.path for d in out] == ["o.x", "o.l"]


# ---- recording ----------------------------------------------------------------------------------------------
def test_recorder_autosaves_every_step_and_replays(tmp_path, demo_model, builtin):
    path = tmp_path / "rec.toml"
    rec = SessionRecorder.new(demo_model, builtin, path)
    assert read_session(path).steps == []
    pairs = list(builtin.pairs)[:2]
    rec.build_vectors(pairs, name="v", layers=[1], seed=0)
    assert [s.kind for s in read_session(path).steps] == ["build_vectors"]
    assert (tmp_path / "rec.safetensors").is_file()
    rec.set_steering([{"vector": "v", "layer": 1, "alpha": 6.0}])
    assert read_session(path).steering.interventions[0].alpha == 6.0
    rec.lens("int main(void) {\n    return", k=3)
    rec.top_tokens(["x = "], k=3, steering=[])
    rec.generate(["int x = "], max_new_tokens=4)
    doc = read_session(path)
    assert [s.kind for s in doc.steps] == ["build_vectors", "lens", "top_tokens", "generate"]
    assert doc.steps[1].inputs.steers[0].vector == "v" and doc.steps[2].inputs.steers == []
    assert set(doc.data.files) == {s.id for p in pairs for s in p.samples}
    assert doc.model.weights_sha256 == demo_model.info.weights_sha256

    report = replay(prepare(path, loaded=demo_model))
    assert report.ok, [str(d) for s in report.steps for d in s.diffs]

    # reopen and continue: the new step lands in the same file
    rec.close()  # one writer per file
    again = SessionRecorder.open(path, loaded=demo_model, dataset=builtin)
    assert set(again.vectors) == {"v"} and again.steering[0].alpha == 6.0
    again.probe_layers()
    assert [s.kind for s in read_session(path).steps][-1] == "layers"


# ---- what stops a replay (exit 2) -------------------------------------------------------------------------------
def _small_session(tmp_path, demo_model, builtin) -> Path:
    path = tmp_path / "small.toml"
    rec = SessionRecorder.new(demo_model, builtin, path)
    rec.build_vectors(list(builtin.pairs)[:1], name="v", layers=[1])
    return path


def test_changed_data_file(tmp_path, monkeypatch, demo_model, demo_model_path, builtin, capsys):
    path = _small_session(tmp_path, demo_model, builtin)
    sample = builtin.pairs[0].vulnerable
    from steertui.paths import builtin_examples_dir

    assets = tmp_path / "assets"
    shutil.copytree(builtin_examples_dir(), assets / "examples")
    changed = assets / "examples" / Path(sample.source_path).relative_to(builtin_examples_dir().resolve())
    changed.write_text(changed.read_text() + "\n/* edited */\n")
    monkeypatch.setenv("STEERTUI_DEMO_MODEL", str(demo_model_path))
    monkeypatch.setenv("STEERTUI_ASSETS", str(assets))
    assert main(["replay", str(path), "--check"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"steertui: error: {path}: data.files.") and sample.id in err
    assert str(changed) in err and "changed since the session was recorded" in err and len(err.splitlines()) == 1


def test_model_not_available_or_changed(tmp_path, demo_model, builtin, capsys):
    path = _small_session(tmp_path, demo_model, builtin)
    moved = tmp_path / "moved.toml"
    shutil.copy(path, moved)
    shutil.copy(tmp_path / "small.safetensors", tmp_path / "moved.safetensors")
    edit(moved, lambda d: d["model"].update(spec="./no-such-model"))
    assert main(["replay", str(moved)]) == 2
    err = capsys.readouterr().err
    assert f"{moved}: model.spec: the model is not available" in err and "no-such-model" in err

    edit(path, lambda d: d["model"].update(weights_sha256="0" * 64))
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: model.weights_sha256" in err and "not the ones recorded" in err


def test_vectors_say_where_they_were_read_and_a_mismatch_stops_the_replay(tmp_path, demo_model, demo_model_path,
                                                                           builtin, capsys):
    """Each vector records the module it was read at and is added to, the layer-access debugger's access path of
    that block; the sidecar alone says it too; a replay on a model whose blocks are reached elsewhere stops."""
    from safetensors import safe_open

    from steertui.engine.layers import probe_layers

    path = _small_session(tmp_path, demo_model, builtin)
    rec = read_session(path).vectors[0]
    assert rec.read_at == "model.transformer.h[{layer}].output"  # GPTBigCode blocks return a tensor
    blocks = probe_layers(demo_model).blocks()
    assert rec.read_at.format(layer=1) == blocks[1].access == demo_model.adapter.block_access(1)
    with safe_open(str(tmp_path / "small.safetensors"), framework="pt") as fh:
        about = json.loads(fh.metadata()["vectors"])
    assert about == {"v": {"model": demo_model.info.name, "read_at": rec.read_at, "method": "mean-diff",
                           "readout": "last", "layers": [1], "pair_ids": rec.pair_ids}}
    assert rec.pair_ids == ["builtin/CWE-22/pair-1"]  # the pairs it was built from: an import leaves them out

    edit(path, lambda d: d["vectors"][0].update(read_at="model.transformer.h[{layer}].output[0]"))
    assert main(["replay", str(path), "--model", str(demo_model_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"{path}: vectors[0].read_at: vector 'v' was read at model.transformer.h[{{layer}}].output[0]" in err
    assert "model.transformer.h[{layer}].output —" in err and len(err.splitlines()) == 1


def test_cwe_directions_are_recorded_and_checked_by_replay(tmp_path, demo_model, demo_model_path, builtin,
                                                           capsys):
    from steertui.engine.build import build_vectors

    path = tmp_path / "cwe.toml"
    pairs = [p for p in builtin.pairs if p.cwe in ("cwe-22", "cwe-77")]
    SessionRecorder.new(demo_model, builtin, path).build_vectors(pairs, name="v", layers=[1, 2])
    recorded = read_session(path).steps[0].outputs.cwe_directions
    fresh = build_vectors(demo_model, pairs, layers=[1, 2]).cwe
    assert [c.layer for c in recorded] == [1, 2]
    for c in recorded:
        want = fresh[c.layer]
        assert c.cwes == list(want.cwes) == ["cwe-22", "cwe-77"] and c.n_pairs == list(want.n_pairs) == [2, 2]
        assert c.to_vector == pytest.approx(want.to_vector, abs=1e-6) and c.chance == want.chance
        for row, want_row in zip(c.cosine, want.cosine):
            assert row == pytest.approx(want_row, abs=1e-6)
        assert c.cosine[0][0] == pytest.approx(1.0) and c.cosine[0][1] == pytest.approx(c.cosine[1][0], abs=1e-12)
    assert main(["replay", str(path), "--check", "--model", str(demo_model_path)]) == 0
    capsys.readouterr()
    edit(path, lambda d: d["steps"][0]["outputs"]["cwe_directions"][1]["cosine"][0].__setitem__(1, 0.5))
    assert main(["replay", str(path), "--check", "--model", str(demo_model_path)]) == 1
    assert "steps[0].outputs.cwe_directions[1].cosine[0][1]" in capsys.readouterr().out


def test_dataset_not_available(tmp_path, demo_model, builtin, capsys):
    path = _small_session(tmp_path, demo_model, builtin)
    edit(path, lambda d: d["data"].update(kind="secllmholmes", root=str(tmp_path / "nowhere"), label="SecLLMHolmes"))
    assert main(["replay", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: data.root: the dataset 'SecLLMHolmes' is not available" in err and "--dataset" in err


@pytest.mark.dataset
def test_record_and_replay_on_secllmholmes(tmp_path, shared_dataset, demo_model, capsys):
    dataset = load_dataset(shared_dataset).select(parts=["hand-crafted"])
    path = tmp_path / "holmes.toml"
    rec = SessionRecorder.new(demo_model, dataset, path)
    pairs = list(dataset.pairs)[:2]
    rec.build_vectors(pairs, name="holmes", layers=[1, 2])
    rec.lens(pairs[0].vulnerable.code[:200], k=3, steering=[{"vector": "holmes", "layer": 2, "alpha": 4.0}])
    doc = read_session(path)
    assert doc.data.kind == "secllmholmes" and Path(doc.data.root).resolve() == Path(shared_dataset).resolve()
    assert set(doc.data.files) == {s.id for p in pairs for s in p.samples}
    assert main(["replay", str(path), "--check"]) == 0, capsys.readouterr()
    assert "all 2 steps match" in capsys.readouterr().out


def test_local_model_path_is_stored_relative(tmp_path, capsys):
    """A session on a local model folder stores the folder relative to the session file: both can move."""
    import tiny_models

    from steertui.engine.model import LoadedModel

    hf, tok = tiny_models.build("llama")
    hf.save_pretrained(tmp_path / "work" / "models" / "tiny")
    tok.save_pretrained(tmp_path / "work" / "models" / "tiny")
    session = LoadedModel.load(str(tmp_path / "work" / "models" / "tiny"), device="cpu", dtype="float32")
    path = tmp_path / "work" / "sessions" / "tiny.toml"
    rec = SessionRecorder.new(session, load_dataset("builtin"), path)
    rec.lens("int main(void) {", k=3)
    rec.generate(["def handler(request):"], max_new_tokens=3)
    assert read_session(path).model.spec == "../models/tiny"
    shutil.move(tmp_path / "work", tmp_path / "moved")
    assert main(["replay", str(tmp_path / "moved" / "sessions" / "tiny.toml"), "--check"]) == 0, capsys.readouterr()


def test_failed_autosave_keeps_the_file_and_the_result(tmp_path, monkeypatch, demo_model, builtin):
    import threading

    from steertui.engine.session import SessionSaveError, store
    from steertui.errors import CancelledError

    path = tmp_path / "s.toml"
    rec = SessionRecorder.new(demo_model, builtin, path)
    rec.top_tokens(["int "], k=2)
    before = path.read_bytes()

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, "replace", full_disk)
    with pytest.raises(SessionSaveError) as info:
        rec.probe_layers("x = 1")
    assert info.value.result is not None and info.value.result.n_layers == demo_model.n_layers
    assert path.read_bytes() == before
    monkeypatch.undo()
    rec.save()
    assert [s.kind for s in read_session(path).steps] == ["top_tokens", "layers"]

    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError):
        rec.lens("int x", cancel=cancel)
    assert len(read_session(path).steps) == 2 and len(rec.steps) == 2


def test_an_evaluation_keeps_every_files_scores_and_replay_checks_them(tmp_path, demo_model, demo_model_path,
                                                                        builtin, capsys):
    """An evaluate step records each held-out file's scores at every cell (``outputs.files``): opened, the
    evaluation's per-file records are the engine's to the bit, its rows follow from them alone, and the grid's
    cell picked on the other folds is the one the live run showed. ``replay --check`` compares them file by file;
    a record of the wrong length or fold stops the file from opening, naming the key."""
    import math

    from steertui.engine import ops
    from steertui.engine.evaluate import EvalSettings, rows_from_files
    from steertui.engine.session.resume import recorded_evaluation
    from steertui.engine.session.store import loads

    path = tmp_path / "files.toml"
    rec = SessionRecorder.new(demo_model, builtin, path)
    settings = EvalSettings(layers=(1, 2), alphas=(-0.5, 0.0, 0.5), alpha_scale="residual", controls=2,
                            kl_tokens=16)
    result = rec.evaluate(list(builtin.pairs), settings)
    rec.close()
    doc = read_session(path)
    recorded = doc.steps[0].outputs.files
    assert len(recorded) == len(result.files) == 2 * len(builtin.pairs)
    assert [len(f.score) for f in recorded] == [6] * len(recorded)  # 2 layers × 3 alphas
    assert [len(f.random_scores) for f in recorded] == [12] * len(recorded)  # × 2 controls
    assert [len(f.kl) for f in recorded] == [6 * (1 - f.label) for f in recorded]  # patched files only
    assert [len(f.random_kl) for f in recorded] == [12 * (1 - f.label) for f in recorded]  # every control's

    opened = recorded_evaluation(doc, doc.steps[0])
    assert opened.files == result.files  # every float as computed: TOML keeps them exactly
    assert not any(math.isnan(x["raw_alpha"]) for f in opened.files for x in f["steered"])
    cwes = sorted({p.cwe for p in builtin.pairs}, key=lambda c: int(c.split("-")[1]))
    again = rows_from_files(opened.files, [1, 2], [-0.5, 0.0, 0.5], cwes)
    def same(a, b):  # equal, NaN where NaN (a CWE with one pair has no standard error)
        return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))

    assert len(again) == len(result.rows) == 2 * 3 * (len(cwes) + 1)
    for x, y in zip(again, result.rows):
        assert all(same(a, b) for a, b in zip(x.to_dict().values(), y.to_dict().values())), (x, y)
    live, grid = ops.layer_alpha_grid(result), ops.layer_alpha_grid(opened)
    assert grid.picks and {d: p.folds for d, p in grid.picks.items()} == {d: p.folds for d, p in live.picks.items()}
    assert ops.pick_text(grid) == ops.pick_text(live) != ""

    assert main(["replay", str(path), "--check", "--model", str(demo_model_path)]) == 0
    capsys.readouterr()
    score = doc.steps[0].outputs.files[5].score[4]
    edit(path, lambda d: d["steps"][0]["outputs"]["files"][5]["score"].__setitem__(4, score + 0.01))
    assert main(["replay", str(path), "--check", "--model", str(demo_model_path)]) == 1
    assert "steps[0].outputs.files[5].score[4]: recorded" in capsys.readouterr().out

    good = tomllib.loads(path.read_text())
    for key, change, problem in [
        ("score", lambda f: f["score"].pop(), "has 5 values, the step's 6 cells (layers × alphas) need 6"),
        ("random_scores", lambda f: f["random_scores"].pop(), "× controls) need 12"),
        ("kl", lambda f: f.__setitem__("kl", [0.0]), "has 1 values, the step's 6 cells (layers × alphas) need 0 or 6"),
        ("random_kl", lambda f: f["random_kl"].pop(), "× controls) need 0 or 12"),
        ("fold", lambda f: f.__setitem__("fold", 7), "fold 7 is not one of the step's folds [0, 1, 2]"),
    ]:
        data = tomllib.loads(tomli_w.dumps(good))
        change(data["steps"][0]["outputs"]["files"][3])
        with pytest.raises(Exception) as err:
            loads(tomli_w.dumps(data), path)
        assert err.value.key == f"steps[0].outputs.files[3].{key}" and problem in str(err.value), str(err.value)
        assert "re-record the session" in str(err.value)
