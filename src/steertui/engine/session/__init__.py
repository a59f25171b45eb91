"""Sessions: a run saved to TOML (vectors in a safetensors sidecar) and replayed headless.

- :mod:`~steertui.engine.session.schema` — the file's schema (pydantic, versioned, unknown keys forbidden);
- :mod:`~steertui.engine.session.store` — atomic reads and writes, the sidecar, :class:`SessionError`;
- :mod:`~steertui.engine.session.recorder` — :class:`SessionRecorder`, which runs engine operations and
  records each as a step, autosaving after every one;
- :mod:`~steertui.engine.session.replay` — :func:`prepare` (check a file, load its model and data),
  :func:`replay` (re-run and compare, per-step verdicts).

Importing this package imports neither torch nor Textual.
"""

from steertui.engine.session.recorder import SessionRecorder
from steertui.engine.session.opening import OpenedSession, prepare
from steertui.engine.session.replay import ABS_TOL, REL_TOL, TOLERANCE_RULE, ReplayReport, StepVerdict, replay
from steertui.engine.session.schema import SCHEMA_VERSION, STEP_KINDS, Session
from steertui.engine.session.store import (
    SessionError,
    SessionSaveError,
    default_folder,
    list_sessions,
    loads,
    new_session_path,
    read_session,
    read_vectors,
    resolve_session_file,
    sidecar_name,
    write_session,
)

__all__ = [
    "ABS_TOL", "REL_TOL", "SCHEMA_VERSION", "STEP_KINDS", "TOLERANCE_RULE",
    "OpenedSession", "ReplayReport", "Session", "SessionError", "SessionRecorder", "SessionSaveError",
    "StepVerdict", "default_folder", "list_sessions", "loads", "new_session_path", "prepare", "read_session",
    "read_vectors", "replay", "resolve_session_file", "sidecar_name", "write_session",
]
