"""Steering vectors from vulnerable/patched pairs, per layer, with diagnostics (saved only in a session's safetensors sidecar:
the one vector file format, ``engine.session.store.write_sidecar``).

Methods (all oriented toward "vulnerable": a positive coefficient pushes toward the vulnerable side):
- ``mean-diff``: mean over pairs of (vulnerable − patched) activations.
- ``pca``: first principal direction of the paired differences by an uncentred SVD (as steering-vectors 0.12.2
  does; repeng 0.4.0 centres the differences first, which removes the mean difference the direction is about),
  sign fixed so the mean difference projects positively, scaled to the mean difference's projection on it.
- ``probe``: the weight direction of an L2-regularised logistic regression (vulnerable = 1) on the
  activations (standardised during fitting, mapped back to activation space), scaled like ``pca``.

Diagnostics per layer: consistency (mean pairwise cosine of the pair differences), the vector's norm over the
mean residual norm at that layer, and held-out AUROC of the projections — held out by pair (k folds stratified by
CWE, ``engine.folds``) and leave-one-CWE-out — where every fold's vector is built on its training pairs only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from steertui.engine.choices import METHODS  # declared once there, re-exported here
from steertui.engine.folds import stratified_folds
from steertui.errors import SteertuiError

if TYPE_CHECKING:  # pragma: no cover
    import torch


def direction(vuln: "torch.Tensor", patched: "torch.Tensor", method: str, *, l2: float = 1.0) -> "torch.Tensor":
    """One layer's vector from paired activations ``[P, D]`` (row p of each is pair p)."""
    import torch

    if method not in METHODS:
        raise SteertuiError(f"unknown method '{method}'", f"use one of {', '.join(METHODS)}")
    if vuln.shape != patched.shape or vuln.ndim != 2 or vuln.shape[0] < 1:
        raise SteertuiError(f"paired activations must both be [pairs, d_model], got {tuple(vuln.shape)} "
                            f"and {tuple(patched.shape)}")
    diffs = (vuln - patched).double()
    mean = diffs.mean(0)
    if method == "mean-diff":
        return mean.float()
    if method == "pca":
        _u, _s, vh = torch.linalg.svd(diffs, full_matrices=False)
        d = vh[0]
    else:
        d = _logistic_direction(torch.cat([vuln, patched]).double(),
                                torch.cat([torch.ones(len(vuln)), torch.zeros(len(patched))]).double(), l2)
    d = d / d.norm().clamp_min(1e-12)
    proj = float(mean @ d)
    if proj < 0:
        d, proj = -d, -proj
    return (d * proj).float()


def _logistic_direction(x: "torch.Tensor", y: "torch.Tensor", l2: float) -> "torch.Tensor":
    """Weights of an L2-regularised logistic regression, fitted by L-BFGS on standardised features."""
    import torch

    mu, sd = x.mean(0), x.std(0).clamp_min(1e-6)
    z = (x - mu) / sd
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z @ w + b, y) + l2 * (w @ w) / len(y)
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return (w.detach() / sd)  # back to activation space: w·(x-mu)/sd = (w/sd)·x + const


