"""Operations for a front end: each combines the engine functions one user action needs and returns one result.

The console runs each of its jobs as one of these, or as its recorded twin in
:mod:`steertui.engine.session.recorded` (the same result, its parts recorded as session steps), and only shows
the result. Importing this module imports neither torch nor Textual.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from steertui.engine import gendiff, verdict
from steertui.engine.evaluate import (PICK_DIRECTIONS, EvalResult, EvalRow, EvalSettings, Picked, control_scores,
                                      pick_on_other_folds)
from steertui.engine.lens import LensDiff, LensResult, lens_diff, logit_lens
from steertui.errors import Cancel

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from steertui.engine.attribution import VerdictAttribution
    from steertui.engine.data import Pair
    from steertui.engine.fixsite import FixSitePreference
    from steertui.engine.layers import LayersReport
    from steertui.engine.model import LoadedModel
    from steertui.engine.steering import Steer

TOP_K = 10  # next tokens listed on each side
LENS_K = 5  # lens tokens kept per layer and side
LENS_TARGET = " Yes"  # the token whose probability the lens follows: the verdict's first answer
LENS_WINDOW = 16  # the verdict prompt's last positions the lens grid decodes
NEW_TOKENS = 32  # continuation length on each side
CONTINUATION_K = 3  # top tokens kept per run at each step of a continuation
EVAL_FOLDS = 3  # folds by pair of the one-layer evaluation


# ---- loading ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelAndLayers:
    """A loaded model and the layer report of one real forward on it."""

    model: "LoadedModel"
    layers: "LayersReport"


def load_model(spec: str | None = None, *, device: str | None = None, dtype: str | None = None) -> ModelAndLayers:
    """Load a model (a folder, a cached hub id, or the demo model when None) and probe its layers."""
    from steertui.engine.layers import probe_layers
    from steertui.engine.model import LoadedModel

    model = LoadedModel.load(spec, device=device, dtype=dtype)
    return ModelAndLayers(model, probe_layers(model))


# ---- next tokens at the verdict slot -----------------------------------------------------------------------------
def verdict_prompt(model: "LoadedModel", pair_or_prompt: "Pair | str", shots: "Pair | None" = None
                   ) -> verdict.VerdictPrompt:
    """The verdict prompt of a pair's vulnerable file (cut to the pair's window when it is longer than the
    context), after the few-shot example pair ``shots`` (:func:`verdict.shot_prefix`; none by default), or a
    prompt given as text, taken as it is."""
    if isinstance(pair_or_prompt, str):
        return verdict.VerdictPrompt("", pair_or_prompt, False, 0, total_lines=len(pair_or_prompt.splitlines()))
    sample = pair_or_prompt.vulnerable
    if shots is None:
        return verdict.build_prompt(model, sample.code, sample.cwe_name, sample.id, pair=pair_or_prompt)
    return dataclasses.replace(verdict.build_prompt(model, sample.code, sample.cwe_name, sample.id, pair=pair_or_prompt,
                                                    prefix=verdict.shot_prefix(shots)), shot_pair=shots.id)


def few_shot_example(dataset: Any, cwe: str) -> "Pair | None":
    """The dataset's few-shot example pair of ``cwe`` (SecLLMHolmes' few-shot part), or None without one."""
    from steertui.engine.data.model import FEW_SHOT

    if dataset is None or FEW_SHOT not in dataset.parts:
        return None
    return next((p for p in dataset.pairs if p.part == FEW_SHOT and p.cwe == cwe), None)


def lens_of(model: "LoadedModel", prompt: str, steers: Sequence["Steer"], *, k: int = LENS_K,
            positions: Any = None, target: int | str | None = LENS_TARGET, layers: Iterable[int] | None = None,
            cancel: Cancel | None = None) -> LensDiff | LensResult:
    """The logit lens of ``prompt``: baseline and steered in one forward (``lens_diff``) when something is
    steered, else the plain lens (``logit_lens``), whose two sides would be the same."""
    kwargs = dict(k=k, positions=positions, target=target, layers=layers, cancel=cancel)
    if steers:
        return lens_diff(model, prompt, steers, **kwargs)
    return logit_lens(model, prompt, **kwargs)


@dataclass(frozen=True)
class NextTokens:
    """The next token at one verdict prompt's answer slot, baseline against steered: the top tokens with
    KL(steered ‖ baseline), the logit lens at the same slot, and the verdict score on both sides."""

    prompt: verdict.VerdictPrompt
    top: gendiff.TopTokensResult  # one row
    lens: LensDiff | LensResult  # a plain LensResult when nothing is steered
    answers: verdict.AnswerTokens
    score_baseline: float  # logit(" Yes") − logit(" No"), read from the top-token forwards
    score_steered: float
    # the verdict score split into each layer's direct contributions (engine.attribution), when asked for
    attribution: "VerdictAttribution | None" = None

    @property
    def sample_id(self) -> str:
        return self.prompt.sample_id

    @property
    def row(self) -> gendiff.TopTokensRow:
        return self.top.rows[0]

    @classmethod
    def of(cls, model: "LoadedModel", prompt: verdict.VerdictPrompt, top: gendiff.TopTokensResult,
           lens_result: LensDiff | LensResult, attribution: "VerdictAttribution | None" = None) -> "NextTokens":
        """Put the parts together; the verdict score comes from the top-token logits (no further forward)."""
        answers = verdict.answer_tokens(model)
        base, steered = top.logit_diff(answers.yes_id, answers.no_id)
        return cls(prompt, top, lens_result, answers, base, steered, attribution)


def next_tokens(model: "LoadedModel", pair_or_prompt: "Pair | str", steers: Iterable["Steer"] = (), *,
                k: int = TOP_K, lens_k: int = LENS_K, target: int | str | None = LENS_TARGET,
                window: int = LENS_WINDOW, attribution: bool = False, shots: "Pair | None" = None,
                cancel: Cancel | None = None) -> NextTokens:
    """Top ``k`` next tokens (two forwards: baseline, steered), the verdict score from the same logits, and the
    lens (one forward of both rows) over the last ``window`` positions of the verdict prompt of
    ``pair_or_prompt`` (see :func:`verdict_prompt`); the answer slot is the window's last position. The target
    is checked first, so a target that is not one token costs no forward. With ``attribution``, one more
    forward of both rows splits the verdict score into each layer's direct contributions
    (:func:`steertui.engine.attribution.verdict_attribution`). ``shots``: the few-shot example pair put before a
    pair's prompt."""
    from steertui.engine.lens import resolve_target

    steers = list(steers)
    resolve_target(model, target)
    prompt = verdict_prompt(model, pair_or_prompt, shots)
    top = gendiff.top_tokens(model, [prompt.text], steers, k=k, cancel=cancel)
    lens_result = lens_of(model, prompt.text, steers, k=lens_k, target=target, positions=lens_window(window),
                          cancel=cancel)
    return NextTokens.of(model, prompt, top, lens_result, attribution_of(model, prompt, steers, attribution, cancel))


