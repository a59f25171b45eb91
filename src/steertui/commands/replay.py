"""``steertui replay FILE``: load the model and data a session names, re-run every step, compare.

Exit 0 when every step matches the recording, 1 when any differs (with a per-step diff naming the key path),
2 when the file, its sidecar, the model or the data cannot be used (one line naming the file and the key).
"""

from __future__ import annotations

import argparse
import json
import sys

from steertui.commands._common import add_session_file


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay", help="re-run a saved session headless and compare it with what was recorded",
        description="Load the model and data a session file names (checking the weights' and every data file's "
        "sha256 and the vectors' sidecar), re-run every step, and compare with the recording: token ids, texts "
        "and other discrete values exactly, floats within |replayed - recorded| <= 1e-4 + 1e-3*|recorded|. "
        "Exit 0: everything matches; 1: a step differs; 2: the session cannot be replayed.")
    add_session_file(p)
    p.add_argument("--check", action="store_true",
                   help="only verdicts and differences (no per-step summary of the replayed results)")
    p.add_argument("--json", action="store_true", help="print the per-step verdicts as JSON")
    p.add_argument("--dataset", metavar="P", default=argparse.SUPPRESS,
                   help="use this copy of the session's dataset (its files must match the recorded sha256)")
    p.add_argument("--model", metavar="M", default=argparse.SUPPRESS,
                   help="use this copy of the session's model (its weights must match the recorded sha256)")
    p.add_argument("--device", default=argparse.SUPPRESS, help="replay on this device (default: the recorded one)")
    p.add_argument("--dtype", default=argparse.SUPPRESS, help="replay in this dtype (default: the recorded one)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from steertui.engine.session import prepare, replay, resolve_session_file
    from steertui.engine.session.replay import TOLERANCE_RULE

    path = resolve_session_file(args.file, getattr(args, "sessions_dir", None))
    out = sys.stdout
    opened = prepare(path, model=getattr(args, "model", None), dataset_path=getattr(args, "dataset", None),
                     device=getattr(args, "device", None), dtype=getattr(args, "dtype", None))
    doc, info = opened.doc, opened.model.info
    if not args.json:
        data = opened.dataset.source.label if opened.dataset is not None else f"{doc.data.label} (not needed)"
        out.write(f"replaying {path} · model {doc.model.spec} ({info.model_type}, {info.n_layers} layers) on "
                  f"{info.device}/{info.dtype} · data {data} · {len(doc.steps)} steps\n")
        out.write(f"tolerance: {TOLERANCE_RULE}\n")
        for note in opened.notes:
            out.write(f"note: {note}\n")
        out.flush()

    def show(v) -> None:
        if args.json:
            return
        mark = "match" if v.ok else "MISMATCH"
        extra = f"  ({v.n_diffs} difference{'s' if v.n_diffs != 1 else ''})" if not v.ok else ""
        out.write(f"  [{v.index}] {v.kind:<13} {mark:<8} {v.seconds:6.2f}s{extra}\n")
        if not args.check and v.summary:
            out.write(f"        {v.summary}\n")
        for d in v.diffs:
            out.write(f"        {d}\n")
        if v.n_diffs > len(v.diffs):
            out.write(f"        … and {v.n_diffs - len(v.diffs)} more\n")
        out.flush()

    report = replay(opened, on_step=show)
    if args.json:
        json.dump(report.to_dict(), out, indent=1, allow_nan=False, default=str)
        out.write("\n")
    else:
        bad = report.mismatched
        if not bad:
            out.write(f"all {len(report.steps)} steps match ({report.seconds:.1f}s)\n")
        else:
            names = ", ".join(f"steps[{v.index}] {v.kind}" for v in bad)
            out.write(f"{len(bad)} of {len(report.steps)} steps differ: {names}\n")
    return 0 if report.ok else 1
