"""The console's jobs: one thread worker per kind of job. Each calls the engine (through the session recorder
when one is open) and reports only by posting messages; a cancelled job posts JobCancelled, a failed one
JobFailed, and the app never dies on a model error."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Any, Iterator

from textual import work

from steertui.tui.messages import (DatasetLoaded, Evaluated, GenerationDiffed, JobCancelled, JobFailed, JobProgress,
                                   LayersProbed, ModelLoaded, SessionOpened, SteeringVectors, TokensComputed,
                                   VectorsBuilt)

NEW_TOKENS = 32  # continuation length on each side


class Jobs:
    """Mixed into the app: the workers, and the session recorder they record into."""

    recorder: Any
    session: Any
    dataset: Any

    @contextmanager
    def reporting(self, job: str) -> Iterator[None]:
        """Turn the engine's CancelledError into JobCancelled and any other error into JobFailed for ``job``."""
        from steertui.errors import CancelledError


        try:
            yield
        except CancelledError as err:
            self.post_message(JobCancelled(job, str(err)))
        except Exception as err:
            self.post_message(JobFailed(job, f"{type(err).__name__}: {err}"))

    # ---- workers (one per kind of job) -----------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="model", description="load model")
    def load_model(self) -> None:
        from steertui.engine.layers import probe_layers
        from steertui.engine.model import ModelSession

        with self.reporting("load model"):
            session = ModelSession.load(self.model_spec, device=self.device_spec, dtype=self.dtype_spec)
            self.post_message(ModelLoaded(session.info.to_dict(), session))
            self.post_message(LayersProbed(probe_layers(session)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="model", description="open session")
    def open_session(self) -> None:
        """Open a saved session: its model, its data and its recorded steps (checked, not re-run)."""
        from steertui.engine.layers import probe_layers
        from steertui.engine.session import SessionRecorder
        from steertui.engine.session.replay import summarize

        with self.reporting("load model"):
            rec = SessionRecorder.open(self.session_file, model=self.model_spec, dataset_path=self.dataset_spec,
                                       device=self.device_spec, dtype=self.dtype_spec,
                                       read_only_if_locked=True)  # another process writes it: a view
            self.recorder = rec
            self.post_message(ModelLoaded(rec.session.info.to_dict(), rec.session))
            if rec.dataset is not None:
                self.post_message(DatasetLoaded(rec.dataset))
            steps = [f"{i}. {st.kind}: {summarize(st.kind, st.outputs)}" for i, st in enumerate(rec.steps)]
            steering = describe([iv.model_dump() for iv in rec.steering])
            builds = [st for st in rec.steps if st.kind == "build_vectors" and st.inputs.vector in rec.vectors]
            vectors = None
            if builds:
                last = builds[-1]
                vectors = SteeringVectors(last.inputs.vector, last.inputs.method, list(last.outputs.diagnostics),
                                          rec.vectors[last.inputs.vector])
            self.post_message(SessionOpened(str(rec.path), steps, steering, vectors))
            self.post_message(LayersProbed(probe_layers(rec.session)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="probe", description="probe layers")
    def probe(self) -> None:
        from steertui.engine.layers import probe_layers

        with self.reporting("probe layers"):
            self.post_message(LayersProbed(probe_layers(self.session)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="data", description="load data")
    def load_dataset(self) -> None:
        from steertui.engine.data import load_dataset

        with self.reporting("load data"):
            self.post_message(DatasetLoaded(load_dataset(self.dataset_spec)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="steer", description="build vectors")
    def build_job(self, pairs: list, cancel: threading.Event) -> None:
        def progress(done: int, total: int) -> None:
            self.post_message(JobProgress("build vectors", "activations", done, total))

        with self.reporting("build vectors"):
            rec = self.ensure_recorder()
            name = rec.next_vector_name()
            result = self.recorded(rec.build_vectors, pairs, name=name, method=self.method, readout="last", seed=0,
                                   progress=progress, cancel=cancel)
            self.post_message(VectorsBuilt(result, name, str(rec.path)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="steer", description="next tokens")
    def tokens_job(self, pair: Any, steering: list[dict], cancel: threading.Event) -> None:
        """Top tokens (two forwards: baseline, steered; the verdict score is read from the same logits) and the
        lens (one forward of both rows) at the verdict slot, both recorded."""
        from steertui.engine import verdict

        with self.reporting("next tokens"):
            rec = self.ensure_recorder()
            sample = pair.vulnerable
            prompt = verdict.build_prompt(self.session, sample.code, sample.cwe_name, sample.id, pair=pair).text
            self.recorded(rec.set_steering, steering)
            result = self.recorded(rec.top_tokens, [prompt], steering=steering, k=10, cancel=cancel)
            lens = self.recorded(rec.lens, prompt, steering=steering, k=5, target=" Yes", cancel=cancel)
            answers = verdict.answer_tokens(self.session)
            base, steered = result.logit_diff(answers.yes_id, answers.no_id)
            self.post_message(TokensComputed(sample.id, result, base, steered, describe(steering), lens))

    @work(thread=True, exclusive=True, exit_on_error=False, group="steer", description="generate")
    def gen_job(self, pair: Any, steering: list[dict], cancel: threading.Event) -> None:
        from steertui.engine import gendiff

        def progress(stage: str, done: int, total: int) -> None:
            self.post_message(JobProgress("generate", stage, done, total))

        with self.reporting("generate"):
            rec = self.ensure_recorder()
            prompt = gendiff.fix_site_prompt(self.session, pair, NEW_TOKENS)
            self.recorded(rec.set_steering, steering)
            result = self.recorded(rec.generate, [prompt.text], steering=steering, max_new_tokens=NEW_TOKENS,
                                   cancel=cancel, progress=progress)
            self.post_message(GenerationDiffed(prompt, result, describe(steering)))

    @work(thread=True, exclusive=True, exit_on_error=False, group="steer", description="evaluate")
    def eval_job(self, pairs: list, layer: int, alpha: float, method: str, cancel: threading.Event) -> None:
        from steertui.engine.evaluate import EvalSettings

        def progress(stage: str, done: int, total: int) -> None:
            self.post_message(JobProgress("evaluate", stage, done, total))

        with self.reporting("evaluate"):
            settings = EvalSettings(layers=(layer,), alphas=(-alpha, 0.0, alpha), method=method, readout="last",
                                    split="pairs", seed=0, folds=3)
            result = self.recorded(self.ensure_recorder().evaluate, pairs, settings, progress=progress, cancel=cancel)
            self.post_message(Evaluated(result))

    def ensure_recorder(self) -> Any:
        """The session everything the user makes is recorded in: the one opened with ``--session``, else a new
        file in the sessions folder, created by the first job that computes something (called from a worker)."""
        if self.recorder is None:
            from steertui.engine.session import SessionRecorder
            from steertui.engine.session.store import SessionSaveError

            try:
                self.recorder = SessionRecorder.new(self.session, self.dataset)
            except (SessionSaveError, OSError) as err:  # the work goes on; the user is told it is not saved
                self.recorder = SessionRecorder.new(self.session, self.dataset, path="unsaved-session.toml",
                                                    autosave=False)
                self.post_message(JobFailed("save session", f"{err} — this session is kept in memory only; set "
                                            "STEERTUI_SESSIONS to a folder you can write"))
        return self.recorder

    def recorded(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """Run a recorder call; when only its save fails, keep its result, stop autosaving and say so once."""
        from steertui.engine.session.store import SessionSaveError

        try:
            return call(*args, **kwargs)
        except SessionSaveError as err:
            self.recorder.autosave = False
            self.post_message(JobFailed("save session", f"{err} — the session is kept in memory only from now on"))
            return err.result


def describe(steering: list[dict[str, Any]]) -> list[str]:
    """The interventions as the panes name them: ``v1@3 x7.5 (all)``."""
    return [f"{iv['vector']}@{iv['layer']} x{iv['alpha']:.3g} ({iv['positions']})" for iv in steering]
