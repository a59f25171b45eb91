"""Does steering shift the model's vulnerability verdict? Held-out evaluation with honest controls.

Protocol (what ``steertui eval`` runs):
1. Folds. ``split="pairs"``: pairs are shuffled within each CWE (seeded) and dealt round-robin into ``folds``
   folds, so every fold holds out whole pairs of (almost) every CWE. ``split="cwe"``: leave one CWE out.
2. Activations of every pair (both sides, all requested layers) are read once; each fold builds its vectors
   from its *training* pairs only (or steers with given vectors, ``settings.vector``, as they are: then the
   pairs they were built from must not be among ``pairs``). With ``per_cwe``, a fold builds one vector per CWE
   from its training pairs of that CWE alone, and steers each CWE's held-out pairs with their own (each CWE's
   held-out files are then scored as a batch of their own, in every pass).
3. Unsteered verdict scores (logit(" Yes") − logit(" No") at the answer slot) are computed once for every
   file. Each fold fixes its threshold on its training files' unsteered scores (the accuracy-maximising one).
4. For each fold, layer and alpha, the held-out files are scored with alpha·v added at that layer (every
   position of the prompt), and with alpha·r for a random vector r of the same norm (the control; ``controls``
   of them, each drawn from (seed, fold, layer, index) alone, so the first is the same for any count). With
   ``alpha_scale="residual"`` the coefficient applied is alpha·‖h‖/‖v‖, ‖h‖ the layer's mean residual norm
   over the fold's training files (``vectors.residual_norm``, the console's alpha unit): alpha 1 adds a vector
   as long as the layer's mean residual. The unsteered pass also gives p(yes) and p(no) at the answer slot.
   With ``together`` (one weight per layer), all the layers are steered at once instead, layer i at
   alpha·together[i], each with its own random control of equal norm: one row per alpha, filed under the first
   layer (its ``raw_alpha`` is the first layer's coefficient; the folds hold every layer's norms).
5. Fluency cost: mean per-token KL(steered ‖ unsteered) of the next-token distribution over the held-out
   *patched* files read as plain code (no question), the first ``kl_tokens`` tokens of each.
6. With ``fix_site``, what the model would write: each held-out pair's fix-site preference (``engine.fixsite``:
   log p(patched) − log p(vulnerable) continuation of the vulnerable file at the line its patch changes, nats)
   unsteered, steered with the fold's vector and with each random control, in the same cells; its shift is the
   generation-side counterpart of the verdict shift (rows' ``fix_*`` columns; pairs without a fix site are left
   out of them and listed in ``fix_skipped``).

Every held-out file gets a record (:attr:`EvalResult.files`: its fold, threshold, p(yes), p(no), unsteered score
and, per layer and alpha, the steered score, every control's score and the coefficient applied; patched files
also the KL, the vector's and every control's; with ``attribution`` every file its steered shift's direct and
later-layer parts, :func:`split_shift`, read in the scoring forwards themselves); the rows are computed from
those records only (:func:`rows_from_files`), pooled over folds per (layer, alpha) and per CWE, plus
``cwe="all"``; every row has its ``n`` and the standard error over pairs of its shift beyond the control's
(``excess_se``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

from steertui.engine.build import pair_activations, vectors_from_activations
from steertui.engine.choices import ALPHA_SCALES, SPLITS
from steertui.engine.folds import stratified_folds
from steertui.engine.steering import Steer, forward
from steertui.engine.vectors import raw_alpha, residual_norm
from steertui.engine.verdict import AnswerTokens, answer_tokens, best_threshold, sample_prompts, score, score_answers
from steertui.errors import Cancel, CancelledError, SteertuiError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from steertui.engine.attribution import Attribution
    from steertui.engine.data import Pair
    from steertui.engine.model import LoadedModel

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
    alpha_scale: str = "raw"
    controls: int = 1  # random vectors of equal norm per fold and layer (the first is the same for every count)
    # the name of a given vector steered in every fold (evaluate's ``vectors``) instead of one built per fold from
    # its training pairs with ``method`` and ``readout``; None: built per fold
    vector: str | None = None
    # all of ``layers`` steered at once, layer i at alpha × together[i] (in the alpha scale's unit): one row per
    # alpha, filed under the first layer; None: each layer alone
    together: tuple[float, ...] | None = None
    # split every held-out file's steered verdict score (engine.attribution, read in the scoring forwards
    # themselves: no forward more): what the added vector writes straight into the answer, and what the layers
    # after it change
    attribution: bool = False
    # also score every held-out pair's fix-site preference (engine.fixsite: log p(patched) − log p(vulnerable)
    # continuation at the line its patch changes) unsteered, steered and under each random control
    fix_site: bool = False
    # each CWE's held-out pairs steered with a vector built from the fold's training pairs of that CWE alone (and
    # scored in their own batches), instead of one vector from all of the fold's training pairs
    per_cwe: bool = False
    # few-shot examples (engine.verdict.shot_prefix): the ids of one example pair per CWE (evaluate's
    # ``examples``), put before every verdict prompt of a file of that CWE; empty: zero-shot
    shot_pairs: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "layers": list(self.layers), "alphas": list(self.alphas),
                "together": None if self.together is None else list(self.together),
                "shot_pairs": list(self.shot_pairs)}


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
    answer_mass: float = float("nan")  # mean p(yes) + p(no) at the answer slot, unsteered
    raw_alpha: tuple[float, ...] = ()  # the coefficient applied in each fold (index = fold)
    baseline_score: float = float("nan")  # mean unsteered verdict score (shift: the steered mean minus it)
    random_yes_rate: float = float("nan")  # yes-rate with the random vector instead
    # the standard error of shift − random_shift over the row's pairs (each pair: the mean over its held-out
    # files of the steered score minus the random one); NaN with fewer than 2 pairs
    excess_se: float = float("nan")
    # with several random controls, the shift of the one that moved the verdict most (random_shift, random_flip_rate
    # and random_yes_rate are then means over the controls; random_kl is the first control's, random_kl_max below)
    random_shift_max: float = float("nan")
    # the largest mean KL of any one random control (with one control: random_kl); a vector's fluency cost is
    # comparable to the controls' when kl is within their range
    random_kl_max: float = float("nan")
    # with EvalSettings.attribution: the mean of the shift's direct part (what the added vector writes straight
    # into the answer) and of the later layers' part (their attention and MLP, changed by the push); None without
    direct_shift: float | None = None
    through_shift: float | None = None
    # with EvalSettings.fix_site, over the row's pairs that have a fix site (fix_n of them): the mean shift of the
    # fix-site preference (log p(patched) − log p(vulnerable) continuation, nats; positive: towards the fix), the
    # random controls' (their mean), and the standard error over pairs of the first minus the second; None without
    fix_shift: float | None = None
    random_fix_shift: float | None = None
    fix_excess_se: float | None = None
    fix_n: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "raw_alpha": list(self.raw_alpha)}


@dataclass
class EvalResult:
    source: str
    model: str
    settings: EvalSettings
    answers: AnswerTokens
    rows: list[EvalRow]
    folds: list[dict[str, Any]]
    truncated: list[str] = field(default_factory=list)  # ids of the files cut to the context
    prompt_template: str = ""
    files: list[dict[str, Any]] = field(default_factory=list)  # one record per held-out file (module docstring)
    cuts: list[dict[str, Any]] = field(default_factory=list)  # per truncated file: pair, windowed, window, lines
    fix_skipped: list[str] = field(default_factory=list)  # with settings.fix_site: why a pair has no fix site
    # with settings.fix_site: what was scored for each pair that has a fix site (engine.fixsite.FixSiteChoice
    # without its prompt's text: pair, line, dropped lines, token counts and both continuations)
    fix_sites: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "model": self.model, "settings": self.settings.to_dict(),
                "answer_tokens": self.answers.to_dict(), "prompt_template": self.prompt_template,
                "folds": self.folds, "truncated": self.cuts, "results": [r.to_dict() for r in self.rows],
                "files": self.files, **({"fix_site_skipped": self.fix_skipped, "fix_sites": self.fix_sites}
                                        if self.settings.fix_site else {})}


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
    return stratified_folds([p.cwe for p in pairs], folds, seed)


def _neutral_logprobs(model, texts, steers, chunk_size, kl_tokens) -> list["torch.Tensor"]:
    """Next-token log-probabilities ``[T_i, V]`` over each text's first ``kl_tokens`` real tokens."""
    out = []
    for start in range(0, len(texts), chunk_size):
        batch = texts[start:start + chunk_size]
        enc = model.encode(batch, max_length=kl_tokens)
        res = forward(model, enc, steers=steers)
        logp = res.logits.float().log_softmax(-1).cpu()
        mask = enc["attention_mask"].cpu().bool()
        out += [logp[b][mask[b]] for b in range(len(batch))]
    return out


