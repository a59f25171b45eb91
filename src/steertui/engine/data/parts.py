"""One scanner per part of a SecLLMHolmes checkout (and the builtin examples, which share the hand-crafted layout).

Every scanner walks only the folders the layout names (``dataset/``, ``ground-truth/``, ...), never
``embeddings/``, and opens only files with a code or ``.txt``/``.md``/``.json`` extension.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from steertui.engine.data.model import (
    AUGMENTED_NON_TRIVIAL,
    AUGMENTED_TRIVIAL,
    FEW_SHOT,
    HAND_CRAFTED,
    PATCHED,
    REAL_WORLD,
    VULNERABLE,
    Sample,
    normalize_cwe,
)
from steertui.engine.data.reader import CODE_LANGUAGES, Collector, code_files, subdirs

#: What each augmentation does, as SecLLMHolmes describes it.
TRIVIAL_AUGMENTATIONS = {
    "A1": "random parameter names", "A2": "random function name", "A3": "dead helper appended",
    "A4": "dead code prepended as a comment", "A5": "extra whitespace", "A6": "useless helper call",
    "A7": "doubled newlines",
}
NON_TRIVIAL_AUGMENTATIONS = {
    "A1": "a variable renamed to `buffer`", "A2": "a patched function renamed to `vulnerable_func`",
    "A3": "a vulnerable function renamed to `non_vulnerable_func`",
    "A4": "a safe-looking helper using strcpy/strcat added", "A5": "a misapplied sanitizer added (still vulnerable)",
    "A6": "a safe-sounding macro #defined to an unsafe call",
}
A6_CWE787_CAVEAT = ("known label caveat: SecLLMHolmes names this file p_* (patched), but its non-trivial A6 "
                    "CWE-787 files are in fact vulnerable (an unsafe copy hides behind a safe-sounding name); "
                    "do not score against the file-name label")

_CWE_DIR_RE = re.compile(r"^CWE-\d+$", re.IGNORECASE)
_AUG_DIR_RE = re.compile(r"^A\d+$")
GROUND_TRUTH_DIRS = ("ground-truth", "ground_truth")
#: cve_details.json keys kept in a real-world sample's ``meta`` (upstream's CWE name kept apart from ``cwe_name``).
_CVE_META_KEYS = {"file_path": "upstream_file", "cwe_name": "cve_details_cwe_name", "loc_before": "loc_before",
                  "loc_after": "loc_after", "found": "found", "fixed": "fixed"}

CaveatRule = Callable[[str, str], tuple[str, ...]]  # (cwe, label) -> caveats


def no_caveats(cwe: str, label: str) -> tuple[str, ...]:
    return ()


def a6_caveats(cwe: str, label: str) -> tuple[str, ...]:
    """The non-trivial A6 CWE-787 ``p_*`` files are vulnerable despite their name."""
    return (A6_CWE787_CAVEAT,) if cwe == "cwe-787" and label == PATCHED else ()


# -- CWE definitions ---------------------------------------------------------------------------------
def read_cwe_definitions(collector: Collector, path: Path) -> None:
    """Fill the collector's CWE names and definitions from ``mitre-cwe-definitions.json`` (names keep the defaults if bad)."""
    text = collector.read_optional(path)
    if not text:
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        collector.warn("bad-json", f"{collector.rel(path)} is not valid JSON ({err.msg}); builtin CWE names used", path)
        return
    if not isinstance(data, dict):
        collector.warn("bad-json", f"{collector.rel(path)} is not a JSON object; builtin CWE names used", path)
        return
    for key, value in data.items():
        if isinstance(value, str):
            cwe = normalize_cwe(key)
            collector.cwe_definitions[cwe] = value.strip()
            name = value.split(":", 1)[0].strip()
            if name:
                collector.cwe_names[cwe] = name


# -- the hand-crafted layout (also builtin, augmented variants) --------------------------------------
def scan_cwe_tree(collector: Collector, folder: Path, *, part: str, id_prefix: str,
                  ground_truth_dirs: Sequence[Path], meta: tuple[tuple[str, str], ...] = (),
                  caveats: CaveatRule = no_caveats) -> None:
    """``folder/CWE-N/{N,p_N}.ext`` with ground truth at ``<gt dir>/CWE-N/<stem>.txt``.

    A stem starting with ``p_`` is patched and pairs with the stem without it; any other stem is vulnerable.
    """
    for cwe_dir in subdirs(folder):
        if not _CWE_DIR_RE.match(cwe_dir.name):
            collector.warn("unexpected-folder", f"{collector.rel(cwe_dir)} is not a CWE-N folder; skipped", cwe_dir)
            continue
        cwe = normalize_cwe(cwe_dir.name)
        for path in code_files(cwe_dir):
            stem = path.stem
            label = PATCHED if stem.startswith("p_") else VULNERABLE
            key = stem[2:] if label == PATCHED else stem
            gt_path = _first_existing([d / cwe_dir.name / f"{stem}.txt" for d in ground_truth_dirs])
            base = f"{id_prefix}/{cwe_dir.name}"
            pair_id = f"{base}/pair-{key}"
            _add_sample(collector, path, sample_id=f"{base}/{stem}", part=part, cwe=cwe, label=label,
                        gt_path=gt_path, meta=meta, caveats=caveats(cwe, label), pair_id=pair_id)


