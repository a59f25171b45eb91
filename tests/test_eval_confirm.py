"""A search confirmed elsewhere: the search's best cell in each direction (picked on every searched file), its
vector built on every searched pair, evaluated on pairs that took no part in either (`eval --confirm-part`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from steertui.cli import main
from steertui.engine.build import pair_activations, vectors_from_activations
from steertui.engine.data import load_dataset
from steertui.engine.evaluate import EvalSettings, confirm_best_cells, evaluate, pick_on_other_folds
from steertui.errors import SteertuiError


@pytest.fixture(scope="module")
def halves():
    """The builtin examples' first pair of every CWE (searched) and their second (confirmed on)."""
    pairs = load_dataset("builtin").pairs
    return [p for p in pairs if p.id.endswith("pair-1")], [p for p in pairs if p.id.endswith("pair-2")]


def test_the_searchs_best_cell_is_evaluated_on_the_other_pairs_with_its_vector_built_on_the_search(demo_model,
                                                                                                halves):
    search_pairs, other = halves
    settings = EvalSettings(layers=(1, 2), alphas=(-1.0, 0.0, 1.0), alpha_scale="residual", folds=2, kl_tokens=8)
    search = evaluate(demo_model, search_pairs, settings)
    got = confirm_best_cells(demo_model, search, search_pairs, other)
    assert list(got) == ["up", "down"]
    for direction, c in got.items():
        # the cell is the grid's best on all searched files: the hindsight cell of the honest pick
        hind = pick_on_other_folds(search.files, direction).hindsight
        assert (c.layer, c.alpha, c.searched_excess) == hind and c.alpha != 0
        # the same evaluation by hand: the vector built on every searched pair, given in every fold
        v = vectors_from_activations(pair_activations(demo_model, search_pairs, layers=[c.layer]), "mean-diff")
        alphas = tuple(sorted({0.0} | {x.alpha for x in got.values() if x.layer == c.layer}))
        want = evaluate(demo_model, other, EvalSettings(layers=(c.layer,), alphas=alphas, alpha_scale="residual",
                                                        folds=2, kl_tokens=8, vector="searched"),
                        vectors={c.layer: v[c.layer]})
        assert json.dumps([r.to_dict() for r in c.result.rows]) == json.dumps([r.to_dict() for r in want.rows])
        assert c.row.alpha == c.alpha and c.row.cwe == "all" and c.row.n == 2 * len(other)
        assert {f["pair"] for f in c.result.files} == {p.id for p in other}  # only the other pairs are scored


def test_what_cannot_be_confirmed_is_refused_before_any_forward(demo_model, halves, monkeypatch):
    search_pairs, other = halves
    settings = EvalSettings(layers=(1,), alphas=(0.0, 1.0), folds=2, kl_tokens=8)
    search = evaluate(demo_model, search_pairs, settings)

    def no_forward(*_args, **_kwargs):
        raise AssertionError("a forward ran")

    monkeypatch.setattr("steertui.engine.evaluate.pair_activations", no_forward)
    monkeypatch.setattr("steertui.engine.evaluate.evaluate", no_forward)
    with pytest.raises(SteertuiError, match=r"2 pair\(s\) are both searched and confirmed on"):
        confirm_best_cells(demo_model, search, search_pairs, other + search_pairs[:2])
    with pytest.raises(SteertuiError, match="no pairs to confirm on"):
        confirm_best_cells(demo_model, search, search_pairs, [])
    import dataclasses

    together = dataclasses.replace(search, settings=dataclasses.replace(settings, together=(1.0,)))
    with pytest.raises(SteertuiError, match="confirming layers steered at once is not supported"):
        confirm_best_cells(demo_model, together, search_pairs, other)


