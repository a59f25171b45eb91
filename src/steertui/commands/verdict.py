"""``steertui verdict ID``: the console's Tokens tab, headless: one file's verdict prompt, the next tokens baseline
against steered, the verdict score on both sides, and where each layer writes it."""

from __future__ import annotations

import argparse
import json
import sys

from steertui.commands._common import (add_dataset_option, add_model_options, alpha_list, check_vector_args,
                                       layer_list, load_model, positive_int)
from steertui.engine.choices import ALPHA_SCALES, POSITIONS
from steertui.errors import SteertuiError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "verdict", help="one file's verdict: next tokens and score, baseline against steered, by layer",
        description="The verdict prompt of one file (a pair id: its vulnerable file; a sample id: that file), "
        "its next-token top k without and with steering (a vector of --vectors FILE at --layer, times --alpha), "
        "KL(steered ‖ baseline), the verdict score logit(' Yes') - logit(' No') on both sides, and the score "
        "split into each layer's direct contributions (embeddings, attention, MLP, steering; the final norm's "
        "scale frozen, so the parts add up to the score), and for a file of a pair which version of its fix the "
        "model would rather write at the fix site, log p(patched) - log p(vulnerable) (eval --fix-site's unit). "
        "Without --vectors: the baseline alone.")
    p.add_argument("id", help="a pair id (its vulnerable file) or a sample id, as `steertui data summary` lists them")
    add_model_options(p)
    add_dataset_option(p)
    p.add_argument("--vectors", metavar="FILE",
                   help="the steering vector: a file from steertui vectors --export, a session's .safetensors "
                   "sidecar, another tool's safetensors file of [d_model] tensors named layer.L, or a GGUF control "
                   "vector (llama.cpp, repeng)")
    p.add_argument("--vector", metavar="NAME", help="which vector of --vectors FILE (when it holds several)")
    p.add_argument("--layer", type=layer_list, metavar="L[,L...]",
                   help="the layer(s) to steer (default: the vector's, when it has one)")
    p.add_argument("--alpha", type=alpha_list, metavar="A[,A...]",
                   help="the coefficient(s) of the vector, one for every layer or one per layer, in the unit of "
                   "--alpha-scale")
    p.add_argument("--alpha-scale", choices=ALPHA_SCALES, default="raw",
                   help="raw (default): alpha multiplies the vector as stored; residual: alpha 1.0 adds a vector "
                   "whose norm is the layer's mean residual norm over the loaded pairs the vector was not built "
                   "from (the console's +/- unit for an imported vector: one more forward of those pairs)")
    p.add_argument("--positions", choices=POSITIONS, default=POSITIONS[0],
                   help="where the steering is added (in one forward, 'generated' adds nothing)")
    p.add_argument("--shots", action="store_true",
                   help="put the few-shot part's example pair of the file's CWE before the prompt, as eval --shots "
                   "does (its vulnerable file answered yes, its patched file answered no)")
    p.add_argument("--k", type=positive_int, default=10, help="next tokens shown per side (default 10)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=run)


def _steers(args: argparse.Namespace, model, pair_id: str | None, dataset) -> tuple[list, dict | None]:
    """The steers the flags ask for, and what the vector file was (None without one), with a note when the
    vector was built from ``pair_id``'s pair; with ``--alpha-scale residual`` each alpha is turned into the
    coefficient by the layer's mean residual norm over ``dataset``'s pairs the vector was not built from."""
    from steertui.engine.session.export import import_vector
    from steertui.engine.steering import Steer
    from steertui.engine.vectors import raw_alpha

    check_vector_args(args)
    if not args.vectors:
        if args.layer is not None or args.alpha is not None:
            raise SteertuiError("--layer and --alpha steer with a vector, and no --vectors FILE is given",
                                "add --vectors FILE, or drop --layer/--alpha for the baseline alone")
        return [], None
    if args.alpha is None:
        raise SteertuiError("--vectors needs --alpha: the coefficient of the vector", "e.g. --alpha 4")
    imported = import_vector(args.vectors, model, args.vector, list(args.layer) if args.layer else None)
    layers = list(args.layer) if args.layer else list(imported.layers)
    if len(args.alpha) not in (1, len(layers)):
        raise SteertuiError(f"--alpha has {len(args.alpha)} values for {len(layers)} layer(s) "
                            f"({', '.join(map(str, layers))})", "give one alpha, or one per layer in --layer's order")
    alphas = args.alpha * len(layers) if len(args.alpha) == 1 else args.alpha
    scale = None
    if args.alpha_scale == "residual":
        scale = _residual_scale(model, dataset, imported, layers)
        alphas = [raw_alpha(a, scale["residual_norm"][str(L)], scale["vector_norm"][str(L)])
                  for L, a in zip(layers, alphas)]
    steers = [Steer(L, imported.vectors[L], a, args.positions, label=imported.name) for L, a in zip(layers, alphas)]
    notes = list(imported.notes)
    if pair_id is not None and imported.held_out([pair_id])[1]:
        notes.append(f"vector {imported.name!r} was built from this pair ({pair_id}): its effect here is not "
                     "held out (`steertui eval --vectors` measures it on the pairs it was not built from)")
    about = {"path": str(imported.path), "sha256": imported.file_sha256, "format": imported.format,
             "name": imported.name, "notes": notes, "alpha_scale": args.alpha_scale,
             "alpha": list(args.alpha), "residual": scale}
    return steers, about


def _residual_scale(model, dataset, imported, layers: list[int]) -> dict:
    """Per layer, the mean residual norm over the loaded pairs ``imported`` was not built from (as the console's
    import measures it: ``build.given_vectors``) and the vector's norm; refuses when every pair was used."""
    from steertui.engine.build import given_vectors

    kept, left_out = imported.held_out(p.id for p in dataset.pairs)
    if not kept:
        raise SteertuiError(f"--alpha-scale residual: every loaded pair ({len(left_out)}) was used to build vector "
                            f"{imported.name!r}", "load other data (--dataset), or give raw alphas")
    keep = set(kept)
    pairs = [p for p in dataset.pairs if p.id in keep]
    built = given_vectors(model, pairs, {L: imported.vectors[L] for L in layers})
    return {"pairs": len(kept), "residual_norm": {str(d.layer): d.residual_norm for d in built.diagnostics},
            "vector_norm": {str(d.layer): d.vector_norm for d in built.diagnostics}}


def run(args: argparse.Namespace) -> int:
    from steertui.engine import ops, verdict
    from steertui.engine.data import Pair, load_dataset
    from steertui.engine.fixsite import fix_site_preference

    dataset = load_dataset(getattr(args, "dataset", None))
    item = dataset.find(args.id)
    pair = item if isinstance(item, Pair) else dataset.pair_of(item)
    sample = item.vulnerable if isinstance(item, Pair) else item
    model = load_model(args)
    steers, about = _steers(args, model, pair.id if pair is not None else None, dataset)
    shots = None
    if args.shots:
        from steertui.commands.eval import few_shot_examples

        shots = few_shot_examples(dataset, [pair or sample], [sample.part])[0]
    prefix = verdict.shot_prefix(shots) if shots is not None else ""
    prompt = verdict.build_prompt(model, sample.code, sample.cwe_name, sample.id, pair=pair, prefix=prefix)
    result = ops.next_tokens(model, prompt.text, steers, k=args.k, attribution=True)
    fix = fix_site_preference(model, pair, steers) if pair is not None else None
    data = {"source": dataset.source.label, "model": model.info.name, "sample": sample.id, "label": sample.label_int,
            "cwe": sample.cwe, "prompt": {**prompt.describe(), "truncated": prompt.truncated},
            "prompt_tokens": int(model.encode([prompt.text])["input_ids"].shape[1]),
            "shot_pair": shots.id if shots is not None else None,
            "vector_file": about, "steers": [s.describe() for s in steers], "answers": result.answers.to_dict(),
            "score_baseline": result.score_baseline, "score_steered": result.score_steered,
            "top_tokens": result.row.to_dict(), "attribution": result.attribution.to_dict(),
            "fix_site": None if fix is None else fix.to_dict()}
    if args.json:
        json.dump(data, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    _print(data, result, steers, fix)
    return 0


def _print(data: dict, result, steers: list, fix) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console() if sys.stdout.isatty() else Console(width=120)
    truth = "vulnerable" if data["label"] else "not vulnerable"
    console.print(f"[bold]{data['sample']}[/] ({data['cwe']}, {truth}) · {data['source']} · {data['model']} · "
                  f"verdict prompt of {data['prompt_tokens']} tokens"
                  + (f" after few-shot example {data['shot_pair']}" if data["shot_pair"] else "")
                  + (" [yellow](cut to the context)[/]" if data["prompt"].get("truncated") else ""))
    what = ", ".join(f"layer {s.layer} × {s.alpha:+g} ({s.positions})" for s in steers) or "no steering"
    if data["vector_file"]:
        what += f" · vector {data['vector_file']['name']!r} from {data['vector_file']['path']}"
        scale = data["vector_file"]["residual"]
        if scale is not None:
            alphas = data["vector_file"]["alpha"]
            alphas = alphas * len(steers) if len(alphas) == 1 else alphas
            console.print("alpha in residual norms (each layer's mean over the "
                          f"{scale['pairs']} loaded pairs the vector was not built from): "
                          + ", ".join(f"layer {s.layer} α {a:+g} × {scale['residual_norm'][str(s.layer)]:.4g} ÷ "
                                      f"‖v‖ {scale['vector_norm'][str(s.layer)]:.4g} = {s.alpha:+.4g}"
                                      for s, a in zip(steers, alphas)))
        for note in data["vector_file"]["notes"]:
            console.print(f"[yellow]note: {note}[/]")
    a = result.answers
    console.print(f"steering: {what}")
    console.print(f"verdict score logit({a.yes!r}) − logit({a.no!r}): [bold]{result.score_baseline:+.3f}[/]"
                  + (f" → [bold]{result.score_steered:+.3f}[/] · KL(steered ‖ baseline) {result.row.kl:.4f}"
                     if steers else ""))
    top = Table(header_style="bold", box=None, pad_edge=False)
    for col in ("#", "baseline", "p") + (("steered", "p") if steers else ()):
        top.add_column(col, justify="right" if col in ("#", "p") else "left")
    for b, s in zip(result.row.baseline, result.row.steered):
        top.add_row(str(b.rank), repr(b.text), f"{b.prob:.3f}", *((repr(s.text), f"{s.prob:.3f}") if steers else ()))
    console.print(top)
    split = result.attribution
    console.print("[bold]the verdict score written by layer[/] (direct contributions)")
    table = Table(header_style="bold", box=None, pad_edge=False)
    b, s = split.baseline, split.steered
    cols = ("layer", "attn", "mlp" if split.split else "-") + (("steer", "Δ total") if s else ("total",))
    for col in cols:
        table.add_column(col, justify="right")

    def pair(x: float | None, y: float | None) -> str:
        return "-" if x is None else (f"{x:+.3f}" if y is None else f"{x:+.3f} → {y:+.3f}")

    table.add_row("embed", pair(b.embed, s.embed if s else None), "", *(("", "") if s else ("",)))
    for i, bp in enumerate(b.layers):
        sp = s.layers[i] if s else None
        tail = ((f"{sp.steer:+.3f}" if sp.steer else "", f"{sp.total - bp.total:+.3f}") if sp
                else (f"{bp.total:+.3f}",))
        table.add_row(str(bp.layer), pair(bp.attn, sp.attn if sp else None), pair(bp.mlp, sp.mlp if sp else None),
                      *tail)
    table.add_row("const", pair(b.constant, s.constant if s else None), "", *(("", "") if s else ("",)))
    table.add_row("score", pair(b.score, s.score if s else None), "", *(("", "") if s else ("",)), style="bold")
    console.print(table)
    worst = max(b.check, s.check if s else 0.0)
    console.print(f"the rows add up to the score within {worst:.1e} ({split.norm} scale frozen at each side's final "
                  "residual)")
    if fix is not None:  # engine.fixsite.FixSitePreference of the file's pair
        console.print(f"fix site of {fix.choice.pair_id} (line {fix.choice.line}): log p(patched) − log "
                      f"p(vulnerable) of the two versions up to the next shared line {fix.baseline_preference:+.2f}"
                      + (f" → {fix.steered_preference:+.2f} nats steered ({fix.shift:+.2f})" if steers else " nats"),
                      highlight=False)
