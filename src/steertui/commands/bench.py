"""`steertui bench`: steertui's engine against plain transformers, timed in the same process, as ratios."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from steertui.commands._common import add_dataset_option, add_model_options, load_model, positive_int
from steertui.errors import SteertuiError

SHAPE_NAMES = ("starcoderbase-1b", "starcoderbase-7b")  # engine.bench.SHAPES (here so --help imports no torch)
ROW_GROUPS = ("generate", "forward", "lens", "extract", "memory", "eval", "startup", "console")  # engine.bench


def _groups(text: str) -> tuple[str, ...]:
    names = tuple(x.strip() for x in text.split(",") if x.strip())
    bad = [x for x in names if x not in ROW_GROUPS]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"unknown row group(s) {', '.join(bad) or repr(text)}: "
                                         f"use a comma-separated list of {', '.join(ROW_GROUPS)}")
    return names


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="speed and memory of steering, lens, extraction and evaluation against plain transformers",
        description="Time each of steertui's jobs and a plain-transformers baseline of the same job in this process, "
        "interleaved, median of --repeats runs, and print the ratio against each row's target, with peak memory. "
        "--quick: the demo model, under two minutes on a small CPU. --shape starcoderbase-1b: a randomly "
        "initialised model of that exact configuration, built locally (no weights, no download; ~7 GB in "
        "float32), with smaller data subsets and extraction memory at 1k, 4k and 8k tokens; --shape "
        "starcoderbase-7b the same at 7.3 B parameters (13.7 GiB in bfloat16: a GPU). For a model of 256 MB or "
        "more, each row is also set against the memory-bandwidth floor: the time of reading every weight once "
        "per forward at the device's bandwidth, measured by a copy.")
    p.add_argument("--quick", action="store_true", help="the demo model, few repeats (under two minutes)")
    add_model_options(p)
    p.add_argument("--shape", choices=SHAPE_NAMES, help="a randomly initialised model of this published configuration")
    add_dataset_option(p)
    p.add_argument("--repeats", type=positive_int,
                   help="exactly N timed runs of each side per row (default: at least 5, and more until a row took "
                   "~8 s (--quick) or ~20 s; 2 with --shape)")
    p.add_argument("--rows", type=_groups, metavar="G[,G...]",
                   help=f"only these row groups: {', '.join(ROW_GROUPS)} (default: all; with --quick all but "
                   "console; console needs a model the console can load, so not --shape)")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON to FILE")
    p.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown to FILE (as in the README)")
    p.add_argument("--show", metavar="FILE", help="measure nothing: print the table of a --json FILE written before "
                   "(on any machine, without torch; with --markdown, convert it)")
    p.set_defaults(handler=run)


MEASURING = ("quick", "model", "shape", "rows", "repeats", "json", "device", "dtype", "dataset")


def _out_path(text: str | None, option: str) -> Path | None:
    path = Path(text) if text else None
    if path is not None and not path.parent.exists():
        raise SteertuiError(f"folder '{path.parent}' for {option} does not exist", "create it or pick another path")
    return path


def read_report(path: Path):
    """A bench report from a ``--json`` file, with a message naming the file and what is wrong."""
    import json

    from steertui.engine.bench import BenchReport

    if not path.is_file():
        raise SteertuiError(f"bench results '{path}' not found", "pass the FILE a `steertui bench --json FILE` wrote")
    try:
        return BenchReport.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except UnicodeDecodeError:
        raise SteertuiError(f"'{path}' is not a text file", "pass a `steertui bench --json` file") from None
    except json.JSONDecodeError as exc:
        raise SteertuiError(f"'{path}' is not JSON (line {exc.lineno}: {exc.msg})",
                            "pass a `steertui bench --json` file") from None
    except ValueError as exc:
        raise SteertuiError(f"'{path}' is not a steertui bench result: {exc}",
                            "pass a file written by `steertui bench --json FILE`") from None


def show(args: argparse.Namespace) -> int:
    """``--show FILE``: the saved report's table (and ``--markdown``), nothing measured."""
    from rich.console import Console

    given = [f"--{name}" for name in MEASURING if getattr(args, name, None) not in (None, False)]
    if given:
        raise SteertuiError(f"--show measures nothing, so {', '.join(given)} does nothing with it",
                            "drop " + ", ".join(given) + ", or drop --show to run the bench")
    md = _out_path(args.markdown, "--markdown")
    report = read_report(Path(args.show))
    print_table(report, Console() if sys.stdout.isatty() else Console(width=160))
    if md is not None:
        write_markdown(report, md)
    return 0


def write_markdown(report, path: Path) -> None:
    from rich.console import Console

    from steertui.atomic import atomic_write_text
    from steertui.engine.bench import markdown_table

    atomic_write_text(path, markdown_table(report))
    Console(stderr=True).print(f"Markdown table written to {path}", highlight=False)


