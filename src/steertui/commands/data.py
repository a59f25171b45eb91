"""``steertui data``: summary, show, fetch and budget for SecLLMHolmes or the builtin examples.

Imports of rich, the engine and transformers happen inside the handlers, so ``steertui --help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steertui.commands._common import add_dataset_option, name_list, non_negative_int, positive_int

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from steertui.engine.data import Dataset, Pair, Sample

VULN_STYLE = "bold red"
PATCH_STYLE = "bold green"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``data`` and its subcommands to the CLI."""
    data = subparsers.add_parser("data", help="the paired code data: summary, show, fetch, budget",
                                 description="Inspect the paired vulnerable/patched code steertui works on.")
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    sub.required = True

    summary = sub.add_parser("summary", help="counts per part and per CWE, and the data source")
    add_dataset_option(summary)
    summary.add_argument("--json", action="store_true", help="print JSON instead of a table")
    summary.set_defaults(handler=run_summary)

    show = sub.add_parser("show", help="a pair side by side, differing lines highlighted, with its ground truth")
    show.add_argument("id", metavar="ID", help="a sample id (hand-crafted/CWE-787/p_1) or pair id (.../pair-1)")
    add_dataset_option(show)
    show.add_argument("--context", type=non_negative_int, metavar="N", default=None,
                      help="show only the differing lines with N lines around them (default: whole files)")
    show.add_argument("--json", action="store_true", help="print the pair or sample as JSON")
    show.set_defaults(handler=run_show)

    fetch = sub.add_parser("fetch", help="clone SecLLMHolmes at the pinned commit and remember it in the config")
    fetch.add_argument("--dest", metavar="DIR", help="where to clone (default: the user data folder)")
    fetch.add_argument("--commit", metavar="REV", default=None, help="commit to check out (default: the pinned one)")
    fetch.set_defaults(handler=run_fetch)

    budget = sub.add_parser(
        "budget", help="token count of every sample for a tokenizer, and what gets truncated",
        description="Token count of every sample and what the truncation rule keeps: a file of a pair that does "
        "not fit keeps, like its partner, the same window of whole lines around the pair's first difference "
        "(WINDOWED; 'window' gives the kept lines, 1-based); a file without a pair keeps lines from the top "
        "(TRUNCATED). --json gives per sample its pair, 'windowed' and 'window': [first, last].")
    add_dataset_option(budget)
    budget.add_argument("--model", metavar="M", default=argparse.SUPPRESS,
                        help="model folder or Hugging Face id whose tokenizer to use (default: the demo model)")
    budget.add_argument("--context", type=positive_int, metavar="N", help="context length (default: the model's)")
    budget.add_argument("--reserve", type=non_negative_int, metavar="N", default=None,
                        help="tokens kept free for the prompt around the code (default: 64)")
    budget.add_argument("--part", action="extend", type=name_list, metavar="PART",
                        help="only this part (repeatable, or comma-separated)")
    budget.add_argument("--cwe", action="extend", type=name_list, metavar="CWE",
                        help="only this CWE, e.g. cwe-787 (repeatable, or comma-separated: 22,787)")
    budget.add_argument("--truncated-only", action="store_true", help="list only the samples that get truncated")
    budget.add_argument("--json", action="store_true", help="print JSON instead of a table")
    budget.set_defaults(handler=run_budget)


# -- shared helpers ------------------------------------------------------------------------------------
def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def _load(args: argparse.Namespace) -> Dataset:
    from steertui.engine.data import load_dataset

    return load_dataset(getattr(args, "dataset", None))


def _print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def _note_warnings(dataset: Dataset) -> None:
    if dataset.warnings:
        print(f"steertui: {len(dataset.warnings)} warning(s) while loading {dataset.source.label} "
              "(see `steertui data summary`)", file=sys.stderr)


