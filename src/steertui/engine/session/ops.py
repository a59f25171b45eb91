"""The steps a session records, as functions of (context, inputs) -> (outputs, engine result).

The recorder and the replayer call the same functions, so a replay runs exactly the code the recording ran.
Each function calls one engine operation and turns its result into the step's recorded outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from steertui.engine.session import schema as S
from steertui.errors import Cancel, SteertuiError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from steertui.engine.data import Dataset, Pair
    from steertui.engine.model import LoadedModel


@dataclass
class StepContext:
    """What a step needs: the model, the data (None when no step uses it) and the vectors by name."""

    model: "LoadedModel"
    dataset: "Dataset | None"
    vectors: dict[str, dict[int, "torch.Tensor"]] = field(default_factory=dict)
    cancel: Cancel | None = None
    progress: Callable[..., None] | None = None


def steers_from(ctx: StepContext, interventions: list[S.Intervention]) -> list[Any]:
    from steertui.engine.steering import Steer

    out = []
    for iv in interventions:
        layers = ctx.vectors.get(iv.vector)
        if layers is None or iv.layer not in layers:
            raise SteertuiError(f"no vector {iv.vector!r} at layer {iv.layer}",
                                "build or load the vector before steering with it")
        out.append(Steer(iv.layer, layers[iv.layer], iv.alpha, iv.positions, label=iv.vector))
    return out


def pairs_from(ctx: StepContext, pair_ids: list[str]) -> list["Pair"]:
    if ctx.dataset is None:
        raise SteertuiError("this step needs the dataset, and none is loaded", "load the session's dataset")
    return [ctx.dataset.pair(pid) for pid in pair_ids]


def _floats(values) -> list[float]:
    return [float(x) for x in values]


# ---- layers ---------------------------------------------------------------------------------------------------
def run_layers(ctx: StepContext, inputs: S.LayersInputs) -> tuple[S.LayersOutputs, Any]:
    from steertui.engine.layers import probe_layers

    report = probe_layers(ctx.model, inputs.prompt)
    modules = [S.ModuleRec(path=m.path, access=m.access, module=m.module, type=m.type,
                           shape=list(m.shape) if m.shape is not None else None, dtype=m.dtype, flags=list(m.flags),
                           layer=m.layer, norm_mean=m.norm_mean, abs_max=m.abs_max, calls=m.calls)
               for m in report.modules]
    return S.LayersOutputs(n_tokens=report.n_tokens, n_layers=report.n_layers, d_model=report.d_model,
                           modules=modules), report


# ---- logit lens ---------------------------------------------------------------------------------------------
def _lens_layers(result) -> list[S.LensLayerRec]:
    return [S.LensLayerRec(
        layer=x.layer, top_ids=[[t.id for t in row] for row in x.top], top_texts=[[t.text for t in row] for row in x.top],
        top_probs=[[float(t.prob) for t in row] for row in x.top],
        target_probs=_floats(x.target_prob) if x.target_prob is not None else None,
        target_ranks=[int(r) for r in x.target_rank] if x.target_rank is not None else None)
        for x in result.layers]


def run_lens(ctx: StepContext, inputs: S.LensInputs) -> tuple[S.LensOutputs, Any]:
    from steertui.engine.lens import LensDiff
    from steertui.engine.ops import lens_of

    result = lens_of(ctx.model, inputs.prompt, steers_from(ctx, inputs.steers), k=inputs.k,
                     positions=list(inputs.positions), target=inputs.target, layers=inputs.layers, cancel=ctx.cancel)
    base, steered = (result.baseline, result.steered) if isinstance(result, LensDiff) else (result, None)
    out = S.LensOutputs(token_ids=list(base.token_ids), token_texts=list(base.token_texts),
                        positions=list(base.positions), target_id=base.target_id, target_text=base.target_text,
                        final_logits_check=float(base.final_logits_check), baseline=_lens_layers(base),
                        steered=_lens_layers(steered) if steered is not None else [])
    return out, result


# ---- next-token top-k -----------------------------------------------------------------------------------------
def run_top_tokens(ctx: StepContext, inputs: S.TopTokensInputs) -> tuple[S.TopTokensOutputs, Any]:
    from steertui.engine.gendiff import top_tokens

    result = top_tokens(ctx.model, list(inputs.prompts), steers_from(ctx, inputs.steers), k=inputs.k,
                        cancel=ctx.cancel)
    rows = [S.TopTokensRowRec(
        baseline_ids=[t.id for t in r.baseline], baseline_texts=[t.text for t in r.baseline],
        baseline_probs=[float(t.prob) for t in r.baseline], steered_ids=[t.id for t in r.steered],
        steered_texts=[t.text for t in r.steered], steered_probs=[float(t.prob) for t in r.steered], kl=float(r.kl))
        for r in result.rows]
    return S.TopTokensOutputs(rows=rows), result


# ---- generation ---------------------------------------------------------------------------------------------
def run_generate(ctx: StepContext, inputs: S.GenerateInputs) -> tuple[S.GenerateOutputs, Any]:
    from steertui.engine.gendiff import generation_diff

    result = generation_diff(ctx.model, list(inputs.prompts), steers_from(ctx, inputs.steers),
                             max_new_tokens=inputs.max_new_tokens, stop_at_eos=inputs.stop_at_eos,
                             batch_size=inputs.batch_size, cancel=ctx.cancel, progress=ctx.progress)
    rows = [S.GenerateRowRec(
        baseline_ids=list(r.baseline.ids), baseline_text=r.baseline.text, baseline_logprobs=_floats(r.baseline.logprobs),
        steered_ids=list(r.steered.ids), steered_text=r.steered.text, steered_logprobs=_floats(r.steered.logprobs),
        first_divergence=r.first_divergence) for r in result.rows]
    return S.GenerateOutputs(rows=rows), result


# ---- evaluation ---------------------------------------------------------------------------------------------
def eval_settings(inputs: S.EvaluateInputs):
    """The recorded inputs as the engine's settings: every field of ``EvalSettings`` by name."""
    from dataclasses import fields

    from steertui.engine.evaluate import EvalSettings

    values = {f.name: getattr(inputs, f.name) for f in fields(EvalSettings)}
    together = None if inputs.together is None else tuple(float(w) for w in inputs.together)
    return EvalSettings(**{**values, "layers": tuple(inputs.layers), "alphas": tuple(float(a) for a in inputs.alphas),
                           "together": together, "shot_pairs": tuple(inputs.shot_pairs)})


