"""``steertui vectors FILE``: the steering vectors a session holds (or a vectors file), checked; ``--export``
writes one of them to a standalone safetensors file that says what it holds and where it applies, or to a GGUF
control vector for llama.cpp (``--control-vector``) and repeng.

Exit 0 when everything is read and matches its sha256; 2 when the file cannot be used (one line naming it)."""

from __future__ import annotations

import argparse
import json
import sys

from steertui.commands._common import layer_list

VECTOR_FILES = (".safetensors", ".gguf")  # a vectors file; anything else is a session


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "vectors", help="list a session's steering vectors, or export one to a standalone safetensors file or a "
        "GGUF control vector",
        description="Read the steering vectors of a session file (.toml; its .safetensors sidecar beside it), a "
        "session's sidecar, or a file written by --export, and check each tensor against its sha256. For every "
        "vector: its recipe (method, readout, pairs, split, seed, data), where it was read and is added "
        "(read_at), and per layer its norm, the layer's mean residual norm and its sha256. --export NAME --out "
        "FILE.safetensors writes that vector (every layer, or --layers) with all of this in the file's metadata; "
        "--out FILE.gguf writes it as a llama.cpp control vector (direction.K is added at block K's output, as "
        "steertui's layer K; layers 1 and above; steertui's raw alpha is llama.cpp's strength), with the same "
        "metadata under steertui.vector.")
    p.add_argument("file", metavar="FILE", help="a session .toml (a bare name is looked up in the sessions folder), "
                   "a session's .safetensors sidecar, an exported .safetensors file, or a .gguf control vector")
    p.add_argument("--export", metavar="NAME", help="the session's vector to export (needs --out)")
    p.add_argument("--out", metavar="FILE", help="where --export writes (FILE.safetensors, or FILE.gguf for "
                   "llama.cpp)")
    p.add_argument("--layers", type=layer_list, metavar="L[,L...]", help="only these layers (default: all)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from steertui.engine.session.export import export_vector, read_vector_file, session_vector_file
    from steertui.engine.session.store import SessionError

    if (args.export is None) != (args.out is None):
        raise SessionError(args.file, "--export/--out", "--export and --out go together",
                           "give both: --export NAME --out FILE.safetensors")
    if args.export is not None:
        if str(args.file).endswith(VECTOR_FILES):
            raise SessionError(args.file, "FILE", "--export reads a session file", "give the session's .toml")
        out = export_vector(args.file, args.export, args.out, args.layers)
        print(f"vector {args.export!r} written to {out}", file=sys.stderr)
        info = read_vector_file(out)  # read back: what a user of the file gets
    elif str(args.file).endswith(VECTOR_FILES):
        info = read_vector_file(args.file)
    else:
        info = session_vector_file(args.file)
    if args.json:
        json.dump({"file": str(info.path), "format": info.format, "vectors": {
            name: {"about": info.about.get(name, {}),
                   "layers": {str(L): {"norm": float(t.norm()), "d_model": int(t.shape[0])} for L, t in v.items()}}
            for name, v in info.vectors.items()}}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    _print(info)
    return 0


def _print(info) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    what = "session (its sidecar)" if info.format == "session" else info.format
    checked = ("every tensor matches its sha256" if info.checked
               else "no sha256 recorded in it: the column is computed here")
    console.print(f"{info.path} · {what} · {checked}")
    for name, layers in info.vectors.items():
        about = info.about.get(name, {})
        recipe = " · ".join(f"{k} {about[k]}" for k in ("method", "readout", "split", "seed", "model")
                            if about.get(k) not in (None, ""))
        console.print(f"\n[bold]{name}[/] {recipe}")
        if about.get("model_hint"):
            console.print(f"model hint {about['model_hint']} (a GGUF control vector; how it was read is not "
                          "recorded)")
        if about.get("origin"):
            console.print(f"imported from {about['origin']}")
        if about.get("read_at"):
            console.print(f"read and added at {about['read_at']}")
        if about.get("pair_ids"):
            console.print(f"built from {len(about['pair_ids'])} pairs of {about.get('source') or 'its data'}")
        residual = about.get("residual_norm", {})
        sha = about.get("sha256", {})
        table = Table(header_style="bold")
        for col in ("layer", "d_model", "‖v‖", "‖h‖ (mean residual)", "sha256"):
            table.add_column(col, justify="right" if col != "sha256" else "left")
        for L, t in layers.items():
            h = residual.get(str(L))
            table.add_row(str(L), str(t.shape[0]), f"{float(t.norm()):.4g}", "-" if h is None else f"{h:.4g}",
                          str(sha.get(str(L), ""))[:16])
        console.print(table)