def attribution_of(model: "LoadedModel", prompt: verdict.VerdictPrompt, steers: Sequence["Steer"], wanted: bool,
                   cancel: Cancel | None = None) -> "VerdictAttribution | None":
    """The verdict attribution of ``prompt`` with ``steers`` when ``wanted``, else None (no forward)."""
    if not wanted:
        return None
    from steertui.engine.attribution import verdict_attribution

    return verdict_attribution(model, prompt.text, steers, cancel=cancel)


def lens_window(window: int) -> slice:
    """The lensed positions: the last ``window`` tokens of the prompt (all of them when it is shorter)."""
    return slice(-max(1, int(window)), None)


# ---- continuations at a pair's fix site --------------------------------------------------------------------------
@dataclass(frozen=True)
class Continuation:
    """A pair's vulnerable file up to its fix site, continued greedily without and with steering."""

    prompt: gendiff.FixSitePrompt
    diff: gendiff.GenDiffResult  # one row
    steps: gendiff.ContinuationLens  # every token of both sides, read by both runs through every layer
    # which version of the fix the model would rather write there, unsteered and steered (engine.fixsite); None
    # when the pair has no fix site to score or it was not asked for
    fix: "FixSitePreference | None" = None

    @property
    def row(self) -> gendiff.GenDiffRow:
        return self.diff.rows[0]

    @classmethod
    def of(cls, model: "LoadedModel", prompt: gendiff.FixSitePrompt, diff: gendiff.GenDiffResult,
           steers: Iterable["Steer"], *, pair: "Pair | None" = None, cancel: Cancel | None = None,
           progress: Callable[[str, int, int], None] | None = None) -> "Continuation":
        """The continuation ``diff`` of ``prompt`` with its tokens read by :func:`gendiff.continuation_lens`
        (progress stage ``lens``, 1 of 1) and, given its ``pair``, the pair's fix-site preference without and
        with ``steers`` (:func:`fixsite.fix_site_preference`; stage ``fix site``, 1 of 1)."""
        from steertui.engine.fixsite import fix_site_preference

        steers = list(steers)
        steps = gendiff.continuation_lens(model, prompt.text, diff.rows[0], steers, k=CONTINUATION_K, cancel=cancel)
        if progress is not None:
            progress("lens", 1, 1)
        fix = None
        if pair is not None:
            fix = fix_site_preference(model, pair, steers, cancel=cancel)
            if progress is not None:
                progress("fix site", 1, 1)
        return cls(prompt, diff, steps, fix)


