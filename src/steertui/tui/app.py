"""The steertui console. Heavy work runs in thread workers that call the engine and post messages back."""

from __future__ import annotations

import argparse
from typing import Any

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Footer, Header, Static

from steertui.tui.messages import DatasetLoaded, JobFailed, LayersProbed, ModelLoaded
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
                 dtype: str | None = None) -> None:
        super().__init__()
        self.model_spec, self.dataset_spec, self.device_spec, self.dtype_spec = model, dataset, device, dtype
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
    if getattr(args, "session", None):
        from steertui.errors import SteertuiError

        raise SteertuiError("opening a session file in the console is not available yet",
                            "replay it headless with `steertui replay FILE` once sessions land")
    SteerApp(model=args.model, dataset=args.dataset, device=args.device, dtype=args.dtype).run()
    return 0
