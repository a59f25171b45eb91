"""The SecLLMHolmes loader on the shared copy (exact counts) and on fixture trees (augmented layouts)."""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import pickle
from pathlib import Path

import pytest
from fixtures_data import isolate, make_full_checkout, make_non_trivial, make_trivial, write

from steertui.engine.data import (
    PARTS,
    Dataset,
    Pair,
    Sample,
    load_builtin,
    load_dataset,
    summarize,
)
from steertui.engine.data.parts import A6_CWE787_CAVEAT
from steertui.errors import DatasetError

CWES = ["cwe-22", "cwe-77", "cwe-79", "cwe-89", "cwe-190", "cwe-416", "cwe-476", "cwe-787"]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def shared(shared_dataset: Path) -> Dataset:
    return load_dataset(shared_dataset)


def _part(dataset: Dataset, part: str) -> tuple[list[Sample], list[Pair]]:
    return ([s for s in dataset.samples if s.part == part], [p for p in dataset.pairs if p.part == part])


# -- the shared copy ----------------------------------------------------------------------------------
def test_hand_crafted_counts(shared: Dataset) -> None:
    samples, pairs = _part(shared, "hand-crafted")
    assert len(samples) == 48
    assert len(pairs) == 24
    by_cwe = summarize(shared)["parts"]["hand-crafted"]["by_cwe"]
    assert by_cwe == {cwe: 3 for cwe in CWES}
    assert {s.language for s in samples if s.cwe in ("cwe-79", "cwe-89")} == {"python"}
    assert {s.language for s in samples if s.cwe not in ("cwe-79", "cwe-89")} == {"c"}


def test_real_world_counts(shared: Dataset) -> None:
    samples, pairs = _part(shared, "real-world")
    assert len(samples) == 30
    assert len(pairs) == 15
    part = summarize(shared)["parts"]["real-world"]
    assert part["projects"] == {"gpac": 4, "libtiff": 5, "linux": 5, "pjsip": 1}
    assert part["by_cwe"] == {"cwe-190": 4, "cwe-416": 1, "cwe-476": 4, "cwe-787": 6}
    pair = shared.pair("real-world/libtiff/CVE-2023-26966/pair")
    assert pair.vulnerable.id == "real-world/libtiff/CVE-2023-26966/vuln"
    assert pair.patched.id == "real-world/libtiff/CVE-2023-26966/patch"
    assert pair.cwe == "cwe-787"
    assert pair.vulnerable.meta_dict["project"] == "libtiff"
    assert "CVE-2023-26966" in dict(pair.vulnerable.texts)["cve-description"]


def test_few_shot_counts(shared: Dataset) -> None:
    samples, pairs = _part(shared, "few-shot")
    assert len(samples) == 16
    assert len(pairs) == 8
    pair = shared.pair("few-shot/cwe-787/pair")
    assert (pair.vulnerable.id, pair.patched.id) == ("few-shot/cwe-787", "few-shot/cwe-787-p")
    assert pair.vulnerable.ground_truth
    assert "step-by-step-reasoning" in dict(pair.vulnerable.texts)


def test_nothing_unpaired_and_only_augmented_missing(shared: Dataset) -> None:
    assert shared.unpaired == ()
    assert shared.parts == ("hand-crafted", "real-world", "few-shot")
    assert {w.code for w in shared.warnings} == {"missing-part"}
    assert sorted(w.path for w in shared.warnings) == ["datasets/augmented/non-trivial", "datasets/augmented/trivial"]


def test_sample_fields_and_sha256(shared: Dataset, shared_dataset: Path) -> None:
    sample = shared.sample("hand-crafted/CWE-787/p_1")
    path = shared_dataset / "datasets" / "hand-crafted" / "dataset" / "CWE-787" / "p_1.c"
    assert sample.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert Path(sample.source_path) == path.resolve()
    assert sample.rel_path == "datasets/hand-crafted/dataset/CWE-787/p_1.c"
    assert (sample.part, sample.cwe, sample.language, sample.label, sample.label_int) == (
        "hand-crafted", "cwe-787", "c", "patched", 0)
    assert sample.code == path.read_text(encoding="utf-8")
    gt_path = shared_dataset / "datasets" / "hand-crafted" / "ground-truth" / "CWE-787" / "p_1.txt"
    assert sample.ground_truth == gt_path.read_text(encoding="utf-8").strip()
    assert sample.source == f"SecLLMHolmes @ {shared_dataset.resolve()}"
    assert all(s.ground_truth for s in shared.samples)
    json.dumps(sample.to_dict())