def auroc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """Area under the ROC curve (Mann–Whitney, ties count half); None when one class is missing."""
    pos = [s for s, y in zip(scores, labels) if y == 1]
    neg = [s for s, y in zip(scores, labels) if y == 0]
    if not pos or not neg:
        return None
    wins = sum((p > q) + 0.5 * (p == q) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def consistency(diffs: "torch.Tensor") -> float | None:
    """Mean pairwise cosine similarity of the rows of ``diffs`` (off-diagonal); None below 2 rows."""
    import torch

    if diffs.shape[0] < 2:
        return None
    unit = diffs.double() / diffs.double().norm(dim=1, keepdim=True).clamp_min(1e-12)
    cos = unit @ unit.T
    n = cos.shape[0]
    return float((cos.sum() - torch.diagonal(cos).sum()) / (n * (n - 1)))


def residual_norm(vuln: "torch.Tensor", patched: "torch.Tensor") -> float:
    """One layer's mean residual norm: the mean L2 norm of the paired activations ``[P, D]``, each side
    averaged over its files and the two sides averaged (the unit of the console's alpha step and of
    ``steertui eval --alpha-scale residual``)."""
    return float(0.5 * (vuln.float().norm(dim=1).mean() + patched.float().norm(dim=1).mean()))


def raw_alpha(alpha: float, residual: float, vector_norm: float) -> float:
    """The coefficient that makes ``raw * v`` have norm ``alpha * residual`` for a vector of norm
    ``vector_norm``: alpha in units of the layer's mean residual norm, as the coefficient the model gets."""
    return float(alpha) * residual / vector_norm if vector_norm else 0.0


@dataclass(frozen=True)
class LayerDiagnostics:
    layer: int
    n_pairs: int
    consistency: float | None
    vector_norm: float
    residual_norm: float  # mean L2 norm of the activations at this layer (both sides)
    norm_ratio: float
    auroc_pairs: float | None  # held out by pair, k-fold
    auroc_cwe: float | None  # leave-one-CWE-out
    folds_pairs: int
    folds_cwe: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def best_layer(diagnostics: Sequence[LayerDiagnostics]) -> LayerDiagnostics:
    """The layer whose vector separates held-out pairs best (highest held-out AUROC by pair; a layer without one
    counts as below chance; ties go to the first, i.e. the lowest layer)."""
    return max(diagnostics, key=lambda d: d.auroc_pairs if d.auroc_pairs is not None else -1.0)


def _heldout_auroc(vuln, patched, method, folds: list[list[int]]) -> tuple[float | None, int]:
    """Pool held-out projections over folds: each fold's vector is built on the other pairs only."""
    scores, labels, used = [], [], 0
    n = vuln.shape[0]
    for test in folds:
        train = [i for i in range(n) if i not in set(test)]
        if not train or not test:
            continue
        v = direction(vuln[train], patched[train], method)
        unit = v / v.norm().clamp_min(1e-12)
        scores += (vuln[test] @ unit).tolist() + (patched[test] @ unit).tolist()
        labels += [1] * len(test) + [0] * len(test)
        used += 1
    return auroc(scores, labels), used


def diagnose(vuln: "torch.Tensor", patched: "torch.Tensor", layers: Sequence[int], method: str,
             cwes: Sequence[str] | None = None, k: int = 5, seed: int = 0) -> list[LayerDiagnostics]:
    """Diagnostics per layer from paired activations ``[P, L, D]`` (layer k of the tensors is ``layers[k]``)."""
    out = []
    n = vuln.shape[0]
    folds = stratified_folds(list(cwes) if cwes is not None else [""] * n, max(2, min(k, n)), seed) if n >= 2 else []
    cwe_folds = []
    if cwes is not None and len(set(cwes)) >= 2:
        cwe_folds = [[i for i, c in enumerate(cwes) if c == cwe] for cwe in sorted(set(cwes))]
    for k_idx, layer in enumerate(layers):
        a, b = vuln[:, k_idx].float(), patched[:, k_idx].float()
        v = direction(a, b, method)
        resid = residual_norm(a, b)
        au_p, f_p = _heldout_auroc(a, b, method, folds) if folds else (None, 0)
        au_c, f_c = _heldout_auroc(a, b, method, cwe_folds) if cwe_folds else (None, 0)
        out.append(LayerDiagnostics(layer, n, consistency(a - b), float(v.norm()), resid,
                                    float(v.norm()) / resid if resid else float("nan"), au_p, au_c, f_p, f_c))
    return out


GIVEN = "given"  # the method of a vector read from a file (VectorSet.method): not built here


@dataclass
class SteeringVectors:
    """Vectors to steer with, as the console holds them: one per layer, with the diagnostics they were built with
    (a build's, or an opened session's records of them) and their CWE directions."""

    name: str  # their name in the session
    method: str  # the build's method, or GIVEN for imported vectors
    diagnostics: list[Any]  # LayerDiagnostics, or the session's records of them (schema.DiagnosticsRec: same fields)
    vectors: dict[int, Any]  # layer -> [d_model] tensor
    cwe: dict[int, Any] | None = None  # layer -> build.CweDirections or its record; None or {}: not recorded
    left_out: tuple[str, ...] = ()  # imported vectors: the loaded pairs they were built from

    @property
    def given(self) -> bool:
        """Imported, not built here: every evaluation steers with them as they are, in every fold."""
        return self.method == GIVEN


def diagnose_given(vuln: "torch.Tensor", patched: "torch.Tensor", layers: Sequence[int],
                   vectors: dict[int, "torch.Tensor"]) -> list[LayerDiagnostics]:
    """Diagnostics per layer of given vectors (layer -> [D], not built from these pairs) on paired activations
    ``[P, L, D]``: the AUROC of the projections of every pair on the vector, each pair held out from it (one
    fold: ``folds_pairs`` 1; nothing is left out per CWE: ``auroc_cwe`` None), the pairs' consistency, and the
    vector's norm against the layer's mean residual norm."""
    out = []
    n = vuln.shape[0]
    for k_idx, layer in enumerate(layers):
        a, b = vuln[:, k_idx].float(), patched[:, k_idx].float()
        v = vectors[layer].float().to(a.device)
        unit = v / v.norm().clamp_min(1e-12)
        au = auroc((a @ unit).tolist() + (b @ unit).tolist(), [1] * n + [0] * n)
        resid = residual_norm(a, b)
        out.append(LayerDiagnostics(layer, n, consistency(a - b), float(v.norm()), resid,
                                    float(v.norm()) / resid if resid else float("nan"), au, None,
                                    1 if au is not None else 0, 0))
    return out


@dataclass
class VectorSet:
    """Vectors for several layers of one model, with the recipe that made them."""

    vectors: dict[int, "torch.Tensor"]  # layer -> [d_model] float32
    model: str
    method: str
    readout: str
    source: str
    sample_ids: list[str]
    d_model: int
    model_sha256: str = ""
    split: str = ""
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def layers(self) -> list[int]:
        return sorted(self.vectors)
