"""The one rule for k-fold splits of pairs: stratified by CWE, seeded.

Within each CWE (in sorted order) the items are shuffled with ``random.Random(seed)`` and dealt to the folds in
turn, continuing from where the previous CWE stopped, so every fold gets a share of every CWE and the fold sizes
differ by at most one. The Steer pane's held-out AUROC ("AUC pair") and ``steertui eval --split pairs`` split the
same pairs the same way for the same seed and number of folds.
"""

from __future__ import annotations

import random
from typing import Sequence


def stratified_folds(groups: Sequence[str], k: int, seed: int) -> list[list[int]]:
    """Indices into ``groups`` (one CWE per item) for each of ``k`` folds, each sorted."""
    by_group: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        by_group.setdefault(g, []).append(i)
    rng = random.Random(seed)
    out: list[list[int]] = [[] for _ in range(k)]
    n = 0
    for _group, idx in sorted(by_group.items()):
        idx = idx[:]
        rng.shuffle(idx)
        for i in idx:
            out[n % k].append(i)
            n += 1
    return [sorted(f) for f in out]