def test_cwe_names_from_mitre_json(shared: Dataset, shared_dataset: Path) -> None:
    definitions = json.loads((shared_dataset / "datasets" / "mitre-cwe-definitions.json").read_text())
    assert shared.cwe_names["cwe-787"] == definitions["cwe-787"].split(":")[0] == "Out-of-bounds Write"
    assert shared.cwe_definitions["cwe-89"] == definitions["cwe-89"].strip()
    assert shared.sample("hand-crafted/CWE-89/1").cwe_name == "SQL Injection"


def test_datasets_folder_itself_is_accepted(shared: Dataset, shared_dataset: Path) -> None:
    again = load_dataset(shared_dataset / "datasets")
    assert again.source.label == shared.source.label
    assert [s.sha256 for s in again.samples] == [s.sha256 for s in shared.samples]


def test_lookup_and_select(shared: Dataset) -> None:
    assert isinstance(shared.find("hand-crafted/CWE-787/pair-2"), Pair)
    assert isinstance(shared.find("hand-crafted/CWE-787/2"), Sample)
    # as `data summary` writes the CWE: the one id that differs only in case
    assert shared.find("hand-crafted/cwe-787/pair-2") is shared.find("hand-crafted/CWE-787/pair-2")
    assert shared.find("Hand-Crafted/cwe-787/2/") is shared.find("hand-crafted/CWE-787/2")
    assert shared.pair_of("hand-crafted/CWE-787/p_2").id == "hand-crafted/CWE-787/pair-2"
    assert shared.pair("hand-crafted/CWE-787/p_2").id == "hand-crafted/CWE-787/pair-2"
    with pytest.raises(DatasetError, match="did you mean.*hand-crafted/CWE-787/pair-3"):
        shared.find("hand-crafted/CWE-787/pair-33")
    subset = shared.select(parts=["hand-crafted"], cwes=["CWE-787", 89])
    assert {p.cwe for p in subset.pairs} == {"cwe-787", "cwe-89"}
    assert len(subset.pairs) == 6 and len(subset.samples) == 12
    assert subset.source == shared.source


# -- builtin examples ---------------------------------------------------------------------------------
def test_builtin_examples() -> None:
    dataset = load_builtin()
    assert dataset.source.label == "builtin examples"
    assert not dataset.source.is_benchmark
    assert dataset.warnings == () and dataset.unpaired == ()
    counts = summarize(dataset)["parts"]["builtin"]["by_cwe"]
    assert set(counts) == set(CWES) and all(n >= 1 for n in counts.values())
    pair = dataset.pair("builtin/CWE-787/pair-1")
    assert (pair.vulnerable.id, pair.patched.id) == ("builtin/CWE-787/1", "builtin/CWE-787/p_1")
    assert all(s.ground_truth and s.source == "builtin examples" for s in dataset.samples)


# -- augmented fixture trees --------------------------------------------------------------------------
def test_augmented_trivial_layout(tmp_path: Path) -> None:
    datasets = tmp_path / "checkout" / "datasets"
    make_trivial(datasets)
    dataset = load_dataset(datasets.parent)
    samples, pairs = _part(dataset, "augmented-trivial")
    assert len(samples) == 12 and len(pairs) == 6
    assert summarize(dataset)["parts"]["augmented-trivial"]["by_cwe"] == {"cwe-89": 2, "cwe-787": 4}
    sample = dataset.sample("augmented-trivial/A1/CWE-89/1")
    assert sample.ground_truth == "ground truth for trivial A1 CWE-89 1"
    assert sample.ground_truth_path.endswith("A1/ground_truth/CWE-89/1.txt")
    assert sample.meta_dict["augmentation"] == "A1"
    assert dataset.pair("augmented-trivial/A3/CWE-787/pair-2").patched.id == "augmented-trivial/A3/CWE-787/p_2"
    assert dataset.sample("augmented-trivial/A3/CWE-89/p_1").ground_truth == ""
    assert any(w.code == "no-ground-truth" and "augmented-trivial: 6" in w.message for w in dataset.warnings)
    assert not any("embeddings" in s.source_path for s in dataset.samples)