def _kl(steered: list["torch.Tensor"], base: list["torch.Tensor"]) -> list[float]:
    """Mean over positions of KL(steered ‖ base) per text, in nats."""
    return [float((s.exp() * (s - b)).sum(-1).mean()) for s, b in zip(steered, base)]


def evaluate(model: "LoadedModel", pairs: Sequence["Pair"], settings: EvalSettings, *,
             vectors: dict[int, "torch.Tensor"] | None = None, examples: Sequence["Pair"] = (),
             progress: EvalProgress | None = None, cancel: Cancel | None = None) -> EvalResult:
    """The protocol of the module docstring. With ``vectors`` (layer -> [d_model], ``settings.vector`` naming
    them), every fold steers with those instead of building its own: the folds then only fix each fold's
    threshold and residual norm on its training files, and every pair is held out once, so the given vectors
    must not have been built from these pairs (the caller leaves those out). ``examples``: the few-shot example
    pairs ``settings.shot_pairs`` names, one per CWE of ``pairs`` (none: zero-shot)."""
    import torch

    if not pairs:
        raise SteertuiError("no pairs to evaluate", "select a dataset part that has vulnerable/patched pairs")
    if settings.alpha_scale not in ALPHA_SCALES:
        raise SteertuiError(f"unknown alpha scale '{settings.alpha_scale}'", f"use one of {', '.join(ALPHA_SCALES)}")
    layers = [model.check_layer(L) for L in settings.layers]
    if (vectors is None) != (settings.vector is None):
        raise SteertuiError("given vectors need their name in the settings (and a name needs the vectors)",
                            "pass both vectors= and EvalSettings(vector=NAME), or neither")
    if vectors is not None:
        missing = [L for L in layers if L not in vectors]
        if missing:
            raise SteertuiError(f"vector {settings.vector!r} has no layer {', '.join(map(str, missing))}",
                                f"evaluate its layers {', '.join(map(str, sorted(vectors)))}")
    if tuple(e.id for e in examples) != tuple(settings.shot_pairs):
        raise SteertuiError("few-shot examples need their ids in the settings (and ids need the examples)",
                            "pass examples= and EvalSettings(shot_pairs=their ids), or neither")
    if settings.per_cwe and (vectors is not None or settings.split == "cwe"):
        raise SteertuiError("per-CWE vectors are built per fold from the training pairs of each CWE: "
                            + ("a given vector is not" if vectors is not None else
                               "leaving one CWE out leaves none of its pairs to build from"),
                            "evaluate without per_cwe (--per-cwe), or split by pairs with a vector built per fold")
    if settings.attribution:  # a model whose score cannot be split is refused first, before any forward
        from steertui.engine.attribution import ScoreSplitter, check_model

        check_model(model)
    answers = answer_tokens(model, settings.yes, settings.no)
    splitter = ScoreSplitter(model, answers) if settings.attribution else None
    choices: list[Any] = [None] * len(pairs)
    fix_skipped: list[str] = []
    if settings.fix_site:
        from steertui.engine.fixsite import fix_site_choices

        choices, fix_skipped = fix_site_choices(model, pairs)
        if not any(choices):
            raise SteertuiError(f"none of the {len(pairs)} pairs has a fix site to score ({fix_skipped[0]})",
                                "evaluate without the fix-site preference, or select other pairs")
    fold_idx = make_folds(pairs, settings.split, settings.folds, settings.seed)
    samples = [p.vulnerable for p in pairs] + [p.patched for p in pairs]
    labels = [s.label_int for s in samples]  # 1 = vulnerable (the dataset's label; see caveats)
    n = len(pairs)
    prefixes = None
    if examples:
        from steertui.engine.verdict import shot_examples, shot_prefix

        prefixes = {c: shot_prefix(e, settings.yes, settings.no) for c, e in shot_examples(examples, pairs).items()}
    prompts = sample_prompts(model, samples, pairs, prefixes)
    neutral = [p.patched.code for p in pairs]
    if settings.together is None:  # each layer alone: (the key its rows are filed under, the layers it steers)
        groups, weight = [(L, [L]) for L in layers], {L: 1.0 for L in layers}
    else:
        if len(settings.together) != len(layers) or len(set(layers)) != len(layers):
            raise SteertuiError(f"together has {len(settings.together)} weights for the layers "
                                f"{', '.join(map(str, layers))}", "give one weight per layer, each layer once")
        groups, weight = [(layers[0], list(layers))], {L: float(w) for L, w in zip(layers, settings.together)}
    n_configs = len(groups) * len(settings.alphas)
    # The units the held-out pairs are scored in: each fold's, or with per_cwe each fold's pairs of one CWE (each
    # steered with its own CWE's vector). Every pass (unsteered, steered, controls, KL, fix site) scores a unit as
    # one list, in the same batches, so that alpha 0 reproduces the unsteered scores bit for bit.
    units = [(f, part) for f, test in enumerate(fold_idx) for part in _units(pairs, test, settings.per_cwe)]
    total = 2 + len(units) * (1 + n_configs)
    done = 0

    def tick(stage: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(stage, done, total)
        if cancel is not None and cancel.is_set():
            raise CancelledError(f"evaluation cancelled at {stage} ({done} of {total} steps)")

    acts = pair_activations(model, pairs, layers=layers, readout=settings.readout,
                            chunk_size=settings.chunk_size, cancel=cancel)
    tick("activations")
    # Unsteered scores of every file, each scored once, in its fold's held-out batches: the batches the steered
    # runs use, so that alpha 0 reproduces them bit for bit. The folds partition the files, so these are also
    # the scores the other folds' training thresholds are fitted on.
    base = torch.full((2 * n,), float("nan"))
    logp = torch.full((2 * n, 2), float("nan"))  # unsteered log p(yes), log p(no)
    base_split: dict[int, Any] = {}  # with settings.attribution, each file's unsteered score split (same forwards)
    base_fix: dict[int, float] = {}  # with settings.fix_site, each pair's unsteered fix-site preference
    for _f, test in units:
        test_s = test + [n + i for i in test]
        held = score_answers(model, [prompts[i].text for i in test_s], answers, chunk_size=settings.chunk_size,
                             split=splitter, cancel=cancel)
        base[test_s] = held.score
        logp[test_s] = torch.stack([held.logp_yes, held.logp_no], dim=1)
        if splitter is not None:
            base_split.update(zip(test_s, held.attributions))
        base_fix.update(_fix_preferences(model, choices, test, (), settings.chunk_size, cancel))
    tick("baseline scores")

    # per (layer, alpha): per-sample steered score, random score; per pair: KL; per fold: the coefficient applied
    if isinstance(settings.controls, bool) or not isinstance(settings.controls, int) or settings.controls < 1:
        raise SteertuiError(f"controls={settings.controls!r} is not a positive integer", "use 1 or more")
    steered = {(K, a): torch.full((2 * n,), float("nan")) for K, _ in groups for a in settings.alphas}
    rand = {key: torch.full((settings.controls, 2 * n), float("nan")) for key in steered}
    kl = {key: [float("nan")] * n for key in steered}
    rkl = {key: [[float("nan")] * n for _ in range(settings.controls)] for key in steered}  # per control, pair
    raws = {key: {} for key in steered}  # per file: the coefficient applied (its fold's, or its fold's CWE's)
    # with settings.attribution, per file: the shift's direct part and the later layers' part
    direct = {key: [None] * (2 * n) for key in steered}
    through = {key: [None] * (2 * n) for key in steered}
    # with settings.fix_site, per pair with a fix site: its steered preference and each control's
    fix = {key: {} for key in steered}
    rfix = {key: {} for key in steered}
    fold_of: dict[int, int] = {}
    folds_info = []
    for f, fold_test in enumerate(fold_idx):
        train = [i for i in range(n) if i not in set(fold_test)]
        if not train:
            raise SteertuiError("a fold has no training pairs", "use more pairs or another split")
        train_s = train + [n + i for i in train]
        t = best_threshold([float(base[i]) for i in train_s], [labels[i] for i in train_s])
        fold_of.update({i: f for i in fold_test + [n + i for i in fold_test]})
        info: dict[str, Any] = {"fold": f, "threshold": t, "train_pairs": [pairs[i].id for i in train],
                                "test_pairs": [pairs[i].id for i in fold_test], "residual_norm": {},
                                "vector_norm": {}}
        if settings.per_cwe:  # one vector per CWE: its norm per CWE and layer
            info["vector_norm_by_cwe"] = {}
        folds_info.append(info)
        resid = {}
        for L in layers:
            k = acts.layers.index(L)
            resid[L] = residual_norm(acts.vulnerable[train, k], acts.patched[train, k])
            info["residual_norm"][str(L)] = resid[L]
        fold_vectors = None
        if not settings.per_cwe:
            fold_vectors = vectors if vectors is not None else vectors_from_activations(acts, settings.method, train)
        for g, test in units:
            if g != f:
                continue
            test_s = test + [n + i for i in test]
            where = f"fold {f + 1}/{len(fold_idx)}"
            if settings.per_cwe:
                cwe = pairs[test[0]].cwe
                where += f" {cwe}"
                own = [i for i in train if pairs[i].cwe == cwe]
                if not own:
                    raise SteertuiError(f"fold {f + 1} has no training pair of {cwe} to build its vector from "
                                        f"({sum(p.cwe == cwe for p in pairs)} pair(s) of it in all)",
                                        "leave the CWE out (--cwe), use fewer folds, or evaluate without "
                                        "--per-cwe")
                unit_vectors = vectors_from_activations(acts, settings.method, own)
            else:
                unit_vectors = fold_vectors
            test_prompts = [prompts[i].text for i in test_s]
            test_neutral = [neutral[i] for i in test]
            base_t = _neutral_logprobs(model, test_neutral, (), settings.chunk_size, settings.kl_tokens)
            tick(f"{where} baseline")
            vec, controls = {}, {}
            for L in layers:
                vec[L] = unit_vectors[L].float().cpu()
                if settings.per_cwe:
                    info["vector_norm_by_cwe"].setdefault(cwe, {})[str(L)] = float(vec[L].norm())
                else:
                    info["vector_norm"][str(L)] = float(vec[L].norm())
                controls[L] = [random_control(vec[L], settings.seed, f, L, c) for c in range(settings.controls)]
            for K, members in groups:
                for a in settings.alphas:
                    coef = {L: float(a) * weight[L] if settings.alpha_scale == "raw"
                            else raw_alpha(float(a) * weight[L], resid[L], float(vec[L].norm())) for L in members}
                    raws[(K, a)].update({i: coef[K] for i in test_s})
                    sv = [Steer(L, vec[L], coef[L], label="vector") for L in members]
                    scored = score_answers(model, test_prompts, answers, steers=sv, chunk_size=settings.chunk_size,
                                           split=splitter, cancel=cancel)
                    steered[(K, a)][test_s] = scored.score
                    if splitter is not None:  # read in the scoring forwards: no forward of its own
                        for i, split in zip(test_s, scored.attributions):
                            direct[(K, a)][i], through[(K, a)][i] = split_shift(base_split[i], split, min(members))
                    rvs = [[Steer(L, controls[L][c], coef[L], label="random") for L in members]
                           for c in range(settings.controls)]  # each control at every steered layer
                    for c, rv in enumerate(rvs):
                        rand[(K, a)][c, test_s] = score(model, test_prompts, answers, steers=rv,
                                                        chunk_size=settings.chunk_size, cancel=cancel)
                    if settings.fix_site:
                        fix[(K, a)].update(_fix_preferences(model, choices, test, sv, settings.chunk_size, cancel))
                        per_control = [_fix_preferences(model, choices, test, rv, settings.chunk_size, cancel)
                                       for rv in rvs]
                        rfix[(K, a)].update({i: [pc[i] for pc in per_control] for i in per_control[0]})
                    # the fluency cost of the vector and of every control, on the unit's neutral code
                    k_s = _kl(_neutral_logprobs(model, test_neutral, sv, settings.chunk_size, settings.kl_tokens),
                              base_t)
                    for j, i in enumerate(test):
                        kl[(K, a)][i] = k_s[j]
                    for c, rv in enumerate(rvs):
                        k_r = _kl(_neutral_logprobs(model, test_neutral, rv, settings.chunk_size,
                                                    settings.kl_tokens), base_t)
                        for j, i in enumerate(test):
                            rkl[(K, a)][c][i] = k_r[j]
                    what = f"layer {K}" if len(members) == 1 else f"layers {'+'.join(map(str, members))}"
                    tick(f"{where} {what} alpha {a:g}")

    files = []
    for i in (k for p in range(n) for k in (p, n + p)):  # pair by pair, vulnerable first
        if i not in fold_of:
            continue
        f, pi, patched = fold_of[i], i % n, i >= n
        has_fix = not patched and pi in base_fix  # the fix-site preference is the pair's, on its vulnerable file
        files.append({
            "id": samples[i].id, "pair": pairs[pi].id, "cwe": samples[i].cwe, "label": labels[i], "fold": f,
            "threshold": folds_info[f]["threshold"], "p_yes": math.exp(float(logp[i, 0])),
            "p_no": math.exp(float(logp[i, 1])), "baseline_score": float(base[i]),
            "steered": [{"layer": K, "alpha": float(a), "raw_alpha": raws[(K, a)][i],
                         "score": float(steered[(K, a)][i]), "random_score": float(rand[(K, a)][0, i]),
                         "random_scores": [float(x) for x in rand[(K, a)][:, i]],
                         "kl": kl[(K, a)][pi] if patched else None,
                         "random_kl": rkl[(K, a)][0][pi] if patched else None,
                         "random_kls": [r[pi] for r in rkl[(K, a)]] if patched else None,
                         "direct": direct[(K, a)][i], "through": through[(K, a)][i],
                         "fix": fix[(K, a)][pi] if has_fix else None,
                         "random_fix": rfix[(K, a)][pi] if has_fix else None}
                        for K, _ in groups for a in settings.alphas],
            "fix_baseline": base_fix[pi] if has_fix else None,
        })
    from steertui.engine.data.model import cwe_sort_key

    cwes = sorted({p.cwe for p in pairs}, key=cwe_sort_key)  # by number, as everywhere
    rows = rows_from_files(files, [K for K, _ in groups], settings.alphas, cwes)
    pair_of = {s.id: p.id for p in pairs for s in p.samples}
    cuts = [{**p.describe(), "pair": pair_of.get(p.sample_id)} for p in prompts if p.truncated or p.windowed]
    truncated = [p.sample_id for p in prompts if p.truncated]
    from steertui.engine.verdict import SHOTS_TEMPLATE, TEMPLATE

    fix_sites = [{k: v for k, v in c.to_dict().items() if k != "prompt"} for c in choices if c is not None]
    return EvalResult(pairs[0].source, model.info.name, settings, answers, rows, folds_info, truncated,
                      SHOTS_TEMPLATE if examples else TEMPLATE, files, cuts, fix_skipped, fix_sites)


def _fix_preferences(model: "LoadedModel", choices: Sequence[Any], pairs: Sequence[int], steers: Sequence[Steer],
                     chunk_size: int, cancel: Cancel | None) -> dict[int, float]:
    """Pair index -> fix-site preference with ``steers`` (engine.fixsite), for those of ``pairs`` that have a
    fix site (``choices[i]`` not None), in one call: the same batches steered and unsteered."""
    from steertui.engine.fixsite import choice_logprobs, preferences

    idx = [i for i in pairs if choices[i] is not None]
    if not idx:
        return {}
    prefs = preferences(choice_logprobs(model, [choices[i] for i in idx], steers, chunk_size=chunk_size,
                                        cancel=cancel))
    return dict(zip(idx, prefs))


def _units(pairs: Sequence["Pair"], test: Sequence[int], per_cwe: bool) -> list[list[int]]:
    """A fold's held-out pair indices as the lists they are scored in: all of them, or with ``per_cwe`` one list
    per CWE (by CWE number, each in the fold's order)."""
    if not per_cwe:
        return [list(test)]
    from steertui.engine.data.model import cwe_sort_key

    by_cwe: dict[str, list[int]] = {}
    for i in test:
        by_cwe.setdefault(pairs[i].cwe, []).append(i)
    return [by_cwe[c] for c in sorted(by_cwe, key=cwe_sort_key)]


def random_control(vector: "torch.Tensor", seed: int, fold: int, layer: int, index: int = 0) -> "torch.Tensor":
    """Random control ``index`` for ``vector``: a direction drawn from (seed, fold, layer, index) only (not from
    which other layers are evaluated; control 0 is the same for any number of controls), scaled to the vector's
    norm."""
    import torch

    gen = torch.Generator().manual_seed(seed * 1_000_003 + fold * 1_009 + layer + index * 7_919_993)
    r = torch.randn(vector.shape[0], generator=gen)
    return r / r.norm() * vector.norm()


def _mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values) if values else float("nan")


