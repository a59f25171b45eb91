"""Entry points: load a SecLLMHolmes checkout or the builtin examples into a :class:`Dataset`.

A path that is missing or not a checkout raises :class:`steertui.errors.DatasetError`; everything
else (missing parts, unreadable, empty or non-UTF-8 files, files without a twin) becomes a
:class:`LoadWarning` on the dataset. Nothing is ever unpickled.
"""

from __future__ import annotations

import os
from pathlib import Path

from steertui import paths
from steertui.engine.data import parts
from steertui.engine.data.model import BUILTIN, DEFAULT_CWE_NAMES, SECLLMHOLMES, Dataset, DataSource
from steertui.engine.data.reader import Collector
from steertui.engine.data.source import ConfigArg, SourceChoice, locate_checkout, resolve_source
from steertui.errors import DatasetError

#: The parts of a checkout, where they live under ``datasets/``, and the scanner for each.
_CHECKOUT_PARTS = (
    ("hand-crafted", parts.scan_hand_crafted),
    ("augmented/trivial", parts.scan_augmented_trivial),
    ("augmented/non-trivial", parts.scan_augmented_non_trivial),
    ("real-world", parts.scan_real_world),
    ("few-shot", parts.scan_few_shot),
)
CWE_DEFINITIONS_FILE = "mitre-cwe-definitions.json"


def load_dataset(path: str | os.PathLike[str] | None = None, *, config: ConfigArg = None) -> Dataset:
    """Load the dataset at ``path``; with None, resolve it (``$STEERTUI_DATASET``, config file, builtin).

    ``config`` is a config file path or a parsed config mapping (default: the user config file).
    """
    choice = resolve_source(path, config=config)
    return load_choice(choice)


def load_choice(choice: SourceChoice) -> Dataset:
    """Load whatever :func:`resolve_source` chose."""
    if choice.path is None:
        return load_builtin(origin=choice.origin, reason=choice.reason)
    return load_checkout(choice.path, origin=choice.origin, reason=choice.reason)


def load_checkout(path: str | os.PathLike[str], *, origin: str = "argument", reason: str = "") -> Dataset:
    """Load every part of a SecLLMHolmes checkout (the folder holding ``datasets/``, or ``datasets/`` itself)."""
    checkout = locate_checkout(path, reason=_reason_note(origin, reason))
    root = checkout.root if checkout.datasets.name == "datasets" else checkout.datasets
    commit = checkout.commit if root == checkout.root else None
    source = DataSource(kind=SECLLMHOLMES, root=str(root), commit=commit, origin=origin,
                        reason=reason or f"path {path}")
    collector = Collector(source=source, root=root, cwe_names=dict(DEFAULT_CWE_NAMES))
    _read_definitions(collector, checkout.datasets / CWE_DEFINITIONS_FILE)
    for rel, scan in _CHECKOUT_PARTS:
        part_dir = checkout.datasets / rel
        if part_dir.is_dir():
            scan(collector, part_dir)
        else:
            collector.warn("missing-part", f"part {rel} is missing from the checkout; nothing loaded from it", part_dir)
    return collector.build()


def load_builtin(*, origin: str = "builtin", reason: str = "builtin examples") -> Dataset:
    """Load the examples shipped with steertui (written for it; not SecLLMHolmes data, not a benchmark)."""
    root = paths.builtin_examples_dir().resolve()
    dataset_dir = root / "dataset"
    if not dataset_dir.is_dir():
        raise DatasetError(f"the builtin examples are missing at {dataset_dir}",
                           "reinstall steertui, or pass --dataset PATH to a SecLLMHolmes checkout")
    source = DataSource(kind=BUILTIN, root=str(root), origin=origin, reason=reason)
    collector = Collector(source=source, root=root, cwe_names=dict(DEFAULT_CWE_NAMES))
    parts.scan_cwe_tree(collector, dataset_dir, part=BUILTIN, id_prefix=BUILTIN,
                        ground_truth_dirs=parts.ground_truth_dirs(root))
    return collector.build()


def _read_definitions(collector: Collector, path: Path) -> None:
    if path.is_file():
        parts.read_cwe_definitions(collector, path)
    else:
        collector.warn("missing-part", f"{CWE_DEFINITIONS_FILE} is missing; builtin CWE names used", path)


def _reason_note(origin: str, reason: str) -> str | None:
    """How the path was chosen, for error messages (``from $STEERTUI_DATASET``)."""
    return {"env": "from $STEERTUI_DATASET", "config": f"from {reason}" if reason else "from the config file",
            "flag": None, "argument": None}.get(origin)
