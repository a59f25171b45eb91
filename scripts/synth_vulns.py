"""Seeded generator of synthetic vulnerable/patched program pairs for the eight SecLLMHolmes CWEs.

The demo model learns the verdict question from these programs, and is then measured on files it never saw (the
builtin examples and SecLLMHolmes). Each pair is one program in two versions that differ only in the fix. A program
is a *shape* (the kind of code that holds the flaw: a table lookup whose result may be NULL, a path built from a
request, an SQL query built from a form field...) filled with drawn names, constants, messages and fix styles, and
surrounded by a drawn amount of unrelated code (helpers, tables, comments). C for CWE-22, 77, 190, 416, 476 and 787;
Python for CWE-79 and 89, as in SecLLMHolmes.

The shapes live in ``synth_core.py`` (with the names, fillers and program assembly they share) and in the
``synth_shapes_*.py`` modules; this module registers them, draws the pairs and holds them out by shape: the shapes
named in ``HELDOUT_SHAPES`` never reach training; the model card's numbers on "held-out synthetic pairs" come from
them.

    python scripts/synth_vulns.py --count 4800 --show 3     # print a few pairs and the per-shape counts
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from pathlib import Path
from typing import Callable

import synth_shapes_injection
import synth_shapes_memory
import synth_shapes_overflow
import synth_shapes_web
from synth_core import *  # noqa: F401,F403  (the building blocks, for the shape modules and the tests)
from synth_core import _c

# ------------------------------------------------------------------------------------------------------- registry
#: Every shape, by CWE: the first ones (synth_core), then those of the synth_shapes_* modules.
SHAPES: dict[str, dict[str, Callable[[R], tuple[str, str]]]] = {
    "cwe-476": {"lookup": _c(s476_lookup), "malloc": _c(s476_malloc), "getenv": _c(s476_getenv),
                "strchr": _c(s476_strchr), "fopen": _c(s476_fopen), "list": _c(s476_list)},
    "cwe-416": {"list-remove": _c(s416_list_remove), "log-after-free": _c(s416_log_after_free),
                "return-field": _c(s416_return_field), "error-path": _c(s416_error_path), "cache": _c(s416_cache)},
    "cwe-787": {"strcpy": _c(s787_strcpy), "loop-bound": _c(s787_loop_bound), "index": _c(s787_index),
                "memcpy": _c(s787_memcpy), "strcat": _c(s787_strcat), "getc": _c(s787_getc)},
    "cwe-190": {"malloc-mul": _c(s190_malloc_mul), "short-sum": _c(s190_short_sum), "int-add": _c(s190_int_add),
                "image": _c(s190_image), "counter": _c(s190_counter)},
    "cwe-22": {"open-read": _c(s22_open_read), "realpath": _c(s22_realpath), "delete": _c(s22_delete),
               "write": _c(s22_write)},
    "cwe-77": {"system": _c(s77_system), "popen": _c(s77_popen), "exec": _c(s77_exec), "env": _c(s77_env)},
    "cwe-89": {"select": s89_select, "delete": s89_delete, "insert": s89_insert, "like": s89_like, "cli": s89_cli},
    "cwe-79": {"greeting": s79_greeting, "list": s79_list, "error": s79_error, "format": s79_format,
               "cookie": s79_cookie},
}
for _module in (synth_shapes_memory, synth_shapes_overflow, synth_shapes_injection, synth_shapes_web):
    for _cwe, _shapes in _module.EXTRA.items():
        if set(_shapes) & set(SHAPES[_cwe]):
            raise RuntimeError(f"{_module.__name__}: shape names already taken for {_cwe}: {set(_shapes) & set(SHAPES[_cwe])}")
        SHAPES[_cwe].update(_shapes)
#: DEFAULT_COUNT pairs are drawn for the demo model (its training script and the tests use the same draw).
DEFAULT_COUNT = 4800
#: Two shapes per CWE never reach training (one of the first shapes, one of the later ones): the model card's
#: "held-out synthetic pairs".
HELDOUT_SHAPES = {"cwe-476": ("list", "tree"), "cwe-416": ("cache", "refcount"), "cwe-787": ("getc", "hex-decode"),
                  "cwe-190": ("counter", "midpoint"), "cwe-22": ("write", "prefix-compare"),
                  "cwe-77": ("env", "mail-pipe"), "cwe-89": ("cli", "login"), "cwe-79": ("cookie", "error-handler")}


def generate(count: int = DEFAULT_COUNT, seed: int = 0) -> list[SynthPair]:
    """``count`` distinct pairs, spread evenly over the CWEs and, within a CWE, over its shapes (seeded)."""
    rng = random.Random(f"synth:{seed}")
    out, seen = [], set()
    k = 0
    while len(out) < count:
        cwe = CWES[k % len(CWES)]
        shapes = sorted(SHAPES[cwe])
        shape = shapes[(k // len(CWES)) % len(shapes)]
        k += 1
        r = R(random.Random(rng.getrandbits(64)))
        vuln, patched = SHAPES[cwe][shape](r)
        if vuln == patched or (vuln, patched) in seen:
            continue
        seen.add((vuln, patched))
        out.append(SynthPair(f"synth/{cwe}/{shape}/{len(out)}", cwe, shape, LANG[cwe], vuln, patched))
    return out


def split(pairs: list[SynthPair]) -> tuple[list[SynthPair], list[SynthPair]]:
    """(train, held-out) by shape."""
    held = [p for p in pairs if p.shape in HELDOUT_SHAPES[p.cwe]]
    return [p for p in pairs if p.shape not in HELDOUT_SHAPES[p.cwe]], held


def write_checkout(pairs: list[SynthPair], dest: Path, per_cwe: int) -> Path:
    """The first ``per_cwe`` pairs of each CWE laid out as a SecLLMHolmes hand-crafted part under ``dest``
    (``datasets/hand-crafted/dataset/CWE-N/{k,p_k}.ext``), for ``load_checkout`` and ``evaluate``."""
    for cwe in CWES:
        folder = dest / "datasets" / "hand-crafted" / "dataset" / cwe.upper()
        folder.mkdir(parents=True, exist_ok=True)
        for k, p in enumerate([p for p in pairs if p.cwe == cwe][:per_cwe], start=1):
            (folder / f"{k}.{p.lang}").write_text(p.vulnerable)
            (folder / f"p_{k}.{p.lang}").write_text(p.patched)
    return dest


# ------------------------------------------------------------------------------------------ overlap with test data
def normalized_lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def windows3(text: str, min_chars: int = 60) -> set[str]:
    """Every 3 consecutive non-blank, whitespace-normalised lines that together hold at least ``min_chars``."""
    lines = normalized_lines(text)
    return {"\n".join(lines[k:k + 3]) for k in range(len(lines) - 2) if sum(map(len, lines[k:k + 3])) >= min_chars}


def overlaps(pairs: list[SynthPair], reference_texts: list[str]) -> list[tuple[str, str]]:
    """(pair id, shared window) for every generated file sharing a 3-line window with a reference text."""
    ref = set().union(*(windows3(t) for t in reference_texts)) if reference_texts else set()
    hits = []
    for p in pairs:
        for text in (p.vulnerable, p.patched):
            hits += [(p.id, w) for w in windows3(text) & ref]
    return hits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=DEFAULT_COUNT)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--show", type=int, default=0, help="print this many pairs (as a unified diff)")
    args = ap.parse_args()
    pairs = generate(args.count, args.seed)
    train, held = split(pairs)
    print(f"{len(pairs)} pairs: {len(train)} train, {len(held)} held out")
    print(Counter((p.cwe, p.shape) for p in pairs))
    import difflib
    for p in random.Random(args.seed).sample(pairs, args.show):
        print(f"===== {p.id}\n{p.vulnerable}\n----- diff")
        print("".join(difflib.unified_diff(p.vulnerable.splitlines(True), p.patched.splitlines(True))))


if __name__ == "__main__":
    main()
