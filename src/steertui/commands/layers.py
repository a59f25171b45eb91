"""`steertui layers`: one real forward, every module's output type, shape, dtype, device and flags."""

from __future__ import annotations

import argparse
import json
import sys

from steertui.commands._common import add_model_options, load_model


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("layers", help="show every module's real output and its nnsight access path",
                       description="Run one real forward and print the module tree: for every module its nnsight "
                       "access path, output type (tensor, or tuple and which element holds the hidden state), "
                       "shape, dtype, device, and flags for all-zero and NaN/inf outputs.")
    add_model_options(p)
    p.add_argument("--prompt", help="text to run (default: a short C function)")
    p.add_argument("--json", action="store_true", help="print a JSON list of module objects")
    p.add_argument("--blocks", action="store_true", help="show only the blocks (one row per layer)")
    p.add_argument("--module", metavar="PATH",
                   help="what one module (a dotted path from the table, e.g. transformer.h.3; '' the model) holds: "
                   "the access that reads it and the one that looks right and is not, its statistics, each "
                   "token's norm, the first values and the largest components at the last token")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from steertui.engine.layers import DEFAULT_PROMPT, probe_layers

    model = load_model(args)
    report = probe_layers(model, args.prompt if args.prompt is not None else DEFAULT_PROMPT)
    if args.module is not None:
        m = report.module(args.module)
        if args.json:
            json.dump(m.to_dict(), sys.stdout, indent=1)
            sys.stdout.write("\n")
        else:
            _print_module(report, m)
        return 0
    rows = report.blocks() if args.blocks else report.modules
    if args.json:
        json.dump([m.to_dict() for m in rows], sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    _print_table(report, rows)
    return 0


def _print_table(report, rows, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    from steertui.commands._tables import print_table

    console = console or (Console() if sys.stdout.isatty() else Console(width=140))
    a = report.adapter
    devices = sorted({m.device for m in rows if m.device})
    console.print(f"[bold]{report.model}[/] · {a['model_type']} · {report.n_layers} layers · d_model {report.d_model}"
                  f" · prompt of {report.n_tokens} tokens · device {', '.join(devices) or '-'}")
    console.print(f"blocks: [cyan]{a['blocks']}[/] return {a['block_output']}"
                  + (f"  [yellow](guessed: {'; '.join(a['notes'])})[/]" if a["guessed"] else ""))
    table = Table(header_style="bold", box=None, pad_edge=False)
    # the access path is what the table is for: never cut (the class names and types give way first)
    table.add_column("access path (execution order)", no_wrap=True, min_width=max([44] + [len(m.access) for m in rows]))
    table.add_column("module", no_wrap=True, max_width=22, overflow="ellipsis")
    table.add_column("type", max_width=24, overflow="fold")  # the one column that wraps on a narrow terminal
    table.add_column("shape", no_wrap=True, min_width=14)
    for col in ("dtype", "‖x‖ mean", "flags"):
        table.add_column(col, no_wrap=True, min_width=8)
    for m in rows:
        kind = m.type
        if m.type == "tuple":
            kind = "tuple(" + ", ".join("T" if e.shape is not None else e.type for e in m.elements) + ")"
        elif m.elements:
            kind = f"{m.type}({', '.join(e.key for e in m.elements)})"
        style = "red" if m.flags else ("bold" if m.is_block else "")
        table.add_row(m.access, m.module, kind, str(tuple(m.shape)) if m.shape else "-", m.dtype or "-",
                      f"{m.norm_mean:.3g}" if m.norm_mean is not None else "-", ", ".join(m.flags) or "ok",
                      style=style)
    # a terminal narrower than the table keeps the access path, the output's type and its flags whole
    print_table(console, table, ("module", "dtype", "‖x‖ mean", "shape"), "--json")
    flagged = report.flagged()
    console.print(f"[red]{len(flagged)} module(s) flagged[/]" if flagged else "[green]no zero, NaN or inf outputs[/]")


def _print_module(report, m) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from steertui.engine.layers import module_detail

    console = Console() if sys.stdout.isatty() else Console(width=120)
    console.print(f"[bold]{report.model}[/] · prompt of {report.n_tokens} tokens")
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right", style="dim", no_wrap=True)
    grid.add_column()
    for label, line in module_detail(report, m, min(report.n_tokens, console.width - 20)):
        grid.add_row(label, Text(line, style="red" if label in ("not", "flags") else ""))
    console.print(grid)
