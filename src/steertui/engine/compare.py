"""Two recorded evaluations of the same files, cell by cell: which steering moved the verdict further beyond its
random controls?

Each evaluation holds out every file once and keeps, per file and cell (layer, alpha), the steered score and the
score under each random control of equal norm (:attr:`engine.evaluate.EvalResult.files`). Per pair, the *excess*
is the mean over its held-out files of the steered score minus the controls' mean score: the shift beyond the
control, the unit every table's ``vs rand`` averages (the unsteered score cancels, so two runs whose batches
rounded it differently compare exactly). Two evaluations of the same pairs are compared **paired**, pair by pair:
the difference of the two excesses, its mean over the pairs both hold out, and the standard error of that mean.
A difference beyond ``CONTROL_SE`` standard errors is one the pairs support; within them, the two are not told
apart by these pairs. With both evaluations scoring the fix sites, the same is done for the fix-site preference
(per pair: the steered preference minus the controls' mean).

What can differ between the two: the method, the readout, the vectors per fold or per CWE, a given vector, the
folds and seed, the controls, the model (then each excess is in its own model's logits). What must be the same:
the files (pairs matched by id, each with the same files held out) and the cells compared (those both hold).
Pure Python over the records: no model, no data, no torch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from steertui.engine.evaluate import _mean, _standard_error, pair_excess, pair_fix_excess
from steertui.engine.ops import CONTROL_SE  # a difference counts beyond this many standard errors
from steertui.errors import SteertuiError


@dataclass(frozen=True)
class CompareRow:
    layer: int
    alpha: float
    cwe: str  # a CWE, or "all"
    pairs: int  # pairs both evaluations held out (in this group)
    excess_a: float  # mean over those pairs of A's shift beyond its controls
    excess_b: float
    difference: float  # mean over the pairs of (A's excess − B's), paired
    se: float  # standard error of that mean (NaN below 2 pairs)
    # the same for the fix-site preference (nats), when both evaluations scored it; None otherwise
    fix_pairs: int | None = None
    fix_a: float | None = None
    fix_b: float | None = None
    fix_difference: float | None = None
    fix_se: float | None = None

    @property
    def beyond(self) -> bool:
        """Whether the pairs tell A and B apart: the difference exceeds ``CONTROL_SE`` standard errors."""
        return _beyond(self.difference, self.se)

    @property
    def fix_beyond(self) -> bool:
        return self.fix_difference is not None and _beyond(self.fix_difference, self.fix_se)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "beyond": self.beyond, "fix_beyond": self.fix_beyond}


@dataclass(frozen=True)
class Comparison:
    rows: tuple[CompareRow, ...]
    cells: tuple[tuple[int, float], ...]  # the (layer, alpha) cells both evaluations hold, in A's order
    pairs: int  # pairs both held out
    only_a: tuple[str, ...]  # pairs only A held out (left out of every row)
    only_b: tuple[str, ...]
    cells_only_a: tuple[tuple[int, float], ...]
    cells_only_b: tuple[tuple[int, float], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"cells": [list(c) for c in self.cells], "pairs": self.pairs, "only_a": list(self.only_a),
                "only_b": list(self.only_b), "cells_only_a": [list(c) for c in self.cells_only_a],
                "cells_only_b": [list(c) for c in self.cells_only_b], "rows": [r.to_dict() for r in self.rows]}


def _beyond(difference: float, se: float | None) -> bool:
    return se is not None and math.isfinite(se) and abs(difference) > CONTROL_SE * se


def _cells(files: Sequence[dict[str, Any]]) -> list[tuple[int, float]]:
    return list(dict.fromkeys((int(x["layer"]), float(x["alpha"])) for f in files for x in f["steered"]))


def _record(f: dict[str, Any], cell: tuple[int, float]) -> dict[str, Any]:
    return next(x for x in f["steered"] if (int(x["layer"]), float(x["alpha"])) == cell)


def _files_by_pair(files: Sequence[dict[str, Any]]) -> dict[str, tuple[str, ...]]:
    by: dict[str, list[str]] = {}
    for f in files:
        by.setdefault(f["pair"], []).append(f["id"])
    return {p: tuple(sorted(ids)) for p, ids in by.items()}


def compare_evaluations(a: Any, b: Any, *, names: tuple[str, str] = ("A", "B")) -> Comparison:
    """:class:`Comparison` of two :class:`engine.evaluate.EvalResult` (module docstring); ``names`` say which is
    which in the messages. :class:`SteertuiError` when either has no per-file records, when they share no cell
    or no pair, or when a pair's held-out files differ between them."""
    from steertui.engine.data.model import cwe_sort_key

    for name, r in zip(names, (a, b)):
        if not r.files:
            raise SteertuiError(f"evaluation {name} has no per-file records (a session written before they were "
                                "kept)", "replay it with --check, or evaluate again with --record")
    fa, fb = _files_by_pair(a.files), _files_by_pair(b.files)
    common = [p for p in fa if p in fb]
    if not common:
        raise SteertuiError(f"evaluations {names[0]} and {names[1]} hold out no pair in common "
                            f"({len(fa)} and {len(fb)} pairs)", "compare evaluations of the same pairs")
    differ = [p for p in common if fa[p] != fb[p]]
    if differ:
        raise SteertuiError(f"pair {differ[0]} holds out other files in {names[1]} than in {names[0]} "
                            f"({', '.join(fb[differ[0]])} against {', '.join(fa[differ[0]])})",
                            "compare evaluations of the same data")
    ca, cb = _cells(a.files), _cells(b.files)
    cells = [c for c in ca if c in cb]
    if not cells:
        show = (lambda cs: ", ".join(f"layer {L} α {x:g}" for L, x in cs))
        raise SteertuiError(f"evaluations {names[0]} and {names[1]} share no (layer, alpha) cell: {names[0]} has "
                            f"{show(ca)}; {names[1]} has {show(cb)}", "evaluate both at the same layers and alphas")
    keep = set(common)
    files_a = [f for f in a.files if f["pair"] in keep]
    files_b = [f for f in b.files if f["pair"] in keep]
    cwe_of = {f["pair"]: f["cwe"] for f in files_a}
    cwes = sorted(set(cwe_of.values()), key=cwe_sort_key)
    rows = []
    for cell in cells:
        at_a, at_b = [_record(f, cell) for f in files_a], [_record(f, cell) for f in files_b]
        ea, eb = pair_excess(files_a, at_a), pair_excess(files_b, at_b)
        xa, xb = pair_fix_excess(files_a, at_a), pair_fix_excess(files_b, at_b)
        both_fix = bool(xa) and bool(xb)
        for cwe in cwes + ["all"]:
            group = [p for p in common if cwe == "all" or cwe_of[p] == cwe]
            diffs = [ea[p] - eb[p] for p in group]
            fix: dict[str, Any] = {}
            if both_fix:
                fixed = [p for p in group if p in xa and p in xb]
                fd = [xa[p] - xb[p] for p in fixed]
                fix = {"fix_pairs": len(fixed), "fix_a": _mean([xa[p] for p in fixed]),
                       "fix_b": _mean([xb[p] for p in fixed]), "fix_difference": _mean(fd),
                       "fix_se": _standard_error(fd)}
            rows.append(CompareRow(cell[0], cell[1], cwe, len(group), _mean([ea[p] for p in group]),
                                   _mean([eb[p] for p in group]), _mean(diffs), _standard_error(diffs), **fix))
    return Comparison(tuple(rows), tuple(cells), len(common), tuple(p for p in fa if p not in fb),
                      tuple(p for p in fb if p not in fa), tuple(c for c in ca if c not in cb),
                      tuple(c for c in cb if c not in ca))
