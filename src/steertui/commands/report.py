"""``steertui report FILE``: what a saved session holds, read from the file alone (no model, no data, no GPU).

The header (model, weights, data, libraries), the vectors with where they were read and their sha256 (checked
against the sidecar when it is there), the steering, every step in one line, then each step in full as it was
recorded: a build's diagnostics per layer, an evaluation's table, layer grid and honest pick (the tables
``steertui eval`` prints, from the recorded rows and per-file scores), a generation's two continuations, the
next tokens on both sides, the lens at the answer slot, the modules a layer probe flagged. ``--html`` and
``--text`` save the same report as a file to share (the session file holds the numbers; the report is for
reading). A session another process is recording can be reported: the file is only read.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from steertui.commands._common import add_session_file
from steertui.errors import SteertuiError

REPORT_WIDTH = 150  # columns of a saved report (a terminal's own width otherwise)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report", help="what a saved session holds, read from the file alone (no model needed)",
        description="Print a saved session as it was recorded: model, data, libraries, vectors (sha256 checked "
        "against the sidecar when present), steering, every step in one line, then each step in full: a build's "
        "diagnostics, an evaluation's tables and honest pick, a generation's continuations, the next tokens, the "
        "lens, the modules a probe flagged. Loads no model and no data. Exit 2 when the file cannot be read.")
    add_session_file(p)
    p.add_argument("--html", metavar="OUT", help="also save the report as a self-contained HTML file")
    p.add_argument("--text", metavar="OUT", help="also save the report as plain text")
    p.set_defaults(handler=run)


def _out_path(value: str | None, flag: str) -> Path | None:
    if value is None:
        return None
    path = Path(value)
    if not path.parent.exists():
        raise SteertuiError(f"folder '{path.parent}' for {flag} does not exist", "create it or pick another path")
    if path.is_dir():
        raise SteertuiError(f"{flag} {path} is a folder", "give a file name")
    return path


def run(args: argparse.Namespace) -> int:
    import sys

    from rich.console import Console

    from steertui.engine.session import read_session, resolve_session_file

    html, text = _out_path(args.html, "--html"), _out_path(args.text, "--text")
    path = resolve_session_file(args.file, getattr(args, "sessions_dir", None))
    doc = read_session(path)
    saving = html is not None or text is not None
    width = None if sys.stdout.isatty() and not saving else REPORT_WIDTH
    console = Console(record=saving, width=width)
    write_report(doc, path, console)
    if saving:
        save(console, html=html, text=text)
        saved = " and ".join(str(p) for p in (html, text) if p is not None)
        Console(stderr=True).print(f"report written to {saved}")
    return 0


def save(console: Any, *, html: Path | None = None, text: Path | None = None) -> None:
    """What a recording ``console`` printed, written atomically as HTML and/or plain text."""
    from steertui.atomic import atomic_write_text

    if html is not None:
        atomic_write_text(html, console.export_html(clear=False))
    if text is not None:
        atomic_write_text(text, console.export_text(clear=False))


def save_html(doc: Any, path: Path, out: Path) -> Path:
    """The report of session ``doc`` (its file ``path``) written to ``out`` as HTML only (the console's report
    key: nothing is printed)."""
    import io

    from rich.console import Console

    console = Console(record=True, width=REPORT_WIDTH, file=io.StringIO())
    write_report(doc, path, console)
    save(console, html=out)
    return out


# ---- the report ---------------------------------------------------------------------------------------------
def write_report(doc: Any, path: Path, console: Any) -> None:
    """The whole report of session ``doc`` (read from ``path``) onto a rich ``console``."""
    _header(doc, path, console)
    _vectors(doc, path, console)
    _steps(doc, console)
    for i, step in enumerate(doc.steps):
        console.rule(f"steps[{i}] {step.kind}" + (f" · {step.at}" if step.at else "")
                     + (f" · {step.seconds:.1f} s" if step.seconds is not None else ""))
        DETAIL[step.kind](doc, step, console)


def _header(doc: Any, path: Path, console: Any) -> None:
    from rich.markup import escape

    h, m, d = doc.steertui, doc.model, doc.data
    console.print(f"[bold]session[/] {escape(str(path))}")
    console.print(f"created {h.created} with steertui {h.version} · python {h.python}, torch {h.torch}, "
                  f"transformers {h.transformers}, nnsight {h.nnsight}"
                  + (f" · note: {escape(h.note)}" if h.note else ""))
    revision = f" @ {escape(m.revision)}" if m.revision else ""
    console.print(f"[bold]model[/] {escape(m.spec)}{revision} ({escape(m.name)}, {m.model_type}: {m.n_layers} "
                  f"layers, d_model {m.d_model}, vocabulary {m.vocab_size:,}) in {m.dtype} on {m.device} · "
                  f"weights sha256 {m.weights_sha256[:16] or 'not recorded'}")
    commit = f" @ {d.commit}" if d.commit else ""
    console.print(f"[bold]data[/] {escape(d.label)}{commit} ({d.kind}, {len(d.files)} file(s) with their sha256)")


def _vectors(doc: Any, path: Path, console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    from steertui.commands._tables import print_table
    from steertui.engine.session.store import SessionError, read_vectors

    if not doc.vectors:
        console.print("[bold]vectors[/] none")
    else:
        try:
            read_vectors(doc, path)
            check = "[green]every tensor in the sidecar matches its sha256[/]"
        except SessionError as err:
            check = f"[yellow]not checked: {escape(err.problem)}[/]"
        console.print(f"[bold]vectors[/] {check}")
        table = Table(header_style="bold")
        for col in ("name", "recipe", "layers", "pairs", "read and added at", "sha256 per layer"):
            table.add_column(col)
        for v in doc.vectors:
            recipe = f"{v.method}, readout {v.readout}" + (f", seed {v.seed}" if v.seed is not None else "")
            if v.origin:
                recipe += f"; imported from {v.origin.split(' sha256:')[0]}"
            pairs = str(len(v.pair_ids)) if v.pair_ids else "-"
            table.add_row(v.name, escape(recipe), ", ".join(map(str, v.layers)), pairs,
                          escape(v.read_at) or "not recorded",
                          " ".join(f"{L}:{v.sha256.get(str(L), '')[:12]}" for L in v.layers))
        print_table(console, table)
    console.print("[bold]steering[/] " + _steers(doc.steering.interventions))


def _steers(steers: Any) -> str:
    return "; ".join(f"{s.vector} at layer {s.layer} × {s.alpha:g} ({s.positions})" for s in steers) or "none"


def _steps(doc: Any, console: Any) -> None:
    from rich.table import Table

    from steertui.commands._tables import print_table

    from steertui.engine.session.replay import summarize

    table = Table(title=f"{len(doc.steps)} step(s)", header_style="bold")
    for col in ("#", "kind", "at", "s", "what it gave"):
        table.add_column(col, justify="right" if col in ("#", "s") else "left")
    for i, st in enumerate(doc.steps):
        table.add_row(str(i), st.kind, st.at or "-", "-" if st.seconds is None else f"{st.seconds:.1f}",
                      summarize(st.kind, st.outputs, st.inputs))
    print_table(console, table)


def _text(value: Any) -> str:
    """``repr(value)`` safe to print: code and tokens hold brackets that rich would read as markup."""
    from rich.markup import escape

    return escape(repr(value))


def _tail(prompt: str, limit: int = 90) -> str:
    """A prompt's last line (what the model continues), with its size."""
    last = prompt.rstrip("\n").rsplit("\n", 1)[-1]
    shown = last if len(last) <= limit else "…" + last[-limit:]
    return f"{_text(shown)} (last line of {len(prompt.splitlines())}, {len(prompt):,} characters)"