def _standard_error(values: Sequence[float]) -> float:
    """The standard error of the mean of ``values`` (sample standard deviation over √n); NaN below 2 values."""
    n = len(values)
    if n < 2:
        return float("nan")
    m = _mean(values)
    return math.sqrt(math.fsum((v - m) ** 2 for v in values) / (n - 1) / n)


def pair_excess(group: Sequence[dict[str, Any]], steered: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Pair id -> the mean over its files of ``group`` of the steered score minus the random controls' mean (each
    file's record of one cell in ``steered``): the unit the standard error is taken over (a pair's two files are
    not independent), and what engine.compare compares pair by pair."""
    pairs: dict[str, list[float]] = {}
    for f, x in zip(group, steered):
        pairs.setdefault(f["pair"], []).append(x["score"] - _mean(control_scores(x)))
    return {p: _mean(v) for p, v in pairs.items()}


def pair_fix_excess(group: Sequence[dict[str, Any]], steered: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Pair id -> its fix-site preference with the vector minus the controls' mean, for the files of ``group``
    that carry one (a pair's vulnerable file, when the evaluation scored the fix sites)."""
    return {f["pair"]: x["fix"] - _mean(x["random_fix"]) for f, x in zip(group, steered) if x.get("fix") is not None}


def control_scores(x: dict[str, Any]) -> list[float]:
    """A steered record's score under each random control (``random_score`` is the first)."""
    return list(x.get("random_scores") or [x["random_score"]])