def _source_line(dataset: Dataset) -> Text:
    from rich.text import Text

    line = Text("Source: ", style="bold")
    line.append(dataset.source.label)
    if dataset.source.reason:
        line.append(f"  ({dataset.source.reason})", style="dim")
    if not dataset.source.is_benchmark:
        line.append("\nThese are steertui's builtin examples: results on them are not benchmark results.",
                    style="yellow")
    return line


# -- summary -------------------------------------------------------------------------------------------
def run_summary(args: argparse.Namespace) -> int:
    """``steertui data summary``."""
    from steertui.engine.data import summarize

    dataset = _load(args)
    summary = summarize(dataset)
    if args.json:
        _print_json(summary)
        return 0
    _render_summary(dataset, summary)
    return 0


def _render_summary(dataset: Dataset, summary: dict[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    console = _console()
    console.print(_source_line(dataset))
    table = Table(title=None, show_lines=False)
    for column, justify in (("part", "left"), ("files", "right"), ("pairs", "right"), ("unpaired", "right"),
                            ("languages", "left"), ("pairs by CWE", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for part, info in summary["parts"].items():
        languages = ", ".join(f"{lang} {n}" for lang, n in info["languages"].items())
        by_cwe = " ".join(f"{cwe.removeprefix('cwe-')}:{n}" for cwe, n in info["by_cwe"].items())
        table.add_row(part, str(info["files"]), str(info["pairs"]), str(len(info["unpaired"])), languages, by_cwe)
    console.print(table)
    real_world = summary["parts"].get("real-world")
    if real_world:
        projects = ", ".join(f"{name} {n}" for name, n in real_world["projects"].items())
        console.print(Text(f"real-world pairs per project: {projects}"))
    _render_caveats(console, dataset)
    _render_warnings(console, dataset)


def _render_caveats(console: Console, dataset: Dataset) -> None:
    from rich.text import Text

    flagged = [s for s in dataset.samples if s.caveats]
    if not flagged:
        return
    console.print(Text(f"Caveats on {len(flagged)} sample(s):", style="bold yellow"))
    for sample in flagged:
        console.print(Text(f"  {sample.id} [{sample.label}]: {sample.caveats[0]}"))


def _render_warnings(console: Console, dataset: Dataset) -> None:
    from rich.text import Text

    if not dataset.warnings:
        return
    console.print(Text(f"Warnings ({len(dataset.warnings)}):", style="bold yellow"))
    for warning in dataset.warnings:
        console.print(Text(f"  - {warning}"))


# -- show ----------------------------------------------------------------------------------------------
def run_show(args: argparse.Namespace) -> int:
    """``steertui data show ID``: a pair side by side (or a lone sample), with ground truth and caveats."""
    from steertui.engine.data import Pair

    dataset = _load(args)
    item = dataset.find(args.id)
    pair = item if isinstance(item, Pair) else dataset.pair_of(item)
    if args.json:
        data = (pair or item).to_dict()
        data["source"] = dataset.source.label
        _print_json(data)
        return 0
    console = _console()
    if pair is not None:
        _render_pair(console, dataset, pair, args.context)
    else:
        _render_lone(console, dataset, item)  # type: ignore[arg-type]
    _note_warnings(dataset)
    return 0


def _header(console: Console, dataset: Dataset, title: str, sample: Sample) -> None:
    from rich.text import Text

    head = Text(title, style="bold")
    head.append(f"\n{sample.cwe} {sample.cwe_name} · {sample.part} · {sample.language}")
    console.print(head)
    console.print(_source_line(dataset))


def _render_pair(console: Console, dataset: Dataset, pair: Pair, context: int | None) -> None:
    from rich.text import Text

    _header(console, dataset, f"Pair {pair.id}", pair.vulnerable)
    for caveat in pair.caveats:
        console.print(Text(f"CAVEAT {caveat}", style="bold yellow"))
    console.print(diff_table(pair, context))
    _render_texts(console, pair.vulnerable)
    shared = set(pair.vulnerable.texts)
    _render_texts(console, pair.patched, skip=shared)  # e.g. one CVE description for both sides


def _render_lone(console: Console, dataset: Dataset, sample: Sample) -> None:
    from rich.table import Table
    from rich.text import Text

    _header(console, dataset, f"Sample {sample.id} (no twin: listed as unpaired)", sample)
    for caveat in sample.caveats:
        console.print(Text(f"CAVEAT {sample.id}: {caveat}", style="bold yellow"))
    table = Table(show_header=True, expand=True)
    table.add_column("#", justify="right", style="dim", no_wrap=True)
    table.add_column(f"{sample.label_text.upper()}  {sample.id}", overflow="fold")
    for number, line in enumerate(sample.code.splitlines(), 1):
        table.add_row(str(number), Text(line.expandtabs(4)))
    console.print(table)
    _render_texts(console, sample)


def _render_texts(console: Console, sample: Sample, skip: set[tuple[str, str]] | None = None) -> None:
    from rich.text import Text

    title = Text(f"Ground truth — {sample.label_text} — {sample.id}", style="bold")
    console.print(title)
    console.print(Text(sample.ground_truth or "(no ground-truth text in the data)"))
    for name, text in sample.texts:
        if skip and (name, text) in skip:
            continue
        console.print(Text(f"{name} — {sample.id}", style="bold dim"))
        console.print(Text(text))


def diff_table(pair: Pair, context: int | None = None) -> Any:
    """A rich Table of both sides aligned line by line; lines that differ are marked ``-``/``+`` and coloured."""
    import difflib

    from rich.table import Table
    from rich.text import Text

    left, right = pair.vulnerable.code.splitlines(), pair.patched.code.splitlines()
    matcher = difflib.SequenceMatcher(a=left, b=right, autojunk=False)
    groups = matcher.get_grouped_opcodes(context) if context is not None else [matcher.get_opcodes()]
    table = Table(show_header=True, expand=True, pad_edge=False)
    table.add_column("#", justify="right", no_wrap=True, style="dim")
    table.add_column(f"VULNERABLE  {pair.vulnerable.id}", overflow="fold", ratio=1)
    table.add_column("#", justify="right", no_wrap=True, style="dim")
    table.add_column(f"{pair.patched.label_text.upper()}  {pair.patched.id}", overflow="fold", ratio=1)
    for index, group in enumerate(groups):
        if index and context is not None:
            table.add_row("", Text("⋯", style="dim"), "", Text("⋯", style="dim"))
        for tag, i1, i2, j1, j2 in group:
            for offset in range(max(i2 - i1, j2 - j1)):
                i, j = i1 + offset, j1 + offset
                changed = tag != "equal"
                table.add_row(*_side(left, i, i2, "-" if changed else " ", VULN_STYLE if changed else ""),
                              *_side(right, j, j2, "+" if changed else " ", PATCH_STYLE if changed else ""))
    return table


def _side(lines: list[str], index: int, stop: int, mark: str, style: str) -> tuple[Text, Text]:
    from rich.text import Text

    if index >= stop:
        return Text(""), Text("")
    return Text(f"{index + 1}{mark}"), Text(lines[index].expandtabs(4), style=style)


# -- fetch ---------------------------------------------------------------------------------------------
def run_fetch(args: argparse.Namespace) -> int:
    """``steertui data fetch``: clone at the pinned commit, then record the path in the config file."""
    from steertui.engine.data import PINNED_COMMIT, fetch_dataset

    result = fetch_dataset(args.dest, commit=args.commit or PINNED_COMMIT)
    verb = "Already present" if result.reused else "Cloned"
    print(f"{verb}: SecLLMHolmes at commit {result.commit or '?'} in {result.path}")
    print(f"Recorded dataset = {str(result.path)!r} in {result.config_file}")
    return 0


# -- budget --------------------------------------------------------------------------------------------
def run_budget(args: argparse.Namespace) -> int:
    """``steertui data budget``: token counts per sample and what the truncation rule cuts."""
    from steertui.engine.data import RESERVE_TOKENS, token_budget

    dataset = _load(args)
    if args.part or args.cwe:
        _check_parts(args.part or [])
        dataset = dataset.select(parts=args.part, cwes=args.cwe)
    model = str(getattr(args, "model", None) or _default_model())
    tokenizer = _load_tokenizer(model)
    context = args.context if args.context is not None else _context_length(model, tokenizer)
    reserve = RESERVE_TOKENS if args.reserve is None else args.reserve
    if context <= reserve:
        from steertui.errors import SteertuiError

        raise SteertuiError(f"context length {context} leaves no room after reserving {reserve} tokens",
                            "pass a larger --context or a smaller --reserve")
    report = token_budget(dataset.samples, tokenizer, context, reserve, tokenizer_name=model, pairs=dataset.pairs)
    if args.json:
        data = report.to_dict()
        data["source"] = dataset.source.label
        _print_json(data)
        return 0
    _render_budget(dataset, report, args.truncated_only)
    return 0


def _check_parts(parts: list[str]) -> None:
    import difflib

    from steertui.engine.data import PARTS
    from steertui.errors import DatasetError

    for part in parts:
        if part not in PARTS:
            close = difflib.get_close_matches(part, PARTS, n=1)
            hint = f"did you mean {close[0]}?" if close else "parts: " + ", ".join(PARTS)
            raise DatasetError(f"unknown part {part!r}", hint)


def _default_model() -> Path:
    from steertui.paths import demo_model_dir

    return demo_model_dir()


def _load_tokenizer(model: str) -> Any:
    from steertui.errors import ModelLoadError

    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(model)
    except Exception as err:  # noqa: BLE001 - any loader failure becomes one clear line
        raise ModelLoadError(f"cannot load a tokenizer from {model}: {str(err).splitlines()[0] if str(err) else err!r}",
                             "pass --model with a local model folder (one holding tokenizer.json)") from err


def _context_length(model: str, tokenizer: Any) -> int:
    """The model's context length from its config.json (the engine's one rule, without loading the weights)."""
    from steertui.engine.data import context_length
    from steertui.errors import SteertuiError

    config = Path(model) / "config.json"
    data: dict = {}
    if config.is_file():
        try:
            data = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
    value = context_length(data if isinstance(data, dict) else {}, tokenizer)
    if value is None:
        raise SteertuiError(f"the context length of {model} is unknown", "pass --context N")
    return value


def _render_budget(dataset: Dataset, report: Any, truncated_only: bool) -> None:
    from rich.table import Table
    from rich.text import Text

    console = _console()
    console.print(_source_line(dataset))
    console.print(Text(f"Tokenizer {report.tokenizer}; context {report.context_length}, "
                       f"{report.reserve_tokens} reserved, code limit {report.limit} tokens"))
    console.print(Text(f"Rule: {report.rule}", style="dim"))
    table = Table(show_header=True)
    table.add_column("sample", overflow="fold")
    for column in ("tokens", "kept lines", "window", "dropped tokens"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("note", no_wrap=True)
    for item in report.items:
        if truncated_only and not item.truncated:
            continue
        note = ("WINDOWED" if item.windowed else "TRUNCATED") if item.truncated or item.windowed else ""
        if any(not c.startswith("truncated to") for c in item.caveats):
            note = (note + " caveat").strip()
        window = f"{item.window[0]}-{item.window[1]}" if item.window else "-"
        table.add_row(item.sample_id, str(item.tokens), f"{item.kept_lines}/{item.total_lines}", window,
                      str(item.dropped_tokens), Text(note, style="bold yellow" if note else ""))
    console.print(table)
    cut = report.truncated
    console.print(Text(f"{len(cut)} of {len(report.items)} sample(s) truncated to fit {report.limit} tokens"
                       + (": " + ", ".join(i.sample_id for i in cut) if cut else ""),
                       style="bold yellow" if cut else ""))
    windowed = report.windowed_pairs
    if windowed:
        console.print(Text(f"{len(windowed)} pair(s) windowed (both files keep the same lines around their first "
                           f"difference): " + ", ".join(windowed), style="yellow"))
    _note_warnings(dataset)
