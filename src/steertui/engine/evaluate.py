"""Does steering shift the model's vulnerability verdict? Held-out evaluation with honest controls.

Protocol (what ``steertui eval`` runs):
1. Folds. ``split="pairs"``: pairs are shuffled within each CWE (seeded) and dealt round-robin into ``folds``
   folds, so every fold holds out whole pairs of (almost) every CWE. ``split="cwe"``: leave one CWE out.
2. Activations of every pair (both sides, all requested layers) are read once; each fold builds its vectors
   from its *training* pairs only.
3. Unsteered verdict scores (logit(" Yes") − logit(" No") at the answer slot) are computed once for every
   file. Each fold fixes its threshold on its training files' unsteered scores (the accuracy-maximising one).
4. For each fold, layer and alpha, the held-out files are scored with alpha·v added at that layer (every
   position of the prompt), and with alpha·r for a random vector r of the same norm (the control).
5. Fluency cost: mean per-token KL(steered ‖ unsteered) of the next-token distribution over the held-out
   *patched* files read as plain code (no question), the first ``kl_tokens`` tokens of each.

Rows are pooled over folds per (layer, alpha) and per CWE, plus ``cwe="all"``; every row has its ``n``.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

from steertui.engine.build import pair_activations, vectors_from_activations
from steertui.engine.steering import Steer, forward
from steertui.engine.verdict import AnswerTokens, answer_tokens, best_threshold, sample_prompts, score
from steertui.errors import CancelledError, SteertuiError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from steertui.engine.data import Pair
    from steertui.engine.model import ModelSession

SPLITS = ("pairs", "cwe")
EvalProgress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class EvalSettings:
    layers: tuple[int, ...]
    alphas: tuple[float, ...]
    method: str = "mean-diff"
    readout: str = "last"
    split: str = "pairs"
    seed: int = 0
    folds: int = 3
    chunk_size: int = 8
    kl_tokens: int = 64
    yes: str = " Yes"
    no: str = " No"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "layers": list(self.layers), "alphas": list(self.alphas)}


@dataclass(frozen=True)
class EvalRow:
    layer: int
    alpha: float
    cwe: str
    n: int
    shift: float
    accuracy: float
    flip_rate: float
    random_shift: float
    random_flip_rate: float
    kl: float
    n_kl: int
    baseline_accuracy: float
    baseline_yes_rate: float  # share of held-out files whose unsteered score is above its fold's threshold
    yes_rate: float  # the same, steered
    random_kl: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class EvalResult:
    source: str
    model: str
    settings: EvalSettings
    answers: AnswerTokens
    rows: list[EvalRow]
    folds: list[dict[str, Any]]
    truncated: list[str] = field(default_factory=list)
    prompt_template: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "model": self.model, "settings": self.settings.to_dict(),
                "answer_tokens": self.answers.to_dict(), "prompt_template": self.prompt_template,
                "folds": self.folds, "truncated": self.truncated, "results": [r.to_dict() for r in self.rows]}


def make_folds(pairs: Sequence["Pair"], split: str, folds: int, seed: int) -> list[list[int]]:
    """Indices of held-out pairs per fold (see the module docstring)."""
    if split not in SPLITS:
        raise SteertuiError(f"unknown split '{split}'", f"use one of {', '.join(SPLITS)}")
    by_cwe: dict[str, list[int]] = {}
    for i, p in enumerate(pairs):
        by_cwe.setdefault(p.cwe, []).append(i)
    if split == "cwe":
        if len(by_cwe) < 2:
            raise SteertuiError("leave-one-CWE-out needs pairs of at least 2 CWEs", "use --split pairs")
        return [idx for _cwe, idx in sorted(by_cwe.items())]
    if folds < 2 or len(pairs) < folds:
        raise SteertuiError(f"{folds} folds need at least {max(folds, 2)} pairs (have {len(pairs)})",
                            "select more pairs or fewer folds")
    rng = random.Random(seed)
    out: list[list[int]] = [[] for _ in range(folds)]
    k = 0
    for _cwe, idx in sorted(by_cwe.items()):
        idx = idx[:]
        rng.shuffle(idx)
        for i in idx:
            out[k % folds].append(i)
            k += 1
    return [sorted(f) for f in out]


def _neutral_logprobs(session, texts, steers, chunk_size, kl_tokens) -> list["torch.Tensor"]:
    """Next-token log-probabilities ``[T_i, V]`` over each text's first ``kl_tokens`` real tokens."""
    out = []
    for start in range(0, len(texts), chunk_size):
        batch = texts[start:start + chunk_size]
        enc = session.encode(batch, max_length=kl_tokens)
        res = forward(session, enc, steers=steers)
        logp = res.logits.float().log_softmax(-1).cpu()
        mask = enc["attention_mask"].cpu().bool()
        out += [logp[b][mask[b]] for b in range(len(batch))]
    return out


def _kl(steered: list["torch.Tensor"], base: list["torch.Tensor"]) -> list[float]:
    """Mean over positions of KL(steered ‖ base) per text, in nats."""
    return [float((s.exp() * (s - b)).sum(-1).mean()) for s, b in zip(steered, base)]