def evaluate_inputs(pair_ids: list[str], settings: Any) -> S.EvaluateInputs:
    """The engine's settings (an ``EvalSettings``) as the step's recorded inputs, field for field."""
    return S.EvaluateInputs(pair_ids=list(pair_ids), **settings.to_dict())


def run_evaluate(ctx: StepContext, inputs: S.EvaluateInputs) -> tuple[S.EvaluateOutputs, Any]:
    from steertui.engine.evaluate import evaluate

    vectors = None
    if inputs.vector is not None:  # a given vector steered in every fold
        vectors = ctx.vectors.get(inputs.vector)
        if vectors is None:
            raise SteertuiError(f"no vector {inputs.vector!r} to evaluate", "load the session's vectors first")
    result = evaluate(ctx.model, pairs_from(ctx, inputs.pair_ids), eval_settings(inputs), vectors=vectors,
                      examples=pairs_from(ctx, inputs.shot_pairs), progress=ctx.progress, cancel=ctx.cancel)
    folds = [S.FoldRec(fold=int(f["fold"]), threshold=float(f["threshold"]), train_pairs=list(f["train_pairs"]),
                       test_pairs=list(f["test_pairs"])) for f in result.folds]
    rows = [S.EvalRowRec(**{k: (float(v) if isinstance(v, float) else v) for k, v in r.to_dict().items()})
            for r in result.rows]
    return S.EvaluateOutputs(yes_id=result.answers.yes_id, no_id=result.answers.no_id, folds=folds, rows=rows,
                             truncated=list(result.truncated), files=file_records(inputs, result.files)), result