def test_cli_confirms_a_search_on_another_part(shared_dataset, tmp_path, capsys):
    out = tmp_path / "c.json"
    assert main(["eval", "--dataset", str(shared_dataset), "--part", "hand-crafted", "--layers", "1,2",
                 "--alpha=-1,0,1", "--alpha-scale", "residual", "--folds", "2", "--kl-tokens", "8",
                 "--confirm-part", "few-shot", "--json", str(out)]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    data = json.loads(out.read_text())
    conf = data["confirmed"]
    assert conf["parts"] == ["few-shot"] and len(conf["pairs"]) == 8
    assert all(pid.startswith("few-shot/") for pid in conf["pairs"])
    assert "confirmed on few-shot (8 pairs that took no part in the search on hand-crafted)" in printed
    for direction, arrow in (("up", "↑ towards yes"), ("down", "↓ towards no")):
        cell = conf["cells"][direction]
        hind = data["picked"][direction]["hindsight"]
        assert (cell["layer"], cell["alpha"]) == (hind["layer"], hind["alpha"])
        r = cell["result"]
        assert r["cwe"] == "all" and r["n"] == 16 and r["alpha"] == cell["alpha"]
        assert f"{arrow}: layer {cell['layer']} α {cell['alpha']:+g}" in printed
        assert f"here shift {r['shift']:+.3f} (rand {r['random_shift']:+.3f})" in printed
        assert {f["pair"] for f in cell["files"]} == set(conf["pairs"])


@pytest.mark.parametrize("extra, says", [
    (["--part", "hand-crafted", "--confirm-part", "hand-crafted"],
     "part(s) hand-crafted both searched (--part) and confirmed on (--confirm-part)"),
    (["--confirm-part", "nope"], "part(s) nope of --confirm-part not in"),
    (["--layers", "1,2", "--together", "1,1", "--confirm-part", "few-shot"],
     "--confirm-part confirms one layer's cell, and --together steers layers at once"),
])
def test_cli_refuses_a_confirmation_it_cannot_make(shared_dataset, capsys, extra, says):
    argv = ["eval", "--dataset", str(shared_dataset), "--alpha=0,1", "--folds", "2", *extra]
    if "--layers" not in extra:
        argv += ["--layers", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err


def _steps(path) -> list[str]:
    from steertui.engine.session import read_session

    return [s.kind for s in read_session(path).steps]


def test_eval_record_writes_a_session_that_replays(tmp_path, capsys):
    from steertui.engine.session import read_session

    path, out = tmp_path / "run.toml", tmp_path / "run.json"
    assert main(["eval", "--dataset", "builtin", "--layers", "1", "--alpha=0,2", "--folds", "2", "--kl-tokens", "8",
                 "--record", str(path), "--json", str(out)]) == 0
    assert f"recorded as {path}" in " ".join(capsys.readouterr().err.split())
    assert _steps(path) == ["evaluate"]
    recorded = read_session(path).steps[0].outputs
    data = json.loads(out.read_text())
    assert json.dumps([r.model_dump() for r in recorded.rows]) == json.dumps(
        [{k: r[k] for k in recorded.rows[0].model_dump()} for r in data["results"]])
    assert main(["replay", str(path), "--check"]) == 0


def test_eval_record_of_a_given_vector_imports_it_first(tmp_path, capsys):
    from steertui.engine.session import read_session

    vectors = Path(__file__).resolve().parents[1] / "sessions" / "demo-tour-vuln.safetensors"
    path = tmp_path / "given.toml"
    assert main(["eval", "--dataset", "builtin", "--vectors", str(vectors), "--layers", "2", "--alpha=0,3",
                 "--folds", "2", "--kl-tokens", "8", "--record", str(path)]) == 0
    doc = read_session(path)
    assert _steps(path) == ["import_vectors", "evaluate"]
    assert doc.steps[1].inputs.vector == doc.steps[0].inputs.vector == "vuln"
    assert len(doc.steps[0].inputs.left_out) == 8  # the pairs it was built from, left out of both
    assert main(["replay", str(path), "--check"]) == 0


async def test_eval_record_of_a_confirmation_records_its_vector_and_gives_the_headless_numbers(shared_dataset,
                                                                                             tmp_path, capsys):
    argv = ["eval", "--dataset", str(shared_dataset), "--part", "hand-crafted", "--layers", "2", "--alpha=-1,0,1",
            "--alpha-scale", "residual", "--folds", "2", "--kl-tokens", "8", "--confirm-part", "few-shot"]
    path = tmp_path / "confirm.toml"
    assert main([*argv, "--json", str(tmp_path / "headless.json")]) == 0
    assert main([*argv, "--json", str(tmp_path / "recorded.json"), "--record", str(path)]) == 0
    headless, recorded = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("headless", "recorded"))
    assert json.dumps(recorded["confirmed"]) == json.dumps(headless["confirmed"])  # the same numbers
    kinds = _steps(path)
    layers = {c["layer"] for c in headless["confirmed"]["cells"].values()}
    assert kinds == ["evaluate", "build_vectors"] + ["evaluate"] * len(layers)
    assert main(["replay", str(path), "--check"]) == 0
    # the console opens it: the confirmation's vector in the steering pane, its last evaluation as recorded
    from test_tui import _settle

    from steertui.tui.app import SteerApp

    async with SteerApp(session_file=str(path)).run_test(size=(120, 40)) as pilot:
        app = pilot.app
        await _settle(app, pilot)
        assert not app.failures, app.failures
        assert app.build.name == "searched" and sorted(app.build.vectors) == sorted(layers)
        assert app.evaluation.settings.vector == "searched" and app.evaluation.settings.layers == (max(layers),)


@pytest.mark.parametrize("name, says", [
    ("exists.toml", "already exists"),
    ("run.json", "a session file ends in .toml"),
    ("missing/run.toml", "for --record does not exist"),
])
def test_eval_record_refuses_a_file_it_would_overwrite_or_cannot_write(tmp_path, capsys, name, says):
    (tmp_path / "exists.toml").write_text("")
    assert main(["eval", "--dataset", "builtin", "--layers", "1", "--alpha=0,2", "--record",
                 str(tmp_path / name)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err
