"""From pairs to vectors: read both sides of every pair (all layers, one forward per chunk), build a vector
per layer, and diagnose it. The console's vector pane and ``steertui eval`` both call :func:`build_vectors`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from steertui.engine.activations import Progress, extract, token_diff_masks, tokenize
from steertui.engine.vectors import GIVEN, LayerDiagnostics, VectorSet, diagnose, diagnose_given, direction
from steertui.errors import Cancel, SteertuiError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from steertui.engine.data import Pair, Truncation
    from steertui.engine.model import LoadedModel


@dataclass
class PairActivations:
    """Both sides of each pair: ``vulnerable[p, k]`` and ``patched[p, k]`` are pair p at ``layers[k]``."""

    vulnerable: "torch.Tensor"
    patched: "torch.Tensor"
    layers: list[int]
    readout: str
    pair_ids: list[str]
    cwes: list[str]
    truncated: list[str]  # sample ids cut to the context
    fallbacks: list[str]  # sample ids whose diff mask was empty (mean readout used)
    cuts: dict[str, "Truncation"] = field(default_factory=dict)  # sample id -> what of its file was read


def pair_activations(model: "LoadedModel", pairs: Sequence["Pair"], *, layers: Sequence[int] | None = None,
                     readout: str = "last", chunk_size: int = 8, max_length: int | None = None,
                     progress: Progress | None = None, cancel: Cancel | None = None) -> PairActivations:
    """Activations of every pair's two sides (vulnerable first), in one extraction.

    Files longer than the code budget (``max_length`` tokens, default the model's context, less the
    :data:`~steertui.engine.data.budget.RESERVE_TOKENS` the verdict question takes) are read in their pair's window
    around the first hunk where the two differ, the same lines the verdict prompt holds
    (``engine.data.fit_pair``)."""
    from steertui.engine.data import RESERVE_TOKENS, fit_pair

    if not pairs:
        raise SteertuiError("no pairs to read", "select at least one vulnerable/patched pair")
    max_length = max_length or model.context_length
    limit = max(max_length - RESERVE_TOKENS, 1)
    fits = [fit_pair(p, model.tokenizer, limit) for p in pairs]
    texts = [f.vulnerable.code for f in fits] + [f.patched.code for f in fits]
    cuts = {p.vulnerable.id: f.vulnerable for p, f in zip(pairs, fits)}
    cuts.update({p.patched.id: f.patched for p, f in zip(pairs, fits)})
    sample_ids = [p.vulnerable.id for p in pairs] + [p.patched.id for p in pairs]
    ids, _cut = tokenize(model, texts, None)
    masks = None
    if readout == "diff":
        n = len(pairs)
        pairs_masks = [token_diff_masks(ids[k], ids[n + k]) for k in range(n)]
        masks = [m[0] for m in pairs_masks] + [m[1] for m in pairs_masks]
    acts = extract(model, texts, layers=layers, readout=readout, diff_masks=masks, ids=ids,
                   chunk_size=chunk_size, max_length=max_length, progress=progress, cancel=cancel)
    n = len(pairs)
    return PairActivations(
        vulnerable=acts.values[:n], patched=acts.values[n:], layers=acts.layers, readout=readout,
        pair_ids=[p.id for p in pairs], cwes=[p.cwe for p in pairs],
        truncated=[sid for sid, t in zip(sample_ids, acts.truncated) if t or cuts[sid].truncated],
        fallbacks=[sample_ids[k] for k in acts.fallbacks], cuts=cuts,
    )


@dataclass
class BuildResult:
    vectors: VectorSet
    diagnostics: list[LayerDiagnostics]
    activations: PairActivations
    cwe: dict[int, "CweDirections"] = field(default_factory=dict)  # layer -> the per-CWE directions there

    def to_dict(self) -> dict[str, Any]:
        return {"layers": self.vectors.layers, "method": self.vectors.method, "readout": self.vectors.readout,
                "source": self.vectors.source, "pairs": len(self.activations.pair_ids),
                "diagnostics": [d.to_dict() for d in self.diagnostics],
                "truncated": self.activations.truncated, "fallbacks": self.activations.fallbacks}


def vectors_from_activations(acts: PairActivations, method: str, idx: Sequence[int] | None = None) -> dict[int, "torch.Tensor"]:
    """One vector per layer from the pairs at positions ``idx`` (default: all)."""
    sel = list(range(len(acts.pair_ids))) if idx is None else list(idx)
    return {layer: direction(acts.vulnerable[sel, k], acts.patched[sel, k], method)
            for k, layer in enumerate(acts.layers)}


@dataclass(frozen=True)
class CweDirections:
    """Is there one vulnerable-minus-patched direction at a layer, or one per CWE? Each CWE's mean difference
    (vulnerable − patched, over its pairs, at the build's readout) against every other CWE's and against the
    built vector: cosines. Two unrelated directions in ``d_model`` dimensions have a cosine of about
    ±1/√d_model (``chance``); with few pairs per CWE a CWE's own direction is noisy, so its ``n_pairs`` say how
    far to trust it."""

    layer: int
    cwes: tuple[str, ...]  # in the order of the pairs
    n_pairs: tuple[int, ...]
    cosine: tuple[tuple[float, ...], ...]  # cosine[i][j]: CWE i's direction against CWE j's
    to_vector: tuple[float, ...]  # each CWE's direction against the built vector at this layer
    chance: float  # 1/√d_model

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "cwes": list(self.cwes), "n_pairs": list(self.n_pairs),
                "cosine": [list(r) for r in self.cosine], "to_vector": list(self.to_vector), "chance": self.chance}


def cwe_directions(acts: PairActivations, vectors: dict[int, "torch.Tensor"]) -> dict[int, CweDirections]:
    """:class:`CweDirections` at every layer of ``acts``, against the built ``vectors`` (layer -> [d_model])."""
    import torch

    cwes = list(dict.fromkeys(acts.cwes))
    rows = [[i for i, c in enumerate(acts.cwes) if c == cwe] for cwe in cwes]
    chance = 1.0 / math.sqrt(acts.vulnerable.shape[-1])
    out = {}
    for k, layer in enumerate(acts.layers):
        diff = (acts.vulnerable[:, k] - acts.patched[:, k]).double()
        d = torch.nn.functional.normalize(torch.stack([diff[idx].mean(0) for idx in rows]), dim=-1)
        v = torch.nn.functional.normalize(vectors[layer].double(), dim=-1)
        cos = (d @ d.T).tolist()
        out[layer] = CweDirections(layer, tuple(cwes), tuple(len(idx) for idx in rows),
                                   tuple(tuple(r) for r in cos), tuple((d @ v).tolist()), chance)
    return out


def build_vectors(model: "LoadedModel", pairs: Sequence["Pair"], *, layers: Sequence[int] | None = None,
                  method: str = "mean-diff", readout: str = "last", source: str = "", split: str = "",
                  seed: int | None = None, chunk_size: int = 8, k_folds: int = 5,
                  progress: Progress | None = None, cancel: Cancel | None = None) -> BuildResult:
    """Vectors (one per layer) and their diagnostics from ``pairs``."""
    acts = pair_activations(model, pairs, layers=layers, readout=readout, chunk_size=chunk_size,
                            progress=progress, cancel=cancel)
    vectors = vectors_from_activations(acts, method)
    diags = diagnose(acts.vulnerable, acts.patched, acts.layers, method, cwes=acts.cwes, k=k_folds,
                     seed=seed or 0)
    sample_ids = [s.id for p in pairs for s in (p.vulnerable, p.patched)]
    vset = VectorSet(vectors=vectors, model=model.info.name, method=method, readout=readout,
                     source=source or (pairs[0].source if pairs else ""), sample_ids=sample_ids,
                     d_model=model.d_model, model_sha256=model.info.weights_sha256, split=split, seed=seed)
    return BuildResult(vset, diags, acts, cwe_directions(acts, vectors))


def given_vectors(model: "LoadedModel", pairs: Sequence["Pair"], vectors: dict[int, "torch.Tensor"], *,
                  readout: str = "last", source: str = "", chunk_size: int = 8, progress: Progress | None = None,
                  cancel: Cancel | None = None) -> BuildResult:
    """Given vectors (layer -> [d_model], e.g. read from a file, not built from ``pairs``) with the diagnostics a
    build has, on ``pairs`` (:func:`vectors.diagnose_given`) and the per-CWE directions against them: what the
    console shows of vectors it imports. The vectors are kept as given (float32)."""
    layers = sorted(vectors)
    for L in layers:
        model.check_layer(L)
    acts = pair_activations(model, pairs, layers=layers, readout=readout, chunk_size=chunk_size,
                            progress=progress, cancel=cancel)
    held = {L: vectors[L].detach().float().cpu() for L in layers}
    diags = diagnose_given(acts.vulnerable, acts.patched, acts.layers, held)
    sample_ids = [s.id for p in pairs for s in (p.vulnerable, p.patched)]
    vset = VectorSet(vectors=held, model=model.info.name, method=GIVEN, readout=readout,
                     source=source or (pairs[0].source if pairs else ""), sample_ids=sample_ids,
                     d_model=model.d_model, model_sha256=model.info.weights_sha256)
    return BuildResult(vset, diags, acts, cwe_directions(acts, held))
