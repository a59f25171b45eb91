"""``steertui eval``: does steering shift the vulnerability verdict? Held-out, per CWE, with controls."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from steertui.commands._common import add_dataset_option, add_model_options, load_session
from steertui.errors import SteertuiError


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of numbers") from None


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a comma-separated list of layer indices") from None


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval", help="held-out evaluation of steering on the vulnerability verdict",
        description="Build vectors on training pairs only, score held-out files with the zero-shot question "
        "(logit ' Yes' - logit ' No' at the answer slot), with and without steering, per CWE, against a random "
        "vector of equal norm, with a fluency cost (KL on neutral code). Negative alphas: --alpha=-4,0,4.")
    add_model_options(p)
    add_dataset_option(p)
    p.add_argument("--layers", type=_ints, required=True, metavar="L[,L...]", help="layers to steer, e.g. 1,3")
    p.add_argument("--alpha", type=_floats, required=True, metavar="A[,A...]", help="coefficients, e.g. 0,4")
    p.add_argument("--method", choices=("mean-diff", "pca", "probe"), default="mean-diff")
    p.add_argument("--readout", choices=("last", "mean", "diff"), default="last")
    p.add_argument("--split", choices=("pairs", "cwe"), default="pairs",
                   help="hold out whole pairs (k folds, stratified by CWE) or one CWE at a time")
    p.add_argument("--folds", type=int, default=3, help="folds for --split pairs (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--part", action="append", metavar="PART",
                   help="dataset part(s) to use (default: hand-crafted, or builtin without a checkout)")
    p.add_argument("--chunk-size", type=int, default=8, help="samples per forward pass (default 8)")
    p.add_argument("--kl-tokens", type=int, default=64, help="tokens of each neutral file for the KL (default 64)")
    p.add_argument("--yes", default=" Yes", help="answer token for 'vulnerable' (default ' Yes')")
    p.add_argument("--no", default=" No", help="answer token for 'not vulnerable' (default ' No')")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE")
    p.set_defaults(handler=run)


def _pairs(args: argparse.Namespace):
    from steertui.engine.data import load_dataset

    dataset = load_dataset(getattr(args, "dataset", None))
    parts = args.part or (["hand-crafted"] if "hand-crafted" in dataset.parts else list(dataset.parts))
    unknown = [p for p in parts if p not in dataset.parts]
    if unknown:
        raise SteertuiError(f"part(s) {', '.join(unknown)} not in {dataset.source.label}",
                            f"choose from {', '.join(dataset.parts)}")
    return dataset, list(dataset.select(parts=parts).pairs), parts


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from steertui.engine.evaluate import EvalSettings, evaluate

    out_path = Path(args.json) if args.json else None
    if out_path is not None and not out_path.parent.exists():
        raise SteertuiError(f"folder '{out_path.parent}' for --json does not exist", "create it or pick another path")
    dataset, pairs, parts = _pairs(args)
    session = load_session(args)
    settings = EvalSettings(layers=args.layers, alphas=args.alpha, method=args.method, readout=args.readout,
                            split=args.split, seed=args.seed, folds=args.folds, chunk_size=args.chunk_size,
                            kl_tokens=args.kl_tokens, yes=args.yes, no=args.no)
    err = Console(stderr=True)
    err.print(f"[bold]{session.info.name}[/] on [bold]{dataset.source.label}[/] · parts {', '.join(parts)} · "
              f"{len(pairs)} pairs · split {args.split}")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as bar:
        task = bar.add_task("evaluating", total=None)
        result = evaluate(session, pairs, settings,
                          progress=lambda stage, done, total: bar.update(task, description=stage, completed=done,
                                                                         total=total))
    data = result.to_dict()
    data["settings"]["parts"] = parts
    if out_path is not None:
        _write_json(out_path, data)
    _print_table(result, parts)
    if out_path is not None:
        Console(stderr=True).print(f"results written to {out_path}")
    return 0


def _write_json(path: Path, data: dict) -> None:
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1)
            fh.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _print_table(result, parts) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=150)
    a = result.answers
    s = result.settings
    console.print(f"source: [bold]{result.source}[/]  model: {result.model}  parts: {', '.join(parts)}")
    console.print(f"score = logit({a.yes!r}, id {a.yes_id}) - logit({a.no!r}, id {a.no_id}); vectors: {s.method}, "
                  f"readout {s.readout}, split {s.split}, seed {s.seed}; threshold fixed on each fold's training files")
    if result.truncated:
        console.print(f"[yellow]{len(result.truncated)} file(s) truncated to the context[/]")
    table = Table(header_style="bold")
    for col in ("layer", "alpha", "cwe", "n", "shift", "acc", "base acc", "flip", "rand shift", "rand flip",
                "KL", "rand KL", "yes rate"):
        table.add_column(col, justify="right" if col != "cwe" else "left")
    for r in result.rows:
        table.add_row(str(r.layer), f"{r.alpha:g}", r.cwe, str(r.n), f"{r.shift:+.3f}", f"{r.accuracy:.2f}",
                      f"{r.baseline_accuracy:.2f}", f"{r.flip_rate:.2f}", f"{r.random_shift:+.3f}",
                      f"{r.random_flip_rate:.2f}", f"{r.kl:.4f}", f"{r.random_kl:.4f}",
                      f"{r.baseline_yes_rate:.2f}→{r.yes_rate:.2f}", style="bold" if r.cwe == "all" else "")
    console.print(table)
