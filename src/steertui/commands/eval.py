"""``steertui eval``: does steering shift the vulnerability verdict? Held-out, per CWE, with controls."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from steertui.commands._common import (add_dataset_option, add_model_options, alpha_list, check_vector_args,
                                       layer_list, load_model, name_list, positive_int)
from steertui.engine.choices import ALPHA_SCALES, METHODS, READOUTS, SPLITS
from steertui.errors import SteertuiError


def _layers(text: str) -> tuple[int, ...] | str:
    """``all``, or layer indices (:func:`layer_list`)."""
    return "all" if text.strip().lower() == "all" else layer_list(text)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="held-out evaluation of steering on the vulnerability verdict",
        description="Build vectors on training pairs only, score held-out files with the zero-shot question "
        "(logit ' Yes' - logit ' No' at the answer slot), with and without steering, per CWE, against a random "
        "vector of equal norm, with a fluency cost (KL on neutral code); with several layers and alphas, a grid of "
        "the shift over all held-out files (layers × alphas, the control's beside it) follows the table. Negative "
        "alphas: --alpha=-4,0,4. --vectors FILE evaluates a given vector (exported, a session's, or another "
        "tool's) the same way, on the pairs it was not built from. "
        "--json FILE writes the settings (with the alpha scale), the folds, the truncated files (with the window "
        "of lines each kept), the rows, and one record per held-out file from which every row can be recomputed.")
    add_model_options(p)
    add_dataset_option(p)
    p.add_argument("--layers", type=_layers, metavar="L[,L...]|all",
                   help="layers to steer, e.g. 1,3, or all (every layer of the model); with --vectors, default: "
                   "the vector's layers")
    p.add_argument("--alpha", type=alpha_list, required=True, metavar="A[,A...]",
                   help="coefficients, e.g. 0,4 (in the unit of --alpha-scale)")
    p.add_argument("--alpha-scale", choices=ALPHA_SCALES, default=ALPHA_SCALES[0],
                   help="raw (default): alpha multiplies the vector as built; residual: alpha 1.0 adds a vector "
                   "whose norm is the layer's mean residual norm over the fold's training files (the console's "
                   "+/- unit), so alphas mean the same across layers and models; the JSON gives both the scale and "
                   "the raw coefficient each fold applied")
    p.add_argument("--together", type=alpha_list, metavar="W[,W...]",
                   help="steer all --layers at once, layer i at alpha × W_i (in the unit of --alpha-scale), each "
                   "with its own random control: one row per alpha; e.g. --layers 1,2 --together 0.5,0.25 "
                   "--alpha-scale residual --alpha=-1,0,1")
    p.add_argument("--vectors", metavar="FILE",
                   help="evaluate a given vector instead of building one per fold: a file from steertui vectors "
                   "--export, a session's .safetensors sidecar, another tool's safetensors file with one "
                   "[d_model] tensor per layer named layer.L, or a GGUF control vector (llama.cpp, repeng); the "
                   "pairs it was built from (where the file says) are left out")
    p.add_argument("--vector", metavar="NAME", help="which vector of --vectors FILE (when it holds several)")
    p.add_argument("--method", choices=METHODS, help=f"how each fold builds its vector (default {METHODS[0]})")
    p.add_argument("--readout", choices=READOUTS, help=f"what each file gives per layer (default {READOUTS[0]})")
    p.add_argument("--split", choices=SPLITS, default=SPLITS[0],
                   help="hold out whole pairs (k folds, stratified by CWE) or one CWE at a time")
    p.add_argument("--folds", type=positive_int, default=3, help="folds for --split pairs (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--controls", type=positive_int, default=1, metavar="K",
                   help="random vectors of equal norm per fold and layer (default 1); the random columns are their "
                   "means, and a shift counts only beyond the control that moved the verdict most")
    p.add_argument("--attribution", action="store_true",
                   help="split each held-out file's steered shift: 'direct' what the added vector writes straight "
                   "into the answer logits, 'through' what the layers after it change (their attention and MLP); "
                   "the rest is the final norm's. Read in the scoring forwards themselves: no forward more")
    p.add_argument("--fix-site", action="store_true",
                   help="also score what the model would write: each held-out pair's fix-site preference, log "
                   "p(patched) - log p(vulnerable) of the two versions of the line its patch changes, continuing "
                   "the vulnerable file (teacher-forced, steered as a generation is), against the random controls")
    p.add_argument("--per-cwe", action="store_true",
                   help="steer each CWE's held-out pairs with a vector built from the fold's training pairs of that "
                   "CWE alone (scored in their own batches), instead of one vector from all of the fold's training "
                   "pairs: is one direction enough, or does each CWE need its own? (--split pairs, no --vectors)")
    p.add_argument("--shots", action="store_true",
                   help="put one example pair of the file's CWE before every verdict prompt (SecLLMHolmes' few-shot "
                   "protocol in the same layout: the example's vulnerable file answered yes, its patched file "
                   "answered no), taken from the dataset's few-shot part")
    p.add_argument("--part", action="extend", type=name_list, metavar="PART",
                   help="dataset part(s) to use (repeatable, or comma-separated; default: hand-crafted, or builtin "
                   "without a checkout)")
    p.add_argument("--confirm-part", action="extend", type=name_list, metavar="PART",
                   help="after the search, take its best cell in each direction (picked on every searched file), "
                   "build its vector on every searched pair, and evaluate it on this part's pairs, which took no "
                   "part in either (repeatable; not a part of --part)")
    p.add_argument("--cwe", action="extend", type=name_list, metavar="CWE",
                   help="only the pairs of this CWE, e.g. cwe-787 or 787 (repeatable, or comma-separated: "
                   "22,787; default: every CWE)")
    p.add_argument("--chunk-size", type=positive_int, default=8, help="samples per forward pass (default 8)")
    p.add_argument("--kl-tokens", type=positive_int, default=64, help="tokens of each neutral file for the KL (default 64)")
    p.add_argument("--yes", default=" Yes", help="answer token for 'vulnerable' (default ' Yes')")
    p.add_argument("--no", default=" No", help="answer token for 'not vulnerable' (default ' No')")
    p.add_argument("--pick-max-kl", type=_non_negative, metavar="X",
                   help="with several steered cells (layers × alphas), the cell each fold is steered with when picked "
                   "on the other folds may have a mean KL of at most X nats (default: any)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE")
    p.add_argument("--record", metavar="FILE", help="also record the run as a new session file FILE.toml (a vector "
                   "given with --vectors as an import step, the evaluation, and with --confirm-part the searched "
                   "pairs' vector and its confirmation): steertui replay FILE --check re-runs it, steertui report "
                   "FILE shows it, steertui --session FILE opens it in the console")
    p.set_defaults(handler=run)


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of 0 or more")
    return value


def _pairs(args: argparse.Namespace):
    """(dataset, the pairs of --part and --cwe, the parts, the pairs of --confirm-part and --cwe or None)."""
    from steertui.engine.data import load_dataset

    dataset = load_dataset(getattr(args, "dataset", None))
    parts = args.part or (["hand-crafted"] if "hand-crafted" in dataset.parts else list(dataset.parts))
    confirm = None
    if args.confirm_part:
        both = [p for p in args.confirm_part if p in parts]
        if both:
            raise SteertuiError(f"part(s) {', '.join(both)} both searched (--part) and confirmed on (--confirm-part)",
                                "confirm on a part the search does not use")
        confirm = _select(dataset, args.confirm_part, args.cwe, "--confirm-part")
    return dataset, _select(dataset, parts, args.cwe, "--part"), parts, confirm


def few_shot_examples(dataset, pairs: list, parts: list[str]) -> list:
    """The few-shot part's example pair of every CWE of ``pairs``, by CWE number: what ``--shots`` puts before
    each verdict prompt. One line naming what is missing when the dataset has no few-shot part or no example of
    a CWE, or when the few-shot part is itself evaluated."""
    from steertui.engine.data.model import FEW_SHOT, cwe_sort_key
    from steertui.engine.ops import few_shot_example

    if FEW_SHOT in parts:
        raise SteertuiError("--shots takes its examples from the few-shot part, which --part evaluates",
                            "evaluate another part with --shots, or the few-shot part without it")
    if FEW_SHOT not in dataset.parts:
        raise SteertuiError(f"--shots needs the few-shot part, and {dataset.source.label} has none",
                            "use a SecLLMHolmes checkout (--dataset PATH, or steertui data fetch), or drop --shots")
    cwes = sorted({p.cwe for p in pairs}, key=cwe_sort_key)
    examples = {c: few_shot_example(dataset, c) for c in cwes}
    missing = [c for c, e in examples.items() if e is None]
    if missing:
        raise SteertuiError(f"the few-shot part has no example pair of {', '.join(missing)}",
                            "leave those CWEs out (--cwe), or drop --shots")
    return [examples[c] for c in cwes]


def _select(dataset, parts: list[str], cwes: list[str] | None, flag: str) -> list:
    """The pairs of ``parts`` (and of ``cwes``, when given) of ``dataset``; a part or CWE it lacks is an error."""
    unknown = [p for p in parts if p not in dataset.parts]
    if unknown:
        raise SteertuiError(f"part(s) {', '.join(unknown)} of {flag} not in {dataset.source.label}",
                            f"choose from {', '.join(dataset.parts)}")
    selected = dataset.select(parts=parts)
    if cwes:
        from steertui.engine.data.model import cwe_sort_key, normalize_cwe

        have = sorted({p.cwe for p in selected.pairs}, key=cwe_sort_key)
        missing = [c for c in cwes if normalize_cwe(c) not in have]
        if missing:
            raise SteertuiError(f"no pairs of {', '.join(missing)} in parts {', '.join(parts)}",
                                f"choose from {', '.join(have)}")
        selected = selected.select(cwes=cwes)
    return list(selected.pairs)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from steertui.engine.data.model import cwe_sort_key
    from steertui.engine.evaluate import EvalSettings

    out_path = Path(args.json) if args.json else None
    if out_path is not None and not out_path.parent.exists():
        raise SteertuiError(f"folder '{out_path.parent}' for --json does not exist", "create it or pick another path")
    record_path = _record_path(args.record)
    if args.layers is None and not args.vectors:
        raise SteertuiError("--layers is required", "e.g. --layers 1,3 or --layers all (with --vectors FILE, the "
                            "vector's layers are the default)")
    if args.vectors and (args.method or args.readout):
        raise SteertuiError("--method and --readout say how each fold builds its vector, and --vectors gives one",
                            "drop --method/--readout, or --vectors")
    check_vector_args(args)
    if args.per_cwe and (args.vectors or args.split == "cwe" or args.confirm_part):
        what = ("--vectors gives one vector for every CWE" if args.vectors else
                "--split cwe holds out every pair of a CWE, leaving none to build its vector from"
                if args.split == "cwe" else "--confirm-part confirms one vector built on every searched pair")
        raise SteertuiError(f"--per-cwe builds a vector per fold and CWE, and {what}",
                            "drop one of them (--per-cwe works with --split pairs and vectors built per fold)")
    if args.confirm_part and args.together is not None:
        raise SteertuiError("--confirm-part confirms one layer's cell, and --together steers layers at once",
                            "drop one of them (export the together vector and evaluate it with --vectors)")
    dataset, pairs, parts, confirm_pairs = _pairs(args)
    examples = few_shot_examples(dataset, list(pairs) + list(confirm_pairs or []), parts) if args.shots else []
    model = load_model(args)
    imported, left_out = None, []
    selected = pairs  # with --vectors, before the pairs the vector was built from are left out
    if args.vectors:
        from steertui.engine.session.export import import_vector

        layers_wanted = None if args.layers in (None, "all") else args.layers
        imported = import_vector(args.vectors, model, args.vector, layers_wanted)
        kept, left_out = imported.held_out(p.id for p in pairs)
        if not kept:
            raise SteertuiError(f"every selected pair ({len(left_out)}) was used to build vector {imported.name!r}",
                                "evaluate it on other pairs (--part, --cwe, --dataset)")
        selected, pairs = pairs, [p for p in pairs if p.id in set(kept)]
        if confirm_pairs is not None:  # nor is it confirmed on them
            unused = set(imported.held_out(q.id for q in confirm_pairs)[0])
            confirm_pairs = [p for p in confirm_pairs if p.id in unused]
            if not confirm_pairs:
                raise SteertuiError(f"every pair of --confirm-part was used to build vector {imported.name!r}",
                                    "confirm on another part")
        layers = tuple(imported.layers) if layers_wanted is None else args.layers
    else:
        layers = tuple(range(model.n_layers)) if args.layers == "all" else args.layers
    if args.together is not None and len(args.together) != len(layers):
        raise SteertuiError(f"--together has {len(args.together)} weight(s) for {len(layers)} layer(s) "
                            f"({', '.join(map(str, layers))})", "give one weight per layer, in the order of --layers")
    settings = EvalSettings(layers=layers, alphas=args.alpha, method=args.method or METHODS[0],
                            readout=args.readout or READOUTS[0],
                            split=args.split, seed=args.seed, folds=args.folds, chunk_size=args.chunk_size,
                            kl_tokens=args.kl_tokens, yes=args.yes, no=args.no, alpha_scale=args.alpha_scale,
                            controls=args.controls, vector=imported.name if imported is not None else None,
                            together=args.together, attribution=args.attribution, fix_site=args.fix_site,
                            per_cwe=args.per_cwe, shot_pairs=tuple(e.id for e in examples))
    err = Console(stderr=True)
    err.print(f"[bold]{model.info.name}[/] on [bold]{dataset.source.label}[/] · parts {', '.join(parts)} · "
              f"{len(pairs)} pairs · split {args.split}")
    if imported is not None:
        err.print(f"vector [bold]{imported.name}[/] from {imported.path} ({imported.format}), layers "
                  f"{', '.join(map(str, imported.layers))}"
                  + (f"; left out {len(left_out)} pair(s) it was built from" if left_out else ""))
        for note in imported.notes:
            err.print(f"[yellow]note: {note}[/]")
    rec = None
    if record_path is not None:
        from steertui.engine.session import SessionRecorder

        rec = SessionRecorder.new(model, dataset, record_path, note="recorded by steertui eval")
    try:
        result, confirmed = _evaluate(rec, model, selected, pairs, settings, imported, confirm_pairs,
                                      args.pick_max_kl, err, examples)
    finally:
        if rec is not None:
            rec.close()
    data = result.to_dict()
    picks, no_pick = _picks(result, args.pick_max_kl)
    data["picked"] = {d: p.to_dict() for d, p in picks.items()} if picks else None
    if no_pick:
        data["picked_note"] = no_pick
    data["settings"]["parts"] = parts
    data["settings"]["cwes"] = sorted({p.cwe for p in pairs}, key=cwe_sort_key)
    if imported is not None:  # the per-layer sha256s are the file's (read_vector_file checked or computed them)
        data["vector_file"] = {"path": str(imported.path), "sha256": imported.file_sha256, "format": imported.format,
                               "name": imported.name, "layers": imported.layers, "left_out_pairs": left_out,
                               "notes": list(imported.notes),
                               "vector_sha256": {str(L): imported.about["sha256"][str(L)] for L in imported.layers},
                               "about": {k: v for k, v in imported.about.items() if k != "sha256"}}
    if confirmed is not None:
        data["confirmed"] = {"parts": args.confirm_part, "pairs": [p.id for p in confirm_pairs],
                             "cells": {d: c.to_dict() for d, c in confirmed.items()}}
    if out_path is not None:
        from steertui.atomic import atomic_write_json

        # NaN (a mean over no files, e.g. the KL of vulnerable files) is written as null: JSON has no NaN
        atomic_write_json(out_path, data)
    _print_table(result, parts)
    _print_picks(result, picks, no_pick, args.pick_max_kl)
    if confirmed is not None:
        _print_confirmed(result, confirmed, args.confirm_part, len(confirm_pairs), parts)
    if out_path is not None:
        Console(stderr=True).print(f"results written to {out_path}")
    if record_path is not None:
        Console(stderr=True).print(f"recorded as {record_path} (steertui replay {record_path} --check re-runs it; "
                                   f"steertui report {record_path} shows it)")
    return 0


def _record_path(value: str | None) -> Path | None:
    """--record FILE: a new .toml file in an existing folder (a session is recorded from its first step on)."""
    if value is None:
        return None
    path = Path(value)
    if path.suffix != ".toml":
        raise SteertuiError(f"--record {path}: a session file ends in .toml", f"use {path.with_suffix('.toml')}")
    if not path.parent.is_dir():
        raise SteertuiError(f"folder '{path.parent}' for --record does not exist", "create it or pick another path")
    if path.exists():
        raise SteertuiError(f"--record {path} already exists",
                            "record into a new file (open an existing session in the console to add to it)")
    return path


def _evaluate(rec, model, selected, pairs, settings, imported, confirm_pairs, max_kl, err, examples=()):
    """The evaluation of ``pairs`` and, with ``confirm_pairs``, the confirmation of its best cells: through the
    session recorder ``rec`` (recorded as steps; a given vector first as an import step on the ``selected`` pairs,
    which records those it was built from as left out) or headless; ``examples``: the few-shot example pairs
    ``settings.shot_pairs`` names (a recorder reads them from its dataset by id)."""
    import dataclasses

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from steertui.engine.evaluate import confirm_best_cells, evaluate

    def bar(what: str):
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=err, transient=True)
        task = progress.add_task(what, total=None)
        return progress, lambda stage, done, total: progress.update(task, description=f"{what}: {stage}",
                                                                    completed=done, total=total)

    given = imported.vectors if imported is not None else None
    progress, update = bar("evaluating")
    with progress:
        if rec is None:
            result = evaluate(model, pairs, settings, vectors=given, examples=examples, progress=update)
        else:
            if imported is not None:
                name = rec.free_name(imported.name)
                rec.import_vectors(imported, selected, name=name, readout=settings.readout,
                                   chunk_size=settings.chunk_size)
                settings = dataclasses.replace(settings, vector=name)
            result = rec.evaluate(pairs, settings, progress=update)
    if confirm_pairs is None:
        return result, None
    progress, update = bar("confirming")
    with progress:
        if rec is None:
            confirmed = confirm_best_cells(model, result, pairs, confirm_pairs, vectors=given, max_kl=max_kl,
                                           progress=update, examples=examples)
        else:
            from steertui.engine.session.recorded import confirm_best_cells as recorded_confirm

            confirmed = recorded_confirm(rec, result, pairs, confirm_pairs, max_kl=max_kl, progress=update)
    return result, confirmed


def _picks(result, max_kl: float | None):
    """The honest pick in both directions (:func:`engine.ops.grid_picks`), or why there is none: ({}, reason)."""
    from steertui.engine.ops import grid_picks

    try:
        picks = grid_picks(result, max_kl)
    except SteertuiError as err:  # no cell within the KL limit: the evaluation itself stands
        return {}, str(err)
    return picks, None


def _print_picks(result, picks, no_pick: str | None, max_kl: float | None, console=None) -> None:
    from steertui.engine.ops import beyond_control, fix_beyond_control, steered_layers

    console = console or _console()
    within = " within the KL limit" if max_kl is not None else ""
    if no_pick:
        console.print(f"[yellow]no cell picked on the other folds: {no_pick}[/]")
    if not picks:
        return
    limit = f", mean KL ≤ {max_kl:g}" if max_kl is not None else ""
    console.print(f"[bold]cell picked on the other folds[/] (each fold's held-out files steered with the cell of "
                  f"largest shift beyond the random control on the other folds' files{limit}; no file helps choose "
                  "the cell it is scored with):")
    for direction, arrow in (("up", "↑ towards yes"), ("down", "↓ towards no")):
        pick = picks[direction]
        row, best = pick.all, pick.hindsight  # the grid's best cell on every file (within the KL limit)
        cells = ", ".join(f"fold {c.fold}: layer {steered_layers(result.settings, c.layer)} α {c.alpha:+g}"
                          for c in pick.folds)
        console.print(f"  {arrow}: {cells} → shift {row.shift:+.3f} (rand {row.random_shift:+.3f}), beyond rand "
                      f"{beyond_control(row)}, flip {row.flip_rate:.2f}, yes {row.baseline_yes_rate:.2f}→"
                      f"{row.yes_rate:.2f}, KL {row.kl:.4f}"
                      + (f", fix site beyond rand {fix_beyond_control(row)}" if row.fix_shift is not None else "")
                      + f"; the grid's best cell read off the grid{within}: layer "
                      f"{steered_layers(result.settings, best[0])} α {best[1]:+g}, beyond rand {best[2]:+.3f} "
                      "(picked on the files it reports)")


def _print_confirmed(result, confirmed, confirm_parts, n_pairs: int, parts, console=None) -> None:
    from steertui.engine.ops import beyond_control, fix_beyond_control

    console = console or _console()
    s = result.settings
    made = (f"vector {s.vector!r} as given" if s.vector is not None
            else f"its vector built on every searched pair ({s.method})")
    console.print(f"[bold]confirmed on {', '.join(confirm_parts)}[/] ({n_pairs} pairs that took no part in the search "
                  f"on {', '.join(parts)}): the search's best cell in each direction, picked on every searched file, "
                  f"{made}, evaluated as in the table (alpha scale {s.alpha_scale}):")
    if not confirmed:
        console.print("  [yellow]no cell to confirm: the search has no steered cell (alpha ≠ 0) within the limits[/]")
    for direction, arrow in (("up", "↑ towards yes"), ("down", "↓ towards no")):
        c = confirmed.get(direction)
        if c is None:
            continue
        r = c.row
        console.print(f"  {arrow}: layer {c.layer} α {c.alpha:+g} (beyond rand {c.searched_excess:+.3f} on the "
                      f"search's files, which picked it) → here shift {r.shift:+.3f} (rand {r.random_shift:+.3f}), "
                      f"beyond rand {beyond_control(r)}, flip {r.flip_rate:.2f}, yes {r.baseline_yes_rate:.2f}→"
                      f"{r.yes_rate:.2f}, KL {r.kl:.4f}, {r.n} files"
                      + (f", fix site beyond rand {fix_beyond_control(r)} over {r.fix_n} pairs"
                         if r.fix_shift is not None else ""))


def _console():
    """The console the tables print to: the terminal's width, or 150 columns when the output is not a terminal."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=150)


