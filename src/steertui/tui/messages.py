"""Messages that workers post to the app: small plain dataclasses, never widgets."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from textual.message import Message

from steertui.engine.vectors import SteeringVectors  # the vectors the steering pane shows (one class, the engine's)


@dataclass
class ModelLoaded(Message):
    info: dict[str, Any]
    model: Any  # the engine's LoadedModel; the UI only passes it back to the engine


@dataclass
class LayersProbed(Message):
    report: Any  # engine.layers.LayersReport (plain data)
    prompt: str = "a short C function"  # what the probe ran on, as the pane names it


@dataclass
class DatasetLoaded(Message):
    dataset: Any  # engine.data.Dataset (plain data)


@dataclass
class JobFailed(Message):
    job: str
    error: str


@dataclass
class SessionOpened(Message):
    path: str
    steps: list[str]  # one line per recorded step
    steering: list[str]  # the active interventions, described
    vectors: "SteeringVectors | None" = None  # the session's last built vectors, with their recorded diagnostics
    evaluation: Any = None  # engine.evaluate.EvalResult of its last evaluate step, as recorded (None: none)
    interventions: list[dict] = field(default_factory=list)  # its steering: vector, layer, alpha, positions
    pair_id: str | None = None  # the loaded pair of its last next tokens or continuation (the cursor goes there)


@dataclass
class JobProgress(Message):
    """Progress of a running job; a newer message for the same job replaces an older one still queued."""

    job: str
    stage: str
    done: int
    total: int

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, JobProgress) and message.job == self.job


@dataclass
class JobCancelled(Message):
    job: str
    detail: str


@dataclass
class VectorsBuilt(Message):
    result: Any  # engine.build.BuildResult: vectors, per-layer diagnostics (plain data)
    name: str  # the vectors' name in the session
    session_path: str  # the session file they were recorded (and autosaved) in
    imported: Any = None  # engine.session.export.ImportedVector when read from a file, not built
    left_out: tuple[str, ...] = ()  # imported: the loaded pairs it was built from (not in its diagnostics)


@dataclass
class TokensComputed(Message):
    """Next-token top-k baseline vs steered at one verdict prompt, with the lens and the verdict score."""

    result: Any  # engine.ops.NextTokens (plain data)
    steers: list[str]  # the interventions, described
    live: bool = False  # a preview run by a steering change, not recorded in the session (``t`` records)


@dataclass
class GenerationDiffed(Message):
    """Greedy continuations of a pair's fix-site prompt, baseline against steered."""

    result: Any  # engine.ops.Continuation: the FixSitePrompt and the GenDiffResult (one row)
    steers: list[str]
    recorded: bool = False  # an opened session's, as recorded (not re-run)


@dataclass
class Evaluated(Message):
    result: Any  # engine.evaluate.EvalResult (plain data)


@dataclass
class Swept(Message):
    """An alpha sweep of the steering layer."""

    sweep: Any  # engine.ops.AlphaSweep: the EvalResult and its verdict-against-alpha curve (plain data)


@dataclass
class Gridded(Message):
    """The held-out evaluation of every layer at several alphas (residual units)."""

    grid: Any  # engine.ops.LayerAlphaGrid: the EvalResult and its cells by layer and alpha (plain data)


@dataclass
class ReportWritten(Message):
    """The session's report, written as HTML beside its file."""

    path: str
