"""A vector brought from a file (exported by steertui, a session's sidecar, or another tool's safetensors): checked
against the model before anything steers with it, diagnosed on the pairs it was not built from, evaluated as it
is in every fold against the same random control, recorded in a session and replayed."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save, save_file

from steertui.cli import main
from steertui.engine.data import load_dataset
from steertui.engine.session.export import (EXPORT_FORMAT, PLAIN_FORMAT, export_vector, import_vector,
                                            read_vector_file)
from steertui.engine.session.store import SessionError, read_session, read_vectors



@pytest.fixture
def exported(tour, tmp_path) -> Path:
    return export_vector(tour, "vuln", tmp_path / "vuln.safetensors")


@pytest.fixture(scope="module")
def builtin():
    return load_dataset("builtin")


def test_an_exported_vector_imports_as_it_was_saved(tour, exported, demo_model, tmp_path):
    doc = read_session(tour)
    held = read_vectors(doc, tour)["vuln"]
    got = import_vector(exported, demo_model)
    assert got.name == "vuln" and got.format == EXPORT_FORMAT and got.layers == sorted(held) == [1, 2]
    assert all(torch.equal(got.vectors[L], held[L]) and got.vectors[L].dtype == torch.float32 for L in held)
    assert got.pair_ids == tuple(doc.vectors[0].pair_ids) and len(got.pair_ids) == 8
    assert got.file_sha256 == hashlib.sha256(exported.read_bytes()).hexdigest()
    assert got.notes == ()  # made for this model, read where this model's blocks give their hidden state
    only = import_vector(exported, demo_model, layers=[2])
    assert only.layers == [2] and torch.equal(only.vectors[2], held[2])
    with pytest.raises(SessionError, match=r"the vector has no layer 3 — use its layers 1, 2"):
        import_vector(exported, demo_model, layers=[3])
    with pytest.raises(SessionError, match=r"holds no vector 'other' \(it holds: vuln\)"):
        import_vector(exported, demo_model, "other")
    # the session's sidecar imports too, by name, with the pairs it was built from
    sidecar = tour.with_suffix(".safetensors")
    side = import_vector(sidecar, demo_model, "vuln")
    assert all(torch.equal(side.vectors[L], held[L]) for L in held)
    assert side.pair_ids == got.pair_ids and not any("does not name the pairs" in n for n in side.notes)
    # a sidecar written before sidecars named the pairs: nothing can be left out, and the import says so
    with safe_open(str(sidecar), "pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    about = json.loads(meta["vectors"])
    assert about["vuln"].pop("pair_ids") == list(got.pair_ids)
    older = tmp_path / "older.safetensors"
    save_file(tensors, str(older), metadata={**meta, "vectors": json.dumps(about)})
    side = import_vector(older, demo_model, "vuln")
    assert all(torch.equal(side.vectors[L], held[L]) for L in held)
    assert side.pair_ids == () and any("does not name the pairs" in n for n in side.notes)


def test_another_tools_file_imports_by_layer_name_and_says_what_is_not_recorded(tmp_path, demo_model):
    d = demo_model.d_model
    a, b = torch.randn(d, dtype=torch.float64), torch.randn(d, dtype=torch.float16)
    save_file({"layer.1": a, "3": b}, str(tmp_path / "my vec (v2).safetensors"))
    got = import_vector(tmp_path / "my vec (v2).safetensors", demo_model)
    assert got.format == PLAIN_FORMAT and got.name == "my-vec--v2-" and got.layers == [1, 3]
    assert torch.equal(got.vectors[1], a.float()) and torch.equal(got.vectors[3], b.float())
    assert got.vectors[3].dtype == torch.float32 and got.pair_ids == ()
    assert any("plain safetensors file" in n for n in got.notes)
    assert any("does not name the pairs it was built from" in n for n in got.notes)
    assert read_vector_file(tmp_path / "my vec (v2).safetensors").format == PLAIN_FORMAT


def test_a_vector_made_for_another_model_is_a_note(exported, tmp_path, demo_model):
    with safe_open(str(exported), framework="pt") as fh:
        meta, tensors = fh.metadata(), {k: fh.get_tensor(k) for k in fh.keys()}
    meta["model_name"], meta["weights_sha256"] = "bigcode/starcoderbase-1b", "ab" * 32
    (tmp_path / "other.safetensors").write_bytes(save(tensors, metadata=meta))
    got = import_vector(tmp_path / "other.safetensors", demo_model)
    ours = demo_model.info.weights_sha256[:12]
    assert got.notes == (f"made for bigcode/starcoderbase-1b (weights sha256 {'ab' * 6}), steering "
                         f"{demo_model.info.name} (weights sha256 {ours})",)


@pytest.mark.parametrize("tensors, says", [
    ({"layer.1": "ones:64"}, r"layer 1: the vector has shape \(64,\); .* hidden size is 128 — use a vector made "
                             r"for this model: one \[128\] tensor per layer"),
    ({"layer.9": "ones"}, r"layer 9: .* has 4 layers \(0\.\.3\)"),
    ({"layer.2": "zeros"}, r"layer 2: the vector is all zeros: steering with it changes nothing"),
    ({"layer.2": "nan"}, r"layer 2: the vector holds NaN or infinite values"),
    ({"layer.2": "int"}, r"layer 2: the vector's dtype is torch.int64 — store it as float32"),
    ({"layer.2": "matrix"}, r"tensor has shape \(2, 128\) — a steering vector is one-dimensional"),
    ({"weight": "ones", "bias": "ones"}, r"it holds tensors named bias, weight, not by layer — name each layer's"),
    ({"transformer.h.0.attn.c_attn.weight": "matrix"},
     r"transformer.h.0.attn.c_attn.weight: tensor has shape \(2, 128\) — .* \(is this a model's weights\?\)"),
])
def test_a_vector_that_cannot_steer_this_model_is_refused_naming_file_and_tensor(tmp_path, demo_model, tensors,
                                                                                   says):
    assert (demo_model.d_model, demo_model.n_layers) == (128, 4)
    make = {"ones": lambda: torch.ones(128), "ones:64": lambda: torch.ones(64), "zeros": lambda: torch.zeros(128),
            "nan": lambda: torch.full((128,), float("nan")), "int": lambda: torch.ones(128, dtype=torch.int64),
            "matrix": lambda: torch.ones(2, 128)}
    path = tmp_path / "bad.safetensors"
    save_file({k: make[v]() for k, v in tensors.items()}, str(path))
    with pytest.raises(SessionError, match=says) as err:
        import_vector(path, demo_model)
    assert str(err.value).startswith(str(path)) and len(str(err.value).splitlines()) == 1


def _prompts(model, pairs):
    from steertui.engine.verdict import sample_prompts

    samples = [p.vulnerable for p in pairs] + [p.patched for p in pairs]
    return {s.id: pr.text for s, pr in zip(samples, sample_prompts(model, samples, pairs))}


def test_a_given_vector_is_steered_as_it_is_in_every_fold(tour, demo_model, builtin):
    from steertui.engine.evaluate import EvalSettings, evaluate, random_control
    from steertui.engine.steering import Steer
    from steertui.engine.verdict import answer_tokens, score
    from steertui.errors import SteertuiError

    v = read_vectors(read_session(tour), tour)["vuln"][2]
    pairs = list(builtin.pairs)
    settings = EvalSettings(layers=(2,), alphas=(0.0, 3.0), folds=2, vector="vuln")
    result = evaluate(demo_model, pairs, settings, vectors={2: v, 1: v})
    assert result.settings.vector == "vuln" and result.to_dict()["settings"]["vector"] == "vuln"
    assert all(f["vector_norm"]["2"] == pytest.approx(float(v.norm()), rel=1e-7) for f in result.folds)
    prompts, answers = _prompts(demo_model, pairs), answer_tokens(demo_model, " Yes", " No")
    assert len(result.files) == 2 * len(pairs)
    for rec in result.files:
        at = {s["alpha"]: s for s in rec["steered"]}
        assert at[0.0]["score"] == rec["baseline_score"]
        steered = score(demo_model, [prompts[rec["id"]]], answers, steers=[Steer(2, v, 3.0)])
        control = random_control(v, 0, rec["fold"], 2)
        rand = score(demo_model, [prompts[rec["id"]]], answers, steers=[Steer(2, control, 3.0)])
        assert at[3.0]["score"] == pytest.approx(float(steered[0]), abs=1e-4)
        assert at[3.0]["random_score"] == pytest.approx(float(rand[0]), abs=1e-4)
    # a vector built per fold is another evaluation
    built = evaluate(demo_model, pairs, EvalSettings(layers=(2,), alphas=(0.0, 3.0), folds=2))
    assert [r.shift for r in built.rows] != [r.shift for r in result.rows]
    with pytest.raises(SteertuiError, match="given vectors need their name"):
        evaluate(demo_model, pairs, EvalSettings(layers=(2,), alphas=(1.0,), folds=2), vectors={2: v})
    with pytest.raises(SteertuiError, match="given vectors need their name"):
        evaluate(demo_model, pairs, settings)
    with pytest.raises(SteertuiError, match="vector 'vuln' has no layer 3 — evaluate its layers 2"):
        evaluate(demo_model, pairs, EvalSettings(layers=(3,), alphas=(1.0,), folds=2, vector="vuln"),
                 vectors={2: v})


def test_a_given_vectors_diagnostics_are_its_projections_on_the_pairs(tour, demo_model, builtin):
    from steertui.engine.build import build_vectors, given_vectors, pair_activations
    from steertui.engine.vectors import GIVEN, auroc

    doc = read_session(tour)
    held, trained = read_vectors(doc, tour)["vuln"], set(doc.vectors[0].pair_ids)
    pairs = [p for p in builtin.pairs if p.id not in trained]  # pair-2 of every CWE
    result = given_vectors(demo_model, pairs, held)
    assert result.vectors.method == GIVEN and all(torch.equal(result.vectors.vectors[L], held[L]) for L in held)
    acts = pair_activations(demo_model, pairs, layers=[1, 2])
    built = {d.layer: d for d in build_vectors(demo_model, pairs, layers=[1, 2]).diagnostics}
    for k, d in enumerate(result.diagnostics):
        unit = held[d.layer] / held[d.layer].norm()
        want = auroc((acts.vulnerable[:, k] @ unit).tolist() + (acts.patched[:, k] @ unit).tolist(),
                     [1] * len(pairs) + [0] * len(pairs))
        assert d.auroc_pairs == want and (d.folds_pairs, d.auroc_cwe, d.folds_cwe) == (1, None, 0)
        assert d.vector_norm == pytest.approx(float(held[d.layer].norm()), rel=1e-6)
        # what does not depend on the vector is the build's
        assert d.residual_norm == pytest.approx(built[d.layer].residual_norm, rel=1e-6)
        assert d.consistency == pytest.approx(built[d.layer].consistency, rel=1e-6)
        assert result.cwe[d.layer].to_vector and len(result.cwe[d.layer].cwes) == 8


def test_eval_cli_evaluates_a_given_vector_on_the_pairs_it_was_not_built_from(exported, tmp_path, capsys):
    out = tmp_path / "given.json"
    assert main(["eval", "--dataset", "builtin", "--vectors", str(exported), "--alpha", "0,3", "--folds", "2",
                 "--json", str(out)]) == 0
    captured = capsys.readouterr()
    assert "vector 'vuln' as given, in every fold" in captured.out
    assert "the given vector's norm against the residual's" in captured.out and "layer 2: ‖v‖ " in captured.out
    assert "left out 8 pair(s) it was built from" in captured.err
    data = json.loads(out.read_text())
    trained = read_vector_file(exported).about["vuln"]["pair_ids"]
    vf = data["vector_file"]
    assert vf["name"] == "vuln" and vf["format"] == EXPORT_FORMAT and vf["layers"] == [1, 2]
    assert vf["left_out_pairs"] == trained and len(trained) == 8
    assert vf["sha256"] == hashlib.sha256(exported.read_bytes()).hexdigest()
    assert data["settings"]["vector"] == "vuln" and data["settings"]["layers"] == [1, 2]
    held = {p for f in data["folds"] for p in f["test_pairs"]}
    assert len(held) == 8 and not held & set(trained)
    assert all(r["n"] == 16 for r in data["results"] if r["cwe"] == "all")


@pytest.mark.parametrize("args, says", [
    (["--vectors", "{tmp}/missing.safetensors", "--alpha", "1"], "no such file"),
    (["--vector", "vuln", "--alpha", "1", "--layers", "1"], "--vector names a vector of --vectors FILE"),
    (["--alpha", "1"], "--layers is required"),
    (["--vectors", "{tmp}/small.safetensors", "--alpha", "1"], "hidden size is 128"),
    (["--vectors", "{exported}", "--alpha", "1", "--layers", "3"], "the vector has no layer 3"),
    (["--vectors", "{exported}", "--alpha", "1", "--method", "pca"], "--vectors gives one"),
])
def test_eval_cli_bad_vector_input_is_one_line_and_exit_2(exported, tmp_path, capsys, args, says):
    save_file({"layer.1": torch.ones(64)}, str(tmp_path / "small.safetensors"))
    argv = ["eval", "--dataset", "builtin"] + [a.format(tmp=tmp_path, exported=exported) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert says in err[-1] and err[-1].startswith("steertui: error: ")


def test_an_imported_vector_is_recorded_evaluated_and_replayed(exported, tmp_path, demo_model, builtin):
    from steertui.engine.ops import layer_eval_settings
    from steertui.engine.session import SessionRecorder
    from steertui.engine.session.replay import prepare, replay
    from steertui.engine.session.resume import resume
    from steertui.engine.vectors import GIVEN
    from steertui.errors import CancelledError, SteertuiError

    path = tmp_path / "imp.toml"
    rec = SessionRecorder.new(demo_model, builtin, path)
    iv = import_vector(exported, demo_model)
    trained = [p for p in builtin.pairs if p.id in set(iv.pair_ids)]
    with pytest.raises(SteertuiError, match=r"every loaded pair \(8\) was used to build vector 'vuln'"):
        rec.import_vectors(iv, trained)
    stop = threading.Event()
    stop.set()
    with pytest.raises(CancelledError):  # a cancelled import leaves nothing behind
        rec.import_vectors(iv, builtin.pairs, cancel=stop)
    assert rec.doc.vectors == [] and rec.vectors == {} and rec.doc.steps == []
    result = rec.import_vectors(iv, builtin.pairs)
    assert [d.layer for d in result.diagnostics] == [1, 2] and result.diagnostics[0].n_pairs == 8
    kept = [p for p in builtin.pairs if p.id not in set(iv.pair_ids)]
    rec.evaluate(kept, layer_eval_settings(2, 3.0, "mean-diff", "vuln"))
    rec.set_steering([{"vector": "vuln", "layer": 2, "alpha": 3.0}])
    rec.top_tokens(["int main(void) {\n    char buf[8];"], k=3)
    # a second import of the same name gets the next free name
    again = rec.import_vectors(import_vector(exported, demo_model, layers=[1]), builtin.pairs)
    assert [d.layer for d in again.diagnostics] == [1]
    rec.close()
    doc = read_session(path)
    assert [s.kind for s in doc.steps] == ["import_vectors", "evaluate", "top_tokens", "import_vectors"]
    step = doc.steps[0]
    assert step.inputs.vector == "vuln" and step.inputs.file == str(exported) and len(step.inputs.left_out) == 8
    assert step.inputs.file_sha256 == iv.file_sha256 and sorted(step.inputs.pair_ids) == sorted(p.id for p in kept)
    assert doc.steps[1].inputs.vector == "vuln" and doc.steps[3].inputs.vector == "v2"
    vrec = doc.vector("vuln")
    assert vrec.origin == f"{exported} sha256:{iv.file_sha256}" and vrec.method == "mean-diff"
    assert vrec.sha256 == json.loads(json.dumps(iv.about["sha256"]))
    assert {v.name for v in doc.vectors} == {"vuln", "v2"}
    # a session's sidecar names the pairs each vector was built from, so importing it leaves them out too
    assert import_vector(path.with_suffix(".safetensors"), demo_model, "vuln").pair_ids == iv.pair_ids
    exported.unlink()  # the session holds the vector: replay does not need the file
    report = replay(prepare(path, loaded=demo_model))
    assert report.ok and len(report.steps) == 4, [str(d) for s in report.steps for d in s.diffs]
    opened = resume(path)
    try:
        assert opened.vectors.name == "v2" and opened.vectors.method == GIVEN and len(opened.vectors.left_out) == 8
        assert opened.evaluation.settings.vector == "vuln"
    finally:
        opened.recorder.close()
    # an altered outcome is found
    text = path.read_text().replace(f"auroc_pairs = {doc.steps[0].outputs.diagnostics[0].auroc_pairs}",
                                    "auroc_pairs = 0.123", 1)
    assert text != path.read_text()
    path.write_text(text)
    assert main(["replay", str(path), "--check"]) == 1


def test_a_plain_files_vector_is_recorded_with_an_unknown_recipe(tmp_path, demo_model, builtin):
    from steertui.engine.session import SessionRecorder
    from steertui.engine.session.replay import prepare, replay

    save_file({"layer.2": torch.randn(demo_model.d_model)}, str(tmp_path / "theirs.safetensors"))
    path = tmp_path / "plain.toml"
    rec = SessionRecorder.new(demo_model, builtin, path)
    rec.import_vectors(import_vector(tmp_path / "theirs.safetensors", demo_model), list(builtin.pairs)[:4])
    rec.close()
    v = read_session(path).vector("theirs")
    assert (v.method, v.readout, v.pair_ids, v.layers) == ("unknown", "unknown", [], [2])
    assert replay(prepare(path, loaded=demo_model)).ok


async def test_console_imports_a_vector_and_evaluates_it_as_given(exported, demo_model_path):
    from test_tui import _until

    from steertui.tui.app import SteerApp
    from steertui.tui.panes.steer import SteerPane

    app = SteerApp(model=str(demo_model_path), dataset="builtin", vectors_file=str(exported))
    async with app.run_test(size=(120, 40)) as pilot:
        await _until(pilot, lambda: app.build is not None or app.failures)
        assert not app.failures, app.failures
        b = app.build
        assert b.name == "vuln" and b.given and len(b.left_out) == 8
        assert [d.layer for d in b.diagnostics] == [1, 2] and all(d.n_pairs == 8 for d in b.diagnostics)
        pane = app.query_one(SteerPane)
        assert pane.row_count == 2 and "vuln (given)" in str(pane.border_subtitle)
        assert [p.id for p in app.eval_pairs()] == [p.id for p in app.dataset.pairs if p.id not in b.left_out]
        await pilot.press("plus", "e")
        await _until(pilot, lambda: app.evaluation is not None or app.failures)
        assert not app.failures, app.failures
        s = app.evaluation.settings
        assert s.vector == "vuln" and s.layers == (app.steering_layer().layer,)
        assert {r.n for r in app.evaluation.rows if r.cwe == "all"} == {16}  # the 8 pairs it was not built from
        assert [st.kind for st in app.recorder.steps] == ["import_vectors", "evaluate"]


def test_cli_refuses_a_bad_vectors_file_before_the_console_starts(tmp_path, capsys):
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    assert main(["--vectors", str(tmp_path / "junk.safetensors")]) == 2
    assert "not a readable safetensors file" in capsys.readouterr().err
    assert main(["--vector", "x"]) == 2
    assert "--vector names a vector of --vectors FILE" in capsys.readouterr().err


def test_vectors_command_lists_another_tools_file_without_claiming_a_check(tmp_path, capsys):
    save_file({"layer.2": torch.ones(128)}, str(tmp_path / "theirs.safetensors"))
    assert main(["vectors", str(tmp_path / "theirs.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "no sha256 recorded in it" in out and "every tensor matches" not in out


async def test_console_opens_the_import_example_with_its_vector_given_and_both_layers_pinned(tmp_path):
    import shutil

    from test_tui import _settle

    from steertui.tui.app import SteerApp

    repo = Path(__file__).resolve().parents[1] / "sessions"
    for name in ("demo-import.toml", "demo-import.safetensors"):
        shutil.copy(repo / name, tmp_path / name)
    doc = read_session(tmp_path / "demo-import.toml")
    app = SteerApp(session_file=str(tmp_path / "demo-import.toml"))
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        assert not app.failures, app.failures
        assert app.build.name == "vuln" and app.build.given and len(app.build.left_out) == 8
        assert set(app.pinned) == {1, 2} and app.current_steering() == \
            [iv.model_dump() for iv in doc.steering.interventions]
        assert app.evaluation.settings.vector == "vuln"  # its evaluation, as recorded
        assert app.recipe() == (app.method, "vuln")
        # with its files' records: `h` lists the held-out files behind the row under the cursor
        from steertui.engine.ops import held_out_files
        from steertui.tui.panes.evaluate import FilesTable

        await pilot.press("v", "h")
        await pilot.pause()
        row = app.evaluation.rows[0]
        files = held_out_files(app.evaluation, row.layer, row.alpha, row.cwe)
        assert len(files) == row.n > 0 and app.query_one(FilesTable).row_count == len(files)


async def test_console_imports_from_the_i_box(tour, tmp_path, demo_model_path):
    from test_tui import _settle, _until

    from steertui.tui.app import SteerApp
    from steertui.tui.panes.steer import ImportBox

    app = SteerApp(model=str(demo_model_path), dataset="builtin")
    async with app.run_test(size=(100, 30)) as pilot:
        await _settle(app, pilot)
        await pilot.press("i")
        box = app.query_one(ImportBox)
        assert box.display and app.focused is box
        box.value = str(tmp_path / "missing.safetensors")
        await pilot.press("enter")
        await _until(pilot, lambda: app.failures)
        assert not box.display and [f.job for f in app.failures] == ["import vector"]
        assert "missing.safetensors: file: no such file" in app.failures[0].error and app.build is None
        await pilot.press("i", "escape")  # closes, nothing imported
        assert not box.display and app.build is None
        await pilot.press("i")
        box.value = f"{tour.with_suffix('.safetensors')} vuln"  # a path, then which of its vectors
        await pilot.press("enter")
        await _until(pilot, lambda: app.build is not None)
        assert app.build.name == "vuln" and app.build.given and len(app.failures) == 1
        assert [d.layer for d in app.build.diagnostics] == [1, 2]


def test_layers_steered_together_are_one_evaluation_with_a_control_at_each_layer(tour, demo_model, builtin):
    from steertui.engine.evaluate import EvalSettings, evaluate, random_control
    from steertui.engine.ops import spans_grid, steered_layers
    from steertui.engine.steering import Steer
    from steertui.engine.verdict import answer_tokens, score
    from steertui.errors import SteertuiError

    held = read_vectors(read_session(tour), tour)["vuln"]
    pairs = list(builtin.pairs)
    weights = {1: 0.5, 2: 0.25}
    settings = EvalSettings(layers=(1, 2), alphas=(0.0, 1.0), folds=2, vector="vuln", together=(0.5, 0.25),
                            alpha_scale="residual")
    result = evaluate(demo_model, pairs, settings, vectors=held)
    assert {r.layer for r in result.rows} == {1} and len([r for r in result.rows if r.cwe == "all"]) == 2
    assert not spans_grid(settings) and steered_layers(settings, 1) == "1+2"
    prompts, answers = _prompts(demo_model, pairs), answer_tokens(demo_model, " Yes", " No")
    for rec in result.files:
        fold = result.folds[rec["fold"]]
        coef = {L: w * fold["residual_norm"][str(L)] / fold["vector_norm"][str(L)] for L, w in weights.items()}
        at = {s["alpha"]: s for s in rec["steered"]}
        assert at[1.0]["raw_alpha"] == pytest.approx(coef[1], rel=1e-9)
        both = score(demo_model, [prompts[rec["id"]]], answers, steers=[Steer(L, held[L], c) for L, c in coef.items()])
        rand = score(demo_model, [prompts[rec["id"]]], answers,
                     steers=[Steer(L, random_control(held[L], 0, rec["fold"], L), c) for L, c in coef.items()])
        assert at[1.0]["score"] == pytest.approx(float(both[0]), abs=1e-4)
        assert at[1.0]["random_score"] == pytest.approx(float(rand[0]), abs=1e-4)
        assert at[0.0]["score"] == rec["baseline_score"]
    # one layer alone at its share moves the verdict otherwise
    alone = evaluate(demo_model, pairs, EvalSettings(layers=(1,), alphas=(0.0, 1.0), folds=2, vector="vuln",
                                                     together=(0.5,), alpha_scale="residual"), vectors=held)
    assert [r.shift for r in alone.rows] != [r.shift for r in result.rows]
    with pytest.raises(SteertuiError, match="together has 1 weights for the layers 1, 2"):
        evaluate(demo_model, pairs, EvalSettings(layers=(1, 2), alphas=(1.0,), folds=2, vector="vuln",
                                                 together=(0.5,)), vectors=held)


def test_eval_cli_steers_layers_together(tmp_path, capsys):
    out = tmp_path / "together.json"
    assert main(["eval", "--dataset", "builtin", "--layers", "1,2", "--together", "0.5,0.25", "--alpha-scale",
                 "residual", "--alpha=-1,0,1", "--folds", "2", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "layers 1+2 steered at once: alpha × the weight of each (layer 1 × 0.5, layer 2 × 0.25)" in text
    assert "│ 1+2   │" in text or "1+2" in text.split("┃ layer")[1]
    data = json.loads(out.read_text())
    assert data["settings"]["together"] == [0.5, 0.25] and {r["layer"] for r in data["results"]} == {1}
    assert main(["eval", "--dataset", "builtin", "--layers", "1,2", "--together", "1", "--alpha", "1"]) == 2
    assert "--together has 1 weight(s) for 2 layer(s) (1, 2)" in capsys.readouterr().err