def fix_site_continuation(model: "LoadedModel", pair: "Pair", steers: Iterable["Steer"] = (), *,
                          max_new_tokens: int = NEW_TOKENS, cancel: Cancel | None = None,
                          progress: Callable[[str, int, int], None] | None = None) -> Continuation:
    """:func:`gendiff.fix_site_prompt` of ``pair``, continued by :func:`gendiff.generation_diff`, its tokens read
    by :func:`gendiff.continuation_lens`."""
    steers = list(steers)
    prompt = gendiff.fix_site_prompt(model, pair, max_new_tokens)
    diff = gendiff.generation_diff(model, [prompt.text], steers, max_new_tokens=max_new_tokens, cancel=cancel,
                                   progress=progress)
    return Continuation.of(model, prompt, diff, steers, pair=pair, cancel=cancel, progress=progress)


# ---- the evaluation of one layer ---------------------------------------------------------------------------------
def layer_eval_settings(layer: int, alpha: float, method: str, vector: str | None = None) -> EvalSettings:
    """The settings of the held-out evaluation of one steering layer at alphas −a, 0, +a (``evaluate.evaluate``,
    or a recorder's ``evaluate``): folds by pair, vectors rebuilt per fold with ``method`` at each file's last
    token (or, with ``vector``, the given vector of that name in every fold), seed 0."""
    a = abs(float(alpha))
    return EvalSettings(layers=(int(layer),), alphas=(-a, 0.0, a), method=method, readout="last", split="pairs",
                        seed=0, folds=EVAL_FOLDS, vector=vector)



# ---- the alpha sweep of one layer --------------------------------------------------------------------------------
SWEEP_POINTS = 7  # alphas of the console's sweep, symmetric around 0


def sweep_alphas(alpha: float, points: int = SWEEP_POINTS) -> tuple[float, ...]:
    """``points`` alphas evenly from −``alpha`` to +``alpha`` (0 in the middle when ``points`` is odd)."""
    a, n = abs(float(alpha)), max(2, int(points))
    return tuple(0.0 if 2 * i == n - 1 else a * (2 * i - (n - 1)) / (n - 1) for i in range(n))


def sweep_eval_settings(layer: int, alphas: Sequence[float], method: str, vector: str | None = None,
                        together: dict[int, float] | None = None) -> EvalSettings:
    """The settings of :func:`layer_eval_settings` over the given alphas (raw coefficients, as ``e`` applies); with
    ``together`` (layer -> weight), those of :func:`together_eval_settings` over the given multipliers."""
    base = (layer_eval_settings(layer, 0.0, method, vector) if together is None
            else together_eval_settings(together, method, vector))
    return dataclasses.replace(base, alphas=tuple(float(a) for a in alphas))


@dataclass(frozen=True)
class SweepCurve:
    """The verdict of the held-out files of an evaluation against alpha at one layer, for the vector and for
    the random control of equal norm: the mean verdict score and the yes-rate (score above its fold's
    threshold), from the evaluation's rows of one CWE, or over all of them (the same files at every alpha)."""

    layer: int
    alphas: tuple[float, ...]
    score: tuple[float, ...]  # mean steered verdict score per alpha
    random_score: tuple[float, ...]
    yes_rate: tuple[float, ...]
    random_yes_rate: tuple[float, ...]
    baseline_score: float  # mean unsteered score of the same files
    baseline_yes_rate: float
    n: int  # held-out files
    cwe: str = "all"  # the files of this CWE (all: every file)
    # with the evaluation's fix_site: the mean shift of the fix-site preference per alpha (nats), the controls'
    # (their mean); None without
    fix: tuple[float, ...] | None = None
    random_fix: tuple[float, ...] | None = None