def file_records(inputs: S.EvaluateInputs, files: list[dict[str, Any]]) -> list[S.EvalFileRec]:
    """``EvalResult.files`` as recorded (:class:`schema.EvalFileRec`): per cell, in ``inputs.cells()`` order."""
    cells = inputs.cells()
    out = []
    for f in files:
        st = f["steered"]
        if [(x["layer"], x["alpha"]) for x in st] != cells:
            raise ValueError(f"file {f['id']}: cells {[(x['layer'], x['alpha']) for x in st]} are not {cells}")
        patched = all(x["kl"] is not None for x in st)
        out.append(S.EvalFileRec(
            id=f["id"], pair=f["pair"], cwe=f["cwe"], label=int(f["label"]), fold=int(f["fold"]),
            p_yes=float(f["p_yes"]), p_no=float(f["p_no"]), baseline_score=float(f["baseline_score"]),
            score=[float(x["score"]) for x in st], random_scores=[float(r) for x in st for r in x["random_scores"]],
            kl=[float(x["kl"]) for x in st] if patched else [],
            random_kl=[float(r) for x in st for r in x["random_kls"]] if patched else [],
            direct=[float(x["direct"]) for x in st] if all(x.get("direct") is not None for x in st) else [],
            through=[float(x["through"]) for x in st] if all(x.get("through") is not None for x in st) else [],
            **_fix_record(f, st)))
    return out


def _fix_record(f: dict[str, Any], steered: list[dict[str, Any]]) -> dict[str, Any]:
    """A file's fix-site fields as recorded: only a vulnerable file whose pair has a fix site carries them."""
    if f.get("fix_baseline") is None:
        return {}
    return {"fix_baseline": float(f["fix_baseline"]), "fix": [float(x["fix"]) for x in steered],
            "random_fix": [float(r) for x in steered for r in x["random_fix"]]}


def files_from_records(inputs: S.EvaluateInputs, outputs: S.EvaluateOutputs) -> list[dict[str, Any]]:
    """The recorded file records as ``EvalResult.files`` again, field for field: each file's threshold is its
    fold's, each cell's coefficient the one its CWE's row gives for the file's fold (``engine.evaluate``'s
    ``_raw_alphas``: one per fold, or with per-CWE vectors one per fold that holds out files of that CWE; NaN where
    the rows do not record it). Empty for a session written before the files were recorded."""
    cells, k = inputs.cells(), inputs.controls
    thresholds = {f.fold: f.threshold for f in outputs.folds}
    every = sorted(thresholds)
    own = {cwe: sorted({rec.fold for rec in outputs.files if rec.cwe == cwe}) for cwe in {r.cwe for r in outputs.files}}
    raw = {(r.layer, r.alpha, r.cwe): r.raw_alpha for r in outputs.rows}
    files = []
    for rec in outputs.files:
        steered = []
        for c, cell in enumerate(cells):
            coefs = raw.get((*cell, rec.cwe)) or ()
            folds = every if len(coefs) == len(every) else own[rec.cwe]
            at = folds.index(rec.fold)
            randoms = list(rec.random_scores[c * k:(c + 1) * k])
            kls = list(rec.random_kl[c * k:(c + 1) * k]) if rec.random_kl else None
            steered.append({
                "layer": cell[0], "alpha": cell[1],
                "raw_alpha": coefs[at] if len(coefs) > at else float("nan"),
                "score": rec.score[c], "random_score": randoms[0], "random_scores": randoms,
                "kl": rec.kl[c] if rec.kl else None, "random_kl": kls[0] if kls else None, "random_kls": kls,
                "direct": rec.direct[c] if rec.direct else None, "through": rec.through[c] if rec.through else None,
                "fix": rec.fix[c] if rec.fix else None,
                "random_fix": list(rec.random_fix[c * k:(c + 1) * k]) if rec.fix else None})
        files.append({"id": rec.id, "pair": rec.pair, "cwe": rec.cwe, "label": rec.label, "fold": rec.fold,
                      "threshold": thresholds[rec.fold], "p_yes": rec.p_yes, "p_no": rec.p_no,
                      "baseline_score": rec.baseline_score, "steered": steered, "fix_baseline": rec.fix_baseline})
    return files