def split_shift(baseline: "Attribution", steered: "Attribution", first: int) -> tuple[float, float]:
    """(direct, through) of a verdict score's shift from ``baseline`` to ``steered``, the same file's two splits
    (``engine.attribution``) with steering from layer ``first`` on: ``direct`` what the added vectors write
    straight into the answer (their own rows), ``through`` the change of the attention and MLP parts of the
    blocks after ``first`` (what the network does with the push). The rest of the shift is the final norm's:
    its scale, frozen per side, differs between the two sides, which rescales what the embeddings and the
    blocks up to the steered one wrote (their residual is unchanged) and the constant."""
    d = math.fsum(p.steer for p in steered.layers)
    t = math.fsum((q.attn + (q.mlp or 0.0)) - (p.attn + (p.mlp or 0.0))
                  for p, q in zip(baseline.layers, steered.layers) if q.layer > first)
    return d, t


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    """The mean of ``values``, None when any is None (not computed)."""
    return None if not values or any(v is None for v in values) else _mean(values)


def _control_kls(x: dict[str, Any]) -> list[float]:
    """A patched file's KL under each random control (``random_kl`` is the first's; records made before every
    control's KL was kept hold that one only)."""
    return list(x.get("random_kls") or [x["random_kl"]])


def rows_from_files(files: Sequence[dict[str, Any]], layers: Sequence[int], alphas: Sequence[float],
                    cwes: Sequence[str]) -> list[EvalRow]:
    """The table from the per-file records of :attr:`EvalResult.files` alone: per (layer, alpha), per CWE and
    ``all``. Means are ``math.fsum(values) / n``; a file counts as "yes" when its score is above its fold's
    threshold; shifts and flips compare each file's steered (or random) score with its unsteered one; the KL
    means are over the patched files (the neutral code of each pair); ``raw_alpha`` lists the coefficient each
    fold applied (with per-CWE vectors, each of its CWEs' in an ``all`` row: :func:`_raw_alphas`); ``excess_se``
    is the standard error over pairs of the shift beyond the random control's. With several random controls, the
    random columns are means over the controls (each control's shift, flip rate and yes-rate over the group first),
    ``random_shift_max`` is the control shift of largest magnitude, ``random_kl`` stays the first control's KL and
    ``random_kl_max`` is the largest of the controls' mean KLs."""
    rows = []
    for L in layers:
        for a in alphas:
            cell = [(f, x) for f in files for x in f["steered"] if x["layer"] == L and x["alpha"] == a]
            for cwe in list(cwes) + ["all"]:
                group = [f for f in files if cwe == "all" or f["cwe"] == cwe]
                st = [next(x for x in f["steered"] if x["layer"] == L and x["alpha"] == a) for f in group]
                yes_b = [f["baseline_score"] > f["threshold"] for f in group]
                yes_s = [x["score"] > f["threshold"] for f, x in zip(group, st)]
                k = len(control_scores(st[0])) if st else 1
                # per control: its shift, flip rate and yes-rate over the group (the row: their means)
                r_shift, r_flip, r_yes = [], [], []
                for c in range(k):
                    scores = [control_scores(x)[c] for x in st]
                    yes_r = [s > f["threshold"] for f, s in zip(group, scores)]
                    r_shift.append(_mean([s - f["baseline_score"] for f, s in zip(group, scores)]))
                    r_flip.append(_mean([float(p != q) for p, q in zip(yes_r, yes_b)]))
                    r_yes.append(_mean([float(p) for p in yes_r]))
                truth = [bool(f["label"]) for f in group]
                patched = [x for x in st if x["kl"] is not None]  # the KLs are the patched files'
                kls, rkls = [x["kl"] for x in patched], [x["random_kl"] for x in patched]
                # per control: its mean KL over the group's patched files (the row: the largest)
                per_kl = [_mean([_control_kls(x)[c] for x in patched])
                          for c in range(len(_control_kls(patched[0])) if patched else 0)]
                rows.append(EvalRow(
                    layer=L, alpha=float(a), cwe=cwe, n=len(group),
                    shift=_mean([x["score"] - f["baseline_score"] for f, x in zip(group, st)]),
                    accuracy=_mean([float(p == y) for p, y in zip(yes_s, truth)]),
                    flip_rate=_mean([float(p != q) for p, q in zip(yes_s, yes_b)]),
                    random_shift=_mean(r_shift), random_flip_rate=_mean(r_flip),
                    kl=_mean(kls), n_kl=len(kls),
                    baseline_accuracy=_mean([float(p == y) for p, y in zip(yes_b, truth)]),
                    baseline_yes_rate=_mean([float(p) for p in yes_b]), yes_rate=_mean([float(p) for p in yes_s]),
                    random_kl=_mean(rkls), answer_mass=_mean([f["p_yes"] + f["p_no"] for f in group]),
                    raw_alpha=_raw_alphas(cell, cwe),
                    baseline_score=_mean([f["baseline_score"] for f in group]),
                    random_yes_rate=_mean(r_yes), excess_se=_standard_error(list(pair_excess(group, st).values())),
                    random_shift_max=max(r_shift, key=abs),
                    random_kl_max=max((x for x in per_kl if not math.isnan(x)), default=float("nan")),
                    direct_shift=_mean_or_none([x.get("direct") for x in st]),
                    through_shift=_mean_or_none([x.get("through") for x in st]),
                    **_fix_columns(group, st),
                ))
    return rows