def _detail_layers(doc: Any, step: Any, console: Any) -> None:
    from rich.markup import escape

    o = step.outputs
    flagged = [m for m in o.modules if m.flags]
    console.print(f"prompt {_tail(step.inputs.prompt)} · {o.n_tokens} tokens · {len(o.modules)} modules")
    if not flagged:
        console.print("no module flagged (no all-zero, NaN or infinite output)")
    for m in flagged:
        console.print(f"[red]{escape(m.access)}[/]: {', '.join(m.flags)} ({escape(m.type)}, shape {m.shape})")


def _detail_lens(doc: Any, step: Any, console: Any) -> None:
    from rich.table import Table

    o = step.outputs
    pos = o.positions[-1]
    console.print(f"prompt {_tail(step.inputs.prompt)} · steering {_steers(step.inputs.steers)} · lens at the last "
                  f"layer vs the model's softmax: max |Δp| {o.final_logits_check:.2g}")
    table = Table(title=f"at position {pos} {_text(o.token_texts[pos])}", header_style="bold")
    for col in ("layer", "baseline top 3", "steered top 3"):
        table.add_column(col)
    target = o.target_text is not None and o.baseline and o.baseline[0].target_probs is not None
    if target:
        table.add_column(f"p({_text(o.target_text)}) baseline → steered")
    for k, b in enumerate(o.baseline):
        s = o.steered[k] if o.steered else None

        def top(x):
            return " ".join(f"{_text(t)} {p:.2f}" for t, p in zip(x.top_texts[-1][:3], x.top_probs[-1][:3]))

        cells = [str(b.layer), top(b), top(s) if s is not None else "-"]
        if target:
            after = f" → {s.target_probs[-1]:.3g}" if s is not None and s.target_probs is not None else ""
            cells.append(f"{b.target_probs[-1]:.3g}{after}")
        table.add_row(*cells)
    console.print(table)