def _first_existing(candidates: Sequence[Path]) -> Path | None:
    """The first candidate that exists, else the first one (so its absence is counted), else None."""
    for cand in candidates:
        if cand.is_file():
            return cand
    return candidates[0] if candidates else None


def _add_sample(collector: Collector, path: Path, *, sample_id: str, part: str, cwe: str, label: str,
                gt_path: Path | None, pair_id: str | None, meta: tuple[tuple[str, str], ...] = (),
                texts: tuple[tuple[str, str], ...] = (), caveats: tuple[str, ...] = ()) -> None:
    read = collector.read_code(path)
    if read is None:
        return
    code, sha = read
    ground_truth, gt_used = collector.read_text(gt_path, part) if gt_path is not None else ("", None)
    collector.add(Sample(
        id=sample_id, part=part, cwe=cwe, cwe_name=collector.cwe_name(cwe),
        language=CODE_LANGUAGES[path.suffix.lower()], label=label, code=code, ground_truth=ground_truth,
        source_path=str(path), rel_path=collector.rel(path), sha256=sha, source=collector.source.label,
        ground_truth_path=gt_used, meta=meta, texts=tuple((k, v) for k, v in texts if v), caveats=caveats,
    ), pair_id)


def ground_truth_dirs(folder: Path) -> list[Path]:
    """``ground-truth/`` and ``ground_truth/`` under ``folder`` (the trivial augmentations use the underscore)."""
    return [folder / name for name in GROUND_TRUTH_DIRS]


def scan_hand_crafted(collector: Collector, part_dir: Path) -> None:
    if not _require(collector, part_dir / "dataset", HAND_CRAFTED):
        return
    scan_cwe_tree(collector, part_dir / "dataset", part=HAND_CRAFTED, id_prefix=HAND_CRAFTED,
                  ground_truth_dirs=ground_truth_dirs(part_dir))


def _require(collector: Collector, folder: Path, part: str) -> bool:
    if folder.is_dir():
        return True
    collector.warn("missing-part", f"{part}: folder {collector.rel(folder)} is missing; nothing loaded from it", folder)
    return False


# -- augmented ---------------------------------------------------------------------------------------
def scan_augmented_trivial(collector: Collector, part_dir: Path) -> None:
    """``trivial/A{k}/{dataset,ground_truth}/CWE-N/...``."""
    for aug_dir in _augmentation_dirs(collector, part_dir):
        if not _require(collector, aug_dir / "dataset", AUGMENTED_TRIVIAL):
            continue
        meta = (("augmentation", aug_dir.name),
                ("augmentation_kind", TRIVIAL_AUGMENTATIONS.get(aug_dir.name, "unknown")))
        scan_cwe_tree(collector, aug_dir / "dataset", part=AUGMENTED_TRIVIAL,
                      id_prefix=f"{AUGMENTED_TRIVIAL}/{aug_dir.name}",
                      ground_truth_dirs=ground_truth_dirs(aug_dir), meta=meta)


def scan_augmented_non_trivial(collector: Collector, part_dir: Path) -> None:
    """``non-trivial/A{k}/A{k}_{0,1}/{dataset,ground-truth}/CWE-N/...``; ``_0`` before, ``_1`` after the augmentation."""
    for aug_dir in _augmentation_dirs(collector, part_dir):
        rule = a6_caveats if aug_dir.name == "A6" else no_caveats
        for variant in subdirs(aug_dir):
            if not re.fullmatch(rf"{aug_dir.name}_[01]", variant.name):
                collector.warn("unexpected-folder", f"{collector.rel(variant)} is not {aug_dir.name}_0 or "
                                                    f"{aug_dir.name}_1; skipped", variant)
                continue
            if not _require(collector, variant / "dataset", AUGMENTED_NON_TRIVIAL):
                continue
            meta = (("augmentation", aug_dir.name),
                    ("augmentation_kind", NON_TRIVIAL_AUGMENTATIONS.get(aug_dir.name, "unknown")),
                    ("variant", variant.name), ("stage", "after" if variant.name.endswith("_1") else "before"))
            scan_cwe_tree(collector, variant / "dataset", part=AUGMENTED_NON_TRIVIAL,
                          id_prefix=f"{AUGMENTED_NON_TRIVIAL}/{aug_dir.name}/{variant.name}",
                          ground_truth_dirs=ground_truth_dirs(variant), meta=meta, caveats=rule)