def plan_for(args: argparse.Namespace):
    """The rows and repeats a command line asks for."""
    from steertui.engine.bench import Plan

    if args.quick and (getattr(args, "model", None) or args.shape):
        raise SteertuiError("--quick runs on the demo model only", "drop --model/--shape, or drop --quick")
    if args.shape and getattr(args, "model", None):
        raise SteertuiError("--shape builds its own model: it cannot be combined with --model", "pass one of them")
    rows = tuple(args.rows or ())
    # --repeats N: exactly N timed runs per side; without it, quick rows repeat until they took a few seconds
    exact = args.repeats is not None
    common = {"rows": rows, "startup_repeats": args.repeats if exact else 9}
    if args.shape:
        return Plan(repeats=args.repeats or 2, extract_pairs=2, eval_pairs=2, eval_folds=2,
                    memory_lengths=(1024, 4096, 8192), cheap_warmup=True, **common)
    if args.quick:
        return Plan(repeats=args.repeats or 5, eval_pairs=8, eval_folds=2, cheap_warmup=True,
                    min_seconds=0.0 if exact else 8.0, **common)
    return Plan(repeats=args.repeats or 5, min_seconds=0.0 if exact else 20.0, **common)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from steertui.engine.bench import build_shape, run_bench
    from steertui.engine.data import load_dataset

    if args.show:
        return show(args)
    out_path = _out_path(args.json, "--json")
    md_path = _out_path(args.markdown, "--markdown")
    plan = plan_for(args)
    err = Console(stderr=True)
    dataset = load_dataset(getattr(args, "dataset", None))
    part = "hand-crafted" if "hand-crafted" in dataset.parts else dataset.parts[0]
    pairs = list(dataset.select(parts=[part]).pairs)
    if not pairs:
        raise SteertuiError(f"{dataset.source.label} has no pairs", "pass a SecLLMHolmes checkout with --dataset")
    source = f"{dataset.source.label}, {part}: {len(pairs)} pairs"
    started = time.perf_counter()

    def write(report) -> None:
        if out_path is not None:
            from steertui.atomic import atomic_write_json

            atomic_write_json(out_path, report.to_dict())

    def say(status, text: str) -> None:
        status.update(text)
        if not err.is_terminal:  # a log instead of a spinner
            err.print(f"[{time.perf_counter() - started:6.0f} s] {text}", highlight=False)

    with err.status("loading the model") as status:
        if args.shape:
            say(status, f"building a random {args.shape} model")
            model = build_shape(args.shape, device=getattr(args, "device", None), dtype=getattr(args, "dtype", None))
        else:
            model = load_model(args)
        say(status, "measuring")
        # the JSON is rewritten after each group of rows, so a long run that is stopped keeps what it measured
        report = run_bench(model, pairs, plan, source=source, progress=lambda group: say(status, f"measuring: {group}"),
                           partial=write)
        if plan.wants("console") and not args.shape and (args.rows or not args.quick):
            import asyncio

            from steertui.tui.bench import console_rows

            say(status, "measuring: console")
            report.results += asyncio.run(console_rows(getattr(args, "model", None), getattr(args, "dataset", None),
                                                       repeats=min(plan.repeats, 3)))
            report.seconds = time.perf_counter() - started
    write(report)
    print_table(report, Console() if sys.stdout.isatty() else Console(width=160))
    if out_path is not None:
        err.print(f"results written to {out_path}")
    if md_path is not None:
        write_markdown(report, md_path)
    return 0


def print_table(report, console) -> None:
    from rich.table import Table

    from steertui.commands._tables import print_table

    from steertui.engine.bench import mb_text, ratio_text

    table = Table(header_style="bold", title=f"steertui bench · {report.model} · {report.device} {report.dtype} · "
                  f"{report.threads} threads · {report.machine}", title_justify="left",
                  caption="ratio = steertui median / baseline median (same process, interleaved); min ratio = "
                  f"fastest over fastest run, a reading of the noise. {report.memory}. "
                  + (f"× floor = steertui median / (forwards × {report.weight_bytes / 1e9:.2f} GB of weights ÷ "
                     f"{report.bandwidth_gbs:.0f} GB/s measured by a copy on {report.device}). "
                     if report.bandwidth_gbs else "")
                  + " ".join(report.notes) + f" Run took {report.seconds:.0f} s.", caption_justify="left")
    floors = any(r.floor_s is not None for r in report.results)
    for col in ("row", "tokens", "steertui s", "baseline s", "ratio", "target", "met", "min ratio",
                *(("× floor",) if floors else ()), "peak MB", "baseline MB", "check"):
        table.add_column(col, justify="left" if col in ("row", "check") else "right", no_wrap=col != "check",
                         overflow="fold", min_width=20 if col == "check" else None)
    for r in report.results:
        met = "-" if r.met is None else ("[green]yes[/]" if r.met else "[red]no[/]")
        floor = (ratio_text(r.floor_ratio),) if floors else ()
        table.add_row(r.name, str(r.tokens), f"{r.median_s:.4g}", f"{r.baseline_s:.4g}", ratio_text(r.ratio),
                      r.target_text, met, ratio_text(r.min_ratio), *floor, mb_text(r.peak_mem_mb),
                      mb_text(r.baseline_peak_mem_mb), ("" if r.check_ok else "[red]FAILED[/] ") + r.check)
    # a narrow terminal keeps the row, the ratio against its target and the check whole
    print_table(console, table, ("min ratio", "baseline MB", "tokens", "peak MB", "steertui s", "baseline s"),
                "--json")
    for r in report.results:
        extra = ""
        if "files_per_s" in r.extra:
            extra = f" {r.extra['files']} files, {r.extra['files_per_s']:.2f} files/s."
        console.print(f"[bold]{r.name}[/]: {r.steertui} · vs {r.baseline}.{extra}", highlight=False)
