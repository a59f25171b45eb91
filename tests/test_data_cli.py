"""``steertui data summary | show | fetch | budget`` through the real CLI entry point."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fixtures_data import build_tokenizer, git, isolate, make_git_checkout, make_non_trivial

from steertui.cli import main

REPO = Path(__file__).resolve().parents[1]
CWES = ["cwe-22", "cwe-77", "cwe-79", "cwe-89", "cwe-190", "cwe-416", "cwe-476", "cwe-787"]


@pytest.fixture(autouse=True)
def config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv("COLUMNS", "160")
    return isolate(monkeypatch, tmp_path)


def run_module(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m steertui ...`` in a fresh interpreter (the source tree on its path)."""
    full_env = dict(os.environ, **(env or {}))
    full_env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), full_env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, "-m", "steertui", *args], capture_output=True, text=True,
                          env=full_env, cwd=REPO, timeout=120)


def json_out(capsys: pytest.CaptureFixture[str], argv: list[str]) -> Any:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


# -- summary ------------------------------------------------------------------------------------------
def test_summary_json_on_the_shared_copy(capsys: pytest.CaptureFixture[str], shared_dataset: Path) -> None:
    data = json_out(capsys, ["data", "summary", "--dataset", str(shared_dataset), "--json"])
    assert data["source"] == f"SecLLMHolmes @ {shared_dataset.resolve()}"
    parts = data["parts"]
    assert list(parts) == ["hand-crafted", "real-world", "few-shot"]
    assert (parts["hand-crafted"]["files"], parts["hand-crafted"]["pairs"]) == (48, 24)
    assert parts["hand-crafted"]["by_cwe"] == {cwe: 3 for cwe in CWES}
    assert (parts["real-world"]["files"], parts["real-world"]["pairs"]) == (30, 15)
    assert parts["real-world"]["by_cwe"] == {"cwe-190": 4, "cwe-416": 1, "cwe-476": 4, "cwe-787": 6}
    assert parts["real-world"]["projects"] == {"gpac": 4, "libtiff": 5, "linux": 5, "pjsip": 1}
    assert (parts["few-shot"]["files"], parts["few-shot"]["pairs"]) == (16, 8)
    assert parts["few-shot"]["by_cwe"] == {cwe: 1 for cwe in CWES}
    assert len(data["warnings"]) == 2


def test_summary_json_on_builtin_and_top_level_dataset_flag(capsys: pytest.CaptureFixture[str],
                                                            shared_dataset: Path) -> None:
    data = json_out(capsys, ["data", "summary", "--json"])
    assert data["source"] == "builtin examples" and data["benchmark"] is False
    assert list(data["parts"]) == ["builtin"]
    builtin = data["parts"]["builtin"]
    assert builtin["pairs"] == 16 and builtin["files"] == 32
    assert builtin["by_cwe"] == {cwe: 2 for cwe in CWES}
    data = json_out(capsys, ["--dataset", str(shared_dataset), "data", "summary", "--json"])
    assert data["parts"]["hand-crafted"]["pairs"] == 24


def test_summary_table(capsys: pytest.CaptureFixture[str], shared_dataset: Path) -> None:
    assert main(["data", "summary", "--dataset", str(shared_dataset)]) == 0
    out = capsys.readouterr().out
    assert f"Source: SecLLMHolmes @ {shared_dataset.resolve()}" in out
    assert "hand-crafted" in out and "48" in out and "24" in out
    assert "gpac 4, libtiff 5, linux 5, pjsip 1" in out
    assert "Warnings (2)" in out and "augmented/trivial" in out
    assert main(["data", "summary"]) == 0
    assert "not benchmark results" in capsys.readouterr().out


# -- show ---------------------------------------------------------------------------------------------
def test_show_pair_side_by_side_with_ground_truth(capsys: pytest.CaptureFixture[str], shared_dataset: Path) -> None:
    assert main(["data", "show", "hand-crafted/CWE-787/p_1", "--dataset", str(shared_dataset)]) == 0
    out = capsys.readouterr().out
    assert "Pair hand-crafted/CWE-787/pair-1" in out
    assert "hand-crafted/CWE-787/1" in out and "hand-crafted/CWE-787/p_1" in out
    assert "cwe-787 Out-of-bounds Write" in out
    assert "buf[3] = 412;" in out and "12-" in out
    gt_dir = shared_dataset / "datasets" / "hand-crafted" / "ground-truth" / "CWE-787"
    for stem in ("1", "p_1"):
        first_words = " ".join((gt_dir / f"{stem}.txt").read_text().split()[:6])
        assert first_words in " ".join(out.split())
    assert f"SecLLMHolmes @ {shared_dataset.resolve()}" in out