def sweep_curve(result: EvalResult, layer: int | None = None, cwe: str = "all") -> SweepCurve:
    """The :class:`SweepCurve` of ``result`` at ``layer`` (default: its first layer), alphas in ascending order,
    from its rows of ``cwe`` alone (default: over all CWEs; the mean score at an alpha is the mean unsteered
    score plus the shift), so a session's recorded rows give the same curve as the evaluation that made them."""
    layer = result.settings.layers[0] if layer is None else int(layer)
    rows = {r.alpha: r for r in result.rows if r.layer == layer and r.cwe == cwe}
    alphas = tuple(sorted(float(a) for a in result.settings.alphas))
    at = [rows[a] for a in alphas]
    first = at[0]
    fixed = all(r.fix_shift is not None and r.random_fix_shift is not None for r in at)
    return SweepCurve(
        layer=layer, alphas=alphas, score=tuple(r.baseline_score + r.shift for r in at),
        random_score=tuple(r.baseline_score + r.random_shift for r in at), yes_rate=tuple(r.yes_rate for r in at),
        random_yes_rate=tuple(r.random_yes_rate for r in at), baseline_score=first.baseline_score,
        baseline_yes_rate=first.baseline_yes_rate, n=first.n, cwe=cwe,
        fix=tuple(r.fix_shift for r in at) if fixed else None,
        random_fix=tuple(r.random_fix_shift for r in at) if fixed else None)


@dataclass(frozen=True)
class AlphaSweep:
    """A held-out evaluation of one layer over several alphas, and its verdict-against-alpha curve."""

    result: EvalResult
    curve: SweepCurve


def alpha_sweep(model: "LoadedModel", pairs: Sequence["Pair"], layer: int, alphas: Sequence[float], method: str,
                *, given: "tuple[str, dict[int, torch.Tensor]] | None" = None,
                together: dict[int, float] | None = None,
                progress: Callable[[str, int, int], None] | None = None, cancel: Cancel | None = None) -> AlphaSweep:
    """The held-out evaluation of ``e`` (:func:`layer_eval_settings`: folds by pair, vectors rebuilt per fold,
    or ``given``: a vector's name and its layers, steered in every fold) at every alpha of ``alphas``, with its
    :class:`SweepCurve`; with ``together`` (layer -> weight in residual norms), of those layers at once, each
    alpha a multiplier of the weights (the curve is filed under the first layer)."""
    from steertui.engine.evaluate import evaluate

    name, vectors = given if given is not None else (None, None)
    settings = sweep_eval_settings(layer, alphas, method, name, together)
    result = evaluate(model, pairs, settings, vectors=vectors, progress=progress, cancel=cancel)
    return AlphaSweep(result, sweep_curve(result, settings.layers[0]))


# ---- the layer × alpha grid --------------------------------------------------------------------------------------
def grid_eval_settings(layers: Iterable[int], alphas: Sequence[float], method: str,
                       vector: str | None = None) -> EvalSettings:
    """The settings of :func:`layer_eval_settings` for every layer of ``layers`` at ``alphas`` measured in each
    layer's mean residual norm (``alpha_scale="residual"``, as the console's ``+``/``-`` step), so that one alpha
    means the same push at every layer; each fold applies its own coefficient (``EvalRow.raw_alpha``). Layers and
    alphas are taken once each, in ascending order."""
    return dataclasses.replace(layer_eval_settings(0, 0.0, method, vector),
                               layers=tuple(sorted({int(x) for x in layers})),
                               alphas=tuple(sorted({float(a) for a in alphas})), alpha_scale="residual")


