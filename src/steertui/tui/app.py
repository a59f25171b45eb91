"""The steertui console. Heavy work runs in thread workers that call the engine and post messages back."""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import sys
import threading
from typing import Any, Callable, Iterable

from textual.actions import parse as parse_action
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.markup import escape
from textual.reactive import var
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Header, HelpPanel, Static, TabbedContent, TabPane
from textual.worker import Worker

from steertui.engine.choices import METHODS, POSITIONS
from steertui.engine.vectors import best_layer, raw_alpha  # import torch only when called
from steertui.errors import SteertuiError
from steertui.tui.footer import SteerFooter
from steertui.tui.jobs import STEER_GROUP, Jobs, describe
from steertui.tui.messages import (DatasetLoaded, Evaluated, GenerationDiffed, Gridded, JobCancelled, JobFailed,
                                   JobProgress, LayersProbed, ModelLoaded, ReportWritten, SessionOpened,
                                   SteeringVectors, Swept, TokensComputed, VectorsBuilt)
from steertui.tui.panes.code import CodePane
from steertui.tui.panes.dataset import DatasetPane
from steertui.tui.panes.evaluate import EvalPane, EvalView, GridTable
from steertui.tui.panes.generate import GenPane
from steertui.tui.panes.layers import LayersPane, LayersView
from steertui.tui.panes.lens import DEFAULT_TARGET, LensGrid, LensPane
from steertui.tui.panes.plots import DiagnosticsPlot
from steertui.tui.panes.steer import CweTable, SteerPane, SteerView
from steertui.tui.panes.tokens import TokensPane, TokensView

ALPHA_STEP = 0.25  # one `+` adds a quarter of the layer's mean residual norm along the vector
SWEEP_STEPS = 3  # the alpha sweep spans at least ±3 steps (or ± the current alpha when it is larger), 7 points
SET_SWEEP = 2.0  # `a` with pinned layers: multipliers of their alphas from −2 to +2
TERMINAL_CHECK_S = 1.0  # how often the console checks that its terminal is still there
FULL_GC_SPACING = 10  # full garbage collections run this many times less often while the console runs
HANGUP_EXIT = 129  # 128 + SIGHUP: the exit status of a program whose terminal hung up
LIVE_DELAY = 0.2  # seconds without a steering change before the next tokens and the lens grid re-run by themselves
# the steering jobs: the pane each shows its progress and outcome in, and what to press when it is idle
JOB_PANES = {"build vectors": ("steer", ""), "import vector": ("steer", ""),
             "next tokens": ("tokens", "t: compute for the selected pair"),
             "generate": ("gen", "g: generate for the selected pair"),
             "evaluate": ("eval", "e: evaluate the steering layer"),
             "alpha sweep": ("sweep", "a: sweep alpha at the steering layer"),
             "layer grid": ("grid", "x: every layer at 7 alphas")}
# the actions whose command Textual's own palette commands already are: Quit, Keys (the help panel), Maximize
TEXTUAL_COMMANDS = ("quit", "help", "zoom")
# the tabs on the right: label, pane id (its tab is "tab-<id>"), pane, and the view holding it with its plots
TAB_PANES = (("Code", "code", CodePane, None), ("Layers", "layers", LayersPane, LayersView),
             ("Steer", "steer", SteerPane, SteerView), ("Tokens", "tokens", TokensPane, TokensView),
             ("Lens", "lens", LensPane, None), ("Gen", "gen", GenPane, None), ("Eval", "eval", EvalPane, EvalView))


