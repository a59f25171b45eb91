"""The operations of :mod:`steertui.engine.ops` run through a :class:`SessionRecorder`: each returns the same
result as its headless twin and records its parts as the session's steps (next tokens: a ``top_tokens`` and a
``lens`` step; a fix-site continuation: a ``generate`` step), so a replay re-runs them part by part.

``steering`` given: it becomes the session's current steering first; left out, the current steering applies.
The recorder's lock is held for the whole operation, so no other step lands between its parts. When a save
fails, the remaining parts still run and record, autosave stops, and the :class:`SessionSaveError` is raised
once at the end with the whole operation's result in ``result``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

from steertui.engine import ops as engine
from steertui.engine.gendiff import fix_site_prompt
from steertui.engine.session.store import SessionSaveError

if TYPE_CHECKING:  # pragma: no cover
    from steertui.engine.data import Pair
    from steertui.engine.session.recorder import SessionRecorder


class _Parts:
    """Runs an operation's recorded parts; keeps the first failed save and each part's result."""

    def __init__(self, rec: "SessionRecorder") -> None:
        self.rec = rec
        self.error: SessionSaveError | None = None

    def __call__(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except SessionSaveError as err:  # the part ran and is recorded; only writing the file failed
            self.rec.autosave = False
            self.error = self.error or err
            return err.result

    def done(self, result: Any) -> Any:
        if self.error is not None:
            self.error.result = result
            raise self.error
        return result


@contextmanager
def _operation(rec: "SessionRecorder", steering: Iterable[Any] | None) -> Iterator[_Parts]:
    with rec.lock:
        part = _Parts(rec)
        if steering is not None:
            part(rec.set_steering, steering)
        yield part


def next_tokens(rec: "SessionRecorder", pair_or_prompt: "Pair | str", *, steering: Iterable[Any] | None = None,
                k: int = engine.TOP_K, lens_k: int = engine.LENS_K, target: int | str | None = engine.LENS_TARGET,
                window: int = engine.LENS_WINDOW, attribution: bool = False, shots: "Pair | None" = None,
                cancel=None) -> engine.NextTokens:
    """:func:`steertui.engine.ops.next_tokens` on the recorder's model, recorded (the attribution is not a step:
    it follows from the recorded prompt and steering; the prompt, the few-shot examples ``shots`` included, is
    recorded as it is)."""
    from steertui.engine.lens import resolve_target

    resolve_target(rec.model, target)
    with _operation(rec, steering) as part:
        prompt = engine.verdict_prompt(rec.model, pair_or_prompt, shots)
        top = part(rec.top_tokens, [prompt.text], k=k, cancel=cancel)
        lens = part(rec.lens, prompt.text, k=lens_k, target=target, positions=engine.lens_window(window),
                    cancel=cancel)
        split = engine.attribution_of(rec.model, prompt, rec.steers(), attribution, cancel)
        return part.done(engine.NextTokens.of(rec.model, prompt, top, lens, split))


def fix_site_continuation(rec: "SessionRecorder", pair: "Pair", *, steering: Iterable[Any] | None = None,
                          max_new_tokens: int = engine.NEW_TOKENS, cancel=None,
                          progress: Callable[[str, int, int], None] | None = None) -> engine.Continuation:
    """:func:`steertui.engine.ops.fix_site_continuation` on the recorder's model, recorded."""
    with _operation(rec, steering) as part:
        prompt = fix_site_prompt(rec.model, pair, max_new_tokens)
        diff = part(rec.generate, [prompt.text], max_new_tokens=max_new_tokens, cancel=cancel, progress=progress)
        # the token-by-token reading is not a step: it is a function of the recorded ids and steering
        steps = engine.Continuation.of(rec.model, prompt, diff, rec.steers(), pair=pair, cancel=cancel,
                                       progress=progress)
        return part.done(steps)


def alpha_sweep(rec: "SessionRecorder", pairs: "Sequence[Pair]", layer: int, alphas: "Sequence[float]", method: str,
                *, vector: str | None = None, together: dict[int, float] | None = None,
                progress: Callable[[str, int, int], None] | None = None, cancel=None,
                **options: Any) -> engine.AlphaSweep:
    """:func:`steertui.engine.ops.alpha_sweep` on the recorder's model, recorded as one ``evaluate`` step over
    all its alphas (the step holds every file's score at every alpha: the curve is recomputed from it);
    ``vector``: the session's vector of that name steered in every fold instead of one built per fold;
    ``together``: those layers at once (layer -> weight in residual norms, alphas their multipliers);
    ``options``: further ``EvalSettings`` fields (``attribution``, ``fix_site``, ``per_cwe``, ``shot_pairs``: the
    console's toggles)."""
    import dataclasses

    settings = dataclasses.replace(engine.sweep_eval_settings(layer, alphas, method, vector, together), **options)
    with _operation(rec, None) as part:
        result = part(rec.evaluate, pairs, settings, progress=progress, cancel=cancel)
        return part.done(engine.AlphaSweep(result, engine.sweep_curve(result, settings.layers[0])))


def layer_grid(rec: "SessionRecorder", pairs: "Sequence[Pair]", layers: "Iterable[int]", alphas: "Sequence[float]",
               method: str, *, vector: str | None = None, progress: Callable[[str, int, int], None] | None = None,
               cancel=None, **options: Any) -> engine.LayerAlphaGrid:
    """:func:`steertui.engine.ops.layer_grid` on the recorder's model, recorded as one ``evaluate`` step over all
    its layers and alphas (the grid is read from the step's rows); ``vector`` and ``options`` as in
    :func:`alpha_sweep`."""
    import dataclasses

    settings = dataclasses.replace(engine.grid_eval_settings(layers, alphas, method, vector), **options)
    with _operation(rec, None) as part:
        result = part(rec.evaluate, pairs, settings, progress=progress, cancel=cancel)
        return part.done(engine.layer_alpha_grid(result))


def confirm_best_cells(rec: "SessionRecorder", search: Any, search_pairs: "Sequence[Pair]", pairs: "Sequence[Pair]",
                       *, max_kl: float | None = None, progress: Callable[[str, int, int], None] | None = None,
                       cancel=None) -> dict[str, Any]:
    """:func:`steertui.engine.evaluate.confirm_best_cells` on the recorder's model, recorded: the vector built on
    the searched pairs as a ``build_vectors`` step (or the search's own session vector, when it evaluated one as
    given), and each confirmation as an ``evaluate`` step of that vector as given."""
    from steertui.engine.evaluate import confirm_best_cells as confirm

    s = search.settings

    def build(searched: "Sequence[Pair]", layers: list[int], settings: Any) -> tuple[str, dict[int, Any]]:
        name = rec.free_name("searched")
        part(rec.build_vectors, searched, name=name, layers=layers, method=settings.method, readout=settings.readout,
             split="the searched pairs, to confirm their best cell elsewhere", seed=settings.seed,
             chunk_size=settings.chunk_size, cancel=cancel)
        return name, rec.vectors[name]

    def evaluate_with(confirm_pairs: "Sequence[Pair]", settings: Any, _vectors: dict[int, Any]) -> Any:
        return part(rec.evaluate, confirm_pairs, settings, progress=progress, cancel=cancel)

    with _operation(rec, None) as part:
        given = rec.vectors[s.vector] if s.vector is not None else None
        return part.done(confirm(rec.model, search, search_pairs, pairs, vectors=given, max_kl=max_kl,
                                 build=build, evaluate_with=evaluate_with))