@dataclass(frozen=True)
class LayerAlphaGrid:
    """A held-out evaluation over layers × alphas (residual units), read as a grid: each cell is the row of
    the held-out files of one CWE (``all``: every file) at one layer and alpha: the verdict-score shift against
    the random control's, flip rates, accuracy, yes-rate and KL."""

    result: EvalResult
    layers: tuple[int, ...]  # ascending
    alphas: tuple[float, ...]  # ascending, residual units
    cells: Mapping[tuple[int, float], EvalRow]
    cwe: str = "all"
    # per direction (up, down): the grid searched without picking on the files it is scored on
    # (engine.evaluate.Picked); empty when the result has fewer than 2 folds or steered cells
    picks: Mapping[str, Picked] = dataclasses.field(default_factory=dict)

    def cell(self, layer: int, alpha: float) -> EvalRow:
        return self.cells[(int(layer), float(alpha))]

    def pick_row(self, direction: str) -> EvalRow | None:
        """The picked cells' row of this grid's CWE (None without picks)."""
        pick = self.picks.get(direction)
        return None if pick is None else next((r for r in pick.rows if r.cwe == self.cwe), None)

    def best(self, direction: str) -> tuple[int, float, float] | None:
        """(layer, alpha, shift beyond the control) of this grid's best cell in ``direction`` (alpha ≠ 0), read
        off the grid: picked on the very files it reports, so optimistic."""
        sign = 1.0 if direction == "up" else -1.0
        cells = [(-sign * (c.shift - c.random_shift), abs(a), L, a, c.shift - c.random_shift)
                 for (L, a), c in self.cells.items() if a != 0 and not math.isnan(c.shift - c.random_shift)]
        if not cells:
            return None
        _, _, L, a, excess = min(cells)
        return L, a, excess

    @property
    def n(self) -> int:
        """Held-out files in every cell (every file is held out once: the same n in every cell)."""
        return next(iter(self.cells.values())).n if self.cells else 0


@dataclass(frozen=True)
class HeldOutFile:
    """One held-out file of an evaluation at one cell (layer, alpha): its verdict score unsteered, steered and
    with the random control (the mean over the controls), against its fold's threshold. From the per-file
    records (``EvalResult.files``) alone; a cell's row is the mean of these over its files."""

    id: str
    pair: str
    cwe: str
    label: int  # 1 vulnerable, 0 patched (the dataset's label)
    fold: int
    threshold: float
    baseline: float
    steered: float
    random: float  # the mean over the random controls
    random_flips: int  # how many of the controls changed its verdict
    controls: int
    kl: float | None  # the patched file's KL(steered ‖ plain) read as code; None for a vulnerable file
    direct: float | None = None  # with the evaluation's attribution: the shift's direct part; else None
    through: float | None = None  # and the later layers' part
    # with the evaluation's fix_site, on a vulnerable file: its pair's fix-site preference shift with the vector
    # and the random controls' (their mean), nats; else None
    fix_shift: float | None = None
    random_fix_shift: float | None = None

    @property
    def shift(self) -> float:
        return self.steered - self.baseline

    @property
    def random_shift(self) -> float:
        return self.random - self.baseline

    @property
    def yes_before(self) -> bool:
        return self.baseline > self.threshold

    @property
    def yes_after(self) -> bool:
        return self.steered > self.threshold

    @property
    def flipped(self) -> bool:
        return self.yes_before != self.yes_after


def held_out_files(result: EvalResult, layer: int, alpha: float, cwe: str = "all") -> list[HeldOutFile]:
    """The held-out files of ``cwe`` (``all``: every file) at the cell (``layer``, ``alpha``), the files whose
    verdict the vector flipped first, then by how far the vector moved the score beyond the control (largest
    first). Empty when the result carries no per-file records (a session written before it kept them)."""
    out = []
    for f in result.files:
        if cwe != "all" and f["cwe"] != cwe:
            continue
        x = next((x for x in f["steered"] if x["layer"] == layer and x["alpha"] == alpha), None)
        if x is None:
            continue
        controls = control_scores(x)
        t, base = f["threshold"], f["baseline_score"]
        fix = rfix = None
        if x.get("fix") is not None:
            fix = x["fix"] - f["fix_baseline"]
            rfix = math.fsum(r - f["fix_baseline"] for r in x["random_fix"]) / len(x["random_fix"])
        out.append(HeldOutFile(f["id"], f["pair"], f["cwe"], int(f["label"]), int(f["fold"]), t, base, x["score"],
                               math.fsum(controls) / len(controls),
                               sum((c > t) != (base > t) for c in controls), len(controls), x["kl"],
                               x.get("direct"), x.get("through"), fix, rfix))
    return sorted(out, key=lambda h: (not h.flipped, -abs(h.shift - h.random_shift), h.id))