# the main table's columns a narrow terminal leaves out first, in this order (layer, alpha, cwe, n, shift, vs rand
# and a split's direct and through always stay)
DROP_FIRST = ("mass", "rand KL", "rand flip", "raw", "base acc", "rand shift", "acc", "KL", "flip", "yes rate")


def _print_table(result, parts, console=None, where: str = "--json") -> None:
    from rich.table import Table

    from steertui.commands._tables import print_table

    console = console or _console()
    a = result.answers
    s = result.settings
    console.print(f"source: [bold]{result.source}[/]  model: {result.model}  parts: {', '.join(parts)}")
    made = (f"vector {s.vector!r} as given, in every fold" if s.vector is not None
            else f"vectors: {s.method}, readout {s.readout}"
            + (", one per CWE (each CWE's held-out pairs steered with the vector of the fold's training pairs of "
               "that CWE)" if s.per_cwe else ""))
    if s.shot_pairs:
        made += (f"; every prompt after its CWE's few-shot example pair ({len(s.shot_pairs)}: "
                 f"{', '.join(s.shot_pairs)}), its vulnerable file answered {a.yes!r}, its patched file {a.no!r}")
    console.print(f"score = logit({a.yes!r}, id {a.yes_id}) - logit({a.no!r}, id {a.no_id}); {made}, "
                  f"split {s.split}, seed {s.seed}; threshold fixed on each fold's training files")
    if s.alpha_scale == "residual":
        console.print("alpha scale: residual (alpha 1 adds a vector as long as the layer's mean residual norm on the "
                      "fold's training files; 'raw' is the coefficient applied, per fold"
                      + (" and CWE" if s.per_cwe else "") + ")")
    else:
        console.print("alpha scale: raw (alpha multiplies the vector as built)")
        # a given vector's norm is the file's: say what alpha 1 adds (a recorded evaluation keeps no norms)
        if s.vector is not None and result.folds and all("residual_norm" in f for f in result.folds):
            parts = []
            for L in s.layers:
                resid = [f["residual_norm"][str(L)] for f in result.folds]
                v = result.folds[0]["vector_norm"][str(L)]
                parts.append(f"layer {L}: ‖v‖ {v:.3g}, mean residual ‖h‖ {sum(resid) / len(resid):.3g}")
            console.print("the given vector's norm against the residual's (alpha 1 adds ‖v‖/‖h‖ of a residual; "
                          "--alpha-scale residual sets alphas in residual norms): " + "; ".join(parts))
    if s.together is not None:
        weights = ", ".join(f"layer {L} × {w:g}" for L, w in zip(s.layers, s.together))
        console.print(f"layers {'+'.join(map(str, s.layers))} steered at once: alpha × the weight of each ({weights}); "
                      "each layer has its own random control; 'raw' is the first layer's coefficient per fold")
    if result.cuts:
        windowed = sum(1 for c in result.cuts if c.get("windowed"))
        console.print(f"[yellow]{len(result.cuts)} file(s) cut to the context, {windowed} of them to their pair's "
                      f"window around the first difference (see 'truncated' in --json)[/]")
    table = Table(header_style="bold")
    from steertui.engine.ops import CONTROL_SE, beyond_control, spans_grid, steered_layers, within_control

    split = ("direct", "through") if s.attribution else ()
    for col in ("layer", "alpha", "raw", "cwe", "n", "shift", *split, "acc", "base acc", "flip", "rand shift",
                "vs rand", "rand flip", "KL", "rand KL", "yes rate", "mass"):
        table.add_column(col, justify="right" if col != "cwe" else "left")
    for r in result.rows:
        raw = sorted(set(r.raw_alpha))
        raw_text = f"{raw[0]:.3g}" if len(raw) == 1 else (f"{raw[0]:.3g}..{raw[-1]:.3g}" if raw else "")
        shift = f"[dim]{r.shift:+.3f}[/]" if within_control(r) else f"{r.shift:+.3f}"
        parts = (f"{r.direct_shift:+.3f}", f"{r.through_shift:+.3f}") if s.attribution else ()
        table.add_row(steered_layers(s, r.layer), f"{r.alpha:g}", raw_text, r.cwe, str(r.n), shift, *parts,
                      f"{r.accuracy:.2f}",
                      f"{r.baseline_accuracy:.2f}", f"{r.flip_rate:.2f}",
                      f"{r.random_shift:+.3f}" + (f" ({r.random_shift_max:+.2f})" if s.controls > 1 else ""),
                      beyond_control(r), f"{r.random_flip_rate:.2f}", f"{r.kl:.4f}",
                      f"{r.random_kl:.4f}" + (f" ({r.random_kl_max:.4f})" if s.controls > 1 else ""),
                      f"{r.baseline_yes_rate:.2f}→{r.yes_rate:.2f}", f"{r.answer_mass:.2g}",
                      style="bold" if r.cwe == "all" else "")
    print_table(console, table, DROP_FIRST, where)
    console.print(f"vs rand: the shift beyond the random vector's, ± {CONTROL_SE:g} standard errors over pairs; a "
                  "dim shift (and grid cell) is within them, or no larger than the random shift")
    if s.attribution:
        console.print("direct: the mean of what the added vector writes straight into logit(yes) − logit(no) at the "
                      "answer slot; through: the mean change of the later layers' attention and MLP parts (the "
                      "network's response); shift − direct − through is the final norm's (its frozen scale differs "
                      "between the two sides)")
    if s.fix_site:
        console.print(fix_site_table(result))
        n_fix = next((r.fix_n for r in result.rows if r.cwe == "all"), None) or 0
        console.print(f"fix Δ: the mean shift of the fix-site preference over the {n_fix} held-out pairs that have a "
                      "fix site (log p(patched) − log p(vulnerable) of the two versions of the first line of code "
                      "their patch changes, continuing the vulnerable file, in nats; positive: towards writing the "
                      "fix); fix rand: the random controls'; fix vs rand: the first beyond the second ± "
                      f"{CONTROL_SE:g} standard errors over pairs, dim within them"
                      + (f"; {len(result.fix_skipped)} pair(s) have none: " + "; ".join(result.fix_skipped)
                         if result.fix_skipped else ""))
    if s.controls > 1:
        console.print(f"{s.controls} random controls per fold and layer: rand shift, rand flip and the yes rate's "
                      "control are their means; in brackets the control shift of largest magnitude; rand KL is the "
                      "first control's, in brackets the largest of the controls' mean KLs")
    if spans_grid(s):
        console.print(grid_table(result))
        if s.fix_site:
            console.print(grid_table(result, fix=True))