def _augmentation_dirs(collector: Collector, part_dir: Path) -> list[Path]:
    found = []
    for folder in subdirs(part_dir):
        if _AUG_DIR_RE.match(folder.name):
            found.append(folder)
        else:
            collector.warn("unexpected-folder", f"{collector.rel(folder)} is not an A{{k}} folder; skipped", folder)
    if not found:
        collector.warn("missing-part", f"{collector.rel(part_dir)} holds no A{{k}} folders", part_dir)
    return found


# -- real-world --------------------------------------------------------------------------------------
def scan_real_world(collector: Collector, part_dir: Path) -> None:
    """``real-world/<project>/<CVE>/{vuln,patch}.c`` with ``{vuln,patch}.txt``, README.md and ``cve_details.json``."""
    details = _read_cve_details(collector, part_dir / "cve_details.json")
    seen: set[tuple[str, str]] = set()
    for project in subdirs(part_dir):
        for cve_dir in subdirs(project):
            seen.add((project.name, cve_dir.name))
            _scan_cve(collector, project.name, cve_dir, details.get(project.name, {}).get(cve_dir.name))
    for project, cves in details.items():
        for cve in cves:
            if (project, cve) not in seen:
                collector.warn("missing-file", f"{REAL_WORLD}: {project}/{cve} is listed in cve_details.json "
                                               "but its folder is missing", part_dir / project / cve)


def _read_cve_details(collector: Collector, path: Path) -> dict[str, dict[str, dict[str, Any]]]:
    if not path.is_file():
        collector.warn("missing-file", f"{REAL_WORLD}: {collector.rel(path)} is missing; CWE ids unknown", path)
        return {}
    text = collector.read_optional(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        collector.warn("bad-json", f"{collector.rel(path)} is not valid JSON ({err.msg}); CWE ids unknown", path)
        return {}
    if not isinstance(data, dict):
        return {}
    return {p: {c: d for c, d in v.items() if isinstance(d, dict)} for p, v in data.items() if isinstance(v, dict)}


def _scan_cve(collector: Collector, project: str, cve_dir: Path, detail: dict[str, Any] | None) -> None:
    if detail is None or not detail.get("cwe"):
        collector.warn("unknown-cwe", f"{REAL_WORLD}: {project}/{cve_dir.name} has no entry in cve_details.json; "
                                      "CWE set to 'unknown'", cve_dir)
        detail = detail or {}
    cwe = normalize_cwe(str(detail.get("cwe", "unknown")))
    base = f"{REAL_WORLD}/{project}/{cve_dir.name}"
    meta = (("project", project), ("cve", cve_dir.name)) + tuple(
        (_CVE_META_KEYS[key], str(detail[key])) for key in _CVE_META_KEYS if key in detail)
    readme = collector.read_optional(cve_dir / "README.md")
    files = {p.stem: p for p in code_files(cve_dir)}
    for stem, label in (("vuln", VULNERABLE), ("patch", PATCHED)):
        path = files.get(stem)
        if path is None:
            collector.warn("missing-file", f"{base}: no {stem}.c (only code files with an extension are read)", cve_dir)
            continue
        _add_sample(collector, path, sample_id=f"{base}/{stem}", part=REAL_WORLD, cwe=cwe, label=label,
                    gt_path=cve_dir / f"{stem}.txt", pair_id=f"{base}/pair", meta=meta,
                    texts=(("cve-description", readme),))


# -- few-shot ----------------------------------------------------------------------------------------
def scan_few_shot(collector: Collector, part_dir: Path) -> None:
    """``few-shot/examples/cwe-N{,-p}.ext`` with ``reasoning/`` (ground truth) and ``step-by-step-reasoning/``."""
    examples = part_dir / "examples"
    if not _require(collector, examples, FEW_SHOT):
        return
    for path in code_files(examples):
        stem = path.stem
        label = PATCHED if stem.endswith("-p") else VULNERABLE
        key = stem[:-2] if label == PATCHED else stem
        if not key.lower().startswith("cwe"):
            collector.warn("unexpected-file", f"{collector.rel(path)} is not named cwe-N or cwe-N-p; skipped", path)
            continue
        steps = collector.read_optional(part_dir / "step-by-step-reasoning" / f"{stem}.txt")
        _add_sample(collector, path, sample_id=f"{FEW_SHOT}/{stem}", part=FEW_SHOT, cwe=normalize_cwe(key),
                    label=label, gt_path=part_dir / "reasoning" / f"{stem}.txt", pair_id=f"{FEW_SHOT}/{key}/pair",
                    texts=(("step-by-step-reasoning", steps),))