def eval_cwes(result: EvalResult) -> tuple[str, ...]:
    """The CWEs an evaluation's grid or sweep can show, in the order ``f`` cycles them: ``all``, then each CWE
    with rows."""
    return ("all",) + tuple(sorted({r.cwe for r in result.rows} - {"all"}))


def next_cwe(result: EvalResult, cwe: str) -> str:
    """The CWE after ``cwe`` in :func:`eval_cwes` (after the last: ``all``)."""
    cwes = eval_cwes(result)
    return cwes[(cwes.index(cwe) + 1) % len(cwes)] if cwe in cwes else "all"


def spans_grid(settings: EvalSettings) -> bool:
    """Whether an evaluation is read as a layer × alpha grid: several layers, each alone, and several alphas."""
    return len(settings.layers) > 1 and len(settings.alphas) > 1 and settings.together is None


def spans_sweep(settings: EvalSettings) -> bool:
    """Whether an evaluation is read as an alpha sweep: one layer (or several at once) at more alphas than `e`'s
    −a, 0, +a."""
    return (len(settings.layers) == 1 or settings.together is not None) and len(settings.alphas) > 3


def steered_layers(settings: EvalSettings, layer: int) -> str:
    """What a row filed under ``layer`` steered: that layer, or with ``together`` every layer (``1+2``)."""
    return str(layer) if settings.together is None else "+".join(map(str, settings.layers))


def together_eval_settings(weights: dict[int, float], method: str, vector: str | None = None) -> EvalSettings:
    """The held-out evaluation of several layers steered at once, as the console's pinned layers are: layer L at
    alpha × ``weights[L]`` residual norms, alpha −1, 0 and +1 (the steering as it is, none, and its opposite);
    otherwise :func:`layer_eval_settings`."""
    layers = tuple(sorted(weights))
    return dataclasses.replace(layer_eval_settings(layers[0], 1.0, method, vector), layers=layers,
                               together=tuple(float(weights[L]) for L in layers), alpha_scale="residual")


CONTROL_SE = 2.0  # a shift beyond the control's counts when it exceeds this many standard errors


def beyond_control(row: EvalRow) -> str:
    """The shift beyond the random control's with ``CONTROL_SE`` standard errors: ``+0.90±0.21``; ``±?`` where
    the standard error is not known."""
    return _excess_text(row.shift, row.random_shift, row.excess_se)


def _excess_text(shift: float, control: float, se: float | None) -> str:
    """``shift`` beyond ``control`` with ``CONTROL_SE`` standard errors (``±?`` where ``se`` is unknown)."""
    spread = f"±{CONTROL_SE * se:.2f}" if se is not None and math.isfinite(se) else "±?"
    return f"{shift - control:+.2f}{spread}"


def fix_beyond_control(row: EvalRow) -> str:
    """The fix-site preference's shift beyond the random controls' with ``CONTROL_SE`` standard errors, in nats
    (``+2.41±1.20``; positive: towards writing the fix); ``-`` for a row without fix-site scores."""
    if row.fix_shift is None or row.random_fix_shift is None:
        return "-"
    return _excess_text(row.fix_shift, row.random_fix_shift, row.fix_excess_se)


def fix_within_control(row: EvalRow) -> bool:
    """The fix-site shift beyond the controls' is within ``CONTROL_SE`` standard errors of zero (or unknown)."""
    se = row.fix_excess_se
    if row.fix_shift is None or row.random_fix_shift is None or se is None or not math.isfinite(se):
        return True
    return abs(row.fix_shift - row.random_fix_shift) <= CONTROL_SE * se


def pick_text(grid: LayerAlphaGrid) -> str:
    """The grid searched honestly, in one line: per direction the shift beyond the random control (±2 SE) when
    each fold steers with the cell that did best on the other folds (and which cells those were), against the
    grid's best cell read off the grid (picked on the files it reports: optimistic). Empty without picks."""
    parts = []
    for direction, arrow in zip(PICK_DIRECTIONS, "↑↓"):
        row, best = grid.pick_row(direction), grid.best(direction)
        if row is None or best is None:
            continue
        cells = sorted({(c.alpha, c.layer) for c in grid.picks[direction].folds})
        alphas = sorted({a for a, _ in cells})
        name = grid.result.settings  # several layers steered at once are named together: L1+2
        where = (f"L{','.join(steered_layers(name, L) for _, L in cells)} α{alphas[0]:+.2f}" if len(alphas) == 1
                 else ", ".join(f"L{steered_layers(name, L)} α{a:+.2f}" for a, L in cells))
        parts.append(f"{arrow} {beyond_control(row)} [{where}] vs grid's best {best[2]:+.2f}")
    if parts:
        return "cell picked on the other folds, beyond rand: " + " · ".join(parts)
    steered = {key for key in grid.cells if key[1] != 0}
    if not grid.result.files and len(steered) >= 2:  # a session written before it recorded the file records
        return ("cell picked on the other folds: not shown, it needs the per-file records, which this session was "
                "written without (x or a re-runs it)")
    return ""