# ---- vectors --------------------------------------------------------------------------------------------------
def run_build_vectors(ctx: StepContext, inputs: S.BuildVectorsInputs) -> tuple[S.BuildVectorsOutputs, Any]:
    from steertui.engine.build import build_vectors

    pairs = pairs_from(ctx, inputs.pair_ids)
    recipe = inputs.model_dump(exclude={"vector", "pair_ids"})  # build_vectors' keyword arguments, by name
    result = build_vectors(ctx.model, pairs, **recipe, progress=ctx.progress, cancel=ctx.cancel)
    return _vector_outputs(result), result


def run_import_vectors(ctx: StepContext, inputs: S.ImportVectorsInputs) -> tuple[S.BuildVectorsOutputs, Any]:
    """The diagnostics of an imported vector (the session's own tensors, ``ctx.vectors``) on the step's pairs."""
    from steertui.engine.build import given_vectors

    held = ctx.vectors.get(inputs.vector)
    if held is None or any(L not in held for L in inputs.layers):
        raise SteertuiError(f"no vector {inputs.vector!r} at layers {inputs.layers}",
                            "the session's sidecar must hold the imported vector")
    result = given_vectors(ctx.model, pairs_from(ctx, inputs.pair_ids), {L: held[L] for L in inputs.layers},
                           readout=inputs.readout, chunk_size=inputs.chunk_size, progress=ctx.progress,
                           cancel=ctx.cancel)
    return _vector_outputs(result), result


def _vector_outputs(result: Any) -> S.BuildVectorsOutputs:
    """A ``build.BuildResult`` as the recorded outputs of a step that makes vectors."""
    from steertui.engine.steering import vector_sha256

    diags = [S.DiagnosticsRec(**{k: (float(v) if isinstance(v, float) else v) for k, v in d.to_dict().items()})
             for d in result.diagnostics]
    return S.BuildVectorsOutputs(sha256={str(L): vector_sha256(v) for L, v in sorted(result.vectors.vectors.items())},
                                 diagnostics=diags, truncated=list(result.activations.truncated),
                                 fallbacks=list(result.activations.fallbacks),
                                 cwe_directions=[S.CweDirectionsRec(**result.cwe[L].to_dict())
                                                 for L in sorted(result.cwe)])


RUNNERS: dict[str, Callable[[StepContext, Any], tuple[Any, Any]]] = {
    "layers": run_layers, "lens": run_lens, "top_tokens": run_top_tokens, "generate": run_generate,
    "evaluate": run_evaluate, "build_vectors": run_build_vectors, "import_vectors": run_import_vectors,
}


def run_step(ctx: StepContext, kind: str, inputs: Any) -> tuple[Any, Any]:
    """Run one step; returns (the step's outputs model, the engine's result object)."""
    return RUNNERS[kind](ctx, inputs)


def files_used(kind: str, inputs: Any, dataset: "Dataset | None") -> dict[str, str]:
    """sample id -> sha256 of every data file the step reads."""
    ids = getattr(inputs, "pair_ids", None) if kind in ("evaluate", *S.VECTOR_STEPS) else None
    if ids and kind == "evaluate":  # the few-shot examples' files are read too
        ids = list(ids) + list(getattr(inputs, "shot_pairs", []))
    if not ids or dataset is None:
        return {}
    out = {}
    for pid in ids:
        pair = dataset.pair(pid)
        for s in pair.samples:
            out[s.id] = s.sha256
    return out