def test_augmented_non_trivial_layout(tmp_path: Path) -> None:
    datasets = tmp_path / "checkout" / "datasets"
    make_non_trivial(datasets)
    dataset = load_dataset(datasets.parent)
    samples, pairs = _part(dataset, "augmented-non-trivial")
    assert len(samples) == 13
    assert sorted(p.id for p in pairs) == [
        "augmented-non-trivial/A1/A1_0/CWE-416/pair-1",
        "augmented-non-trivial/A1/A1_1/CWE-787/pair-1",
        "augmented-non-trivial/A1/A1_1/CWE-787/pair-2",
        "augmented-non-trivial/A6/A6_1/CWE-77/pair-1",
        "augmented-non-trivial/A6/A6_1/CWE-787/pair-1",
    ]
    assert sorted(s.id for s in dataset.unpaired) == [
        "augmented-non-trivial/A1/A1_0/CWE-787/2",
        "augmented-non-trivial/A2/A2_1/CWE-79/p_1",
        "augmented-non-trivial/A6/A6_0/CWE-787/p_1",
    ]
    assert any(w.code == "no-twin" and "augmented-non-trivial: 3" in w.message for w in dataset.warnings)
    meta = dataset.sample("augmented-non-trivial/A1/A1_1/CWE-787/p_2").meta_dict
    assert (meta["augmentation"], meta["variant"], meta["stage"]) == ("A1", "A1_1", "after")


def test_a6_cwe787_patched_files_are_flagged(tmp_path: Path) -> None:
    datasets = tmp_path / "checkout" / "datasets"
    make_non_trivial(datasets)
    dataset = load_dataset(datasets.parent)
    flagged = sorted(s.id for s in dataset.samples if s.caveats)
    assert flagged == ["augmented-non-trivial/A6/A6_0/CWE-787/p_1", "augmented-non-trivial/A6/A6_1/CWE-787/p_1"]
    sample = dataset.sample("augmented-non-trivial/A6/A6_1/CWE-787/p_1")
    assert sample.caveats == (A6_CWE787_CAVEAT,)
    assert sample.label == "patched" and sample.label_text == "patched (caveat!)"
    pair = dataset.pair("augmented-non-trivial/A6/A6_1/CWE-787/pair-1")
    assert pair.caveats and sample.id in pair.caveats[0]
    assert dataset.select(exclude_caveats=True).get(pair.id) is None
    summary = summarize(dataset)["parts"]["augmented-non-trivial"]["caveats"]
    assert set(summary) == set(flagged)
    assert not dataset.sample("augmented-non-trivial/A6/A6_1/CWE-77/p_1").caveats


def test_full_fixture_checkout_has_every_part(tmp_path: Path) -> None:
    dataset = load_dataset(make_full_checkout(tmp_path / "checkout"))
    assert dataset.parts == tuple(p for p in PARTS if p != "builtin")
    assert not [w for w in dataset.warnings if w.code == "missing-part"]
    assert dataset.cwe_names["cwe-787"] == "Out-of-bounds Write"
    assert dataset.cwe_names["cwe-416"] == "Use After Free"  # not in the fixture json: builtin table


def test_pickles_and_embeddings_are_never_opened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_full_checkout(tmp_path / "checkout")
    opened: list[str] = []
    real_open, real_read_bytes = builtins.open, Path.read_bytes

    def spy_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    def spy_read_bytes(self: Path) -> bytes:
        opened.append(str(self))
        return real_read_bytes(self)

    def no_unpickling(*args: object, **kwargs: object) -> None:
        raise AssertionError("the loader must never unpickle")

    monkeypatch.setattr(builtins, "open", spy_open)
    monkeypatch.setattr(io, "open", spy_open)
    monkeypatch.setattr(Path, "read_bytes", spy_read_bytes)
    monkeypatch.setattr(pickle, "load", no_unpickling)
    monkeypatch.setattr(pickle, "loads", no_unpickling)
    dataset = load_dataset(root)
    inside = [p for p in opened if str(root) in p]
    assert inside, "the spy saw no reads"
    assert not [p for p in inside if "embeddings" in Path(p).parts]
    assert not [p for p in inside if Path(p).suffix == ""]
    assert len(dataset.samples) > 0