class SteerApp(Jobs, App):
    """Pairs on the left; on the right a status line naming model and data source above the tabs: the model's
    layers, the steering vectors per layer, the next tokens and the logit lens baseline against steered, the
    continuations at a pair's fix site, and the held-out evaluation. The workers are in :mod:`steertui.tui.jobs`."""

    CSS_PATH = "app.tcss"
    TITLE = "steertui"
    # the command palette (ctrl+p) offers Textual's system commands and every binding below that can run now,
    # named by its description and explained by its tooltip (get_system_commands)
    BINDINGS = [
        Binding("q", "quit", "Quit", id="quit"),
        Binding("d", "focus('pairs')", "Pairs", id="focus_pairs", tooltip="focus the pairs"),
        Binding("o", "focus('code')", "Code", id="focus_code", show=False,
                tooltip="focus the code of the pair under the cursor"),
        Binding("l", "focus('layers')", "Layers", id="focus_layers", tooltip="focus the layers"),
        Binding("s", "focus('steer')", "Steer", id="focus_steer", tooltip="focus the steering vectors"),
        Binding("n", "focus('tokens')", "Tokens", id="focus_tokens", tooltip="focus the next tokens"),
        Binding("k", "focus('lens')", "Lens", id="focus_lens", show=False, tooltip="focus the logit lens"),
        Binding("c", "focus('gen')", "Continuations", id="focus_gen", show=False, tooltip="focus the continuations"),
        Binding("v", "focus('eval')", "Evaluation", id="focus_eval", show=False, tooltip="focus the evaluation"),
        Binding("r", "reprobe", "Re-probe", id="reprobe",
                tooltip="probe the layers on the selected pair's verdict prompt: one real forward"),
        Binding("b", "build", "Build vectors", id="build",
                tooltip="one vector per layer from every loaded pair, with diagnostics"),
        Binding("i", "import_vector", "Import vector", id="import", show=False,
                tooltip="a steering vector from a file: exported, a session's sidecar, or another tool's layer.L"),
        Binding("plus,equals_sign", "alpha(1)", "Alpha +", id="alpha_up",
                tooltip="one step up: a quarter of the layer's mean residual norm"),
        Binding("minus", "alpha(-1)", "Alpha -", id="alpha_down", tooltip="one step down"),
        Binding("0", "alpha(0)", "Alpha 0", id="alpha_zero", show=False, tooltip="no steering"),
        Binding("m", "cycle_method", "Method", id="method", show=False,
                tooltip="the method of the next build: mean-diff, pca or probe"),
        Binding("p", "cycle_positions", "Positions", id="positions", show=False,
                tooltip="where the steering is added: all, prompt or generated"),
        Binding("t", "tokens", "Next tokens", id="tokens",
                tooltip="the selected pair's verdict prompt, baseline against steered, and its logit lens"),
        Binding("g", "generate", "Generate", id="generate",
                tooltip="the selected pair continued at its fix site, baseline against steered"),
        Binding("e", "evaluate", "Evaluate", id="evaluate",
                tooltip="held-out verdict shift of the steering layer at -a, 0, +a (of the pinned layers at "
                "once, x-1, 0, x1) with a random control"),
        Binding("S", "toggle_shots", "Few-shot", id="shots", show=False,
                tooltip="verdict prompts after the few-shot example pair of their CWE (next tokens, lens, "
                "evaluations)"),
        Binding("R", "report", "Report", id="report", show=False,
                tooltip="write the session's report as HTML beside its file (steertui report FILE --html)"),
        Binding("escape", "cancel", "Cancel", id="cancel", show=False,
                tooltip="the running build, next-token, generation, evaluation, alpha-sweep or layer-grid job"),
        Binding("question_mark,f1", "help", "Help", id="help",
                tooltip="show or hide the focused pane's help and every key"),
        Binding("z", "zoom", "Zoom", id="zoom", show=False, tooltip="the focused pane fills the screen, or not"),
    ]
    # what the keys need (check_action): setting one refreshes the footer's keys. Set without comparing the old
    # value with the new one, which for vectors would compare tensors.
    model: var[Any] = var(None, bindings=True, always_update=True)
    dataset: var[Any] = var(None, bindings=True, always_update=True)
    build: var[SteeringVectors | None] = var(None, bindings=True, always_update=True)  # in the steering pane

    def __init__(self, model: str | None = None, dataset: str | None = None, device: str | None = None,
                 dtype: str | None = None, session_file: str | None = None, watch_terminal: bool = False,
                 vectors_file: str | None = None, vector: str | None = None) -> None:
        super().__init__()
        # --vectors FILE [--vector NAME]: imported once the model and the pairs are loaded (or the session opened)
        self.vectors_file, self.vector_wanted = vectors_file, vector
        self.watch_terminal = watch_terminal
        self.model_spec, self.dataset_spec, self.device_spec, self.dtype_spec = model, dataset, device, dtype
        self.session_file = session_file
        self.recorder: Any = None
        self.session_steps: list[str] = []
        self.session_ready = False  # the session of --session is open (its SessionOpened shown)
        self.layers_report: Any = None
        self.failures: list[JobFailed] = []
        self.report_path: str | None = None  # the last report written (R)
        self.alpha_steps: float = 0  # alpha in steps of ALPHA_STEP residual norms (whole, but for a restored one)
        self.restored: tuple[int, float, float] | None = None  # an opened session's (layer, steps, exact alpha)
        # layers kept in the steering when the cursor leaves them (space): layer -> (alpha steps, coefficient)
        self.pinned: dict[int, tuple[float, float]] = {}
        self.tokens: TokensComputed | None = None
        self.generation: GenerationDiffed | None = None
        self.evaluation: Any = None  # engine.evaluate.EvalResult of the last `e`
        self.sweep: Any = None  # engine.ops.AlphaSweep of the last `a`
        self.grid: Any = None  # engine.ops.LayerAlphaGrid of the last `x`
        self.method = METHODS[0]  # used by the next build
        self.positions = POSITIONS[0]  # where the steering is added in next tokens, lens and continuations
        self.cancelled: list[JobCancelled] = []
        self.lens_target = DEFAULT_TARGET  # the token the lens grid follows (the lens pane changes it)
        self.target_before: str | None = None  # while a new target's lens runs: the one to go back to if it fails
        self.preview_due = False  # the steering changed since the next tokens on screen were computed
        self.preview_timer: Any = None
        self.by_layer = False  # `w` in the Tokens tab: the verdict's attribution by layer under the next tokens
        self.split_shifts = False  # `y` in the evaluation pane: evaluations split each shift (attribution)
        self.fix_sites = False  # `F` in the evaluation pane: evaluations score each pair's fix-site preference too
        self.per_cwe = False  # `C` in the evaluation pane: evaluations steer each CWE with its own vector per fold
        self.shots = False  # `S`: verdict prompts after their CWE's few-shot example pair (tokens, lens, evaluations)
        self.preview_worker: Worker | None = None
        self.screen_idle = threading.Event()  # cleared while a job's message waits to be shown (tui.jobs)
        self.screen_idle.set()
        self.gc_thresholds: tuple[int, int, int] | None = None  # the interpreter's, while the console changes them

    def compose(self) -> ComposeResult:
        yield Header()
        with Vertical(id="left"):
            yield DatasetPane(id="pairs")
        with Vertical(id="right"):
            yield Static("loading model…", id="status")
            with TabbedContent(id="tabs", initial="tab-layers"):
                for label, pane_id, pane, view in TAB_PANES:
                    with TabPane(label, id=f"tab-{pane_id}"):
                        yield pane(id=pane_id) if view is None else view(pane(id=pane_id), id=f"{pane_id}-view")
        yield SteerFooter()

    def on_mount(self) -> None:
        if self.watch_terminal:
            self.set_interval(TERMINAL_CHECK_S, self.check_terminal)
        if self.session_file:
            self.open_session()
            return
        self.load_dataset()
        self.load_model()

    def check_terminal(self) -> None:
        """End the console when its terminal is gone (an SSH connection dropped, a tmux server killed). The hangup
        signal does not always reach it (under `make run` only make gets it), and Textual's input thread then spins
        on the closed terminal at 100% of a core, holding the model's memory, forever. Every recorded step is
        already in the session file (autosave)."""
        if not os.isatty(sys.__stdin__.fileno()):
            self.hang_up()

    def hang_up(self) -> None:
        """End the process at once with status 129, the session file's lock released (after any save in progress:
        saves are atomic). Not through Textual's shutdown: it restores a terminal that is gone, and can wait on
        it forever (its writer thread ends at the first failed write, and its stop then blocks on the writer's
        full queue: consoles hung so in 6 of 17 tries). A job still computing is lost, as a cancelled one
        would be; every recorded step is already in the file."""
        self.workers.cancel_all()
        if self.recorder is not None:
            self.recorder.close()
        os._exit(HANGUP_EXIT)

    # ---- messages -----------------------------------------------------------------------------------
    def on_model_loaded(self, message: ModelLoaded) -> None:
        self.model = message.model
        # torch, transformers and the model leave ~10^6 long-lived objects: a full garbage collection over them
        # takes ~0.3 s and stops every thread, the event loop too. Frozen, later collections skip them.
        gc.freeze()
        self._calm_full_collections()
        i = message.info
        self.query_one("#status", Static).update(
            f"[b]{escape(str(i['name']))}[/] · {i['model_type']} · {i['n_layers']} layers · d_model {i['d_model']} · "
            f"{i['dtype']} on {i['device']} · blocks return {i['adapter']['block_output']}")
        self.import_when_ready()

    def _calm_full_collections(self) -> None:
        """Run full garbage collections a tenth as often. Even with the model frozen, the console keeps tens of
        thousands of objects (Textual caches every rendered line: ~27,000 caches after b, t and g), a full
        collection scans them all, and one ran at almost every tab switch: 30-75 ms on top of the repaint, the
        event loop's longest waits (measured over 28 tab switches). Objects without reference cycles are freed
        as before; only cyclic garbage that survived two younger collections waits longer. Unmounting restores
        the thresholds."""
        if self.gc_thresholds is None:
            self.gc_thresholds = gc.get_threshold()
            young, middle, full = self.gc_thresholds
            gc.set_threshold(young, middle, full * FULL_GC_SPACING)

    def on_session_opened(self, message: SessionOpened) -> None:
        self.session_steps, self.session_ready = message.steps, True
        self.sub_title = self._session_title() or f"session {message.path}"
        if self.recorder is not None and self.recorder.read_only is not None:
            self.notify(f"{self.recorder.read_only} — opened read-only: what you do here is not saved to it",
                        title="session", severity="warning", timeout=10, markup=False)
        if message.pair_id:  # the pair it worked on last: the next tokens and the continuation are of it
            self.select_pair(message.pair_id)
        if message.vectors is not None:
            self._show_vectors(message.vectors)
            self._restore_steering(message.interventions)
        if message.evaluation is not None:
            self._show_recorded_evaluation(message.evaluation)
        active = ", ".join(message.steering) or "none"
        self.notify(f"{len(message.steps)} recorded steps; active steering: {active}", title="session")
        self.import_when_ready()

    def _restore_steering(self, interventions: list[dict]) -> None:
        """Steer as the opened session does: each of its interventions on the Steer pane's vectors at its layer
        and exact alpha (several: each pinned, the cursor on the first), at the first one's positions. Others (on
        other vectors or layers) are named, not applied."""
        if not interventions:
            return
        rows = self.build.diagnostics
        index_of = {d.layer: i for i, d in enumerate(rows)}
        ours = [iv for iv in interventions if iv["vector"] == self.build.name and iv["layer"] in index_of]
        rest = [iv for iv in interventions if iv not in ours]
        if rest:
            names = ", ".join(f"{x['vector']}@{x['layer']}" for x in rest)
            self.notify(f"the session steers with {names}, which the Steer pane's vectors ({self.build.name}) do "
                        "not hold: not applied here (replay runs them)", title="session", severity="warning")
        if not ours:
            return

        def steps_of(iv: dict) -> tuple[float, float]:
            d = rows[index_of[iv["layer"]]]
            step = raw_alpha(ALPHA_STEP, d.residual_norm, d.vector_norm) if d.vector_norm else 0.0
            return (float(iv["alpha"]) / step if step else 0.0), float(iv["alpha"])

        iv = ours[0]
        self.query_one(SteerPane).move_cursor(row=index_of[iv["layer"]])
        self.alpha_steps, exact = steps_of(iv)
        self.restored = (iv["layer"], self.alpha_steps, exact)
        self.positions = iv["positions"]
        if len(ours) > 1:
            self.pinned = {x["layer"]: steps_of(x) for x in ours}
            self.query_one(SteerPane).mark_pinned(self.pinned)
            if len({x["positions"] for x in ours}) > 1:
                self.notify(f"the console adds every layer at the same positions: {self.positions} (the session's "
                            "first intervention's) are used here; replay runs each as recorded", title="session",
                            severity="warning")
        self._show_steering()

    def _show_recorded_evaluation(self, result: Any) -> None:
        """The session's last evaluation as recorded (not re-run): a layer grid when it spans several layers and
        alphas, an alpha sweep when it is one layer at several alphas (and records each row's mean unsteered score
        and random yes-rate, which the curve needs), else the table."""
        from steertui.engine.ops import (AlphaSweep, layer_alpha_grid, spans_grid, spans_sweep, steered_layers,
                                         sweep_curve)

        recorded = "as recorded in the session (not re-run)"
        curve = sweep_curve(result) if spans_sweep(result.settings) else None
        if spans_grid(result.settings):
            self._show_grid(layer_alpha_grid(result))
            self.query_one("#grid").border_subtitle = f"{recorded} · x re-runs"
        elif curve is not None and all(x == x for x in curve.score + curve.random_yes_rate):  # no NaN: recorded
            self.sweep = AlphaSweep(result, curve)
            s = result.settings
            self.query_one(EvalView).show_sweep(self.sweep, self.layer_note(steered_layers(s, curve.layer)),
                                                self.alpha() if s.together is None else 1.0)
            self.query_one("#sweep").border_subtitle = f"{recorded} · a re-runs"
        else:
            self.evaluation = result
            self.query_one(EvalView).show_result(result, f"{recorded}: e re-runs it for the steering layer")
            self.query_one(EvalPane).border_subtitle = f"{recorded} · e re-runs"

    def on_layers_probed(self, message: LayersProbed) -> None:
        self.layers_report = message.report
        self.query_one(LayersView).show_report(message.report, message.prompt)

    def on_dataset_loaded(self, message: DatasetLoaded) -> None:
        gc.freeze()  # the dataset lives as long as the app (see on_model_loaded)
        self.dataset = message.dataset
        self.query_one(DatasetPane).show_dataset(message.dataset)
        self.import_when_ready()
        for warning in message.dataset.warnings[:3]:
            self.notify(str(warning), title="data", severity="warning", markup=False)

    def on_job_progress(self, message: JobProgress) -> None:
        self._job_status(message.job, f"{message.job}: {message.stage} {message.done}/{message.total}")

    def on_job_cancelled(self, message: JobCancelled) -> None:
        self.cancelled.append(message)
        self._job_ended(message.job, "cancelled")
        self.notify(message.detail, title=f"{message.job} cancelled", severity="warning", markup=False)

    def on_vectors_built(self, message: VectorsBuilt) -> None:
        r = message.result
        best = self._show_vectors(SteeringVectors(message.name, r.vectors.method, list(r.diagnostics),
                                                  r.vectors.vectors, r.cwe, message.left_out))
        self.sub_title = self._session_title()
        n = len(r.activations.pair_ids)
        if message.imported is None:
            self.notify(f"{len(r.diagnostics)} layers from {n} pairs; layer {best.layer} has the best held-out "
                        "AUROC and is selected", title=f"vectors {message.name} built")
            return
        i = message.imported
        left = f" (left out: {len(message.left_out)} it was built from)" if message.left_out else ""
        notes = "".join(f"\nnote: {note}" for note in i.notes)
        self.notify(f"{i.path.name}: layers {', '.join(map(str, i.layers))}, read on {n} pairs{left}; layer "
                    f"{best.layer} separates them best and is selected{notes}", title=f"vector {message.name} imported",
                    severity="warning" if i.notes else "information", timeout=10, markup=False)

    def action_import_vector(self) -> None:
        """Ask for a vectors file under the steering table (its Enter imports it: on_steer_view_import_requested)."""
        if self.model is None or self.dataset is None or not self.dataset.pairs:
            return
        self.action_focus("steer")
        self.query_one(SteerView).ask_import()

    def on_steer_view_import_requested(self, message: SteerView.ImportRequested) -> None:
        self._import(message.path, message.name)

    def _import(self, file: str, name: str | None) -> None:
        self._job_status("import vector", f"importing {os.path.basename(file)}")
        pairs = list(self.dataset.pairs)
        self._start_shown("steer", lambda: self.import_job(file, name, pairs))

    def import_when_ready(self) -> None:
        """Import ``--vectors FILE`` once: when the model and the pairs are loaded (with ``--session``, once the
        session is open, so that the vector joins it)."""
        if self.vectors_file is None or self.model is None or self.dataset is None:
            return
        if self.session_file and not self.session_ready:
            return
        if not self.dataset.pairs:
            self.notify(f"{self.vectors_file}: not imported: {self.dataset.source.label} has no vulnerable/patched "
                        "pairs to read it on", title="import vector", severity="error", markup=False)
            self.vectors_file = None
            return
        file, self.vectors_file = self.vectors_file, None
        self._import(file, self.vector_wanted)

    def _show_vectors(self, vectors: SteeringVectors) -> Any:
        """Show vectors in the steering pane with alpha 0 and the layer of best held-out AUROC selected."""
        self.build, self.alpha_steps, self.restored, self.pinned = vectors, 0, None, {}
        pane = self.query_one(SteerPane)
        pane.show_build(vectors)
        best = best_layer(vectors.diagnostics)
        pane.move_cursor(row=vectors.diagnostics.index(best))
        self._show_steering()
        self.steering_changed("vectors")
        return best

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.data_table.id == "steer":
            d = self.steering_layer()
            if d is not None and d.layer in self.pinned:  # a pinned layer: its own alpha, exactly
                self.alpha_steps, exact = self.pinned[d.layer]
                self.restored = (d.layer, self.alpha_steps, exact)
            self._show_steering()
            self.steering_changed("layer")
        elif event.data_table.id == "pairs" and self.dataset is not None:
            pair = self.selected_pair()
            if pair is not None:
                self.query_one(CodePane).show_pair(pair)
                if self.tokens is not None or self.build is not None:  # not the first highlight of a new table
                    self.steering_changed("pair")

    def on_evaluated(self, message: Evaluated) -> None:
        from steertui.engine.ops import steered_layers

        self.evaluation = message.result
        s = message.result.settings
        self.query_one(EvalView).show_result(message.result, self.layer_note(steered_layers(s, s.layers[0])))

    def on_swept(self, message: Swept) -> None:
        from steertui.engine.ops import steered_layers

        self.sweep = message.sweep
        s = message.sweep.result.settings
        mark = self.alpha() if s.together is None else 1.0  # a multiplier of the pinned alphas: 1 is as they are
        self.query_one(EvalView).show_sweep(message.sweep, self.layer_note(steered_layers(s, s.layers[0])), mark)

    def on_gridded(self, message: Gridded) -> None:
        self._show_grid(message.grid)

    def _show_grid(self, grid: Any) -> None:
        """Show a layer grid (engine.ops.LayerAlphaGrid) with the steering layer marked."""
        self.grid, d = grid, self.steering_layer()
        self.query_one(EvalView).show_grid(grid, None if d is None else d.layer)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a held-out file (the Eval tab's `h`): select its pair; the code, the next tokens and the lens
        follow it."""
        if event.data_table.id != "files-table" or self.dataset is None:
            return
        table = event.data_table
        if not 0 <= event.cursor_row < len(table.files):
            return
        pair_id = table.files[event.cursor_row].pair
        if not self.select_pair(pair_id):
            self.notify(f"pair {pair_id} is not in the loaded data", title="held-out files", severity="warning")
            return
        self.notify(f"pair {pair_id} selected (o: its code, n: its next tokens)", title="held-out files")

    def select_pair(self, pair_id: str) -> bool:
        """Put the pairs' cursor on ``pair_id`` (its highlight updates the code and the live preview); False when
        the loaded data has no such pair."""
        index = next((i for i, p in enumerate(self.dataset.pairs) if p.id == pair_id), None) \
            if self.dataset is not None else None
        if index is not None:
            self.query_one(DatasetPane).move_cursor(row=index)
        return index is not None

    def on_data_table_cell_selected(self, event: DataTable.CellSelected) -> None:
        """Enter on a cell of the layer grid: steer with its layer and alpha (the Steer pane's vectors, built on
        every loaded pair, at that many residual-norm steps); the next tokens and the lens follow by themselves."""
        if event.data_table.id != "grid-table" or self.grid is None or self.build is None:
            return
        row, column = event.coordinate.row, event.coordinate.column
        if column < 1 or not 0 <= row < len(self.grid.layers):
            return
        layer, alpha = self.grid.layers[row], self.grid.alphas[column - 1]
        index = next((i for i, d in enumerate(self.build.diagnostics) if d.layer == layer), None)
        if index is None:  # vectors built since, without this layer
            self.notify(f"the vectors in the Steer pane have no layer {layer}", title="layer grid",
                        severity="warning")
            return
        self.query_one(SteerPane).move_cursor(row=index)
        self.alpha_steps = round(alpha / ALPHA_STEP)
        self._keep_pin()  # a pinned layer takes the cell's alpha (before the cursor's move reads the pin)
        self._show_steering()
        self.steering_changed("alpha")
        others = sorted(set(self.pinned) - {layer})
        also = (f"; the pinned layer(s) {', '.join(map(str, others))} steer too (the cell measured layer {layer} "
                "alone)" if others else "")
        self.notify(f"layer {layer} at α {alpha:+.2f} residual ({self.alpha_steps:+d} steps, coefficient "
                    f"{self.alpha():+.3g} on the Steer pane's vectors){also}; n shows the next tokens",
                    title="steering")

    def layer_note(self, layer: int | str) -> str:
        """How the evaluated layer (or layers, ``1+2``) was chosen: on the Steer pane's diagnostics over all
        loaded pairs, the files the evaluation holds out included (the console does not choose the layer inside
        each fold)."""
        n = self.build.diagnostics[0].n_pairs if self.build is not None and self.build.diagnostics else "the"
        what = f"layers {layer} were" if "+" in str(layer) else f"layer {layer} was"
        return f"{what} chosen on all {n} pairs, these held-out files included"

    def on_generation_diffed(self, message: GenerationDiffed) -> None:
        self.generation = message
        self.query_one(GenPane).show_diff(message)

    def on_tokens_computed(self, message: TokensComputed) -> None:
        self.tokens = message
        self.target_before = None
        self.query_one(TokensView).show_tokens(message)
        self.query_one(LensPane).show_lens(message.result.lens, ", ".join(message.steers) or "no steering")

    def on_report_written(self, message: ReportWritten) -> None:
        self.report_path = message.path
        self.notify(f"report written to {message.path}", title="session report", markup=False)

    def on_job_failed(self, message: JobFailed) -> None:
        self.failures.append(message)
        if message.job == "load model":
            self.query_one("#status", Static).update(f"[red]model not loaded:[/] {escape(message.error)}")
            self.query_one(LayersPane).loading = False
        elif message.job == "load data":
            self.query_one(DatasetPane).loading = False
        elif message.job in JOB_PANES:
            self._job_ended(message.job, "failed")
        if message.job == "next tokens" and self.target_before is not None:  # the new target is not one token
            self.query_one(LensPane).show_error(message.error)
            self.lens_target, self.target_before = self.target_before, None
        if message.job == "save session":
            self.sub_title = self._session_title()
        self.notify(message.error, title=message.job, severity="error", timeout=10, markup=False)

    def _session_title(self) -> str:
        """The header's session line: the file, and whether what is made is still being saved to it."""
        rec = self.recorder
        if rec is None:
            return ""
        if rec.autosave:
            return f"session {rec.path} (autosaved)"
        holder = getattr(rec.read_only, "holder", None)  # opened while another process writes it
        if holder is not None:
            who = f"pid {holder.pid}" if holder.pid is not None else "another process"
            return f"session {rec.path}: READ-ONLY (being written by {who}; nothing is saved here)"
        return f"session {rec.path}: NOT SAVED (autosave stopped; kept in memory only)"

    def on_unmount(self) -> None:
        if self.gc_thresholds is not None:
            gc.set_threshold(*self.gc_thresholds)
        if self.preview_timer is not None:
            self.preview_timer.stop()
        if self.recorder is not None:
            self.recorder.close()  # the session file's lock is released

    # ---- actions ------------------------------------------------------------------------------------
    def action_focus(self, pane_id: str) -> bool:
        """Show and focus a pane; True when its tab had to be switched to (the screen repaints at the next refresh)."""
        pane = self.query_one(f"#{pane_id}")
        tabs, tab = self.query_one(TabbedContent), f"tab-{pane_id}"
        focus = pane.parent.focus_shown if isinstance(pane.parent, EvalView) else pane.focus  # table or sweep
        switched = pane_id != "pairs" and tabs.active != tab
        if switched:
            tabs.active = tab
        focus()  # in the same repaint as the tab switch
        return switched

    def _start_shown(self, pane_id: str, start: Callable[[], object]) -> None:
        """Show the job's pane, then start the job: after the repaint when its tab was switched to, so that the
        job's thread does not compete with the full-screen layout and repaint a tab switch costs (measured: that
        repaint was the event loop's longest wait while a job ran)."""
        if self.action_focus(pane_id):
            self.call_after_refresh(start)
        else:
            start()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Keys that need a model, pairs or vectors are shown disabled until they can run (``model``, ``dataset``
        and ``build`` refresh the footer when set); Escape is shown only while a steering job runs."""
        if action in ("build", "import_vector", "tokens", "generate") and (self.model is None or self.dataset is None
                                                or not self.dataset.pairs):
            return None
        if action in ("alpha", "pin", "evaluate", "sweep", "grid") and self.build is None:
            return None
        if action == "cancel" and not self.steer_jobs():
            return None
        if action == "report" and (self.recorder is None or not self.recorder.steps):
            return None
        return True

    def steer_jobs(self) -> list[Worker]:
        """The steering jobs (build, next tokens, generation, evaluation) not yet finished: at most one, as a
        newer one cancels the older (exclusive workers)."""
        return [w for w in self.workers if w.group == STEER_GROUP and not w.is_finished]

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Escape is offered while a steering job runs; a job that ends while the console closes (its screens
        # already gone) has no keys to refresh
        if event.worker.group == STEER_GROUP and self.screen_stack:
            self.refresh_bindings()

    def action_report(self) -> None:
        if self.recorder is not None and self.recorder.steps:
            self.report_job()

    def action_build(self) -> None:
        if self.model is None or self.dataset is None:
            return
        self._job_status("build vectors", "build vectors: starting")
        pairs = list(self.dataset.pairs)
        self._start_shown("steer", lambda: self.build_job(pairs))

    def action_alpha(self, direction: int) -> None:
        if self.build is None:
            return
        self.alpha_steps = 0 if direction == 0 else self.alpha_steps + direction
        self._keep_pin()
        self._show_steering()
        self.steering_changed("alpha")

    def _keep_pin(self) -> None:
        """A pinned steering layer takes the current alpha (the keys change the pin under the cursor)."""
        d = self.steering_layer()
        if d is not None and d.layer in self.pinned:
            self.pinned[d.layer] = (self.alpha_steps, self.alpha())

    def action_pin(self) -> None:
        """Pin the steering layer at its alpha, so that it stays in the steering when the cursor moves to
        another layer (which then steers too), or unpin it."""
        d = self.steering_layer()
        if d is None:
            return
        if d.layer in self.pinned:
            del self.pinned[d.layer]
        elif not self.alpha():
            self.notify(f"layer {d.layer} has alpha 0: + or - first, then space pins it", title="pin",
                        severity="warning")
            return
        else:
            self.pinned[d.layer] = (self.alpha_steps, self.alpha())
        self.query_one(SteerPane).mark_pinned(self.pinned)
        self._show_steering()
        self.steering_changed("pinned layers")

    def action_tokens(self) -> None:
        pair = self.selected_pair()
        if self.model is None or pair is None:
            return
        self._job_status("next tokens", f"computing for {pair.vulnerable.id}")
        self.preview_due = False  # this run computes the current steering
        steering, target, shots = self.current_steering(), self.lens_target, self.shot_example(pair.cwe)
        self._start_shown("tokens", lambda: self.tokens_job(pair, steering, target, shots=shots))

    # ---- live preview: a steering change re-runs the next tokens and the lens grid by itself ----------------
    def steering_changed(self, what: str) -> None:
        """After a change of alpha, layer, positions, vectors or pair: mark the continuations and the evaluation
        on screen stale (with what changed) and re-run the next tokens and the lens grid once keys pause."""
        gen, pair = self.generation, self.selected_pair()
        if gen is not None and (describe(self.current_steering()) != list(gen.steers)
                                or pair is None or pair.id != gen.result.prompt.pair_id):
            self.query_one(GenPane).mark_stale(what)  # (a move back to what it was made with is no change)
        d = self.steering_layer()
        layer = None if d is None else d.layer  # a move back to the layer a result was made for is no change
        if self.evaluation is not None and what != "pair" and not (
                what == "layer" and tuple(self.evaluation.settings.layers) == (layer,)):
            self.query_one(EvalPane).border_subtitle = f"stale: the {what} changed · e re-runs"
        if self.sweep is not None and (what == "vectors" or (what == "layer" and self.sweep.curve.layer != layer)):
            self.query_one("#sweep").border_subtitle = f"stale: the {what} changed · a re-runs"
        if self.grid is not None and what == "vectors":  # rebuilt per fold with the vectors' method
            self.query_one("#grid").border_subtitle = "stale: the vectors changed · x re-runs"
        self.request_preview()

    def request_preview(self) -> None:
        """Run the live preview once keys pause (LIVE_DELAY), replacing one already waiting."""
        self.preview_due = True
        if self.preview_timer is not None:
            self.preview_timer.stop()
        self.preview_timer = self.set_timer(LIVE_DELAY, self.live_preview)

    def action_toggle_attribution(self) -> None:
        """The Tokens tab's `w`: the verdict's attribution by layer, or the lens target's plot, under the next
        tokens. A result on screen without the attribution is computed again with it (a live preview)."""
        self.by_layer = not self.by_layer
        view = self.query_one(TokensView)
        view.by_layer = self.by_layer
        view.show_plot()
        if self.by_layer and self.tokens is not None and self.tokens.result.attribution is None:
            self.request_preview()

    def live_preview(self) -> None:
        """Run the preview (not recorded) unless another steering job runs: a build, a continuation or an
        evaluation is never replaced by it (it waits for them), an older preview is (exclusive workers)."""
        self.preview_timer = None
        if (not self.preview_due or self.model is None or self.dataset is None or not self.screen_stack
                or not self.screen.is_mounted):  # no screen left: the app is closing
            return
        if not self.screen.query(DatasetPane):  # the app is closing: its panes are gone
            return
        pair = self.selected_pair()
        if pair is None:
            return
        if any(w is not self.preview_worker for w in self.steer_jobs()):
            self.preview_timer = self.set_timer(LIVE_DELAY, self.live_preview)
            return
        self.preview_due = False
        self._job_status("next tokens", f"live preview for {pair.vulnerable.id}")
        self.preview_worker = self.tokens_job(pair, self.current_steering(), self.lens_target, live=True,
                                              shots=self.shot_example(pair.cwe))

    def on_lens_grid_target_changed(self, message: LensGrid.TargetChanged) -> None:
        """A new target token for the lens grid: the lens runs again with it (a preview); a target that is not
        one token is named in the lens pane and the old one stays."""
        self.target_before, self.lens_target = self.lens_target, message.target
        self.steering_changed("target")

    def action_generate(self) -> None:
        pair = self.selected_pair()
        if self.model is None or pair is None:
            return
        self._job_status("generate", f"generating for {pair.id}")
        steering = self.current_steering()
        self._start_shown("gen", lambda: self.gen_job(pair, steering))

    def action_cycle_method(self) -> None:
        self.method = METHODS[(METHODS.index(self.method) + 1) % len(METHODS)]
        self._show_steering()
        self.notify(f"the next build (b) uses {self.method}", title="method")

    def action_cycle_positions(self) -> None:
        self.positions = POSITIONS[(POSITIONS.index(self.positions) + 1) % len(POSITIONS)]
        self._show_steering()
        self.steering_changed("positions")

    def action_evaluate(self) -> None:
        d = self.steering_layer()
        if self.model is None or self.dataset is None or d is None:
            return
        from steertui.engine.ops import layer_eval_settings, together_eval_settings

        pairs, (method, vector), weights = self.eval_pairs(), self.recipe(), self.steering_weights()
        if len(weights) > 1:  # the pinned layers with the steering layer, at once, as they steer now
            settings = together_eval_settings(weights, method, vector)
            self._job_status("evaluate", f"evaluating layers {'+'.join(map(str, sorted(weights)))} at once, "
                             "×−1, 0, ×1")
        else:
            alpha = abs(self.alpha()) or raw_alpha(ALPHA_STEP, d.residual_norm, d.vector_norm)
            settings = layer_eval_settings(d.layer, alpha, method, vector)
            self._job_status("evaluate", f"evaluating layer {d.layer} at ±{alpha:.3g}")
        settings = dataclasses.replace(settings, **self.eval_options())
        self._start_shown("eval", lambda: self.eval_job(pairs, settings))

    def eval_options(self) -> dict[str, bool]:
        """What the `y`, `F` and `C` toggles add to the next evaluation (``EvalSettings`` fields); per-CWE vectors
        only where the folds build their vectors (not for imported ones)."""
        shots = [self.shot_example(cwe) for cwe in dict.fromkeys(p.cwe for p in self.eval_pairs())] if self.shots \
            else []
        return {"attribution": self.split_shifts, "fix_site": self.fix_sites,
                "per_cwe": self.per_cwe and self.recipe()[1] is None,
                "shot_pairs": tuple(e.id for e in shots if e is not None)}

    def shot_example(self, cwe: str) -> Any:
        """With `S` on, the loaded data's few-shot example pair of ``cwe`` (None without one, or with `S` off)."""
        from steertui.engine.ops import few_shot_example

        return few_shot_example(self.dataset, cwe) if self.shots else None

    def action_toggle_shots(self) -> None:
        """`S`: the verdict prompts of the next tokens, the lens, the layer probe and the next e, a and x come after
        the few-shot example pair of their CWE (engine.verdict.shot_prefix), or not; the next tokens follow."""
        from steertui.engine.data.model import FEW_SHOT

        if not self.shots and (self.dataset is None or FEW_SHOT not in self.dataset.parts):
            label = self.dataset.source.label if self.dataset is not None else "no data"
            self.notify(f"{label} has no few-shot part to take examples from: load a SecLLMHolmes checkout "
                        "(--dataset PATH)", title="few-shot", severity="warning")
            return
        self.shots = not self.shots
        missing = sorted({p.cwe for p in self.eval_pairs() if self.shot_example(p.cwe) is None})
        self.notify("verdict prompts now come after the few-shot example pair of their CWE (its vulnerable file "
                    "answered yes, its patched file no): next tokens, lens and the next e, a and x, which leave "
                    "the few-shot pairs out"
                    + (f"; no example of {', '.join(missing)}: the evaluations refuse those" if missing else "")
                    if self.shots else "verdict prompts are zero-shot again", title="few-shot")
        self.steering_changed("few-shot examples")

    def action_toggle_split(self) -> None:
        """`y` in the evaluation pane: the next e, a and x split each file's shift into the vector's direct
        read-out and the later layers' response (engine.evaluate's attribution), or stop doing so."""
        self.split_shifts = not self.split_shifts
        self.notify("the next e, a and x split each shift: what the vector writes straight into the answer, and "
                    "what the layers after it change (read in the scoring forwards: no forward more)"
                    if self.split_shifts else "the next e, a and x do not split the shifts", title="evaluation")

    def action_toggle_fix_site(self) -> None:
        """`F` in the evaluation pane: the next e, a and x also score what the model would write at each held-out
        pair's fix site (engine.fixsite: log p(patched) − log p(vulnerable) continuation), or stop doing so."""
        self.fix_sites = not self.fix_sites
        self.notify("the next e, a and x also score each pair's fix site: does the vector make the model rather "
                    "write the patched line than the vulnerable one, beyond the random control (teacher-forced, "
                    "about as many forwards again as the verdict)"
                    if self.fix_sites else "the next e, a and x do not score the fix sites", title="evaluation")

    def action_toggle_per_cwe(self) -> None:
        """`C` in the evaluation pane: the next e, a and x steer each CWE's held-out pairs with a vector built from
        the fold's training pairs of that CWE alone (engine.evaluate's per_cwe), or with one vector again."""
        self.per_cwe = not self.per_cwe
        if self.per_cwe and self.recipe()[1] is not None:
            self.notify("the next e, a and x will steer each CWE with its own vector once the Steer pane's vectors "
                        "are built here (b): imported vectors are steered as they are, one for every CWE",
                        title="evaluation", severity="warning")
            return
        self.notify("the next e, a and x steer each CWE's held-out pairs with a vector built from the fold's "
                    "training pairs of that CWE alone: is one direction enough, or does each CWE need its own?"
                    if self.per_cwe else "the next e, a and x steer every CWE with one vector per fold",
                    title="evaluation")

    def action_sweep(self) -> None:
        """The held-out evaluation of the steering layer at 7 alphas from −A to +A (A: the current alpha or
        SWEEP_STEPS steps, whichever is larger), in the coefficients ``e`` applies; with pinned layers, of every
        steering layer at once at 7 multipliers of their alphas from −SET_SWEEP to +SET_SWEEP."""
        from steertui.engine.ops import sweep_alphas

        d = self.steering_layer()
        if self.model is None or self.dataset is None or d is None:
            return
        weights = self.steering_weights()
        self.action_focus("eval")
        view = self.query_one(EvalView)
        view.show_view("sweep")
        if len(weights) > 1:
            self._job_status("alpha sweep", f"sweeping layers {'+'.join(map(str, sorted(weights)))} at once "
                             f"over ×±{SET_SWEEP:g}")
            self.sweep_job(self.eval_pairs(), d.layer, sweep_alphas(SET_SWEEP), *self.recipe(), together=weights,
                           **self.eval_options())
            return
        top = raw_alpha(max(SWEEP_STEPS, abs(self.alpha_steps)) * ALPHA_STEP, d.residual_norm, d.vector_norm)
        self._job_status("alpha sweep", f"sweeping layer {d.layer} over α ±{top:.3g}")
        self.sweep_job(self.eval_pairs(), d.layer, sweep_alphas(top), *self.recipe(), **self.eval_options())

    def steering_layers(self) -> dict[int, tuple[float, float]]:
        """Every steering layer, the pinned ones and the highlighted one, in order -> (its alpha in steps, the
        coefficient applied)."""
        layers = dict(self.pinned)
        d = self.steering_layer()
        if d is not None:
            layers[d.layer] = (self.alpha_steps, self.alpha())
        return dict(sorted(layers.items()))

    def steering_weights(self) -> dict[int, float]:
        """Every steering layer -> its alpha in residual norms."""
        return {L: steps * ALPHA_STEP for L, (steps, _coef) in self.steering_layers().items()}

    def action_grid(self) -> None:
        """The held-out evaluation of every layer at 7 alphas from −A to +A in residual units, one column the same
        push at every layer. A: SWEEP_STEPS steps, or the current alpha rounded up to a multiple of SWEEP_STEPS
        steps, so that every column is a whole number of steps (Enter on a cell steers with it)."""
        import math

        from steertui.engine.ops import sweep_alphas

        if self.model is None or self.dataset is None or self.build is None:
            return
        top = SWEEP_STEPS * max(1, math.ceil(abs(self.alpha_steps) / SWEEP_STEPS)) * ALPHA_STEP
        self.action_focus("eval")
        self.query_one(EvalView).show_view("grid")
        self._job_status("layer grid", f"every layer over α ±{top:.3g} residual norms")
        self.grid_job(self.eval_pairs(), tuple(d.layer for d in self.build.diagnostics), sweep_alphas(top),
                      *self.recipe(), **self.eval_options())

    def action_help(self) -> None:
        """Textual's help panel (the focused pane's HELP and every active key), or hide it."""
        if self.screen.query(HelpPanel):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def action_zoom(self) -> None:
        """Maximise the focused pane (Textual's maximize), or restore the layout."""
        if self.screen.maximized is not None:
            self.screen.action_minimize()
        else:
            self.screen.action_maximize()

    def action_cancel(self) -> None:
        """Cancel the running steering job: its worker's cancelled_event stops the engine between chunks."""
        self.workers.cancel_group(self, STEER_GROUP)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """The command palette: Textual's commands (Theme, Quit, Keys, Maximize, ...), then every binding of the
        console that can run now (``check_action``), named by its description, with its tooltip and keys."""
        yield from super().get_system_commands(screen)
        for binding in self.BINDINGS:
            _, action, params = parse_action(binding.action)
            if action in TEXTUAL_COMMANDS or not self.check_action(action, params):
                continue
            keys = " ".join(self.get_key_display(dataclasses.replace(binding, key=key))
                            for key in binding.key.split(","))
            yield SystemCommand(binding.description, f"{binding.tooltip} ({keys})",
                                lambda call=binding.action: self.run_action(call))

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
        if self.restored is not None and self.restored[:2] == (d.layer, self.alpha_steps):
            return self.restored[2]  # an opened session's alpha, exactly, until the layer or alpha changes
        return raw_alpha(self.alpha_steps * ALPHA_STEP, d.residual_norm, d.vector_norm)

    def recipe(self) -> tuple[str, str | None]:
        """How an evaluation makes its vectors: (the method of a build per fold, None), or for imported vectors
        (the console's method, unused, and their name in the session: steered as they are in every fold)."""
        if self.build is not None and self.build.given:
            return self.method, self.build.name
        return (self.build.method if self.build is not None else self.method), None

    def eval_pairs(self) -> list:
        """The loaded pairs an evaluation holds out: all of them, but those imported vectors were built from, and
        with `S` the few-shot examples."""
        from steertui.engine.data.model import FEW_SHOT

        left_out = set(self.build.left_out) if self.build is not None else set()
        return [p for p in self.dataset.pairs if p.id not in left_out and not (self.shots and p.part == FEW_SHOT)]

    @property
    def vector_name(self) -> str:
        """The name in the session of the vectors in the steering pane ("" before any)."""
        return self.build.name if self.build is not None else ""

    def _job_status(self, job: str, text: str) -> None:
        pane_id, _idle = JOB_PANES[job]
        self.query_one(f"#{pane_id}").border_subtitle = f"{text} · Escape cancels"

    def _job_ended(self, job: str, how: str) -> None:
        pane_id, idle = JOB_PANES[job]
        if pane_id == "steer":
            self._show_steering()
        else:
            self.query_one(f"#{pane_id}").border_subtitle = f"{how} · {idle}"

    def current_steering(self) -> list[dict]:
        """The current steering as the session records it: vector name, layer, alpha, positions."""
        if self.steering_layer() is None:
            return []
        return [{"vector": self.build.name, "layer": L, "alpha": coef, "positions": self.positions}
                for L, (_steps, coef) in self.steering_layers().items()]

    def _show_steering(self) -> None:
        d = self.steering_layer()
        self.query_one(GridTable).mark(None if d is None else d.layer)
        if d is None:
            self.query_one(SteerPane).show_steering(f"b: build {self.method} vectors from the pairs (m: method)")
            return
        for plot in self.query(DiagnosticsPlot):
            plot.show(self.build.diagnostics, d.layer)
        self.query_one(CweTable).show_directions(None if self.build.cwe is None else self.build.cwe.get(d.layer))
        ratio = abs(self.alpha_steps) * ALPHA_STEP
        others = [f"@{L} x{exact:+.3g}" for L, (_steps, exact) in sorted(self.pinned.items()) if L != d.layer]
        pins = f" · also {', '.join(others)}" if others else ""
        pinned = " (pinned)" if d.layer in self.pinned else ""
        self.query_one(SteerPane).show_steering(
            f"{self.build.name} ({self.build.method}) · layer {d.layer}{pinned} · alpha {self.alpha():+.3g} "
            f"(‖αv‖/‖h‖ {ratio:.2f}){pins} · {self.positions} positions")

    def action_reprobe(self) -> None:
        if self.model is not None:
            pair = self.selected_pair()
            self.probe(pair, self.shot_example(pair.cwe) if pair is not None else None)


def run_app(args: argparse.Namespace) -> int:
    session_file = getattr(args, "session", None)
    if session_file:
        from steertui.engine.session.store import read_session, resolve_session_file

        path = resolve_session_file(session_file)
        read_session(path)  # a bad file stops here with one line and exit 2, before the console starts
        session_file = str(path)
    from steertui.commands._common import check_vector_args

    check_vector_args(args)
    vectors_file, vector = getattr(args, "vectors", None), getattr(args, "vector", None)
    if vectors_file:  # a bad file, or no such vector in it, stops here, before the console starts
        from steertui.engine.session.export import read_vector_file

        read_vector_file(vectors_file).choose(vector)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise SteertuiError("the console needs a terminal on standard input and output, and this run has none",
                            "run it in a terminal, or use the headless commands: steertui layers, data, eval, replay "
                            "(steertui --help)")
    app = SteerApp(model=args.model, dataset=args.dataset, device=args.device, dtype=args.dtype,
                   session_file=session_file, watch_terminal=True, vectors_file=vectors_file, vector=vector)
    app.run()
    return app.return_code or 0  # Textual sets 1 when the app ended on an unhandled exception; a quit is 0
