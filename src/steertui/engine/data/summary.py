"""Counts per part and per CWE, as plain data (the ``steertui data summary --json`` document)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from steertui.engine.data.model import REAL_WORLD, Dataset, Pair, Sample, cwe_sort_key


def _by_cwe(items: list[Sample] | list[Pair]) -> dict[str, int]:
    counts = Counter(item.cwe for item in items)
    return {cwe: counts[cwe] for cwe in sorted(counts, key=cwe_sort_key)}


def summarize_part(dataset: Dataset, part: str) -> dict[str, Any]:
    """``files``, ``pairs``, ``by_cwe`` (pairs per CWE) and extras for one part."""
    samples = [s for s in dataset.samples if s.part == part]
    pairs = [p for p in dataset.pairs if p.part == part]
    languages = Counter(s.language for s in samples)
    data: dict[str, Any] = {
        "files": len(samples),
        "pairs": len(pairs),
        "by_cwe": _by_cwe(pairs),
        "files_by_cwe": _by_cwe(samples),
        "languages": dict(sorted(languages.items())),
        "unpaired": [s.id for s in dataset.unpaired if s.part == part],
        "caveats": {s.id: list(s.caveats) for s in samples if s.caveats},
    }
    if part == REAL_WORLD:
        projects = Counter(p.vulnerable.meta_dict.get("project", "?") for p in pairs)
        data["projects"] = dict(sorted(projects.items()))
    return data


def summarize(dataset: Dataset) -> dict[str, Any]:
    """``{"source": label, "parts": {part: {"files", "pairs", "by_cwe", ...}}, ...}``; only present parts appear."""
    return {
        "source": dataset.source.label,
        "source_origin": dataset.source.origin,
        "source_reason": dataset.source.reason,
        "benchmark": dataset.source.is_benchmark,
        "parts": {part: summarize_part(dataset, part) for part in dataset.parts},
        "warnings": [str(w) for w in dataset.warnings],
    }