def random_kl_text(row: EvalRow, controls: int) -> str:
    """The random control's KL in words: the first control's, and with several controls the largest mean KL of
    any of them (``up to``), where recorded."""
    more = (f", up to {row.random_kl_max:.3f} of {controls}" if controls > 1 and not math.isnan(row.random_kl_max)
            else "")
    return f"rand {row.random_kl:.3f}{more}"


def within_control(row: EvalRow) -> bool:
    """A shift that means nothing, shown dim: the vector moved the verdict no more than a random vector of equal
    norm did (|shift| ≤ |random|, or than the random control that moved it most when there are several), or its
    shift beyond the random one is within ``CONTROL_SE`` standard errors (over pairs) of zero. Where the standard
    error is not known (fewer than 2 pairs, an older session), the first rule alone."""
    se, most = row.excess_se, row.random_shift_max
    control = max(abs(row.random_shift), abs(most) if math.isfinite(most) else 0.0)
    return abs(row.shift) <= control or (math.isfinite(se) and abs(row.shift - row.random_shift) <= CONTROL_SE * se)


def layer_alpha_grid(result: EvalResult, cwe: str = "all",
                     picks: Mapping[str, Picked] | None = None) -> LayerAlphaGrid:
    """The :class:`LayerAlphaGrid` of ``result``: its rows of ``cwe`` (default: over all CWEs), by layer and
    alpha, with ``picks`` (default: :func:`grid_picks` of ``result``, which do not depend on ``cwe``: another
    CWE's grid of the same result passes its picks on)."""
    cells = {(r.layer, float(r.alpha)): r for r in result.rows if r.cwe == cwe}
    return LayerAlphaGrid(result, tuple(sorted(set(result.settings.layers))),
                          tuple(sorted(float(a) for a in set(result.settings.alphas))), cells, cwe,
                          grid_picks(result) if picks is None else picks)


def grid_picks(result: EvalResult, max_kl: float | None = None) -> dict[str, Picked]:
    """:func:`~steertui.engine.evaluate.pick_on_other_folds` in both directions, from ``result``'s per-file
    records (no forward); empty when there is nothing to pick (fewer than 2 folds or steered cells)."""
    folds = {f["fold"] for f in result.files}
    cells = {(x["layer"], x["alpha"]) for f in result.files for x in f["steered"] if x["alpha"] != 0}
    if len(folds) < 2 or len(cells) < 2:
        return {}
    cwes = [r.cwe for r in result.rows if r.layer == result.rows[0].layer and r.alpha == result.rows[0].alpha
            and r.cwe != "all"]
    return {d: pick_on_other_folds(result.files, d, max_kl, cwes) for d in PICK_DIRECTIONS}


def layer_grid(model: "LoadedModel", pairs: Sequence["Pair"], layers: Iterable[int], alphas: Sequence[float],
               method: str, *, given: "tuple[str, dict[int, torch.Tensor]] | None" = None,
               progress: Callable[[str, int, int], None] | None = None,
               cancel: Cancel | None = None) -> LayerAlphaGrid:
    """The held-out evaluation of :func:`grid_eval_settings` (every layer of ``layers`` at ``alphas`` in residual
    units, vectors rebuilt per fold with ``method``, or ``given`` as in :func:`alpha_sweep`), as a
    :class:`LayerAlphaGrid`."""
    from steertui.engine.evaluate import evaluate

    name, vectors = given if given is not None else (None, None)
    return layer_alpha_grid(evaluate(model, pairs, grid_eval_settings(layers, alphas, method, name),
                                     vectors=vectors, progress=progress, cancel=cancel))
