"""Operations for a front end: each combines the engine functions one user action needs and returns one result.

The console runs each of its jobs as one of these, or as its recorded twin in
:mod:`steertui.engine.session.recorded` (the same result, its parts recorded as session steps), and only shows
the result. Importing this module imports neither torch nor Textual.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from steertui.engine import gendiff, verdict
from steertui.engine.evaluate import EvalSettings
from steertui.engine.lens import LensDiff, LensResult, lens_diff, logit_lens

if TYPE_CHECKING:  # pragma: no cover
    from steertui.engine.data import Pair
    from steertui.engine.layers import LayersReport
    from steertui.engine.model import ModelSession
    from steertui.engine.steering import Steer

TOP_K = 10  # next tokens listed on each side
LENS_K = 5  # lens tokens kept per layer and side
LENS_TARGET = " Yes"  # the token whose probability the lens follows: the verdict's first answer
LENS_WINDOW = 16  # the verdict prompt's last positions the lens grid decodes
NEW_TOKENS = 32  # continuation length on each side
EVAL_FOLDS = 3  # folds by pair of the one-layer evaluation


# ---- loading ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadedModel:
    """A loaded model and the layer report of one real forward on it."""

    session: "ModelSession"
    layers: "LayersReport"


def load_model(spec: str | None = None, *, device: str | None = None, dtype: str | None = None) -> LoadedModel:
    """Load a model (a folder, a cached hub id, or the demo model when None) and probe its layers."""
    from steertui.engine.layers import probe_layers
    from steertui.engine.model import ModelSession

    session = ModelSession.load(spec, device=device, dtype=dtype)
    return LoadedModel(session, probe_layers(session))


# ---- next tokens at the verdict slot -----------------------------------------------------------------------------
def verdict_prompt(session: "ModelSession", pair_or_prompt: "Pair | str") -> verdict.VerdictPrompt:
    """The verdict prompt of a pair's vulnerable file (cut to the pair's window when it is longer than the
    context), or a prompt given as text, taken as it is."""
    if isinstance(pair_or_prompt, str):
        return verdict.VerdictPrompt("", pair_or_prompt, False, 0, total_lines=len(pair_or_prompt.splitlines()))
    sample = pair_or_prompt.vulnerable
    return verdict.build_prompt(session, sample.code, sample.cwe_name, sample.id, pair=pair_or_prompt)


def lens_of(session: "ModelSession", prompt: str, steers: Sequence["Steer"], *, k: int = LENS_K,
            positions: Any = None, target: int | str | None = LENS_TARGET, layers: Iterable[int] | None = None,
            cancel: threading.Event | None = None) -> LensDiff | LensResult:
    """The logit lens of ``prompt``: baseline and steered in one forward (``lens_diff``) when something is
    steered, else the plain lens (``logit_lens``), whose two sides would be the same."""
    kwargs = dict(k=k, positions=positions, target=target, layers=layers, cancel=cancel)
    if steers:
        return lens_diff(session, prompt, steers, **kwargs)
    return logit_lens(session, prompt, **kwargs)


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

    @property
    def sample_id(self) -> str:
        return self.prompt.sample_id

    @property
    def row(self) -> gendiff.TopTokensRow:
        return self.top.rows[0]

    @classmethod
    def of(cls, session: "ModelSession", prompt: verdict.VerdictPrompt, top: gendiff.TopTokensResult,
           lens_result: LensDiff | LensResult) -> "NextTokens":
        """Put the parts together; the verdict score comes from the top-token logits (no further forward)."""
        answers = verdict.answer_tokens(session)
        base, steered = top.logit_diff(answers.yes_id, answers.no_id)
        return cls(prompt, top, lens_result, answers, base, steered)


def next_tokens(session: "ModelSession", pair_or_prompt: "Pair | str", steers: Iterable["Steer"] = (), *,
                k: int = TOP_K, lens_k: int = LENS_K, target: int | str | None = LENS_TARGET,
                window: int = LENS_WINDOW, cancel: threading.Event | None = None) -> NextTokens:
    """Top ``k`` next tokens (two forwards: baseline, steered), the verdict score from the same logits, and the
    lens (one forward of both rows) over the last ``window`` positions of the verdict prompt of
    ``pair_or_prompt`` (see :func:`verdict_prompt`); the answer slot is the window's last position. The target
    is checked first, so a target that is not one token costs no forward."""
    from steertui.engine.lens import resolve_target

    steers = list(steers)
    resolve_target(session, target)
    prompt = verdict_prompt(session, pair_or_prompt)
    top = gendiff.top_tokens(session, [prompt.text], steers, k=k, cancel=cancel)
    return NextTokens.of(session, prompt, top, lens_of(session, prompt.text, steers, k=lens_k, target=target,
                                                       positions=lens_window(window), cancel=cancel))


def lens_window(window: int) -> slice:
    """The lensed positions: the last ``window`` tokens of the prompt (all of them when it is shorter)."""
    return slice(-max(1, int(window)), None)


def steers_from(steering: Sequence[dict[str, Any]], vectors: dict[int, Any]) -> list["Steer"]:
    """Interventions as the session records them (``{"vector", "layer", "alpha", "positions"}``) made into
    steers with ``vectors`` (layer -> [d_model] tensor of the named vector set), for an operation that is not
    recorded (the console's live preview)."""
    from steertui.engine.steering import Steer

    return [Steer(int(iv["layer"]), vectors[int(iv["layer"])], float(iv["alpha"]), iv.get("positions", "all"),
                  str(iv.get("vector", ""))) for iv in steering]


# ---- continuations at a pair's fix site --------------------------------------------------------------------------
@dataclass(frozen=True)
class Continuation:
    """A pair's vulnerable file up to its fix site, continued greedily without and with steering."""

    prompt: gendiff.FixSitePrompt
    diff: gendiff.GenDiffResult  # one row

    @property
    def row(self) -> gendiff.GenDiffRow:
        return self.diff.rows[0]


def fix_site_continuation(session: "ModelSession", pair: "Pair", steers: Iterable["Steer"] = (), *,
                          max_new_tokens: int = NEW_TOKENS, cancel: threading.Event | None = None,
                          progress: Callable[[str, int, int], None] | None = None) -> Continuation:
    """:func:`gendiff.fix_site_prompt` of ``pair``, continued by :func:`gendiff.generation_diff`."""
    prompt = gendiff.fix_site_prompt(session, pair, max_new_tokens)
    return Continuation(prompt, gendiff.generation_diff(session, [prompt.text], steers, max_new_tokens=max_new_tokens,
                                                        cancel=cancel, progress=progress))


# ---- the evaluation of one layer ---------------------------------------------------------------------------------
def layer_eval_settings(layer: int, alpha: float, method: str) -> EvalSettings:
    """The settings of the held-out evaluation of one steering layer at alphas −a, 0, +a (``evaluate.evaluate``,
    or a recorder's ``evaluate``): folds by pair, vectors rebuilt per fold with ``method`` at each file's last
    token, seed 0."""
    a = abs(float(alpha))
    return EvalSettings(layers=(int(layer),), alphas=(-a, 0.0, a), method=method, readout="last", split="pairs",
                        seed=0, folds=EVAL_FOLDS)

