"""`steertui compare`: two recorded evaluations of the same files, pair by pair, against the per-file records read
back by hand."""

from __future__ import annotations

import json
import math
import shutil

import pytest

from steertui.cli import main

EVAL = ["eval", "--dataset", "builtin", "--layers", "1,2", "--alpha=-0.5,0.5", "--alpha-scale", "residual",
        "--folds", "2", "--kl-tokens", "8"]


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    """One vector per fold (A), a vector per CWE (B), and both again scoring the fix sites of two CWEs."""
    root = tmp_path_factory.mktemp("compare")
    made = {}
    for name, extra in (("a", []), ("b", ["--per-cwe", "--controls", "2"]),
                        ("a_fix", ["--cwe", "cwe-22,787", "--fix-site"]),
                        ("b_fix", ["--cwe", "cwe-22", "--cwe", "787", "--fix-site", "--method", "pca"])):
        made[name] = root / f"{name}.toml"
        assert main(EVAL + extra + ["--record", str(made[name])]) == 0
    return made


def _files(path):
    from steertui.engine.session import read_session
    from steertui.engine.session.resume import recorded_evaluation

    doc = read_session(path)
    return recorded_evaluation(doc, doc.steps[-1]).files


def _by_hand(files, cell, key):
    """Pair -> the mean over its files of the steered score minus the controls' mean (``key`` "score"), or its
    fix-site preference minus the controls' (``key`` "fix")."""
    per = {}
    for f in files:
        x = next(s for s in f["steered"] if (s["layer"], s["alpha"]) == cell)
        if key == "score":
            rand = x["random_scores"]
            per.setdefault(f["pair"], []).append(x["score"] - sum(rand) / len(rand))
        elif x["fix"] is not None:
            per.setdefault(f["pair"], []).append(x["fix"] - sum(x["random_fix"]) / len(x["random_fix"]))
    return {p: sum(v) / len(v) for p, v in per.items()}


def _se(values):
    m = sum(values) / len(values)
    return math.sqrt(sum((v - m) ** 2 for v in values) / (len(values) - 1) / len(values))


