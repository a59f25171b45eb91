"""``steertui compare A B``: two recorded evaluations of the same files, cell by cell and pair by pair
(``engine.compare``): which steering moved the verdict further beyond its random controls, and do the pairs tell
the two apart? Read from the session files alone (no model, no data)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from steertui.errors import SteertuiError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="two recorded evaluations of the same files, pair by pair (no model needed)",
        description="Compare two recorded evaluations of the same pairs (two sessions, or two steps of one): per "
        "cell (layer, alpha) and CWE, each one's shift beyond its random controls over the pairs both held out, "
        "and their difference paired pair by pair with its standard error, so that a method, readout, per-CWE "
        "vectors or another model can be told apart from noise. Reads the session files alone.")
    p.add_argument("a", metavar="A", help="a session .toml file (a bare name is also looked up in the sessions "
                   "folder)")
    p.add_argument("b", metavar="B", help="another session file, or the same one with --step-b")
    p.add_argument("--step-a", type=int, metavar="N", help="which step of A (its index, as `steertui report` "
                   "numbers them; default: its last evaluation)")
    p.add_argument("--step-b", type=int, metavar="N", help="which step of B (default: its last evaluation)")
    p.add_argument("--sessions-dir", metavar="DIR", help="where bare session names are looked up")
    p.add_argument("--json", metavar="FILE", help="also write the comparison as JSON ('-': to standard output "
                   "instead of the table)")
    p.set_defaults(handler=run)


def _evaluation(path: Any, step: int | None, name: str) -> tuple[int, Any]:
    """(the step's index, its EvalResult) for evaluation ``name`` of the command line."""
    from steertui.engine.session import read_session
    from steertui.engine.session.resume import recorded_evaluation

    doc = read_session(path)
    evals = [i for i, s in enumerate(doc.steps) if s.kind == "evaluate"]
    if step is None:
        if not evals:
            raise SteertuiError(f"{path} has no evaluation step ({len(doc.steps)} step(s))",
                                "record one with `steertui eval --record`, or the console's e, a or x")
        step = evals[-1]
    if not -len(doc.steps) <= step < len(doc.steps):
        raise SteertuiError(f"{path} has no step {step} (it has {len(doc.steps)})",
                            f"pass --step-{name.lower()} one of {', '.join(map(str, evals)) or 'none'}")
    step = step % len(doc.steps)
    if doc.steps[step].kind != "evaluate":
        raise SteertuiError(f"step {step} of {path} is a {doc.steps[step].kind} step, not an evaluation",
                            f"pass --step-{name.lower()} one of {', '.join(map(str, evals)) or 'none'}")
    return step, recorded_evaluation(doc, doc.steps[step])


def caveats(a: Any, b: Any) -> list[str]:
    """What makes the same cell of A and B not the same push, or their numbers not the same unit."""
    sa, sb = a.settings, b.settings
    out = []
    if sa.alpha_scale != sb.alpha_scale:
        out.append(f"A's alphas are {sa.alpha_scale}, B's {sb.alpha_scale}: the same alpha is not the same push")
    if (sa.together is None) != (sb.together is None) or (sa.together is not None and sa.together != sb.together):
        out.append("A and B steer different sets of layers at once: a cell's layer is not the same intervention")
    if a.model != b.model:
        out.append(f"A ran {a.model}, B {b.model}: each excess is in its own model's logits")
    if (sa.yes, sa.no) != (sb.yes, sb.no):
        out.append(f"A scores {sa.yes!r} against {sa.no!r}, B {sb.yes!r} against {sb.no!r}")
    return out


def describe(result: Any) -> str:
    """What an evaluation steered with and how it held out its files, in one line."""
    s = result.settings
    made = (f"vector {s.vector!r} as given" if s.vector is not None
            else f"{s.method}, readout {s.readout}" + (", a vector per CWE" if s.per_cwe else ""))
    made += ", few-shot prompts" if s.shot_pairs else ""
    together = "" if s.together is None else f", layers at once × {', '.join(f'{w:g}' for w in s.together)}"
    folds = f"{s.folds} folds by pairs, seed {s.seed}" if s.split == "pairs" else "one CWE held out at a time"
    return f"{result.model} · {made}{together} · {folds} · alpha {s.alpha_scale} · {s.controls} control(s)"


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from steertui.engine.compare import compare_evaluations
    from steertui.engine.session import resolve_session_file

    folder = args.sessions_dir
    path_a, path_b = resolve_session_file(args.a, folder), resolve_session_file(args.b, folder)
    step_a, a = _evaluation(path_a, args.step_a, "A")
    step_b, b = _evaluation(path_b, args.step_b, "B")
    if path_a.resolve() == path_b.resolve() and step_a == step_b:
        raise SteertuiError(f"A and B are the same evaluation (step {step_a} of {path_a})",
                            "pass --step-a and --step-b, or two session files")
    comparison = compare_evaluations(a, b)
    data = {"a": {"file": str(path_a), "step": step_a, "settings": a.settings.to_dict(), "model": a.model},
            "b": {"file": str(path_b), "step": step_b, "settings": b.settings.to_dict(), "model": b.model},
            **comparison.to_dict(), "notes": caveats(a, b)}
    if args.json == "-":
        from steertui.atomic import finite_json

        sys.stdout.write(json.dumps(finite_json(data), indent=1, allow_nan=False) + "\n")
        return 0
    if args.json:
        from steertui.atomic import atomic_write_json

        atomic_write_json(args.json, data)
    console = Console() if sys.stdout.isatty() else Console(width=150)
    print_comparison(console, comparison, (f"{path_a} steps[{step_a}]", describe(a)),
                     (f"{path_b} steps[{step_b}]", describe(b)))
    for note in data["notes"]:
        console.print(f"[yellow]note: {note}[/]")
    if args.json:
        Console(stderr=True).print(f"comparison written to {args.json}")
    return 0


def print_comparison(console: Any, comparison: Any, a: tuple[str, str], b: tuple[str, str]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from steertui.commands._tables import print_table
    from steertui.engine.ops import CONTROL_SE

    console.print(f"[bold]A[/] {escape(a[0])}: {escape(a[1])}")
    console.print(f"[bold]B[/] {escape(b[0])}: {escape(b[1])}")
    left = []
    if comparison.only_a or comparison.only_b:
        left.append(f"{len(comparison.only_a)} pair(s) only A and {len(comparison.only_b)} only B held out")
    if comparison.cells_only_a or comparison.cells_only_b:
        left.append(f"{len(comparison.cells_only_a)} cell(s) only A and {len(comparison.cells_only_b)} only B hold")
    console.print(f"{comparison.pairs} pairs held out by both, {len(comparison.cells)} cell(s) in both"
                  + (f" (left out: {'; '.join(left)})" if left else ""))
    fix = any(r.fix_difference is not None for r in comparison.rows)
    table = Table(header_style="bold")
    for col in ("layer", "alpha", "cwe", "pairs", "A vs rand", "B vs rand", "A − B",
                *(("fix pairs", "fix A", "fix B", "fix A − B") if fix else ())):
        table.add_column(col, justify="left" if col == "cwe" else "right")
    for r in comparison.rows:
        cells = [str(r.layer), f"{r.alpha:g}", r.cwe, str(r.pairs), f"{r.excess_a:+.3f}", f"{r.excess_b:+.3f}",
                 _difference(r.difference, r.se, r.beyond, r.alpha)]
        if fix:
            cells += (["", "", "", ""] if r.fix_difference is None else
                      [str(r.fix_pairs), f"{r.fix_a:+.2f}", f"{r.fix_b:+.2f}",
                       _difference(r.fix_difference, r.fix_se, r.fix_beyond, 1.0, 2)])
        table.add_row(*cells, style="bold" if r.cwe == "all" else "")
    print_table(console, table, ("fix pairs", "pairs"), "--json")
    console.print(f"A vs rand, B vs rand: the mean over the pairs both held out of each one's shift beyond its random "
                  f"controls (steered score minus the controls' mean, per pair the mean of its files); A − B: the "
                  f"mean of the per-pair differences ± {CONTROL_SE:g} standard errors, green where A moved the "
                  f"verdict further than B in the direction of the cell's alpha beyond them, red where B did, dim "
                  f"within (the pairs do not tell the two apart)"
                  + ("; fix: the same for the fix-site preference (nats; green: A towards the fix)" if fix else ""))
    overall = [r for r in comparison.rows if r.cwe == "all" and r.alpha != 0]
    a_further = sum(r.beyond and r.difference * r.alpha > 0 for r in overall)
    b_further = sum(r.beyond and r.difference * r.alpha < 0 for r in overall)
    console.print(f"over all pairs: A moved the verdict further than B beyond {CONTROL_SE:g} SE in {a_further} of "
                  f"{len(overall)} cell(s) with a push, B further than A in {b_further}"
                  + (f" (with {len(overall)} cells compared, about {0.05 * len(overall):.1f} would cross by chance "
                     "alone)" if len(overall) > 1 else ""))


def _difference(value: float, se: float | None, beyond: bool, toward: float, digits: int = 3) -> str:
    """``value`` ± ``CONTROL_SE`` standard errors: beyond them green where it has the sign of ``toward`` (A went
    further that way), red where not; dim within them (``±?``: no error)."""
    import math

    from steertui.engine.ops import CONTROL_SE

    spread = f"±{CONTROL_SE * se:.2f}" if se is not None and math.isfinite(se) else "±?"
    text = f"{value:+.{digits}f}{spread}"
    if not beyond:
        return f"[dim]{text}[/]"
    return f"[green]{text}[/]" if value * toward > 0 else f"[red]{text}[/]"
