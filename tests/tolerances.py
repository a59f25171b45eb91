"""Float tolerances for the tests, stated from float32 arithmetic instead of tuned constants.

Two results that are the same math computed two ways (another batch shape or padding, a window lensed in
chunks, a KV cache instead of one full forward, another thread count) differ only by float32 rounding: a few
units in the last place (ulps) of the magnitude at which the rounding happens. So every tolerance here is

    ulps budget (why the two computations differ)  ×  EPS32  ×  scale (the magnitude of the values rounded)

and never a constant fitted to one model's weights: the scales are read from the values compared or from the
model at hand. A test compares exactly (``==``, ``torch.equal``) where both sides are the same kernels on the
same inputs (alpha 0, a replay of the identical call), and uses a budget below everywhere else.
"""

from __future__ import annotations

from typing import Any

import torch

EPS32 = torch.finfo(torch.float32).eps  # 2**-23: the spacing of float32 numbers in [1, 2)
EPS64 = torch.finfo(torch.float64).eps  # 2**-52, for values the engine computes in float64
TINY32 = torch.finfo(torch.float32).tiny  # the smallest normal float32: below it a value has no relative precision

# ---- budgets, in ulps of the scale -----------------------------------------------------------------------
ROUNDING = 1
"""One float32 rounding of the result (a float32 subtraction or cast where the test computes in float64)."""

SAME_OP = 8
"""One op whose K-term sums are split or ordered differently while its inputs are identical: a matmul over
another number of rows (a window lensed in chunks, a subset of positions) picks another kernel blocking, and
threads split the work another way. Each result moves by about sqrt(K)/2 ulps of its sum's scale (rounding
errors add like a random walk) and the scales below are upper bounds of that sum, so 8 ulps holds for
reductions up to K ~ 256 terms with room to spare."""

FORWARD = 32
"""A whole forward whose inputs or shapes differ (another batch composition, left padding, one prompt alone,
a KV cache step instead of a full forward): every block's matmuls round as in SAME_OP, and what each block
rounds is carried through the later blocks to the output."""


# ---- scales and tolerances ---------------------------------------------------------------------------------
def magnitude(*values: Any) -> float:
    """The largest absolute value among tensors, numbers and (nested) sequences of them."""
    best = 0.0
    for v in values:
        if isinstance(v, torch.Tensor):
            m = float(v.detach().abs().max()) if v.numel() else 0.0
        elif isinstance(v, (list, tuple)):
            m = magnitude(*v)
        else:
            m = abs(float(v))
        best = max(best, m)
    return best


def f32_tol(*values: Any, ulps: float) -> float:
    """Absolute tolerance of ``ulps`` float32 rounding steps at the largest magnitude among ``values``."""
    return ulps * EPS32 * magnitude(*values)


def logit_scale(session: Any) -> float:
    """The largest magnitude a logit's dot product can reach for this model: a logit is W_t · norm(h) + b_t, the
    final norm (LayerNorm or RMSNorm) scales h to norm sqrt(d) before its affine part, so by Cauchy-Schwarz
    sum_i |W_ti · norm(h)_i| <= ||W_t|| · (max|gamma| · sqrt(d) + ||beta||). That sum is the magnitude at which
    the logit rounds, for every layer's lens and every prompt (a steered residual is normed the same way)."""
    norm = session.hf_module(session.adapter.final_norm)
    head = session.hf_module(session.adapter.unembed)
    gamma, beta = getattr(norm, "weight", None), getattr(norm, "bias", None)
    normed = (float(gamma.abs().max()) if gamma is not None else 1.0) * session.d_model ** 0.5
    normed += float(beta.float().norm()) if beta is not None else 0.0
    row = head.weight.detach().float().norm(dim=1) * normed
    if getattr(head, "bias", None) is not None:
        row = row + head.bias.detach().float().abs()
    return float(row.max())


def logit_tol(session: Any, ulps: float) -> float:
    """Tolerance on anything computed from the logits: a logit, a difference of two logits, a log-probability
    (log p_t = z_t - logsumexp(z) moves by at most twice the largest logit error), and a probability as a
    *relative* tolerance (|dp| <= p · |d log p|). Twice ``ulps`` float32 steps of :func:`logit_scale`."""
    return 2 * ulps * EPS32 * logit_scale(session)