def fix_site_table(result):
    """The fix-site columns of the rows: per layer, alpha and CWE, the pairs scored, the preference's shift, the
    random controls' and the first beyond the second (dim within the standard errors)."""
    from rich.table import Table

    from steertui.engine.ops import fix_beyond_control, fix_within_control, steered_layers

    s = result.settings
    table = Table(title="what the model would write: the fix-site preference, log p(patched) − log p(vulnerable), "
                  "nats", header_style="bold", title_justify="left")
    for col in ("layer", "alpha", "cwe", "pairs", "fix Δ", "fix rand", "fix vs rand"):
        table.add_column(col, justify="left" if col == "cwe" else "right")
    for r in result.rows:
        if r.fix_shift is None:
            table.add_row(steered_layers(s, r.layer), f"{r.alpha:g}", r.cwe, "0", "-", "-", "-")
            continue
        vs = fix_beyond_control(r)
        table.add_row(steered_layers(s, r.layer), f"{r.alpha:g}", r.cwe, str(r.fix_n), f"{r.fix_shift:+.2f}",
                      f"{r.random_fix_shift:+.2f}", f"[dim]{vs}[/]" if fix_within_control(r) else vs,
                      style="bold" if r.cwe == "all" else "")
    return table


def grid_table(result, fix: bool = False):
    """The rows over all CWEs as a grid, layers × alphas: each cell the shift and, in brackets, the random
    control's; green or red where the vector moved the verdict more than the control, dim where it did not. With
    ``fix``, the same for the fix-site preference (``--fix-site``; green: beyond the control towards the fix)."""
    from rich.table import Table

    from steertui.engine.ops import fix_within_control, layer_alpha_grid, within_control

    grid = layer_alpha_grid(result, picks={})  # the cells alone: the picks are printed under it
    unit = "residual norms" if result.settings.alpha_scale == "residual" else "raw"
    what = (f"fix-site preference shift (nats) over the {next((r.fix_n for r in result.rows if r.cwe == 'all'), 0)} "
            "held-out pairs with a fix site" if fix else f"verdict-score shift over all {grid.n} held-out files")
    table = Table(title=f"{what} (random control), layer × alpha ({unit})", header_style="bold")
    table.add_column("layer", justify="right")
    for a in grid.alphas:
        table.add_column(f"{a:+g}" if a else "0", justify="right")
    for layer in grid.layers:
        cells = []
        for a in grid.alphas:
            c = grid.cell(layer, a)
            shift, control = (c.fix_shift, c.random_fix_shift) if fix else (c.shift, c.random_shift)
            if shift is None:
                cells.append("-")
                continue
            dim = fix_within_control(c) if fix else within_control(c)
            # a random push lowers the fix-site preference too: its colour is that of the shift beyond the control
            up = shift - control > 0 if fix else shift > 0
            style = "dim" if dim else ("green" if up else "red")
            cells.append(f"[{style}]{shift:+.2f}[/] ({control:+.2f})")
        table.add_row(str(layer), *cells)
    return table
