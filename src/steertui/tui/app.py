"""The steertui console. Heavy work runs in thread workers that call the engine and post messages back."""

from __future__ import annotations

import argparse
from typing import Any

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Header, Static

from steertui.tui.messages import DatasetLoaded, JobFailed, LayersProbed, ModelLoaded, SessionOpened
from steertui.tui.panes.dataset import DatasetPane
from steertui.tui.panes.layers import LayersPane


class SteerApp(App):
    """Pairs on the left; the model's layers on the right; a status line naming model and data source."""

    CSS_PATH = "app.tcss"
    TITLE = "steertui"
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("d", "focus('pairs')", "Pairs", id="focus_pairs"),
        Binding("l", "focus('layers')", "Layers", id="focus_layers"),
        Binding("r", "reprobe", "Re-probe", id="reprobe"),
    ]

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

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="left"):
            yield DatasetPane(id="pairs")
        with Vertical(id="right"):
            yield Static("loading model…", id="status")
            yield LayersPane(id="layers")
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
            self.post_message(SessionOpened(str(rec.path), steps, steering))
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

    def on_job_failed(self, message: JobFailed) -> None:
        self.failures.append(message)
        if message.job == "load model":
            self.query_one("#status", Static).update(f"[red]model not loaded:[/] {message.error}")
            self.query_one(LayersPane).loading = False
        elif message.job == "load data":
            self.query_one(DatasetPane).loading = False
        self.notify(message.error, title=message.job, severity="error", timeout=10)

    # ---- actions ------------------------------------------------------------------------------------
    def action_focus(self, pane_id: str) -> None:
        self.query_one(f"#{pane_id}").focus()

    def action_reprobe(self) -> None:
        if self.session is not None:
            self.probe()


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
