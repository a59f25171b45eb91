"""User-facing errors: one clear line naming the problem and what to do; the CLI exits with code 2."""

from __future__ import annotations

from typing import Protocol


class SteertuiError(Exception):
    """An error caused by the user's input (a path, a model, a file, a number).

    ``str(err)`` is one line: what is wrong, then what to do about it.
    """

    exit_code = 2

    def __init__(self, problem: str, hint: str | None = None) -> None:
        self.problem = problem
        self.hint = hint
        super().__init__(problem if not hint else f"{problem} — {hint}")


class ModelLoadError(SteertuiError):
    """The model could not be found or loaded."""


class LayerIndexError(SteertuiError):
    """A layer index outside the model's range."""


class ModulePathError(SteertuiError):
    """A module path the model does not have."""


class DatasetError(SteertuiError):
    """A dataset path that is missing or not a dataset."""


class VectorError(SteertuiError):
    """A steering vector that does not fit the model."""


class ContextLengthError(SteertuiError):
    """A prompt that is empty, or that (with the tokens asked for) does not fit the model's context."""


class CancelledError(Exception):
    """Raised inside a long engine job when its cancel flag was set."""


class Cancel(Protocol):
    """What a long engine job takes as ``cancel``: anything whose ``is_set()`` says the job should stop (a
    ``threading.Event``, or a flag that also paces the job, as the console's jobs hand it). The engine checks it
    between chunks, stages and generated tokens, and raises :class:`CancelledError` when it is set."""

    def is_set(self) -> bool: ...
