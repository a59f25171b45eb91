"""Messages that workers post to the app: small plain dataclasses, never widgets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message


@dataclass
class ModelLoaded(Message):
    info: dict[str, Any]
    session: Any  # the engine's ModelSession; the UI only passes it back to the engine


@dataclass
class LayersProbed(Message):
    report: Any  # engine.layers.LayersReport (plain data)


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
