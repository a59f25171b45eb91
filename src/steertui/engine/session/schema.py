"""The session file's schema (version 1): pydantic v2 models, unknown keys forbidden, types strict.

A session file is TOML. It records everything needed to reproduce a run and nothing that could execute:

- ``[steertui]`` — the schema version and the versions of steertui, Python, torch, transformers and nnsight;
- ``[model]`` — the model (``spec`` is ``"demo"``, a path relative to the session file, or a Hugging Face
  id), its weights' sha256, revision, dtype, device and sizes;
- ``[data]`` — the data source (kind, root, git commit) and ``files``: the sha256 of every file a step used;
- ``[[vectors]]`` — each vector's recipe (or, imported, the file it came from) and its per-layer sha256; the
  tensors live in the sidecar ``.safetensors`` file named by ``file`` (a plain file name beside the session file);
- ``[steering]`` — the interventions active when the session was last saved;
- ``[[steps]]`` — the ordered steps, each ``kind`` with its ``inputs`` and recorded ``outputs``.

TOML cannot hold None: optional keys are omitted. Everything is plain data; no torch here.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from steertui.engine.choices import ALPHA_SCALES, METHODS, POSITIONS, READOUTS, SPLITS

SCHEMA_VERSION = 1
STEP_KINDS = ("layers", "lens", "top_tokens", "generate", "evaluate", "build_vectors", "import_vectors")
VECTOR_STEPS = ("build_vectors", "import_vectors")  # the steps that add a vector to the session
UNKNOWN = "unknown"  # the method or readout of an imported vector whose file does not say

Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
VectorName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
Positions = Literal[POSITIONS]  # the engine's choices (engine.choices), declared there once
Method = Literal[METHODS]
Readout = Literal[READOUTS]
NonNegInt = Annotated[int, Field(ge=0)]
PosInt = Annotated[int, Field(ge=1)]

_LAYER_KEY = re.compile(r"^(0|[1-9][0-9]{0,5})$")


class _Model(BaseModel):
    """Base: unknown keys are errors; no coercion of strings to numbers (ints are accepted as floats)."""

    model_config = ConfigDict(extra="forbid", strict=True)


# ---- header, model, data, vectors, steering -------------------------------------------------------------
class Header(_Model):
    schema_version: int = Field(alias="schema", ge=1)
    version: str
    python: str
    torch: str
    transformers: str
    nnsight: str
    created: str
    note: str | None = None

    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


class ModelRec(_Model):
    spec: str = Field(min_length=1)
    name: str
    weights_sha256: str
    revision: str | None = None
    dtype: Literal["float32", "bfloat16", "float16"]
    device: str = Field(min_length=1)
    model_type: str
    n_layers: PosInt
    d_model: PosInt
    vocab_size: PosInt


class DataRec(_Model):
    label: str
    kind: Literal["builtin", "secllmholmes"]
    root: str
    commit: str | None = None
    files: dict[str, Sha256] = Field(default_factory=dict)


def _check_layer_keys(value: dict[str, Any]) -> dict[str, Any]:
    for key in value:
        if not _LAYER_KEY.match(key):
            raise ValueError(f"key {key!r} is not a layer index (a non-negative integer, as a string)")
    return value


class VectorRec(_Model):
    name: VectorName
    file: str = Field(min_length=1)
    layers: list[NonNegInt] = Field(min_length=1)
    method: Method | Literal[UNKNOWN]  # unknown: imported from a file that does not say
    readout: Readout | Literal[UNKNOWN]
    d_model: PosInt
    pair_ids: list[str] = Field(default_factory=list)
    split: str = ""
    seed: int | None = None
    source: str = ""
    # where each layer's vector was read and where steering adds it: the nnsight access of the block's hidden
    # state, {layer} standing for the layer (e.g. model.transformer.h[{layer}].output); absent in files written
    # before it was recorded
    read_at: str = ""
    # an imported vector: the file it came from as given and that file's sha256 ("FILE sha256:HEX"); absent: built
    origin: str | None = None
    sha256: dict[str, Sha256]

    @field_validator("file")
    @classmethod
    def _plain_file_name(cls, value: str) -> str:
        if "/" in value or "\\" in value or value in (".", "..") or not value.endswith(".safetensors"):
            raise ValueError(f"{value!r} is not a plain .safetensors file name (the sidecar lives beside the "
                             "session file)")
        return value

    @field_validator("sha256")
    @classmethod
    def _layer_keys(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_layer_keys(value)


class Intervention(_Model):
    vector: VectorName
    layer: NonNegInt
    alpha: float
    positions: Positions = "all"


class Steering(_Model):
    interventions: list[Intervention] = Field(default_factory=list)


# ---- steps ----------------------------------------------------------------------------------------------
class LayersInputs(_Model):
    prompt: str


class ModuleRec(_Model):
    path: str
    access: str
    module: str
    type: str
    shape: list[NonNegInt] | None = None
    dtype: str | None = None
    flags: list[str] = Field(default_factory=list)
    layer: NonNegInt | None = None
    norm_mean: float | None = None
    abs_max: float | None = None
    calls: NonNegInt = 0


class LayersOutputs(_Model):
    n_tokens: NonNegInt
    n_layers: PosInt
    d_model: PosInt
    modules: list[ModuleRec]


class LensInputs(_Model):
    prompt: str
    k: PosInt = 10
    positions: list[int] = Field(min_length=1)
    target: int | str | None = None
    layers: list[NonNegInt] | None = None
    steers: list[Intervention] = Field(default_factory=list)


class LensLayerRec(_Model):
    layer: NonNegInt
    top_ids: list[list[NonNegInt]]
    top_texts: list[list[str]]
    top_probs: list[list[float]]
    target_probs: list[float] | None = None
    target_ranks: list[PosInt] | None = None


class LensOutputs(_Model):
    token_ids: list[NonNegInt]
    token_texts: list[str]
    positions: list[NonNegInt]
    target_id: NonNegInt | None = None
    target_text: str | None = None
    final_logits_check: float
    baseline: list[LensLayerRec]
    steered: list[LensLayerRec] = Field(default_factory=list)


class TopTokensInputs(_Model):
    prompts: list[str] = Field(min_length=1)
    k: PosInt = 10
    steers: list[Intervention] = Field(default_factory=list)


class TopTokensRowRec(_Model):
    baseline_ids: list[NonNegInt]
    baseline_texts: list[str]
    baseline_probs: list[float]
    steered_ids: list[NonNegInt]
    steered_texts: list[str]
    steered_probs: list[float]
    kl: float


class TopTokensOutputs(_Model):
    rows: list[TopTokensRowRec]


class GenerateInputs(_Model):
    prompts: list[str] = Field(min_length=1)
    max_new_tokens: PosInt = 32
    stop_at_eos: bool = True
    batch_size: PosInt | None = None
    steers: list[Intervention] = Field(default_factory=list)


class GenerateRowRec(_Model):
    baseline_ids: list[NonNegInt]
    baseline_text: str
    baseline_logprobs: list[float]
    steered_ids: list[NonNegInt]
    steered_text: str
    steered_logprobs: list[float]
    first_divergence: NonNegInt | None = None


class GenerateOutputs(_Model):
    rows: list[GenerateRowRec]


class EvaluateInputs(_Model):
    """The pairs and ``engine.evaluate.EvalSettings``, field for field (a test holds the two together)."""

    pair_ids: list[str] = Field(min_length=1)
    layers: list[NonNegInt] = Field(min_length=1)
    alphas: list[float] = Field(min_length=1)
    method: Method = "mean-diff"
    readout: Readout = "last"
    split: Literal[SPLITS] = "pairs"
    seed: int = 0
    folds: PosInt = 3
    chunk_size: PosInt = 8
    kl_tokens: PosInt = 64
    yes: str = " Yes"
    no: str = " No"
    alpha_scale: Literal[ALPHA_SCALES] = "raw"  # absent in files written before it was recorded: raw
    controls: PosInt = 1  # absent in files written before it was recorded: one random control
    vector: VectorName | None = None  # a session vector steered in every fold; absent: built per fold
    together: list[float] | None = None  # one weight per layer: the layers steered at once; absent: each alone
    attribution: bool = False  # each shift split into direct and later-layer parts; absent in older files: no
    fix_site: bool = False  # each pair's fix-site preference scored too (engine.fixsite); absent in older files: no
    per_cwe: bool = False  # each CWE's pairs steered with its own vector per fold; absent in older files: no
    # few-shot example pairs, one per CWE, before every verdict prompt (engine.verdict.shot_prefix); absent: none
    shot_pairs: list[str] = Field(default_factory=list)

    def cells(self) -> list[tuple[int, float]]:
        """The (layer, alpha) cells of the evaluation, in its rows' order: each layer (the first alone when the
        layers are steered together, the key their rows are filed under), then each alpha."""
        keys = list(self.layers) if self.together is None else list(self.layers[:1])
        return [(K, float(a)) for K in keys for a in self.alphas]


class FoldRec(_Model):
    fold: NonNegInt
    threshold: float
    train_pairs: list[str]
    test_pairs: list[str]


class EvalRowRec(_Model):
    """An ``engine.evaluate.EvalRow`` as recorded, field for field. The last thirteen were added after files had
    been written without them (``LATER_OUTPUTS``): None there means not recorded (the fix-site ones: None also
    when the step did not score the fix site)."""

    layer: NonNegInt
    alpha: float
    cwe: str
    n: NonNegInt
    shift: float
    accuracy: float
    flip_rate: float
    random_shift: float
    random_flip_rate: float
    kl: float
    n_kl: NonNegInt
    baseline_accuracy: float
    baseline_yes_rate: float
    yes_rate: float
    random_kl: float
    answer_mass: float | None = None
    raw_alpha: list[float] | None = None
    baseline_score: float | None = None
    random_yes_rate: float | None = None
    excess_se: float | None = None
    random_shift_max: float | None = None
    random_kl_max: float | None = None
    direct_shift: float | None = None
    through_shift: float | None = None
    fix_shift: float | None = None
    random_fix_shift: float | None = None
    fix_excess_se: float | None = None
    fix_n: NonNegInt | None = None


class EvalFileRec(_Model):
    """One held-out file of ``engine.evaluate.EvalResult.files``. Its per-cell lists follow the cells in the
    rows' order (each layer of the inputs, or the first one when the layers are steered together, then each
    alpha); ``random_scores`` holds every random control's score per cell (cell after cell, ``controls`` each);
    ``kl`` (per cell) and ``random_kl`` (every control's per cell, as ``random_scores``) are the patched file's
    (empty for a vulnerable one). Its threshold and the coefficient each cell applied are its fold's, recorded in
    ``folds`` and in the rows' ``raw_alpha``."""

    id: str
    pair: str
    cwe: str
    label: Literal[0, 1]
    fold: NonNegInt
    p_yes: float
    p_no: float
    baseline_score: float
    score: list[float]
    random_scores: list[float]
    kl: list[float] = Field(default_factory=list)
    random_kl: list[float] = Field(default_factory=list)
    # with the step's attribution, per cell: the shift's direct part and the later layers' part; else empty
    direct: list[float] = Field(default_factory=list)
    through: list[float] = Field(default_factory=list)
    # with the step's fix_site, on a vulnerable file whose pair has a fix site: the pair's unsteered fix-site
    # preference, per cell its steered one, and every control's per cell (as random_scores); else None / empty
    fix_baseline: float | None = None
    fix: list[float] = Field(default_factory=list)
    random_fix: list[float] = Field(default_factory=list)


# Outputs added to schema version 1 after files had been written without them, per step kind ("rows[].x": the
# field x of every row). A file that lacks one did not record it: replay compares it only where it is recorded,
# and an opened session says "not recorded".
LATER_OUTPUTS = {
    "build_vectors": ("cwe_directions",),
    "evaluate": ("rows[].answer_mass", "rows[].raw_alpha", "rows[].baseline_score", "rows[].random_yes_rate",
                 "rows[].excess_se", "rows[].random_shift_max", "rows[].random_kl_max", "rows[].direct_shift",
                 "rows[].through_shift", "rows[].fix_shift", "rows[].random_fix_shift", "rows[].fix_excess_se",
                 "rows[].fix_n", "files"),
}


class EvaluateOutputs(_Model):
    yes_id: NonNegInt
    no_id: NonNegInt
    folds: list[FoldRec]
    rows: list[EvalRowRec]
    truncated: list[str] = Field(default_factory=list)
    # every held-out file's scores (absent in files written before they were recorded): what an opened session
    # picks a grid's cell on the other folds from, and what replay compares file by file
    files: list[EvalFileRec] = Field(default_factory=list)


class BuildVectorsInputs(_Model):
    """The vector's name, the pairs, and the recipe: the keyword arguments of ``engine.build.build_vectors``
    (a test holds the two together)."""

    vector: VectorName
    pair_ids: list[str] = Field(min_length=1)
    layers: list[NonNegInt] = Field(min_length=1)
    method: Method = "mean-diff"
    readout: Readout = "last"
    split: str = ""
    seed: int | None = None
    k_folds: PosInt = 5
    chunk_size: PosInt = 8


class DiagnosticsRec(_Model):
    """``engine.vectors.LayerDiagnostics``, field for field (a test holds the two together)."""

    layer: NonNegInt
    n_pairs: NonNegInt
    consistency: float | None = None
    vector_norm: float
    residual_norm: float
    norm_ratio: float
    auroc_pairs: float | None = None
    auroc_cwe: float | None = None
    folds_pairs: NonNegInt
    folds_cwe: NonNegInt


class CweDirectionsRec(_Model):
    """``engine.build.CweDirections``, field for field (a test holds the two together)."""

    layer: NonNegInt
    cwes: list[str]
    n_pairs: list[NonNegInt]
    cosine: list[list[float]]
    to_vector: list[float]
    chance: float


class BuildVectorsOutputs(_Model):
    sha256: dict[str, Sha256]
    diagnostics: list[DiagnosticsRec]
    truncated: list[str] = Field(default_factory=list)
    fallbacks: list[str] = Field(default_factory=list)
    cwe_directions: list[CweDirectionsRec] = Field(default_factory=list)  # absent in files written before

    @field_validator("sha256")
    @classmethod
    def _layer_keys(cls, value: dict[str, str]) -> dict[str, str]:
        return _check_layer_keys(value)


class ImportVectorsInputs(_Model):
    """A vector read from a file (``engine.session.export.import_vector``) and its diagnostics on ``pair_ids``: the
    pairs of the data it was not built from (``left_out``: those it was, where the file says). The tensors are
    the session's own (its sidecar); the file is named for the record, and not needed to replay."""

    vector: VectorName
    file: str = Field(min_length=1)
    file_sha256: Sha256
    format: str
    pair_ids: list[str] = Field(min_length=1)
    left_out: list[str] = Field(default_factory=list)
    layers: list[NonNegInt] = Field(min_length=1)
    readout: Readout = "last"
    chunk_size: PosInt = 8


class _StepBase(_Model):
    """A step: ``kind``, then ``seconds`` (how long it took when recorded; informational, never compared) and
    ``at`` (when it was recorded, ISO 8601 UTC), then its ``inputs`` and ``outputs`` tables."""


class LayersStep(_StepBase):
    kind: Literal["layers"]
    inputs: LayersInputs
    outputs: LayersOutputs
    seconds: float | None = None
    at: str | None = None


class LensStep(_StepBase):
    kind: Literal["lens"]
    inputs: LensInputs
    outputs: LensOutputs
    seconds: float | None = None
    at: str | None = None


class TopTokensStep(_StepBase):
    kind: Literal["top_tokens"]
    inputs: TopTokensInputs
    outputs: TopTokensOutputs
    seconds: float | None = None
    at: str | None = None


class GenerateStep(_StepBase):
    kind: Literal["generate"]
    inputs: GenerateInputs
    outputs: GenerateOutputs
    seconds: float | None = None
    at: str | None = None


class EvaluateStep(_StepBase):
    kind: Literal["evaluate"]
    inputs: EvaluateInputs
    outputs: EvaluateOutputs
    seconds: float | None = None
    at: str | None = None


class BuildVectorsStep(_StepBase):
    kind: Literal["build_vectors"]
    inputs: BuildVectorsInputs
    outputs: BuildVectorsOutputs
    seconds: float | None = None
    at: str | None = None


class ImportVectorsStep(_StepBase):
    """Its outputs are a build's: the vector's sha256 per layer and its diagnostics on the pairs."""

    kind: Literal["import_vectors"]
    inputs: ImportVectorsInputs
    outputs: BuildVectorsOutputs
    seconds: float | None = None
    at: str | None = None


Step = Annotated[Union[LayersStep, LensStep, TopTokensStep, GenerateStep, EvaluateStep, BuildVectorsStep,
                       ImportVectorsStep], Field(discriminator="kind")]

STEP_TYPES: dict[str, type[_StepBase]] = {
    "layers": LayersStep, "lens": LensStep, "top_tokens": TopTokensStep, "generate": GenerateStep,
    "evaluate": EvaluateStep, "build_vectors": BuildVectorsStep, "import_vectors": ImportVectorsStep,
}


class Session(_Model):
    """One session file."""

    steertui: Header
    model: ModelRec
    data: DataRec
    vectors: list[VectorRec] = Field(default_factory=list)
    steering: Steering = Field(default_factory=Steering)
    steps: list[Step] = Field(default_factory=list)

    def vector(self, name: str) -> VectorRec | None:
        return next((v for v in self.vectors if v.name == name), None)

    def to_data(self) -> dict[str, Any]:
        """Plain data for TOML (None omitted, ``schema`` under its file name)."""
        return self.model_dump(mode="python", by_alias=True, exclude_none=True)
