"""Open a saved session to continue it: the recorder, one line per recorded step, the last vectors built or
imported in it with their recorded diagnostics, its last evaluation as recorded, and the layer report of its
model (one real forward). Nothing is re-run."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from steertui.engine.session import schema as S
from steertui.engine.session.recorder import SessionRecorder
from steertui.engine.session.replay import summarize
from steertui.engine.vectors import GIVEN, SteeringVectors

if TYPE_CHECKING:  # pragma: no cover
    from steertui.engine.layers import LayersReport


@dataclass(frozen=True)
class ResumedSession:
    recorder: SessionRecorder
    steps: list[str]  # "i. kind: summary" per recorded step
    vectors: SteeringVectors | None  # the last vectors built or imported in the session, as recorded; None: none
    layers: "LayersReport"
    evaluation: Any = None  # engine.evaluate.EvalResult of the last evaluate step, from its record; None: none
    continuation: Any = None  # engine.ops.Continuation of the last generate step, from its record; None: none
    # the loaded pair the session worked on last: that of its last next tokens (`t`) or continuation; None: none
    pair_id: str | None = None


def _row(fields: dict[str, Any]) -> dict[str, Any]:
    return {**fields, "raw_alpha": tuple(fields["raw_alpha"])} if "raw_alpha" in fields else fields


def recorded_evaluation(doc: Any, step: Any) -> Any:
    """An ``evaluate`` step's record as an ``engine.evaluate.EvalResult``: its settings, answer tokens, folds and
    rows and per-file records as recorded. In a file written before they were recorded (``schema.LATER_OUTPUTS``)
    the per-file records are empty, and each row's per-fold coefficient (``raw_alpha``: empty), answer mass, mean
    unsteered score and random yes-rate are NaN; ``replay --check`` recomputes them all."""
    from steertui.engine.evaluate import EvalResult, EvalRow
    from steertui.engine.session.ops import eval_settings, files_from_records
    from steertui.engine.verdict import TEMPLATE, AnswerTokens

    i, o = step.inputs, step.outputs
    source = doc.data.label if doc.data is not None else ""
    return EvalResult(source, doc.model.name, eval_settings(i), AnswerTokens(i.yes, i.no, o.yes_id, o.no_id),
                      [EvalRow(**_row(r.model_dump(exclude_none=True))) for r in o.rows],
                      [f.model_dump() for f in o.folds],
                      list(o.truncated), TEMPLATE, files_from_records(i, o))


def recorded_continuation(rec: SessionRecorder, step: Any) -> Any:
    """A ``generate`` step's record as an ``engine.ops.Continuation``, or None when its prompt is not the fix-site
    prompt of a pair of the loaded data (a generation the console did not make) or it has not one row.

    Its tokens, texts and log-probs are the recorded ones (not re-run); each token's text comes from the
    tokenizer, the token diff from the ids, and the reading of every token by both runs through every layer
    (:func:`gendiff.continuation_lens`: two forwards, of the recorded tokens) from the recorded steering. A
    session does not record whether a teacher-forced pass reproduced each greedy token: the reading answers it
    (each side's token ranks first in its own run)."""
    import dataclasses

    from steertui.engine import gendiff, ops
    from steertui.engine.fixsite import fix_site_preference
    from steertui.engine.lens import TokenDecoder

    i, o = step.inputs, step.outputs
    if rec.dataset is None or len(i.prompts) != 1 or len(o.rows) != 1:
        return None
    model = rec.model
    last_line = i.prompts[0].rsplit("\n", 1)[-1]  # only pairs whose vulnerable file has it are worth the tokenizer
    found = next(((p, pair) for p, pair in ((_fix_site(model, pair, i.max_new_tokens), pair)
                                            for pair in rec.dataset.pairs if last_line in pair.vulnerable.code)
                  if p is not None and p.text == i.prompts[0]), None)
    if found is None:
        return None
    prompt, pair = found
    dec, eos, row = TokenDecoder(model.tokenizer), model.tokenizer.eos_token_id, o.rows[0]

    def side(ids: list[int], text: str, logprobs: list[float]) -> gendiff.GenSide:
        return gendiff.GenSide(tuple(ids), tuple(dec(t) for t in ids), tuple(logprobs), text,
                               gendiff.stopped_at_eos(ids, eos, i.stop_at_eos), True)

    base = side(row.baseline_ids, row.baseline_text, row.baseline_logprobs)
    steered = side(row.steered_ids, row.steered_text, row.steered_logprobs)
    diff_ops, first = gendiff.token_diff(base.ids, steered.ids, dec)
    steers = rec.steers(i.steers)
    diff = gendiff.GenDiffResult((gendiff.GenDiffRow(i.prompts[0], base, steered, diff_ops, first),),
                                 i.max_new_tokens, i.stop_at_eos, tuple(s.describe() for s in steers))
    reading = gendiff.continuation_lens(model, prompt.text, diff.rows[0], steers, k=ops.CONTINUATION_K)
    checked = []
    for run, (s, read) in enumerate(((base, reading.baseline), (steered, reading.steered))):
        wrong = next((j for j, st in enumerate(read) if st.rank[run] != 1), None)
        checked.append(dataclasses.replace(s, consistent=wrong is None, first_inconsistent=wrong))
    row = dataclasses.replace(diff.rows[0], baseline=checked[0], steered=checked[1])
    return ops.Continuation(prompt, dataclasses.replace(diff, rows=(row,)), reading,
                            fix_site_preference(model, pair, steers))


def verdict_pair(rec: SessionRecorder, prompt: str) -> Any:
    """The loaded pair whose verdict prompt (``engine.ops.verdict_prompt``: its vulnerable file, cut to the
    context, zero-shot or after its CWE's few-shot example pair) is ``prompt``, or None. Only pairs whose CWE the
    question names and whose vulnerable file holds the first line after any few-shot examples are tokenized."""
    from steertui.engine import ops
    from steertui.engine.verdict import shot_prefix

    if rec.dataset is None:
        return None
    for pair in rec.dataset.pairs:
        if pair.vulnerable.cwe_name not in prompt:
            continue
        example = ops.few_shot_example(rec.dataset, pair.cwe)
        for shots in (None, example) if example is not None else (None,):
            prefix = shot_prefix(shots) if shots is not None else ""
            if not prompt.startswith(prefix):
                continue
            first = prompt[len(prefix):].split("\n", 1)[0]
            if first in pair.vulnerable.code and ops.verdict_prompt(rec.model, pair, shots).text == prompt:
                return pair
    return None


def last_pair(rec: SessionRecorder, continuation: Any) -> str | None:
    """The id of the loaded pair of the session's last next tokens (a ``top_tokens`` step of one verdict prompt
    followed by the ``lens`` step of the same prompt, as ``t`` records them) or of its last continuation
    (``continuation``, from the last ``generate`` step), whichever is later; None when neither names one."""
    steps = rec.steps
    tokens = next((i for i in range(len(steps) - 2, -1, -1) if steps[i].kind == "top_tokens"
                   and len(steps[i].inputs.prompts) == 1 and steps[i + 1].kind == "lens"
                   and steps[i + 1].inputs.prompt == steps[i].inputs.prompts[0]), None)
    gen = next((i for i in range(len(steps) - 1, -1, -1) if steps[i].kind == "generate"), None)
    if continuation is not None and (tokens is None or gen > tokens):
        return continuation.prompt.pair_id
    pair = verdict_pair(rec, steps[tokens].inputs.prompts[0]) if tokens is not None else None
    return pair.id if pair is not None else (continuation.prompt.pair_id if continuation is not None else None)


def _fix_site(model: Any, pair: Any, new_tokens: int) -> Any:
    """The pair's fix-site prompt, or None for a pair that has none."""
    from steertui.engine.gendiff import GenDiffError, fix_site_prompt

    try:
        return fix_site_prompt(model, pair, new_tokens)
    except GenDiffError:
        return None


def resume(path: str | os.PathLike[str], *, model: str | None = None, dataset_path: str | None = None,
           device: str | None = None, dtype: str | None = None) -> ResumedSession:
    """Check and open ``path`` exactly as :meth:`SessionRecorder.open` does (``model``, ``dataset_path``,
    ``device``, ``dtype``: overrides; a file another process is writing opens read-only), summarise its steps
    and probe its model's layers."""
    from steertui.engine.layers import probe_layers

    rec = SessionRecorder.open(path, model=model, dataset_path=dataset_path, device=device, dtype=dtype,
                               read_only_if_locked=True)  # another process writes it: a view that never saves
    steps = [f"{i}. {st.kind}: {summarize(st.kind, st.outputs, st.inputs)}" for i, st in enumerate(rec.steps)]
    builds = [st for st in rec.steps if st.kind in S.VECTOR_STEPS and st.inputs.vector in rec.vectors]
    vectors = None
    if builds:
        last = builds[-1]
        imported = last.kind == "import_vectors"
        vectors = SteeringVectors(last.inputs.vector, GIVEN if imported else last.inputs.method,
                                  list(last.outputs.diagnostics), rec.vectors[last.inputs.vector],
                                  {c.layer: c for c in last.outputs.cwe_directions},
                                  tuple(last.inputs.left_out) if imported else ())
    evals = [st for st in rec.steps if st.kind == "evaluate"]
    evaluation = recorded_evaluation(rec.doc, evals[-1]) if evals else None
    gens = [st for st in rec.steps if st.kind == "generate"]
    continuation = recorded_continuation(rec, gens[-1]) if gens else None
    return ResumedSession(rec, steps, vectors, probe_layers(rec.model), evaluation, continuation,
                          last_pair(rec, continuation))
