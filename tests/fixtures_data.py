"""Builders for small SecLLMHolmes-shaped trees in tmp_path (the augmented part is not in the shared copy).

The code written here is synthetic filler, just enough to tell files apart.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

PICKLE_LIKE = b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00]\x94(G?\xf0\x00\x00\x00\x00\x00\x00e."


def isolate(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No user config, no $STEERTUI_DATASET: every source decision in a test is explicit."""
    config = tmp_path / "user-config" / "config.toml"
    monkeypatch.setenv("STEERTUI_CONFIG", str(config))
    monkeypatch.setenv("STEERTUI_DATA_DIR", str(tmp_path / "user-data"))
    monkeypatch.delenv("STEERTUI_DATASET", raising=False)
    monkeypatch.delenv("STEERTUI_DATASET_URL", raising=False)
    return config


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def c_code(tag: str) -> str:
    return f"/* {tag} */\nint main(void)\n{{\n    return 0;\n}}\n"


def py_code(tag: str) -> str:
    return f"# {tag}\ndef handler():\n    return 0\n"


def code_for(cwe: str, stem: str, tag: str) -> tuple[str, str]:
    """File name and content for a stem in a CWE folder (Python for 79/89, C otherwise)."""
    if cwe in ("CWE-79", "CWE-89"):
        return f"{stem}.py", py_code(tag)
    return f"{stem}.c", c_code(tag)


def fill_cwe_tree(dataset_dir: Path, gt_dir: Path | None, layout: dict[str, list[str]], tag: str) -> int:
    """Write ``dataset_dir/CWE/<stem>.<ext>`` (+ ground truth) for each stem; returns the number of code files."""
    count = 0
    for cwe, stems in layout.items():
        for stem in stems:
            name, code = code_for(cwe, stem, f"{tag} {cwe} {stem}")
            write(dataset_dir / cwe / name, code)
            count += 1
            if gt_dir is not None:
                write(gt_dir / cwe / f"{stem}.txt", f"ground truth for {tag} {cwe} {stem}\n")
    return count


def make_hand_crafted(datasets: Path, layout: dict[str, list[str]] | None = None) -> None:
    layout = layout or {"CWE-787": ["1", "p_1"], "CWE-89": ["1", "p_1"]}
    fill_cwe_tree(datasets / "hand-crafted" / "dataset", datasets / "hand-crafted" / "ground-truth", layout, "hc")


def make_trivial(datasets: Path) -> None:
    """A1 with ``ground_truth/`` (underscore), A3 without ground truth; both with a pickle-holding ``embeddings/``."""
    layout = {"CWE-787": ["1", "2", "p_1", "p_2"], "CWE-89": ["1", "p_1"]}
    for aug, with_gt in (("A1", True), ("A3", False)):
        base = datasets / "augmented" / "trivial" / aug
        fill_cwe_tree(base / "dataset", base / "ground_truth" if with_gt else None, layout, f"trivial {aug}")
        for cwe, stems in layout.items():
            for stem in stems:
                write(base / "embeddings" / cwe / stem, PICKLE_LIKE)
        write(base / "embeddings" / "CWE-787" / "3.c", c_code("must never be read: inside embeddings/"))


def make_non_trivial(datasets: Path) -> None:
    """``A{k}_0`` / ``A{k}_1`` folders, some one-sided, and the A6 CWE-787 caveat case."""
    root = datasets / "augmented" / "non-trivial"
    trees = {
        ("A1", "A1_0"): {"CWE-416": ["1", "p_1"], "CWE-787": ["2"]},
        ("A1", "A1_1"): {"CWE-787": ["1", "2", "p_1", "p_2"]},
        ("A2", "A2_1"): {"CWE-79": ["p_1"]},
        ("A6", "A6_0"): {"CWE-787": ["p_1"]},
        ("A6", "A6_1"): {"CWE-787": ["1", "p_1"], "CWE-77": ["1", "p_1"]},
    }
    for (aug, variant), layout in trees.items():
        base = root / aug / variant
        fill_cwe_tree(base / "dataset", base / "ground-truth", layout, f"non-trivial {variant}")
        write(base / "embeddings" / next(iter(layout)) / "1", PICKLE_LIKE)


def make_real_world(datasets: Path) -> None:
    """Two CVEs of one project, with the extension-less pickle files upstream ships next to them."""
    base = datasets / "real-world"
    details = {"demo": {"CVE-2000-0001": {"cwe": "cwe-787", "cwe_name": "Out-of-Bound Write", "file_path": "a.c"},
                        "CVE-2000-0002": {"cwe": "cwe-476", "cwe_name": "NULL Pointer Deref", "file_path": "b.c"}}}
    write(base / "cve_details.json", json.dumps(details))
    for cve in details["demo"]:
        folder = base / "demo" / cve
        for side in ("vuln", "patch"):
            write(folder / f"{side}.c", c_code(f"{cve} {side}"))
            write(folder / f"{side}.txt", f"why {cve} {side}\n")
            write(folder / side, PICKLE_LIKE)
        write(folder / "README.md", f"# {cve}\n")


def make_few_shot(datasets: Path) -> None:
    base = datasets / "few-shot"
    for stem in ("cwe-787", "cwe-787-p"):
        write(base / "examples" / f"{stem}.c", c_code(stem))
        write(base / "reasoning" / f"{stem}.txt", f"reasoning {stem}\n")
        write(base / "step-by-step-reasoning" / f"{stem}.txt", f"steps {stem}\n")


def make_full_checkout(root: Path) -> Path:
    """Every part, in small: returns the checkout root (the folder holding ``datasets/``)."""
    datasets = root / "datasets"
    make_hand_crafted(datasets)
    make_trivial(datasets)
    make_non_trivial(datasets)
    make_real_world(datasets)
    make_few_shot(datasets)
    write(datasets / "mitre-cwe-definitions.json",
          json.dumps({"cwe-787": "Out-of-bounds Write: writes past the end.", "cwe-89": "SQL Injection: bad."}))
    return root


def git(*args: str, cwd: Path | None = None) -> str:
    """Run git with a throw-away identity; returns stdout."""
    done = subprocess.run(["git", "-c", "user.name=steertui-test", "-c", "user.email=test@example.invalid",
                           "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
                          cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def make_git_checkout(root: Path) -> str:
    """A real git repository holding a small checkout; returns its commit."""
    make_hand_crafted(root / "datasets")
    git("init", "-q", str(root))
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "fixture", cwd=root)
    return git("rev-parse", "HEAD", cwd=root)


def build_tokenizer() -> Any:
    """The demo model's tokenizer when shipped, else a tiny byte-level BPE trained here on the builtin examples."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from steertui.engine.data import load_builtin
    from steertui.paths import demo_model_dir

    shipped = demo_model_dir() / "tokenizer.json"
    if shipped.is_file():
        return Tokenizer.from_file(str(shipped))
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>"])
    tokenizer.train_from_iterator([s.code for s in load_builtin().samples], trainer=trainer)
    return tokenizer
