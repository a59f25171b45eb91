"""The console's rows of ``steertui bench``, measured in the real app under Textual's ``App.run_test``.

- ready: from starting the console to its first screen composed and mounted (``run_test`` hands over the pilot),
  against the same for an app holding one ``Static``;
- model loaded: from starting the console to the model shown (its worker loaded the model and probed its layers),
  against ``engine.ops.load_model`` called directly in this process (the same work without the app);
- event-loop gap while a job computes: the largest gap between ticks of a 5 ms interval timer with the thread of a
  vector build (``b``) or a generation (``g``) computing at its start or its end, and no job's result posted in
  between (that result's repaint counts below), against the largest gap over as long a time with nothing running
  (target: 50 ms);
- event-loop gap, key to result: the largest gap over the whole of ``b`` then ``g``, from each key to its result
  on screen: the above, and the repaints of the tab switches and of the results, which the screen costs whether
  a job runs or not (reported, no target).

The session file the console records (``b`` and ``g`` save steps) goes to a temporary folder.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from typing import Any

from steertui.engine.bench import BenchRow

GAP_TARGET_S = 0.050
TICK_S = 0.005


async def _until(pilot: Any, condition: Any, timeout: float = 300.0) -> None:
    end = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > end:
            raise TimeoutError("the console did not get there in time")
        await pilot.pause(0.01)


async def _quiet(app: Any, pilot: Any) -> None:
    """Let the live preview a steering change schedules run and finish, so the app closes with no job left."""
    await _until(pilot, lambda: app.preview_timer is None and not any(w.is_running for w in app.workers))
    await app.workers.wait_for_complete()
    await pilot.pause()


async def _console_run(model: str | None, dataset: str | None, *, jobs: bool) -> dict[str, Any]:
    from steertui.tui.app import SteerApp

    app = SteerApp(model=model, dataset=dataset)
    t0 = time.perf_counter()
    out: dict[str, Any] = {}
    async with app.run_test(size=(120, 40)) as pilot:
        out["ready"] = time.perf_counter() - t0
        await _until(pilot, lambda: app.model is not None and app.layers_report is not None
                     and app.dataset is not None or bool(app.failures))
        out["loaded"] = time.perf_counter() - t0
        if app.failures:
            raise RuntimeError(f"the console failed: {app.failures[0]}")
        await app.workers.wait_for_complete()
        await pilot.pause()
        if jobs:
            ticks: list[float] = []
            computing: list[tuple[bool, int]] = []  # per tick: a job's thread was computing; results posted so far

            def tick() -> None:
                ticks.append(time.perf_counter())
                computing.append((app.computing is not None, app.results_posted))

            app.set_interval(TICK_S, tick)
            await pilot.pause(0.2)
            start = len(ticks)
            t_idle = time.perf_counter()
            await pilot.press("b")
            await pilot.pause(0.05)
            await app.workers.wait_for_complete()
            await _until(pilot, lambda: app.build is not None or bool(app.failures))
            await pilot.press("g")
            await pilot.pause(0.05)
            await app.workers.wait_for_complete()
            await _until(pilot, lambda: app.generation is not None or bool(app.failures))
            busy = time.perf_counter() - t_idle
            gaps = [(b - a, (ja or jb) and ra == rb)
                    for a, b, (ja, ra), (jb, rb) in zip(ticks[start:], ticks[start + 1:], computing[start:],
                                                        computing[start + 1:])]
            out["busy_gap"] = max((g for g, _ in gaps), default=busy)
            out["job_gap"] = max((g for g, job in gaps if job), default=busy)
            out["job_ticks"] = sum(job for _, job in gaps)
            out["busy_s"] = busy
            # the same length of time with nothing running
            idle_start = len(ticks)
            await pilot.pause(busy)
            gaps = [b - a for a, b in zip(ticks[idle_start:], ticks[idle_start + 1:])]
            out["idle_gap"] = max(gaps) if gaps else busy
            out["failures"] = [str(f) for f in app.failures]
        await _quiet(app, pilot)
    return out


async def _plain_app_ready() -> float:
    from textual.app import App, ComposeResult
    from textual.widgets import Static

    class One(App):
        def compose(self) -> ComposeResult:
            yield Static("ready")

    t0 = time.perf_counter()
    async with One().run_test(size=(120, 40)):
        return time.perf_counter() - t0


async def console_rows(model: str | None = None, dataset: str | None = "builtin", repeats: int = 3) -> list[BenchRow]:
    """The three console rows, each pair of runs interleaved ``repeats`` times (after one warm-up run)."""
    from steertui.engine.ops import load_model

    old = os.environ.get("STEERTUI_SESSIONS")
    with tempfile.TemporaryDirectory(prefix="steertui-bench-") as folder:
        os.environ["STEERTUI_SESSIONS"] = folder
        try:
            await _console_run(model, dataset, jobs=False)  # warm-up: imports, file cache
            load_model(model)
            await _plain_app_ready()
            ready, plain_ready, loaded, direct = [], [], [], []
            for _ in range(repeats):
                run = await _console_run(model, dataset, jobs=False)
                ready.append(run["ready"])
                loaded.append(run["loaded"])
                plain_ready.append(await _plain_app_ready())
                t = time.perf_counter()
                loaded_model = load_model(model)
                direct.append(time.perf_counter() - t)
            jobs = await _console_run(model, dataset, jobs=True)
        finally:
            if old is None:
                os.environ.pop("STEERTUI_SESSIONS", None)
            else:
                os.environ["STEERTUI_SESSIONS"] = old
    name = loaded_model.model.info.name
    ok = not jobs["failures"]
    return [
        BenchRow(name="console ready", model=name, tokens=0, median_s=statistics.median(ready),
                 baseline_s=statistics.median(plain_ready), target=None, peak_mem_mb=None,
                 baseline_peak_mem_mb=None, steertui="the console (run_test, 120×40): composed and mounted",
                 baseline="a Textual app with one Static, the same way", check="both apps started", check_ok=True,
                 unit="-", repeats=repeats, times=ready, base_times=plain_ready),
        BenchRow(name="console model loaded", model=name, tokens=0, median_s=statistics.median(loaded),
                 baseline_s=statistics.median(direct), target=None, peak_mem_mb=None, baseline_peak_mem_mb=None,
                 steertui="the console from start to the model, its layers and the data shown",
                 baseline="engine.ops.load_model (load and probe the layers) called directly",
                 check=f"the same model ({name}) loaded", check_ok=True, unit="-", repeats=repeats, times=loaded,
                 base_times=direct),
        BenchRow(name="console event-loop gap", model=name, tokens=0, median_s=jobs["job_gap"],
                 baseline_s=jobs["idle_gap"], target=None, target_s=GAP_TARGET_S, peak_mem_mb=None,
                 baseline_peak_mem_mb=None,
                 steertui=f"largest gap between {TICK_S * 1e3:g} ms timer ticks while the thread of b (build) or g "
                          f"(generation) computed ({jobs['job_ticks']} gaps; a result's repaint counts below)",
                 baseline="the largest gap over as long a time with no job running",
                 check="build and generation finished without a failure" if ok else f"failed: {jobs['failures'][0]}",
                 check_ok=ok, unit="-", repeats=1, times=[jobs["job_gap"]], base_times=[jobs["idle_gap"]]),
        BenchRow(name="console event-loop gap, key to result", model=name, tokens=0, median_s=jobs["busy_gap"],
                 baseline_s=jobs["idle_gap"], target=None, peak_mem_mb=None, baseline_peak_mem_mb=None,
                 steertui=f"largest gap over b then g, each from its key to its result on screen "
                          f"({jobs['busy_s']:.1f} s): also the repaints of the tab switches and of the results",
                 baseline="the largest gap over as long a time with no job running",
                 check="as above", check_ok=ok, unit="-", repeats=1, times=[jobs["busy_gap"]],
                 base_times=[jobs["idle_gap"]]),
    ]