def test_show_real_world_hunks_and_json(capsys: pytest.CaptureFixture[str], shared_dataset: Path) -> None:
    pair_id = "real-world/linux/CVE-2023-40283/pair"
    assert main(["data", "show", pair_id, "--dataset", str(shared_dataset), "--context", "2"]) == 0
    out = capsys.readouterr().out
    assert "+" in out and "cve-description" in out
    data = json_out(capsys, ["data", "show", pair_id, "--dataset", str(shared_dataset), "--json"])
    assert data["id"] == pair_id and data["vulnerable"]["label"] == "vulnerable"
    assert data["source"].startswith("SecLLMHolmes @ ")


def test_show_flags_caveats_and_lone_samples(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    make_non_trivial(root / "datasets")
    assert main(["data", "show", "augmented-non-trivial/A6/A6_1/CWE-787/pair-1", "--dataset", str(root)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "CAVEAT augmented-non-trivial/A6/A6_1/CWE-787/p_1" in out and "in fact vulnerable" in out
    assert "PATCHED (CAVEAT!)" in out
    assert main(["data", "show", "augmented-non-trivial/A2/A2_1/CWE-79/p_1", "--dataset", str(root)]) == 0
    assert "no twin" in capsys.readouterr().out


def test_show_unknown_id_suggests_close_ids(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "show", "builtin/CWE-787/pair-9"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "did you mean" in err and "builtin/CWE-787/pair-1" in err


# -- bad input through a real process -------------------------------------------------------------------
def test_not_a_checkout_exits_2_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    done = run_module("data", "summary", "--dataset", str(tmp_path / "notes"),
                      env={"STEERTUI_CONFIG": str(tmp_path / "c.toml")})
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "not a SecLLMHolmes checkout" in lines[0] and "steertui data fetch" in lines[0]


def test_missing_path_exits_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["data", "summary", "--dataset", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err


# -- fetch ---------------------------------------------------------------------------------------------
@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_fetch_through_the_cli(tmp_path: Path) -> None:
    work = tmp_path / "upstream-work"
    commit = make_git_checkout(work)
    bare = tmp_path / "upstream.git"
    git("clone", "-q", "--bare", str(work), str(bare))
    env = {"STEERTUI_CONFIG": str(tmp_path / "cfg" / "config.toml"), "STEERTUI_DATASET_URL": str(bare),
           "STEERTUI_DATA_DIR": str(tmp_path / "data")}
    done = run_module("data", "fetch", "--commit", commit, env=env)
    assert done.returncode == 0, done.stderr
    assert commit in done.stdout and str(tmp_path / "data" / "SecLLMHolmes") in done.stdout
    summary = run_module("data", "summary", "--json", env=env)
    assert json.loads(summary.stdout)["source"] == f"SecLLMHolmes @ {commit}"
    env["STEERTUI_DATASET_URL"] = str(tmp_path / "offline.git")
    failed = run_module("data", "fetch", "--dest", str(tmp_path / "other"), env=env)
    assert failed.returncode == 2
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and "could not clone" in lines[0] and "--dataset PATH" in lines[0]


# -- budget --------------------------------------------------------------------------------------------
def test_budget_json_with_a_local_tokenizer(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                            shared_dataset: Path) -> None:
    from transformers import PreTrainedTokenizerFast

    model_dir = tmp_path / "tok"
    PreTrainedTokenizerFast(tokenizer_object=build_tokenizer(), eos_token="<|endoftext|>").save_pretrained(model_dir)
    (model_dir / "config.json").write_text(json.dumps({"n_positions": 512}))
    data = json_out(capsys, ["data", "budget", "--dataset", str(shared_dataset), "--model", str(model_dir),
                             "--part", "real-world", "--json"])
    assert (data["context_length"], data["reserve_tokens"], data["limit"]) == (512, 64, 448)
    assert len(data["samples"]) == 30
    assert set(data["truncated"]) == {s["id"] for s in data["samples"] if s["tokens"] > 448}
    assert data["truncated"] and "whole lines" in data["rule"]
    assert main(["data", "budget", "--dataset", str(shared_dataset), "--model", str(model_dir),
                 "--part", "hand-crafted", "--context", "4096", "--truncated-only"]) == 0
    out = capsys.readouterr().out
    assert "0 of 48 sample(s) truncated" in out
    # --part and --cwe repeat, or take names separated by commas
    for flags in (["--cwe", "22,cwe-787"], ["--cwe", "22", "--cwe", "787"]):
        data = json_out(capsys, ["data", "budget", "--dataset", str(shared_dataset), "--model", str(model_dir),
                                 "--part", "hand-crafted,real-world", *flags, "--json"])
        hand = [s["id"] for s in data["samples"] if s["part"] == "hand-crafted"]
        assert {i.split("/")[1] for i in hand} == {"CWE-22", "CWE-787"} and len(hand) == 12
        assert sum(s["part"] == "real-world" for s in data["samples"]) == 12  # CWE-787's 6 CVEs, none of CWE-22
    with pytest.raises(SystemExit):
        main(["data", "budget", "--cwe", ",,"])
    assert "',,' names nothing" in capsys.readouterr().err
    assert main(["data", "budget", "--model", str(tmp_path / "no-model")]) == 2
    assert "cannot load a tokenizer" in capsys.readouterr().err
