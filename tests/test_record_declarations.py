"""Each record the engine computes and a session stores is declared on both sides field for field: adding a field
to one side only fails here, as does a default or a choice that differs."""

from __future__ import annotations

import dataclasses
import inspect
import typing

from steertui.engine import choices
from steertui.engine.build import build_vectors
from steertui.engine.evaluate import EvalRow, EvalSettings
from steertui.engine.session import schema as S
from steertui.engine.session.ops import eval_settings, evaluate_inputs
from steertui.engine.session.recorder import SessionRecorder
from steertui.engine.vectors import LayerDiagnostics


def _fields(dc) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(dc)}


def _default(f: dataclasses.Field):
    return f.default if f.default is not dataclasses.MISSING else None


def test_evaluate_inputs_are_the_pairs_and_the_eval_settings():
    engine = _fields(EvalSettings)
    assert set(S.EvaluateInputs.model_fields) - {"pair_ids"} == set(engine)
    for name, f in engine.items():
        if f.default is not dataclasses.MISSING:  # a tuple of the engine is a list in the record
            want = list(f.default) if isinstance(f.default, tuple) else f.default
            assert S.EvaluateInputs.model_fields[name].get_default(call_default_factory=True) == want, name
    # a round trip through the record keeps every setting, whatever its value
    settings = EvalSettings(layers=(1, 3), alphas=(-2.0, 0.0, 2.0), method="probe", readout="mean", split="cwe",
                            seed=7, folds=4, chunk_size=3, kl_tokens=9, yes=" yes", no=" no", alpha_scale="residual",
                            controls=2, attribution=True, fix_site=True, per_cwe=True, shot_pairs=("x", "y"))
    inputs = evaluate_inputs(["a", "b"], settings)
    assert inputs.pair_ids == ["a", "b"] and eval_settings(inputs) == settings


def test_eval_rows_are_recorded_field_for_field():
    assert set(S.EvalRowRec.model_fields) == set(_fields(EvalRow))
    # the fields added after files were written without them are optional in the record, and named as such
    later = {k.removeprefix("rows[].") for k in S.LATER_OUTPUTS["evaluate"] if k.startswith("rows[].")}
    optional = {k for k, f in S.EvalRowRec.model_fields.items() if not f.is_required()}
    assert later == optional and all(S.EvalRowRec.model_fields[k].default is None for k in later)
    # the later outputs of a step itself are optional there (an empty list when not recorded)
    for kind, outputs in (("evaluate", S.EvaluateOutputs), ("build_vectors", S.BuildVectorsOutputs)):
        keys = [k for k in S.LATER_OUTPUTS[kind] if not k.startswith("rows[].")]
        assert keys and all(not outputs.model_fields[k].is_required() for k in keys), kind
        assert all(outputs.model_fields[k].default_factory() == [] for k in keys), kind


def test_diagnostics_are_recorded_field_for_field():
    assert set(S.DiagnosticsRec.model_fields) == set(_fields(LayerDiagnostics))


def test_cwe_directions_are_recorded_field_for_field():
    from steertui.engine.build import CweDirections

    assert set(S.CweDirectionsRec.model_fields) == set(_fields(CweDirections))
    c = CweDirections(2, ("cwe-22", "cwe-79"), (2, 1), ((1.0, -0.25), (-0.25, 1.0)), (0.5, -0.125), 0.0625)
    assert S.CweDirectionsRec(**c.to_dict()).model_dump() == c.to_dict()


def test_build_recipe_is_build_vectors_keywords_in_the_engine_and_the_recorder():
    recipe = set(S.BuildVectorsInputs.model_fields) - {"vector", "pair_ids"}
    not_recipe = {"model", "pairs", "progress", "cancel", "source"}  # the model, the data, the job; the label
    engine = inspect.signature(build_vectors).parameters
    assert set(engine) - not_recipe == recipe
    recorder = inspect.signature(SessionRecorder.build_vectors).parameters
    assert set(recorder) - {"self", "pairs", "name", "progress", "cancel"} == recipe
    for name in recipe - {"layers"}:  # layers: None (every layer) in both functions, recorded as the list
        want = S.BuildVectorsInputs.model_fields[name].default
        assert engine[name].default == want and recorder[name].default == want, name
    assert engine["layers"].default is None and recorder["layers"].default is None


def test_the_schemas_choices_are_the_engines():
    def literal(tp):
        return set(typing.get_args(tp))

    assert literal(S.Method) == set(choices.METHODS)
    assert literal(S.Readout) == set(choices.READOUTS)
    assert literal(S.Positions) == set(choices.POSITIONS)
    assert literal(S.EvaluateInputs.model_fields["split"].annotation) == set(choices.SPLITS)
    assert literal(S.EvaluateInputs.model_fields["alpha_scale"].annotation) == set(choices.ALPHA_SCALES)