def test_compare_is_the_paired_difference_of_the_records(sessions, tmp_path, capsys):
    out = tmp_path / "cmp.json"
    assert main(["compare", str(sessions["a"]), str(sessions["b"]), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "a vector per CWE" in printed and "A − B" in printed
    data = json.loads(out.read_text())
    assert data["a"]["settings"]["per_cwe"] is False and data["b"]["settings"]["per_cwe"] is True
    fa, fb = _files(sessions["a"]), _files(sessions["b"])
    assert data["pairs"] == 16 and data["only_a"] == data["only_b"] == []
    assert data["cells"] == [[1, -0.5], [1, 0.5], [2, -0.5], [2, 0.5]]
    cwe_of = {f["pair"]: f["cwe"] for f in fa}
    assert len(data["rows"]) == 4 * (len(set(cwe_of.values())) + 1)
    for row in data["rows"]:
        cell = (row["layer"], row["alpha"])
        ea, eb = _by_hand(fa, cell, "score"), _by_hand(fb, cell, "score")
        pairs = [p for p in ea if row["cwe"] in ("all", cwe_of[p])]
        diffs = [ea[p] - eb[p] for p in pairs]
        assert row["pairs"] == len(pairs) == (16 if row["cwe"] == "all" else 2)
        assert row["excess_a"] == pytest.approx(sum(ea[p] for p in pairs) / len(pairs), abs=1e-12)
        assert row["excess_b"] == pytest.approx(sum(eb[p] for p in pairs) / len(pairs), abs=1e-12)
        assert row["difference"] == pytest.approx(sum(diffs) / len(diffs), abs=1e-12)
        assert row["se"] == pytest.approx(_se(diffs), abs=1e-12)
        assert row["beyond"] == (abs(row["difference"]) > 2 * row["se"])
        assert row["fix_difference"] is None  # neither scored the fix sites
    overall = [r for r in data["rows"] if r["cwe"] == "all"]
    further = sum(r["beyond"] and r["difference"] * r["alpha"] > 0 for r in overall)
    behind = sum(r["beyond"] and r["difference"] * r["alpha"] < 0 for r in overall)
    assert (f"A moved the verdict further than B beyond 2 SE in {further} of 4 cell(s) with a push, B further than A "
            f"in {behind}") in " ".join(printed.split())
    # A's own rows give the same shift beyond the control over all its pairs
    from steertui.engine.session import read_session

    a_rows = {(r.layer, r.alpha): r for r in read_session(sessions["a"]).steps[-1].outputs.rows if r.cwe == "all"}
    for row in (r for r in data["rows"] if r["cwe"] == "all"):
        own = a_rows[(row["layer"], row["alpha"])]
        assert row["excess_a"] == pytest.approx(own.shift - own.random_shift, abs=1e-9)


def test_an_evaluation_against_its_copy_differs_by_nothing(sessions, tmp_path, capsys):
    copy = tmp_path / "copy.toml"
    shutil.copy(sessions["a"], copy)
    assert main(["compare", str(sessions["a"]), str(copy), "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert all(r["difference"] == 0.0 and r["se"] == 0.0 and not r["beyond"] for r in data["rows"])
    assert data["notes"] == []


def test_alphas_of_another_scale_are_named(sessions, tmp_path, capsys):
    raw = tmp_path / "raw.toml"
    assert main(["eval", "--dataset", "builtin", "--layers", "1", "--alpha=-0.5,0.5", "--folds", "2",
                 "--kl-tokens", "8", "--record", str(raw)]) == 0
    capsys.readouterr()
    assert main(["compare", str(sessions["a"]), str(raw)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "note: A's alphas are residual, B's raw: the same alpha is not the same push" in out


def test_fix_site_columns_when_both_scored_them(sessions, tmp_path, capsys):
    assert main(["compare", str(sessions["a_fix"]), str(sessions["b_fix"]), "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    fa, fb = _files(sessions["a_fix"]), _files(sessions["b_fix"])
    assert data["pairs"] == 4
    for row in data["rows"]:
        cell = (row["layer"], row["alpha"])
        xa, xb = _by_hand(fa, cell, "fix"), _by_hand(fb, cell, "fix")
        pairs = [p for p in xa if row["cwe"] == "all" or p.split("/")[1].lower() == row["cwe"]]
        assert row["fix_pairs"] == len(pairs) > 0
        assert row["fix_difference"] == pytest.approx(sum(xa[p] - xb[p] for p in pairs) / len(pairs), abs=1e-12)
    # against an evaluation without them: no fix columns, and only the pairs both held out
    assert main(["compare", str(sessions["a"]), str(sessions["a_fix"]), "--json", "-"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["pairs"] == 4 and len(data["only_a"]) == 12 and data["only_b"] == []
    assert all(r["fix_difference"] is None for r in data["rows"])


def test_compare_refuses_what_it_cannot_compare(sessions, tmp_path, capsys):
    from pathlib import Path

    tour = Path(__file__).resolve().parents[1] / "sessions" / "demo-tour.toml"
    assert main(["compare", str(sessions["a"]), str(sessions["a"])]) == 2
    assert "A and B are the same evaluation" in capsys.readouterr().err
    assert main(["compare", str(sessions["a"]), str(tour), "--step-b", "0"]) == 2
    assert "step 0 of" in (err := capsys.readouterr().err) and "is a build_vectors step, not an evaluation" in err
    assert main(["compare", str(sessions["a"]), str(tour), "--step-b", "99"]) == 2
    assert "has no step 99" in capsys.readouterr().err
    other = tmp_path / "layer3.toml"
    assert main(["eval", "--dataset", "builtin", "--layers", "3", "--alpha", "1", "--folds", "2", "--kl-tokens", "8",
                 "--record", str(other)]) == 0
    capsys.readouterr()
    assert main(["compare", str(sessions["a"]), str(other)]) == 2
    err = capsys.readouterr().err
    assert "share no (layer, alpha) cell" in err and "layer 3 α 1" in err
    assert main(["compare", str(sessions["a"]), str(tmp_path / "missing.toml")]) == 2
    assert "no such session file" in capsys.readouterr().err
