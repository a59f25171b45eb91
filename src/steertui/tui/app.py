"""The steertui console. Heavy work runs in thread workers that call the engine and post messages back."""

from __future__ import annotations

import argparse
import threading
from typing import Any

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane

from steertui.tui.commands import SteerCommands
from steertui.tui.messages import (DatasetLoaded, Evaluated, GenerationDiffed, JobCancelled, JobFailed, JobProgress, LayersProbed,
                                   ModelLoaded, SessionOpened, SteeringVectors, TokensComputed, VectorsBuilt)
from steertui.tui.panes.dataset import DatasetPane
from steertui.tui.panes.evaluate import EvalPane
from steertui.tui.panes.generate import GenPane
from steertui.tui.panes.layers import LayersPane
from steertui.tui.panes.lens import LensPane
from steertui.tui.panes.steer import SteerPane
from steertui.tui.panes.tokens import TokensPane

ALPHA_STEP = 0.25  # one `+` adds a quarter of the layer's mean residual norm along the vector
NEW_TOKENS = 32  # continuation length on each side
METHODS = ("mean-diff", "pca", "probe")  # engine.vectors.METHODS (not imported here: it would load torch at start)
POSITIONS = ("all", "prompt", "generated")  # engine.steering.POSITIONS


class SteerApp(App):
    """Pairs on the left; on the right a status line naming model and data source above three tabs: the model's
    layers, the steering vectors per layer, and the next tokens baseline against steered."""

    CSS_PATH = "app.tcss"
    COMMANDS = App.COMMANDS | {SteerCommands}
    TITLE = "steertui"
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("d", "focus('pairs')", "Pairs", id="focus_pairs"),
        Binding("l", "focus('layers')", "Layers", id="focus_layers"),
        Binding("s", "focus('steer')", "Steer", id="focus_steer"),
        Binding("n", "focus('tokens')", "Tokens", id="focus_tokens"),
        Binding("k", "focus('lens')", "Lens", id="focus_lens", show=False),
        Binding("c", "focus('gen')", "Continuations", id="focus_gen", show=False),
        Binding("v", "focus('eval')", "Evaluation", id="focus_eval", show=False),
        Binding("r", "reprobe", "Re-probe", id="reprobe"),
        Binding("b", "build", "Build vectors", id="build"),
        Binding("plus,equals_sign", "alpha(1)", "Alpha +", id="alpha_up"),
        Binding("minus", "alpha(-1)", "Alpha -", id="alpha_down"),
        Binding("0", "alpha(0)", "Alpha 0", id="alpha_zero", show=False),
        Binding("m", "cycle_method", "Method", id="method", show=False),
        Binding("p", "cycle_positions", "Positions", id="positions", show=False),
        Binding("t", "tokens", "Next tokens", id="tokens"),
        Binding("g", "generate", "Generate", id="generate"),
        Binding("e", "evaluate", "Evaluate", id="evaluate"),
        Binding("escape", "cancel", "Cancel", id="cancel", show=False),
        Binding("question_mark,f1", "help", "Help", id="help"),
        Binding("z", "zoom", "Zoom", id="zoom", show=False),
    ]
    TABS = {"layers": "tab-layers", "steer": "tab-steer", "tokens": "tab-tokens", "lens": "tab-lens",
            "gen": "tab-gen", "eval": "tab-eval"}

    def __init__(self, model: str | None = None, dataset: str | None = None, device: str | None = None,
                 dtype: str | None = None, session_file: str | None = None) -> None:
        super().__init__()
        self.model_spec, self.dataset_spec, self.device_spec, self.dtype_spec = model, dataset, device, dtype
        self.session_file = session_file
        self.recorder: Any = None
        self.session_steps: list[str] = []
        self.session: Any = None
        self.dataset: Any = None
        self.layers_report: Any = None
        self.failures: list[JobFailed] = []
        self.build: SteeringVectors | None = None  # the vectors in the steering pane
        self.alpha_steps = 0
        self.tokens: TokensComputed | None = None
        self.generation: GenerationDiffed | None = None
        self.evaluation: Any = None  # engine.evaluate.EvalResult of the last `e`
        self.vector_name = ""  # the last build's name in the session
        self.method = METHODS[0]  # used by the next build
        self.positions = POSITIONS[0]  # where the steering is added in next tokens, lens and continuations
        self.cancelled: list[JobCancelled] = []
        self.cancel_event: threading.Event | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="left"):
            yield DatasetPane(id="pairs")
        with Vertical(id="right"):
            yield Static("loading model…", id="status")
            with TabbedContent(id="tabs"):
                with TabPane("Layers", id="tab-layers"):
                    yield LayersPane(id="layers")
                with TabPane("Steer", id="tab-steer"):
                    yield SteerPane(id="steer")
                with TabPane("Next tokens", id="tab-tokens"):
                    yield TokensPane(id="tokens")
                with TabPane("Lens", id="tab-lens"):
                    yield LensPane(id="lens")
                with TabPane("Continuations", id="tab-gen"):
                    yield GenPane(id="gen")
                with TabPane("Evaluate", id="tab-eval"):
                    yield EvalPane(id="eval")
        yield Footer()

    def on_mount(self) -> None:
        if self.session_file:
            self.open_session()
            return
        self.load_dataset()
        self.load_model()

    # ---- workers (one per kind of job) -----------------------------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="model", description="load model")
    def load_model(self) -> None:
        from steertui.engine.layers import probe_layers
        from steertui.engine.model import ModelSession

        try:
            session = ModelSession.load(self.model_spec, device=self.device_spec, dtype=self.dtype_spec)
            self.post_message(ModelLoaded(session.info.to_dict(), session))
            self.post_message(LayersProbed(probe_layers(session)))
        except Exception as err:  # shown in the UI; the app never dies on a model error
            self.post_message(JobFailed("load model", f"{type(err).__name__}: {err}"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="model", description="open session")
    def open_session(self) -> None:
        """Open a saved session: its model, its data and its recorded steps (checked, not re-run)."""
        from steertui.engine.layers import probe_layers
        from steertui.engine.session import SessionRecorder
        from steertui.engine.session.replay import summarize

        try:
            rec = SessionRecorder.open(self.session_file, model=self.model_spec, dataset_path=self.dataset_spec,
                                       device=self.device_spec, dtype=self.dtype_spec)
            self.recorder = rec
            self.post_message(ModelLoaded(rec.session.info.to_dict(), rec.session))
            if rec.dataset is not None:
                self.post_message(DatasetLoaded(rec.dataset))
            steps = [f"{i}. {st.kind}: {summarize(st.kind, st.outputs)}" for i, st in enumerate(rec.steps)]
            steering = [f"{iv.vector}@{iv.layer} x{iv.alpha:g} ({iv.positions})" for iv in rec.steering]
            builds = [st for st in rec.steps if st.kind == "build_vectors" and st.inputs.vector in rec.vectors]
            vectors = None
            if builds:
                last = builds[-1]
                vectors = SteeringVectors(last.inputs.vector, last.inputs.method, list(last.outputs.diagnostics),
                                          rec.vectors[last.inputs.vector])
            self.post_message(SessionOpened(str(rec.path), steps, steering, vectors))
            self.post_message(LayersProbed(probe_layers(rec.session)))
        except Exception as err:
            self.post_message(JobFailed("load model", f"{type(err).__name__}: {err}"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="probe", description="probe layers")
    def probe(self) -> None:
        from steertui.engine.layers import probe_layers

        try:
            self.post_message(LayersProbed(probe_layers(self.session)))
        except Exception as err:
            self.post_message(JobFailed("probe layers", f"{type(err).__name__}: {err}"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="data", description="load data")
    def load_dataset(self) -> None:
        from steertui.engine.data import load_dataset

        try:
            self.post_message(DatasetLoaded(load_dataset(self.dataset_spec)))
        except Exception as err:
            self.post_message(JobFailed("load data", f"{type(err).__name__}: {err}"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="steer", description="build vectors")
    def build_job(self, pairs: list, cancel: threading.Event) -> None:
        from steertui.errors import CancelledError

        def progress(done: int, total: int) -> None:
            self.post_message(JobProgress("build vectors", "activations", done, total))

        try:
            rec = self.ensure_recorder()
            name = rec.next_vector_name()
            result = self.recorded(rec.build_vectors, pairs, name=name, method=self.method, readout="last", seed=0,
                                   progress=progress, cancel=cancel)
            self.post_message(VectorsBuilt(result, name, str(rec.path)))
        except CancelledError as err:
            self.post_message(JobCancelled("build vectors", str(err)))
        except Exception as err:
            self.post_message(JobFailed("build vectors", f"{type(err).__name__}: {err}"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="steer", description="next tokens")
    def tokens_job(self, pair: Any, steers: list, steering: list[dict], cancel: threading.Event) -> None:
        from steertui.engine import gendiff, verdict
        from steertui.engine.lens import lens_diff
        from steertui.errors import CancelledError

        try:
            sample = pair.vulnerable
            prompt = verdict.build_prompt(self.session, sample.code, sample.cwe_name, sample.id).text
            if self.recorder is not None and steering:
                self.recorded(self.recorder.set_steering, steering)
                result = self.recorded(self.recorder.top_tokens, [prompt], steering=steering, k=10, cancel=cancel)
                lens = self.recorded(self.recorder.lens, prompt, steering=steering, k=5, target=" Yes", cancel=cancel)
            else:
                result = gendiff.top_tokens(self.session, [prompt], steers, k=10, cancel=cancel)
                lens = lens_diff(self.session, prompt, steers, k=5, target=" Yes", cancel=cancel)
            answers = verdict.answer_tokens(self.session)
            base = float(verdict.score(self.session, [prompt], answers)[0])
            steered = float(verdict.score(self.session, [prompt], answers, steers=steers, cancel=cancel)[0])
            self.post_message(TokensComputed(sample.id, result, base, steered,
                                             [_describe(s.describe()) for s in steers], lens))
        except CancelledError as err:
            self.post_message(JobCancelled("next tokens", str(err)))
        except Exception as err:
            self.post_message(JobFailed("next tokens", f"{type(err).__name__}: {err}"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="steer", description="generate")
    def gen_job(self, pair: Any, steers: list, steering: list[dict], cancel: threading.Event) -> None:
        from steertui.engine import gendiff
        from steertui.errors import CancelledError

        def progress(stage: str, done: int, total: int) -> None:
            self.post_message(JobProgress("generate", stage, done, total))

        try:
            prompt = gendiff.fix_site_prompt(self.session, pair, NEW_TOKENS)
            if self.recorder is not None and steering:
                self.recorded(self.recorder.set_steering, steering)
                result = self.recorded(self.recorder.generate, [prompt.text], steering=steering,
                                       max_new_tokens=NEW_TOKENS, cancel=cancel, progress=progress)
            else:
                result = gendiff.generation_diff(self.session, [prompt.text], steers, max_new_tokens=NEW_TOKENS,
                                                 cancel=cancel, progress=progress)
            self.post_message(GenerationDiffed(prompt, result, [_describe(s.describe()) for s in steers]))
        except CancelledError as err:
            self.post_message(JobCancelled("generate", str(err)))
        except Exception as err:
            self.post_message(JobFailed("generate", f"{type(err).__name__}: {err}"))

    @work(thread=True, exclusive=True, exit_on_error=False, group="steer", description="evaluate")
    def eval_job(self, pairs: list, layer: int, alpha: float, method: str, cancel: threading.Event) -> None:
        from steertui.engine.evaluate import EvalSettings
        from steertui.errors import CancelledError

        def progress(stage: str, done: int, total: int) -> None:
            self.post_message(JobProgress("evaluate", stage, done, total))

        try:
            settings = EvalSettings(layers=(layer,), alphas=(-alpha, 0.0, alpha), method=method, readout="last",
                                    split="pairs", seed=0, folds=3)
            result = self.recorded(self.ensure_recorder().evaluate, pairs, settings, progress=progress, cancel=cancel)
            self.post_message(Evaluated(result))
        except CancelledError as err:
            self.post_message(JobCancelled("evaluate", str(err)))
        except Exception as err:
            self.post_message(JobFailed("evaluate", f"{type(err).__name__}: {err}"))

    # ---- messages -----------------------------------------------------------------------------------
    def on_model_loaded(self, message: ModelLoaded) -> None:
        self.session = message.session
        i = message.info
        self.query_one("#status", Static).update(
            f"[b]{i['name']}[/] · {i['model_type']} · {i['n_layers']} layers · d_model {i['d_model']} · "
            f"{i['dtype']} on {i['device']} · blocks return {i['adapter']['block_output']}")

    def on_session_opened(self, message: SessionOpened) -> None:
        self.session_steps = message.steps
        self.sub_title = f"session {message.path}"
        if message.vectors is not None:
            self._show_vectors(message.vectors)
        active = ", ".join(message.steering) or "none"
        self.notify(f"{len(message.steps)} recorded steps; active steering: {active}", title="session")

    def on_layers_probed(self, message: LayersProbed) -> None:
        self.layers_report = message.report
        self.query_one(LayersPane).show_report(message.report)

    def on_dataset_loaded(self, message: DatasetLoaded) -> None:
        self.dataset = message.dataset
        self.query_one(DatasetPane).show_dataset(message.dataset)
        for warning in message.dataset.warnings[:3]:
            self.notify(str(warning), title="data", severity="warning")

    def on_job_progress(self, message: JobProgress) -> None:
        pane = {"generate": self.query_one(GenPane), "evaluate": self.query_one(EvalPane)}.get(
            message.job, self.query_one(SteerPane))
        pane.border_subtitle = f"{message.job}: {message.stage} {message.done}/{message.total} · Escape cancels"

    def on_job_cancelled(self, message: JobCancelled) -> None:
        self.cancelled.append(message)
        self._job_ended(message.job, "cancelled")
        self.notify(message.detail, title=f"{message.job} cancelled", severity="warning")

    def on_vectors_built(self, message: VectorsBuilt) -> None:
        r = message.result
        best = self._show_vectors(SteeringVectors(message.name, r.vectors.method, list(r.diagnostics),
                                                  r.vectors.vectors))
        self.sub_title = f"session {message.session_path} (autosaved)"
        self.notify(f"{len(r.diagnostics)} layers from {len(r.activations.pair_ids)} pairs; layer {best.layer} has "
                    "the best held-out AUROC and is selected", title=f"vectors {message.name} built")

    def _show_vectors(self, vectors: SteeringVectors) -> Any:
        """Show vectors in the steering pane with alpha 0 and the layer of best held-out AUROC selected."""
        self.build, self.vector_name, self.alpha_steps = vectors, vectors.name, 0
        pane = self.query_one(SteerPane)
        pane.show_build(vectors)
        best = max(vectors.diagnostics, key=lambda d: d.auroc_pairs if d.auroc_pairs is not None else -1.0)
        pane.move_cursor(row=vectors.diagnostics.index(best))
        self._show_steering()
        return best

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "steer":
            self._show_steering()

    def on_evaluated(self, message: Evaluated) -> None:
        self.evaluation = message.result
        self.query_one(EvalPane).show_result(message.result)

    def on_generation_diffed(self, message: GenerationDiffed) -> None:
        self.generation = message
        self.query_one(GenPane).show_diff(message)

    def on_tokens_computed(self, message: TokensComputed) -> None:
        self.tokens = message
        self.query_one(TokensPane).show_tokens(message)
        self.query_one(LensPane).show_lens(message.lens)

    def on_job_failed(self, message: JobFailed) -> None:
        self.failures.append(message)
        if message.job == "load model":
            self.query_one("#status", Static).update(f"[red]model not loaded:[/] {message.error}")
            self.query_one(LayersPane).loading = False
        elif message.job == "load data":
            self.query_one(DatasetPane).loading = False
        elif message.job in ("build vectors", "next tokens", "generate", "evaluate"):
            self._job_ended(message.job, "failed")
        self.notify(message.error, title=message.job, severity="error", timeout=10)

    # ---- actions ------------------------------------------------------------------------------------
    def action_focus(self, pane_id: str) -> None:
        pane = self.query_one(f"#{pane_id}")
        if pane_id in self.TABS and self.query_one(TabbedContent).active != self.TABS[pane_id]:
            self.query_one(TabbedContent).active = self.TABS[pane_id]
            self.call_after_refresh(pane.focus)  # a pane can take focus once its tab is shown
        else:
            pane.focus()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that need a model, pairs or vectors are shown only when they can run."""
        if action in ("build", "tokens", "generate") and (self.session is None or self.dataset is None
                                                or not self.dataset.pairs):
            return None
        if action in ("alpha", "evaluate") and self.build is None:
            return None
        if action == "cancel" and self.cancel_event is None:
            return None
        return True

    def _new_cancel(self) -> threading.Event:
        if self.cancel_event is not None:
            self.cancel_event.set()  # a newer job of the same group replaces the older one
        self.cancel_event = threading.Event()
        self.refresh_bindings()
        return self.cancel_event

    def action_build(self) -> None:
        if self.session is None or self.dataset is None:
            return
        self.action_focus("steer")
        self.query_one(SteerPane).border_subtitle = "build vectors: starting · Escape cancels"
        self.build_job(list(self.dataset.pairs), self._new_cancel())

    def action_alpha(self, direction: int) -> None:
        if self.build is None:
            return
        self.alpha_steps = 0 if direction == 0 else self.alpha_steps + direction
        self._show_steering()

    def action_tokens(self) -> None:
        pair = self.selected_pair()
        if self.session is None or pair is None:
            return
        self.action_focus("tokens")
        self.query_one(TokensPane).border_subtitle = f"computing for {pair.vulnerable.id} · Escape cancels"
        self.tokens_job(pair, self.current_steers(), self.current_steering(), self._new_cancel())

    def action_generate(self) -> None:
        pair = self.selected_pair()
        if self.session is None or pair is None:
            return
        self.action_focus("gen")
        self.query_one(GenPane).border_subtitle = f"generating for {pair.id} · Escape cancels"
        self.gen_job(pair, self.current_steers(), self.current_steering(), self._new_cancel())

    def action_cycle_method(self) -> None:
        self.method = METHODS[(METHODS.index(self.method) + 1) % len(METHODS)]
        self._show_steering()
        self.notify(f"the next build (b) uses {self.method}", title="method")

    def action_cycle_positions(self) -> None:
        self.positions = POSITIONS[(POSITIONS.index(self.positions) + 1) % len(POSITIONS)]
        self._show_steering()

    def action_evaluate(self) -> None:
        d = self.steering_layer()
        if self.session is None or self.dataset is None or d is None:
            return
        alpha = abs(self.alpha()) or ALPHA_STEP * d.residual_norm / d.vector_norm
        self.action_focus("eval")
        self.query_one(EvalPane).border_subtitle = f"evaluating layer {d.layer} at ±{alpha:.3g} · Escape cancels"
        self.eval_job(list(self.dataset.pairs), d.layer, alpha, self.build.method, self._new_cancel())

    def action_help(self) -> None:
        """The focused pane's HELP, then every key of the console."""
        from steertui.tui.screens.help import HelpScreen

        pane = self.focused
        while pane is not None and not getattr(pane, "HELP", None):
            pane = pane.parent
        keys = "\n".join(f"| `{b.key}` | {b.description} |" for b in self.BINDINGS if b.description)
        text = (getattr(pane, "HELP", "") or "") + "\n## Keys\n| key | action |\n|---|---|\n" + keys
        self.push_screen(HelpScreen(text))

    def action_zoom(self) -> None:
        """Maximise the focused pane, or restore the layout."""
        if self.screen.maximized is not None:
            self.screen.minimize()
        elif self.focused is not None:
            pane = self.focused
            while pane.parent is not None and not getattr(pane, "HELP", None):
                pane = pane.parent
            self.screen.maximize(pane, container=False)

    def action_cancel(self) -> None:
        if self.cancel_event is not None:
            self.cancel_event.set()

    # ---- state read by actions and tests ----------------------------------------------------------------
    def selected_pair(self) -> Any:
        if self.dataset is None or not self.dataset.pairs:
            return None
        row = self.query_one(DatasetPane).cursor_row
        return self.dataset.pairs[min(max(row, 0), len(self.dataset.pairs) - 1)]

    def steering_layer(self) -> Any:
        """The diagnostics of the highlighted layer of the last build, or None before a build."""
        if self.build is None:
            return None
        rows = self.build.diagnostics
        return rows[min(max(self.query_one(SteerPane).cursor_row, 0), len(rows) - 1)]

    def alpha(self) -> float:
        d = self.steering_layer()
        if d is None or not d.vector_norm:
            return 0.0
        return self.alpha_steps * ALPHA_STEP * d.residual_norm / d.vector_norm

    def current_steers(self) -> list:
        """The intervention the next-token view applies: the highlighted layer's vector times alpha."""
        from steertui.engine.steering import Steer

        d = self.steering_layer()
        if d is None:
            return []
        return [Steer(d.layer, self.build.vectors[d.layer], self.alpha(), self.positions,
                      label=f"{self.build.name}@{d.layer}")]

    def _job_ended(self, job: str, how: str) -> None:
        self._show_steering()
        if job == "next tokens":
            self.query_one(TokensPane).border_subtitle = f"{how} · t: compute for the selected pair"
        elif job == "generate":
            self.query_one(GenPane).border_subtitle = f"{how} · g: generate for the selected pair"
        elif job == "evaluate":
            self.query_one(EvalPane).border_subtitle = f"{how} · e: evaluate the steering layer"

    def ensure_recorder(self) -> Any:
        """The session everything the user makes is recorded in: the one opened with ``--session``, else a new
        file in the sessions folder, created by the first build (called from a worker)."""
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

    def current_steering(self) -> list[dict]:
        """The current steering as the session records it: vector name, layer, alpha, positions."""
        d = self.steering_layer()
        if d is None or not self.vector_name:
            return []
        return [{"vector": self.vector_name, "layer": d.layer, "alpha": self.alpha(), "positions": self.positions}]

    def _show_steering(self) -> None:
        d = self.steering_layer()
        if d is None:
            self.query_one(SteerPane).show_steering(f"b: build {self.method} vectors from the pairs (m: method)")
            return
        ratio = abs(self.alpha_steps) * ALPHA_STEP
        self.query_one(SteerPane).show_steering(
            f"{self.build.name} ({self.build.method}) · layer {d.layer} · alpha {self.alpha():+.3g} "
            f"(‖αv‖/‖h‖ {ratio:.2f}) · {self.positions} positions")

    def action_reprobe(self) -> None:
        if self.session is not None:
            self.probe()


def _describe(d: dict[str, Any]) -> str:
    return f"{d.get('label') or 'vector@' + str(d['layer'])} x{d['alpha']:.3g} ({d['positions']})"


def run_app(args: argparse.Namespace) -> int:
    session_file = getattr(args, "session", None)
    if session_file:
        from steertui.engine.session.store import read_session, resolve_session_file

        path = resolve_session_file(session_file)
        read_session(path)  # a bad file stops here with one line and exit 2, before the console starts
        session_file = str(path)
    SteerApp(model=args.model, dataset=args.dataset, device=args.device, dtype=args.dtype,
             session_file=session_file).run()
    return 0