def _detail_top_tokens(doc: Any, step: Any, console: Any) -> None:
    from rich.table import Table

    console.print(f"steering {_steers(step.inputs.steers)}")
    for prompt, r in zip(step.inputs.prompts, step.outputs.rows):
        console.print(f"prompt {_tail(prompt)} · KL(steered ‖ baseline) {r.kl:.4g}")
        table = Table(header_style="bold")
        for col in ("#", "baseline", "p", "steered", "p"):
            table.add_column(col, justify="right" if col in ("#", "p") else "left")
        for j in range(min(5, len(r.baseline_ids))):
            table.add_row(str(j + 1), _text(r.baseline_texts[j]), f"{r.baseline_probs[j]:.3f}",
                          _text(r.steered_texts[j]), f"{r.steered_probs[j]:.3f}")
        console.print(table)


def _detail_generate(doc: Any, step: Any, console: Any) -> None:
    console.print(f"steering {_steers(step.inputs.steers)} · up to {step.inputs.max_new_tokens} new tokens, greedy")
    for prompt, r in zip(step.inputs.prompts, step.outputs.rows):
        console.print(f"prompt {_tail(prompt)}")
        div = "identical" if r.first_divergence is None else f"they differ from token {r.first_divergence} on"
        for side, text, lps in (("baseline", r.baseline_text, r.baseline_logprobs),
                                ("steered", r.steered_text, r.steered_logprobs)):
            mean = math.fsum(lps) / len(lps) if lps else float("nan")
            console.print(f"  {side:<8} ({len(lps)} tokens, mean log-prob {mean:.3f}): {text!r}", markup=False)
        console.print(f"  {div}")


def _detail_vectors(doc: Any, step: Any, console: Any) -> None:
    from rich.table import Table

    i = step.inputs
    made = (f"imported from {i.file} ({i.format}), {len(i.left_out)} pair(s) it was built from left out"
            if step.kind == "import_vectors" else f"{i.method}, readout {i.readout}, split {i.split or '-'}")
    console.print(f"vector {i.vector}: {made}; {len(i.pair_ids)} pairs")
    table = Table(header_style="bold")
    for col in ("layer", "pairs", "‖v‖", "‖v‖/‖h‖", "consistency", "AUC pair", "AUC CWE"):
        table.add_column(col, justify="right")

    def num(x: float | None, fmt: str = ".3f") -> str:
        return "-" if x is None else format(x, fmt)

    for d in step.outputs.diagnostics:
        table.add_row(str(d.layer), str(d.n_pairs), num(d.vector_norm, ".3g"), num(d.norm_ratio), num(d.consistency),
                      num(d.auroc_pairs), num(d.auroc_cwe))
    console.print(table)
    if step.outputs.truncated:
        console.print(f"[yellow]{len(step.outputs.truncated)} file(s) cut to the context[/]")


def _detail_evaluate(doc: Any, step: Any, console: Any) -> None:
    from steertui.commands.eval import _picks, _print_picks, _print_table
    from steertui.engine.session.resume import recorded_evaluation

    result = recorded_evaluation(doc, step)
    parts = sorted({pid.split("/")[0] for pid in step.inputs.pair_ids})
    console.print(f"{len(step.inputs.pair_ids)} pairs, {len(result.files)} held-out file records")
    _print_table(result, parts, console, where="report --html or --text")
    if result.files:
        picks, no_pick = _picks(result, None)
        _print_picks(result, picks, no_pick, None, console)
    else:
        console.print("[yellow]no per-file records (written before they were kept): no cell picked on the other "
                      "folds[/]")


DETAIL = {"layers": _detail_layers, "lens": _detail_lens, "top_tokens": _detail_top_tokens,
          "generate": _detail_generate, "build_vectors": _detail_vectors, "import_vectors": _detail_vectors,
          "evaluate": _detail_evaluate}