def _raw_alphas(cell: Sequence[tuple[dict[str, Any], dict[str, Any]]], cwe: str) -> tuple[float, ...]:
    """The coefficients of one cell (its (file, steered record) pairs) for the row of ``cwe``, fold by fold: a
    fold's coefficient (one per fold: every file of a fold is steered alike), or where a fold steered each CWE with
    its own vector (``per_cwe``) the distinct ones of the row's files there, by CWE number (a fold that holds out
    none of them then has none in the row)."""
    from steertui.engine.data.model import cwe_sort_key

    per_fold: dict[int, tuple[list[float], list[float]]] = {}
    for f, x in sorted(cell, key=lambda fx: (fx[0]["fold"], cwe_sort_key(fx[0]["cwe"]))):
        own, every = per_fold.setdefault(f["fold"], ([], []))
        value = x["raw_alpha"]
        for seen in ([own] if cwe in ("all", f["cwe"]) else []) + [every]:
            if not any(v == value or (math.isnan(v) and math.isnan(value)) for v in seen):
                seen.append(value)
    return tuple(v for fold in sorted(per_fold) for v in (per_fold[fold][0] or
                                                          (per_fold[fold][1] if len(per_fold[fold][1]) == 1 else [])))


def _fix_columns(group: Sequence[dict[str, Any]], steered: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The fix-site columns of a row (:class:`EvalRow`) from its files' records: over the vulnerable files that
    carry a fix-site preference (one per pair); all None when none does (evaluated without it)."""
    fixed = [(f, x) for f, x in zip(group, steered) if x.get("fix") is not None]
    if not fixed:
        return {}
    controls = len(fixed[0][1]["random_fix"])
    return {"fix_shift": _mean([x["fix"] - f["fix_baseline"] for f, x in fixed]),
            "random_fix_shift": _mean([_mean([x["random_fix"][c] - f["fix_baseline"] for f, x in fixed])
                                       for c in range(controls)]),
            "fix_excess_se": _standard_error(list(pair_fix_excess(group, steered).values())),
            "fix_n": len(fixed)}


PICK_DIRECTIONS = ("up", "down")  # towards " Yes" (vulnerable), towards " No"


@dataclass(frozen=True)
class PickedCell:
    """The cell one fold steers with when the cell is picked on the other folds' held-out files alone."""

    fold: int
    layer: int
    alpha: float
    excess: float  # the picked cell's mean shift beyond the random control over the other folds' files
    kl: float  # its mean KL there (NaN when those files have none)


@dataclass(frozen=True)
class Picked:
    """A layer × alpha search scored without picking on the files it is scored on (cross-fitting).

    A grid's best cell is chosen on the same held-out files that then report it, so its shift is optimistic:
    with enough cells, noise alone wins. Here each fold's held-out files are steered with the cell that did best
    on the *other* folds' held-out files (largest mean shift beyond the random control, ``up`` towards " Yes" or
    ``down`` towards " No", among cells with alpha ≠ 0 and, with ``max_kl``, a mean KL within it; ties go to
    the smaller |alpha|, then the earlier layer). No file's own score takes part in choosing the cell it is
    steered with, so :attr:`rows` (per CWE and ``all``, in the table's columns, filed as layer -1 at alpha ±1)
    are an honest estimate of "search the grid, then steer". :attr:`hindsight` is the grid's best cell on every
    file, the number a user reads off the grid; the gap between the two is the search's optimism. Computed from
    the per-file records alone: no forward."""

    direction: str
    max_kl: float | None
    folds: tuple[PickedCell, ...]
    rows: tuple[EvalRow, ...]
    hindsight: tuple[int, float, float]  # (layer, alpha, shift beyond the control) of the best cell on all files

    @property
    def all(self) -> EvalRow:
        return next(r for r in self.rows if r.cwe == "all")

    def to_dict(self) -> dict[str, Any]:
        return {"direction": self.direction, "max_kl": self.max_kl, "folds": [asdict(c) for c in self.folds],
                "results": [r.to_dict() for r in self.rows],
                "hindsight": {"layer": self.hindsight[0], "alpha": self.hindsight[1], "excess": self.hindsight[2]}}


def _cell_scores(files: Sequence[dict[str, Any]]) -> dict[tuple[int, float], tuple[list[float], list[float]]]:
    """Per (layer, alpha ≠ 0): each file's score beyond the mean of its controls, and each patched file's KL."""
    cells: dict[tuple[int, float], tuple[list[float], list[float]]] = {}
    for f in files:
        for x in f["steered"]:
            if x["alpha"] == 0:
                continue
            excess, kls = cells.setdefault((x["layer"], x["alpha"]), ([], []))
            excess.append(x["score"] - _mean(control_scores(x)))
            if x["kl"] is not None:
                kls.append(x["kl"])
    return cells


def _best_cell(files: Sequence[dict[str, Any]], direction: str,
               max_kl: float | None) -> tuple[int, float, float, float] | None:
    """(layer, alpha, excess, kl) of the best cell on ``files`` (see :class:`Picked`), None when none qualifies."""
    sign = 1.0 if direction == "up" else -1.0
    best = None
    for (layer, alpha), (excess, kls) in _cell_scores(files).items():
        e, k = _mean(excess), _mean(kls)
        if math.isnan(e) or (max_kl is not None and not k <= max_kl):
            continue
        key = (-sign * e, abs(alpha), layer)
        if best is None or key < best[0]:
            best = (key, (layer, alpha, e, k))
    return None if best is None else best[1]


def pick_on_other_folds(files: Sequence[dict[str, Any]], direction: str = "up", max_kl: float | None = None,
                        cwes: Sequence[str] | None = None) -> Picked:
    """:class:`Picked` from an evaluation's per-file records (:attr:`EvalResult.files`) over several cells and
    at least two folds."""
    if direction not in PICK_DIRECTIONS:
        raise SteertuiError(f"unknown direction '{direction}'", f"use one of {', '.join(PICK_DIRECTIONS)}")
    folds = sorted({f["fold"] for f in files})
    from steertui.engine.data.model import cwe_sort_key

    if len(folds) < 2:
        raise SteertuiError("picking a cell on the other folds needs at least 2 folds",
                            "evaluate with --folds 2 or more")
    if len(_cell_scores(files)) < 2:
        raise SteertuiError("there is nothing to pick: the evaluation has fewer than 2 steered cells",
                            "evaluate several layers or alphas (e.g. the layer grid)")
    picked: list[PickedCell] = []
    for fold in folds:
        best = _best_cell([f for f in files if f["fold"] != fold], direction, max_kl)
        if best is None:
            raise SteertuiError(f"no cell has a mean KL within {max_kl:g} on the files outside fold {fold}",
                                "raise the KL limit, or evaluate smaller alphas")
        picked.append(PickedCell(fold, *best))
    at = {c.fold: c for c in picked}
    key_alpha = 1.0 if direction == "up" else -1.0
    steered = []
    for f in files:
        c = at[f["fold"]]
        x = next(x for x in f["steered"] if x["layer"] == c.layer and x["alpha"] == c.alpha)
        steered.append({**f, "steered": [{**x, "layer": -1, "alpha": key_alpha}]})
    cwes = sorted({f["cwe"] for f in files}, key=cwe_sort_key) if cwes is None else cwes
    rows = rows_from_files(steered, [-1], [key_alpha], cwes)  # filed as one cell: layer -1 at alpha ±1
    hind = _best_cell(files, direction, max_kl)
    return Picked(direction, max_kl, tuple(picked), tuple(rows),
                  (hind[0], hind[1], hind[2]) if hind is not None else (-1, float("nan"), float("nan")))


@dataclass(frozen=True)
class Confirmed:
    """A search's best cell in one direction, confirmed elsewhere: picked on every file of the search (its shift
    beyond the control there, ``searched_excess``, is optimistic: the files that chose it report it), its vector
    built on every pair of the search, then evaluated on pairs that took no part in either (``result``: alpha 0
    and the cell's alpha, with the search's settings, the vector as given in every fold)."""

    direction: str
    layer: int
    alpha: float
    searched_excess: float
    searched_kl: float
    result: EvalResult

    @property
    def row(self) -> EvalRow:
        """The cell over all confirmation files."""
        return next(r for r in self.result.rows if r.cwe == "all" and r.alpha == self.alpha)

    def to_dict(self) -> dict[str, Any]:
        return {"direction": self.direction, "layer": self.layer, "alpha": self.alpha,
                "searched_excess": self.searched_excess, "searched_kl": self.searched_kl,
                "result": self.row.to_dict(), "results": [r.to_dict() for r in self.result.rows],
                "files": self.result.files}


def best_cells(search: EvalResult, max_kl: float | None = None) -> dict[str, tuple[int, float, float, float]]:
    """Per direction, the cell of ``search`` with the largest mean shift beyond the random control on all its
    files (alpha ≠ 0, as every pick; with ``max_kl``, mean KL within it): (layer, alpha, excess, kl), the grid's
    best (:attr:`Picked.hindsight`). A direction with no such cell is left out. No forward."""
    best = {d: _best_cell(search.files, d, max_kl) for d in PICK_DIRECTIONS}
    return {d: b for d, b in best.items() if b is not None}


VectorBuilder = Callable[[Sequence["Pair"], list[int], EvalSettings], tuple[str, dict[int, "torch.Tensor"]]]
Evaluator = Callable[[Sequence["Pair"], EvalSettings, dict[int, "torch.Tensor"]], EvalResult]


def confirm_best_cells(model: "LoadedModel", search: EvalResult, search_pairs: Sequence["Pair"],
                       pairs: Sequence["Pair"], *, vectors: dict[int, "torch.Tensor"] | None = None,
                       max_kl: float | None = None, progress: EvalProgress | None = None,
                       cancel: Cancel | None = None, build: VectorBuilder | None = None,
                       evaluate_with: Evaluator | None = None, examples: Sequence["Pair"] = ()) -> dict[str, Confirmed]:
    """Per direction (``up``, ``down``), :class:`Confirmed`: the search's :func:`best_cells` (``search`` an
    evaluation of ``search_pairs`` over several cells) evaluated on ``pairs``, which must share no pair with
    ``search_pairs``. Its vector is built on every search pair with the search's method and readout (the vector
    the console's Enter on a grid cell steers with), or is ``vectors`` when the search evaluated a given vector.

    ``build`` (search pairs, layers, settings -> the vector's name and its layers) and ``evaluate_with`` (pairs,
    settings, vectors -> result) replace the plain build and evaluation: a session recorder passes its own, so
    that both are recorded as steps (``session.recorded.confirm_best_cells``). ``examples``: the search's few-shot
    example pairs (``settings.shot_pairs``), one per CWE of ``pairs`` too."""
    import dataclasses

    s = search.settings
    if s.together is not None:
        raise SteertuiError("confirming layers steered at once is not supported",
                            "export their vector and evaluate it on the other pairs with eval --vectors")
    if not pairs:
        raise SteertuiError("no pairs to confirm on", "choose a part or CWEs with pairs")
    both = sorted({p.id for p in pairs} & {p.id for p in search_pairs})
    if both:
        raise SteertuiError(f"{len(both)} pair(s) are both searched and confirmed on (e.g. {both[0]})",
                            "confirm on pairs the search did not use")
    if (vectors is None) != (s.vector is None):
        raise SteertuiError("a search of a given vector is confirmed with that vector (and only then)",
                            "pass vectors= exactly when the search's settings name a vector")
    best = best_cells(search, max_kl)
    layers = sorted({b[0] for b in best.values()})
    if not layers:
        return {}
    if vectors is not None:
        name = s.vector
    elif build is not None:
        name, vectors = build(search_pairs, layers, s)
    else:
        acts = pair_activations(model, search_pairs, layers=layers, readout=s.readout, chunk_size=s.chunk_size,
                                cancel=cancel)
        name, vectors = "searched", vectors_from_activations(acts, s.method)
    out: dict[str, Confirmed] = {}
    for L in layers:
        alphas = tuple(sorted({0.0} | {b[1] for b in best.values() if b[0] == L}))
        settings = dataclasses.replace(s, layers=(L,), alphas=alphas, vector=name)
        result = (evaluate_with(pairs, settings, {L: vectors[L]}) if evaluate_with is not None else
                  evaluate(model, pairs, settings, vectors={L: vectors[L]}, examples=examples, progress=progress,
                           cancel=cancel))
        out.update({d: Confirmed(d, L, b[1], b[2], b[3], result) for d, b in best.items() if b[0] == L})
    return {d: out[d] for d in PICK_DIRECTIONS if d in out}


@dataclass(frozen=True)
class DirectionEffect:
    """Does the vector move the verdict the way its sign says, more than a random vector of equal norm?

    From the held-out file records alone, at one layer and a pair of alphas ``+a`` / ``-a``: ``up`` is the
    yes-rate of the patched files at ``+a`` minus unsteered (towards "vulnerable"), ``down`` the yes-rate of the
    vulnerable files unsteered minus at ``-a`` (away from it); ``*_random`` the same for the random vector. A file
    counts as "yes" when its score is above its fold's threshold, as in the table."""

    layer: int
    alpha: float
    n_patched: int
    n_vulnerable: int
    up: float
    up_random: float
    down: float
    down_random: float
    kl_up: float
    kl_down: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def direction_effect(files: Sequence[dict[str, Any]], layer: int, alpha: float) -> DirectionEffect:
    def rate(group, a: float | None, key: str = "score") -> float:
        yes = []
        for f in group:
            if a is None:
                yes.append(float(f["baseline_score"] > f["threshold"]))
                continue
            x = next((x for x in f["steered"] if x["layer"] == layer and x["alpha"] == a), None)
            if x is None:
                raise SteertuiError(f"no result for layer {layer} at alpha {a:g}",
                                    f"evaluate with --alpha=-{abs(a):g},0,{abs(a):g} at layer {layer}")
            yes.append(float(x[key] > f["threshold"]))
        return _mean(yes)

    def kl(a: float) -> float:
        return _mean([x["kl"] for f in files for x in f["steered"]
                      if x["layer"] == layer and x["alpha"] == a and x["kl"] is not None])

    a = abs(float(alpha))
    patched = [f for f in files if not f["label"]]
    vulnerable = [f for f in files if f["label"]]
    base_p, base_v = rate(patched, None), rate(vulnerable, None)
    return DirectionEffect(layer=layer, alpha=a, n_patched=len(patched), n_vulnerable=len(vulnerable),
                           up=rate(patched, a) - base_p, up_random=rate(patched, a, "random_score") - base_p,
                           down=base_v - rate(vulnerable, -a), down_random=base_v - rate(vulnerable, -a, "random_score"),
                           kl_up=kl(a), kl_down=kl(-a))
