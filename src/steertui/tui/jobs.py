"""The console's jobs: one thread worker per kind of job. Each runs one engine operation (through the session
recorder for everything it records) and reports only by posting its result as a message; a cancelled job posts
JobCancelled, a failed one JobFailed, and the app never dies on a model error. A job is cancelled through its
worker (Escape, or a newer job of the same group): the engine reads the worker's ``cancelled_event``.

A job steps aside while the console shows what it posted: posting a message closes the ``screen_idle`` gate until
the screen has been repainted, and the engine's next cancel check (between chunks, at every generated token) waits
for the gate. Without it the job's thread and the repaint share the interpreter lock, and a 30 ms repaint took 60
to 120 ms (the longest waits of the event loop while a job ran)."""

from __future__ import annotations

import importlib
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from textual import work
from textual.worker import get_current_worker

from steertui.tui.messages import (DatasetLoaded, Evaluated, GenerationDiffed, Gridded, JobCancelled, JobFailed,
                                   JobProgress, LayersProbed, ModelLoaded, ReportWritten, SessionOpened, Swept,
                                   TokensComputed, VectorsBuilt)

STEER_GROUP = "steer"  # the jobs that compute with the steering: one runs at a time, Escape cancels it
YIELD_MAX_S = 0.25  # the longest a job waits at one check for the screen (a repaint takes tens of milliseconds)


class Checkpoint:
    """The cancel flag a job hands to the engine (a :class:`steertui.errors.Cancel`: the engine reads only
    ``is_set``): reading it first waits, at most ``YIELD_MAX_S``, until the screen has shown the job's last
    message; a cancelled job does not wait."""

    def __init__(self, cancelled: threading.Event, screen_idle: threading.Event) -> None:
        self.cancelled, self.screen_idle = cancelled, screen_idle

    def is_set(self) -> bool:
        if not self.cancelled.is_set():
            self.screen_idle.wait(YIELD_MAX_S)
        return self.cancelled.is_set()


