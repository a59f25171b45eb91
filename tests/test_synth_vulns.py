"""The synthetic vulnerable/patched pairs the demo model learns the verdict question from (scripts/synth_vulns.py)."""

from __future__ import annotations

import difflib
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import synth_vulns  # noqa: E402

COUNT = synth_vulns.DEFAULT_COUNT  # what the training script generates


@pytest.fixture(scope="module")
def pairs():
    return synth_vulns.generate(COUNT, seed=0)


def _text_files(root: Path) -> list[str]:
    out = []
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            try:
                out.append(p.read_bytes().decode("utf-8"))
            except UnicodeDecodeError:
                pass
    return out


def test_at_least_2000_distinct_pairs_over_all_eight_cwes(pairs):
    assert len(pairs) == COUNT >= 2000
    assert len({(p.vulnerable, p.patched) for p in pairs}) == COUNT
    assert len({p.vulnerable for p in pairs}) == COUNT  # no program repeated with only its fix changed
    assert all(p.vulnerable != p.patched for p in pairs)
    assert set(Counter(p.cwe for p in pairs)) == set(synth_vulns.CWES)
    for cwe in synth_vulns.CWES:
        shapes = {p.shape for p in pairs if p.cwe == cwe}
        assert len(shapes) >= 12, f"{cwe}: only {sorted(shapes)}"  # many kinds of program, not one template
        assert {p.lang for p in pairs if p.cwe == cwe} == {"py" if cwe in ("cwe-79", "cwe-89") else "c"}


def test_each_pair_is_a_minimal_fix_of_one_program(pairs):
    for p in pairs[::7]:
        a, b = p.vulnerable.splitlines(), p.patched.splitlines()
        sm = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
        changed = sum(max(i2 - i1, j2 - j1) for op, i1, i2, j1, j2 in sm.get_opcodes() if op != "equal")
        assert 1 <= changed <= 14, (p.id, changed)
        assert changed <= 0.5 * len(a), (p.id, changed, len(a))


def test_surrounding_code_varies_in_length(pairs):
    lengths = [len(p.vulnerable.splitlines()) for p in pairs if p.cwe == "cwe-476" and p.shape == "lookup"]
    assert max(lengths) - min(lengths) >= 20


def test_generation_is_seeded():
    a, b, c = synth_vulns.generate(50, seed=0), synth_vulns.generate(50, seed=0), synth_vulns.generate(50, seed=1)
    assert a == b
    assert [p.vulnerable for p in a] != [p.vulnerable for p in c]


def test_held_out_by_shape(pairs):
    train, held = synth_vulns.split(pairs)
    assert len(train) + len(held) == len(pairs) and held and train
    assert not {(p.cwe, p.shape) for p in train} & {(p.cwe, p.shape) for p in held}
    assert {p.cwe for p in held} == set(synth_vulns.CWES)
    for cwe in synth_vulns.CWES:  # two whole shapes per CWE, each with its pairs
        assert len({p.shape for p in held if p.cwe == cwe}) == 2, cwe


def test_programs_are_valid_python_and_c(pairs):
    per_shape = {}
    for p in pairs:
        per_shape.setdefault((p.cwe, p.shape), p)
    gcc = shutil.which("gcc") or shutil.which("cc")
    for p in per_shape.values():
        for text in (p.vulnerable, p.patched):
            if p.lang == "py":
                compile(text, p.id, "exec")
            elif gcc:
                r = subprocess.run([gcc, "-fsyntax-only", "-Wall", "-Wno-unused-function", "-Wno-unused-variable",
                                    "-x", "c", "-"], input=text, capture_output=True, text=True)
                assert r.returncode == 0 and "warning" not in r.stderr, (p.id, r.stderr[:500])


def test_the_overlap_rule_finds_a_shared_window():
    ref = "int a;\nint  b;\n\n  char *long_name_for_a_test = NULL;  // to pass sixty characters\n"
    pair = synth_vulns.SynthPair("x", "cwe-476", "t", "c", "x\nint a;\nint b;\nchar *long_name_for_a_test = NULL; "
                                 "// to pass sixty characters\n", "y\n")
    assert synth_vulns.overlaps([pair], [ref]) == [("x", "int a;\nint b;\nchar *long_name_for_a_test = NULL; // to "
                                                    "pass sixty characters")]
    assert synth_vulns.overlaps([pair], ["}\nreturn 0;\n}\n"]) == []


def test_no_shared_code_with_the_builtin_examples(pairs):
    assert synth_vulns.overlaps(pairs, _text_files(REPO / "assets" / "examples")) == []


@pytest.mark.dataset
def test_no_shared_code_with_secllmholmes(pairs, shared_dataset):
    refs = _text_files(shared_dataset / "datasets")
    assert len(refs) > 100
    assert synth_vulns.overlaps(pairs, refs) == []