def evaluate(session: "ModelSession", pairs: Sequence["Pair"], settings: EvalSettings, *,
             progress: EvalProgress | None = None, cancel: threading.Event | None = None) -> EvalResult:
    import torch

    if not pairs:
        raise SteertuiError("no pairs to evaluate", "select a dataset part that has vulnerable/patched pairs")
    layers = [session.check_layer(L) for L in settings.layers]
    answers = answer_tokens(session, settings.yes, settings.no)
    fold_idx = make_folds(pairs, settings.split, settings.folds, settings.seed)
    samples = [p.vulnerable for p in pairs] + [p.patched for p in pairs]
    labels = [s.label_int for s in samples]  # 1 = vulnerable (the dataset's label; see caveats)
    n = len(pairs)
    prompts = sample_prompts(session, samples, pairs)
    neutral = [p.patched.code for p in pairs]
    n_configs = len(layers) * len(settings.alphas)
    total = 2 + len(fold_idx) * (1 + n_configs)
    done = 0

    def tick(stage: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(stage, done, total)
        if cancel is not None and cancel.is_set():
            raise CancelledError(f"evaluation cancelled at {stage} ({done} of {total} steps)")

    acts = pair_activations(session, pairs, layers=layers, readout=settings.readout,
                            chunk_size=settings.chunk_size, cancel=cancel)
    tick("activations")
    # Unsteered scores of every file, for the training thresholds. Held-out files are scored again per fold
    # in exactly the batches the steered runs use, so that alpha 0 reproduces them bit for bit.
    base_all = score(session, [p.text for p in prompts], answers, chunk_size=settings.chunk_size, cancel=cancel)
    tick("baseline scores")
    base = torch.full((2 * n,), float("nan"))

    gen = torch.Generator().manual_seed(settings.seed)
    # per (layer, alpha): per-sample steered score, random score, threshold; per pair: KL
    steered = {(L, a): torch.full((2 * n,), float("nan")) for L in layers for a in settings.alphas}
    rand = {key: torch.full((2 * n,), float("nan")) for key in steered}
    kl = {key: [float("nan")] * n for key in steered}
    rkl = {key: [float("nan")] * n for key in steered}
    thresholds = torch.zeros(2 * n)
    folds_info = []
    for f, test in enumerate(fold_idx):
        train = [i for i in range(n) if i not in set(test)]
        if not train:
            raise SteertuiError("a fold has no training pairs", "use more pairs or another split")
        train_s = train + [n + i for i in train]
        test_s = test + [n + i for i in test]
        t = best_threshold([float(base_all[i]) for i in train_s], [labels[i] for i in train_s])
        thresholds[test_s] = t
        vectors = vectors_from_activations(acts, settings.method, train)
        folds_info.append({"fold": f, "threshold": t, "train_pairs": [pairs[i].id for i in train],
                           "test_pairs": [pairs[i].id for i in test]})
        test_prompts = [prompts[i].text for i in test_s]
        test_neutral = [neutral[i] for i in test]
        base[test_s] = score(session, test_prompts, answers, chunk_size=settings.chunk_size, cancel=cancel)
        base_t = _neutral_logprobs(session, test_neutral, (), settings.chunk_size, settings.kl_tokens)
        tick(f"fold {f + 1}/{len(fold_idx)} baseline")
        for L in layers:
            v = vectors[L]
            r = torch.randn(v.shape[0], generator=gen)
            r = r / r.norm() * v.norm()
            for a in settings.alphas:
                sv, rv = [Steer(L, v, a, label="vector")], [Steer(L, r, a, label="random")]
                steered[(L, a)][test_s] = score(session, test_prompts, answers, steers=sv,
                                                chunk_size=settings.chunk_size, cancel=cancel)
                rand[(L, a)][test_s] = score(session, test_prompts, answers, steers=rv,
                                             chunk_size=settings.chunk_size, cancel=cancel)
                k_s = _kl(_neutral_logprobs(session, test_neutral, sv, settings.chunk_size, settings.kl_tokens), base_t)
                k_r = _kl(_neutral_logprobs(session, test_neutral, rv, settings.chunk_size, settings.kl_tokens), base_t)
                for j, i in enumerate(test):
                    kl[(L, a)][i], rkl[(L, a)][i] = k_s[j], k_r[j]
                tick(f"fold {f + 1}/{len(fold_idx)} layer {L} alpha {a:g}")

    rows = []
    cwes = sorted({p.cwe for p in pairs}, key=lambda c: int(c.split("-")[1]) if c.split("-")[-1].isdigit() else 0)
    groups = [(c, [i for i in range(n) if pairs[i].cwe == c]) for c in cwes] + [("all", list(range(n)))]
    for L in layers:
        for a in settings.alphas:
            for cwe, pidx in groups:
                sidx = pidx + [n + i for i in pidx]
                rows.append(_row(L, a, cwe, sidx, pidx, base, steered[(L, a)], rand[(L, a)], thresholds, labels,
                                 kl[(L, a)], rkl[(L, a)]))
    truncated = [p.sample_id for p in prompts if p.truncated]
    from steertui.engine.verdict import TEMPLATE

    return EvalResult(pairs[0].source, session.info.name, settings, answers, rows, folds_info, truncated, TEMPLATE)


def _row(L, a, cwe, sidx, pidx, base, steered, rand, thr, labels, kl, rkl) -> EvalRow:
    import torch

    idx = torch.tensor(sidx)
    b, s, r, t = base[idx], steered[idx], rand[idx], thr[idx]
    y = torch.tensor([labels[i] for i in sidx]).bool()
    pb, ps, pr = b > t, s > t, r > t
    return EvalRow(
        layer=L, alpha=float(a), cwe=cwe, n=len(sidx),
        shift=float((s - b).mean()), accuracy=float((ps == y).float().mean()),
        flip_rate=float((ps != pb).float().mean()), random_shift=float((r - b).mean()),
        random_flip_rate=float((pr != pb).float().mean()),
        kl=float(sum(kl[i] for i in pidx) / len(pidx)), n_kl=len(pidx),
        baseline_accuracy=float((pb == y).float().mean()), baseline_yes_rate=float(pb.float().mean()),
        yes_rate=float(ps.float().mean()), random_kl=float(sum(rkl[i] for i in pidx) / len(pidx)),
    )
