"""The builtin examples: layout, twins that differ only in the fix, originality; and the engine's import rules."""

from __future__ import annotations

import difflib
import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from steertui.engine.data import load_builtin, load_dataset
from steertui.paths import builtin_examples_dir

REPO = Path(__file__).resolve().parents[1]
C_CWES = {"CWE-22", "CWE-77", "CWE-190", "CWE-416", "CWE-476", "CWE-787"}
PY_CWES = {"CWE-79", "CWE-89"}


def test_layout_and_sizes() -> None:
    root = builtin_examples_dir()
    assert (root / "README.md").is_file()
    readme = (root / "README.md").read_text()
    assert "not" in readme and "SecLLMHolmes" in readme and "benchmark" in readme
    folders = {p.name for p in (root / "dataset").iterdir()}
    assert folders == C_CWES | PY_CWES
    for cwe_dir in (root / "dataset").iterdir():
        suffix = ".py" if cwe_dir.name in PY_CWES else ".c"
        files = sorted(cwe_dir.iterdir())
        assert files and all(f.suffix == suffix for f in files)
        for code in files:
            assert 15 <= len(code.read_text().splitlines()) <= 42, code
            gt = root / "ground-truth" / cwe_dir.name / f"{code.stem}.txt"
            assert gt.is_file() and len(gt.read_text().strip().splitlines()) == 1, gt


def test_every_cwe_has_pairs_whose_twins_differ_only_a_little() -> None:
    dataset = load_builtin()
    by_cwe = dataset.pairs_by_cwe()
    assert len(by_cwe) == 8 and all(len(pairs) >= 2 for pairs in by_cwe.values())
    for pair in dataset.pairs:
        left, right = pair.vulnerable.code.splitlines(), pair.patched.code.splitlines()
        changed = sum(1 for line in difflib.unified_diff(left, right, lineterm="", n=0)
                      if line[:1] in "+-" and not line.startswith(("+++", "---")))
        assert 1 <= changed <= 12, pair.id
        assert "vulnerable" in pair.vulnerable.ground_truth.lower()
        assert "not vulnerable" in pair.patched.ground_truth.lower()


def test_examples_are_not_secllmholmes_files(shared_dataset: Path) -> None:
    shared_hashes = {hashlib.sha256(p.read_bytes()).hexdigest()
                     for p in (shared_dataset / "datasets").rglob("*") if p.is_file()}
    ours = [p for p in builtin_examples_dir().rglob("*") if p.is_file()]
    assert ours and not [p for p in ours if hashlib.sha256(p.read_bytes()).hexdigest() in shared_hashes]
    theirs = [s for s in load_dataset(shared_dataset).samples if s.part != "real-world"]
    for sample in load_builtin().samples:
        closest = max(difflib.SequenceMatcher(None, sample.code, other.code).ratio() for other in theirs)
        assert closest < 0.6, sample.id


@pytest.mark.parametrize("module, banned", [
    ("steertui.engine.data", ("textual", "torch", "transformers", "rich")),
    ("steertui.commands.data", ("textual", "torch", "transformers")),
])
def test_imports_stay_light(module: str, banned: tuple[str, ...]) -> None:
    code = (f"import sys, {module}\n"
            f"print(','.join(m for m in {banned!r} if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert done.stdout.strip() == ""