# -- bad input ----------------------------------------------------------------------------------------
def test_missing_path_is_a_dataset_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nowhere")


def test_file_and_non_checkout_are_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="is a file"):
        load_dataset(write(tmp_path / "file.txt", "x"))
    write(tmp_path / "random" / "notes.md", "hello")
    with pytest.raises(DatasetError, match="not a SecLLMHolmes checkout"):
        load_dataset(tmp_path / "random")
    (tmp_path / "empty" / "datasets").mkdir(parents=True)
    with pytest.raises(DatasetError, match="not a SecLLMHolmes checkout"):
        load_dataset(tmp_path / "empty")


def test_checkout_with_missing_parts_warns(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    write(root / "datasets" / "hand-crafted" / "dataset" / "CWE-787" / "1.c", "int a;\n")
    write(root / "datasets" / "hand-crafted" / "dataset" / "CWE-787" / "p_1.c", "int b;\n")
    dataset = load_dataset(root)
    missing = {w.path for w in dataset.warnings if w.code == "missing-part"}
    assert missing == {"datasets/augmented/trivial", "datasets/augmented/non-trivial", "datasets/real-world",
                       "datasets/few-shot", "datasets/mitre-cwe-definitions.json"}
    assert len(dataset.pairs) == 1
    assert any(w.code == "no-ground-truth" for w in dataset.warnings)


def test_bad_files_warn_and_never_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "checkout" / "datasets" / "hand-crafted" / "dataset" / "CWE-787"
    write(folder / "1.c", b"int x = 1; /* caf\xe9 in latin-1 */\n")  # not UTF-8
    write(folder / "p_1.c", "int x = 0;\n")
    write(folder / "2.c", "")  # empty
    write(folder / "p_2.c", "int y = 0;\n")
    write(folder / "3.c", "int z = 1;\n")  # no twin
    (folder / "4.c").symlink_to(folder / "missing-target.c")  # unreadable: dangling link
    write(folder / "p_4.c", "int w = 0;\n")
    write(folder / "5.c", "int v = 1;\n")  # unreadable: permission (simulated, tests may run as root)
    write(folder / "p_5.c", "int v = 0;\n")
    real_read_bytes = Path.read_bytes

    def deny(self: Path) -> bytes:
        if self.name == "5.c":
            raise PermissionError(13, "Permission denied", str(self))
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", deny)
    dataset = load_dataset(tmp_path / "checkout")
    codes = [(w.code, w.path) for w in dataset.warnings]
    rel = "datasets/hand-crafted/dataset/CWE-787/"
    assert ("not-utf8", rel + "1.c") in codes
    assert ("empty-file", rel + "2.c") in codes
    assert ("unreadable", rel + "4.c") in codes
    assert ("unreadable", rel + "5.c") in codes
    assert ("no-twin", rel + "3.c") in codes
    assert dataset.pairs == ()
    assert sorted(s.name for s in dataset.unpaired) == ["3", "p_1", "p_2", "p_4", "p_5"]
    assert all(str(w) for w in dataset.warnings)


def test_bad_json_and_unknown_cve(tmp_path: Path) -> None:
    root = make_full_checkout(tmp_path / "checkout")
    write(root / "datasets" / "mitre-cwe-definitions.json", "{not json")
    write(root / "datasets" / "real-world" / "demo" / "CVE-2000-0003" / "vuln.c", "int a;\n")
    write(root / "datasets" / "real-world" / "demo" / "CVE-2000-0003" / "patch.c", "int b;\n")
    dataset = load_dataset(root)
    codes = {w.code for w in dataset.warnings}
    assert {"bad-json", "unknown-cwe"} <= codes
    assert dataset.cwe_names["cwe-787"] == "Out-of-bounds Write"
    assert dataset.pair("real-world/demo/CVE-2000-0003/pair").cwe == "unknown"