class Jobs:
    """Mixed into the app: the workers, and the session recorder they record into."""

    recorder: Any
    model: Any
    dataset: Any
    screen_idle: threading.Event  # set while the screen shows every message the jobs posted (see the module)
    computing: str | None = None  # the steering job whose thread is computing now, if any
    results_posted = 0  # how many jobs have posted their result

    def post(self, message: Any, *, result: bool = False) -> None:
        """Post a job's message (from its thread) and hold the job at its next check until the screen shows it;
        ``result``: the message is the job's result, and its computing is over."""
        if result:
            self.computing = None
            self.results_posted += 1
        self.screen_idle.clear()
        self.post_message(message)
        self.call_after_refresh(self.screen_idle.set)

    def checkpoint(self) -> Checkpoint:
        """The running job's cancel flag for the engine (called from the job's thread)."""
        return Checkpoint(get_current_worker().cancelled_event, self.screen_idle)

    @contextmanager
    def reporting(self, job: str) -> Iterator[None]:
        """Turn the engine's CancelledError into JobCancelled and any other error into JobFailed for ``job``; while
        a steering job runs (one at a time), ``computing`` names it."""
        from steertui.errors import CancelledError

        steering = get_current_worker().group == STEER_GROUP
        if steering:
            self.computing = job
        try:
            yield
        except CancelledError as err:
            self.post(JobCancelled(job, str(err)))
        except Exception as err:
            self.post(JobFailed(job, f"{type(err).__name__}: {err}"))
        finally:
            if steering:
                self.computing = None

    def progress(self, job: str, stage: str | None = None) -> Any:
        """A progress callback posting JobProgress for ``job``: ``(done, total)`` of ``stage`` when it is given,
        else ``(stage, done, total)``."""
        if stage is not None:
            return lambda done, total: self.post(JobProgress(job, stage, done, total))
        return lambda name, done, total: self.post(JobProgress(job, name, done, total))

    # ---- workers (one per kind of job) -----------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="model", description="load model")
    def load_model(self) -> None:
        from steertui.engine.ops import load_model

        with self.reporting("load model"):
            loaded = load_model(self.model_spec, device=self.device_spec, dtype=self.dtype_spec)
            self.post(ModelLoaded(loaded.model.info.to_dict(), loaded.model))
            self.post(LayersProbed(loaded.layers))
            # The sessions' modules, which every job records through, imported now rather than by the first job:
            # building their pydantic schema holds the interpreter lock for tens of milliseconds at a time, which
            # stalled the screen during the first build (the event loop's longest wait of a first b: 47-50 ms).
            importlib.import_module("steertui.engine.session.recorded")

    @work(thread=True, exclusive=True, exit_on_error=False, group="model", description="open session")
    def open_session(self) -> None:
        """Open a saved session: its model, its data and its recorded steps (checked, not re-run)."""
        from steertui.engine.session.resume import resume

        with self.reporting("load model"):
            opened = resume(self.session_file, model=self.model_spec, dataset_path=self.dataset_spec,
                            device=self.device_spec, dtype=self.dtype_spec)
            rec = self.recorder = opened.recorder
            self.post(ModelLoaded(rec.model.info.to_dict(), rec.model))
            if rec.dataset is not None:
                self.post(DatasetLoaded(rec.dataset))
            vectors = opened.vectors  # as the steering pane shows them
            interventions = [iv.model_dump() for iv in rec.steering]
            self.post(SessionOpened(str(rec.path), opened.steps, describe(interventions), vectors, opened.evaluation,
                                    interventions, opened.pair_id))
            c = opened.continuation
            if c is not None:
                self.post(GenerationDiffed(c, describe([dict(s, vector=s["label"]) for s in c.diff.steers]),
                                           recorded=True))
            self.post(LayersProbed(opened.layers))

    @work(thread=True, exclusive=True, exit_on_error=False, group="probe", description="probe layers")
    def probe(self, pair: Any = None, shots: Any = None) -> None:
        """Probe the layers on ``pair``'s verdict prompt (the text the next tokens and the evaluation run on; after
        the few-shot example pair ``shots`` when given), or on the default C function without a pair."""
        from steertui.engine import ops
        from steertui.engine.layers import probe_layers

        with self.reporting("probe layers"):
            if pair is None:
                self.post(LayersProbed(probe_layers(self.model)))
                return
            prompt = ops.verdict_prompt(self.model, pair, shots)
            self.post(LayersProbed(probe_layers(self.model, prompt.text), f"the verdict prompt of {pair.id}"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="report", description="session report")
    def report_job(self) -> None:
        """The session's report (``steertui report FILE --html``) written beside its file as ``NAME.html``, from
        the steps recorded so far; it reads the recording, never the model."""
        from steertui.commands.report import save_html

        with self.reporting("session report"):
            rec = self.recorder
            with rec.lock:
                doc, path = rec.doc.model_copy(deep=True), rec.path
            self.post(ReportWritten(str(save_html(doc, path, path.with_suffix(".html")))))

    @work(thread=True, exclusive=True, exit_on_error=False, group="data", description="load data")
    def load_dataset(self) -> None:
        from steertui.engine.data import load_dataset

        with self.reporting("load data"):
            self.post(DatasetLoaded(load_dataset(self.dataset_spec)))

    @work(thread=True, exclusive=True, exit_on_error=False, group=STEER_GROUP, description="build vectors")
    def build_job(self, pairs: list) -> None:
        cancel = self.checkpoint()
        with self.reporting("build vectors"):
            rec = self.ensure_recorder()
            name = rec.next_vector_name()
            result = self.recorded(rec.build_vectors, pairs, name=name, method=self.method, readout="last", seed=0,
                                   progress=self.progress("build vectors", "activations"), cancel=cancel)
            self.post(VectorsBuilt(result, name, str(rec.path)), result=True)

    @work(thread=True, exclusive=True, exit_on_error=False, group=STEER_GROUP, description="import vector")
    def import_job(self, file: str, name: str | None, pairs: list) -> None:
        """A vector read from ``file`` (``--vectors``), checked against the model, with its diagnostics on the
        loaded pairs it was not built from, recorded as an ``import_vectors`` step."""
        from steertui.engine.session.export import import_vector

        cancel = self.checkpoint()
        with self.reporting("import vector"):
            imported = import_vector(file, self.model, name)
            rec = self.ensure_recorder()
            name = rec.free_name(imported.name)
            result = self.recorded(rec.import_vectors, imported, pairs, name=name,
                                   progress=self.progress("import vector", "activations"), cancel=cancel)
            _kept, left_out = imported.held_out(p.id for p in pairs)
            self.post(VectorsBuilt(result, name, str(rec.path), imported, tuple(left_out)), result=True)

    @work(thread=True, exclusive=True, exit_on_error=False, group=STEER_GROUP, description="next tokens")
    def tokens_job(self, pair: Any, steering: list[dict], target: str, live: bool = False, shots: Any = None) -> None:
        """The next tokens, the lens grid and the verdict score at the pair's verdict slot (engine.ops.next_tokens),
        recorded; with ``live`` a preview that is not recorded (its steers are made by the recorder, which holds
        the vectors: a steering exists only once vectors are built or opened, and so a recorder). ``shots``: the
        few-shot example pair before the prompt (the console's `S`)."""
        from steertui.engine import ops
        from steertui.engine.session.recorded import next_tokens

        cancel = self.checkpoint()
        with self.reporting("next tokens"):
            split = self.by_layer  # the Tokens tab shows the verdict's attribution by layer (`w`)
            if live:
                steers = self.recorder.steers(steering) if steering else []
                result = ops.next_tokens(self.model, pair, steers, target=target, attribution=split, shots=shots,
                                         cancel=cancel)
            else:
                result = self.recorded(next_tokens, self.ensure_recorder(), pair, steering=steering, target=target,
                                       attribution=split, shots=shots, cancel=cancel)
            self.post(TokensComputed(result, describe(steering), live=live), result=True)

    @work(thread=True, exclusive=True, exit_on_error=False, group=STEER_GROUP, description="generate")
    def gen_job(self, pair: Any, steering: list[dict]) -> None:
        """The pair continued at its fix site, baseline and steered (engine.ops.fix_site_continuation)."""
        from steertui.engine.session.recorded import fix_site_continuation

        self._recorded_job("generate", lambda result: GenerationDiffed(result, describe(steering)),
                           fix_site_continuation, pair, steering=steering)

    @work(thread=True, exclusive=True, exit_on_error=False, group=STEER_GROUP, description="evaluate")
    def eval_job(self, pairs: list, settings: Any) -> None:
        """The held-out evaluation of the steering (an engine.evaluate.EvalSettings: of one layer at −a, 0, +a,
        engine.ops.layer_eval_settings, or of the pinned layers at once, engine.ops.together_eval_settings)."""
        from steertui.engine.session import SessionRecorder

        self._recorded_job("evaluate", Evaluated, SessionRecorder.evaluate, pairs, settings)

    @work(thread=True, exclusive=True, exit_on_error=False, group=STEER_GROUP, description="alpha sweep")
    def sweep_job(self, pairs: list, layer: int, alphas: tuple[float, ...], method: str,
                  vector: str | None = None, together: dict[int, float] | None = None, **options: bool) -> None:
        """The held-out evaluation of one layer (or, ``together``, of several at once) over several alphas and its
        curve (engine.ops.alpha_sweep), recorded as one evaluate step; ``options``: the app's eval_options."""
        from steertui.engine.session.recorded import alpha_sweep

        self._recorded_job("alpha sweep", Swept, alpha_sweep, pairs, layer, alphas, method, vector=vector,
                           together=together, **options)

    @work(thread=True, exclusive=True, exit_on_error=False, group=STEER_GROUP, description="layer grid")
    def grid_job(self, pairs: list, layers: tuple[int, ...], alphas: tuple[float, ...], method: str,
                 vector: str | None = None, **options: bool) -> None:
        """The held-out evaluation of every layer over several alphas in residual units (engine.ops.layer_grid),
        recorded as one evaluate step; ``options``: the app's eval_options."""
        from steertui.engine.session.recorded import layer_grid

        self._recorded_job("layer grid", Gridded, layer_grid, pairs, layers, alphas, method, vector=vector,
                           **options)

    def _recorded_job(self, job: str, message: Callable[[Any], Any], operation: Callable[..., Any], *args: Any,
                      **kwargs: Any) -> None:
        """In a steering job's thread: ``operation(recorder, *args, **kwargs)`` with the job's progress and cancel
        flag, recorded in the session, its result posted as ``message(result)``."""
        cancel = self.checkpoint()
        with self.reporting(job):
            result = self.recorded(operation, self.ensure_recorder(), *args, progress=self.progress(job),
                                   cancel=cancel, **kwargs)
            self.post(message(result), result=True)

    def ensure_recorder(self) -> Any:
        """The session everything the user makes is recorded in: the one opened with ``--session``, else a new
        file in the sessions folder, created by the first job that computes something (called from a worker)."""
        if self.recorder is None:
            from steertui.engine.session import SessionRecorder
            from steertui.engine.session.store import SessionSaveError

            try:
                self.recorder = SessionRecorder.new(self.model, self.dataset)
            except (SessionSaveError, OSError) as err:  # the work goes on; the user is told it is not saved
                self.recorder = SessionRecorder.new(self.model, self.dataset, path="unsaved-session.toml",
                                                    autosave=False)
                self.post(JobFailed("save session", f"{err} — this session is kept in memory only; set "
                                            "STEERTUI_SESSIONS to a folder you can write"))
        return self.recorder

    def recorded(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a recorded operation; when only its save fails, keep its result, stop autosaving and say so once."""
        from steertui.engine.session.store import SessionSaveError

        try:
            return call(*args, **kwargs)
        except SessionSaveError as err:
            self.recorder.autosave = False
            self.post(JobFailed("save session", f"{err} — the session is kept in memory only from now on"))
            return err.result


def describe(steering: list[dict[str, Any]]) -> list[str]:
    """The interventions as the panes name them: ``v1@3 x7.5 (all)``."""
    return [f"{iv['vector']}@{iv['layer']} x{iv['alpha']:.3g} ({iv['positions']})" for iv in steering]
