"""Snapshot tests of the console's screens (pytest-textual-snapshot's SVG snapshots, compared by syrupy).

One console per terminal size walks through every pane on the demo model and the builtin examples, as a user
would: the pairs, the code, the layers, the steering vectors with their plots and CWE directions, the next tokens, the lens grid in
its three views, the continuations, the evaluation, the alpha sweep, the layer grid, a grid cell's held-out files
and the help panel. Each screen is taken once every job it started, and the live preview a steering change starts, has finished; notifications are
cleared first. Everything on screen is deterministic: seeded builds and evaluations, one torch thread (float
sums do not depend on how work is split), the same float kernels on every x86 machine (conftest.py), the demo
model named "demo", a session file with a fixed name.

After a change that is meant to change the screens, regenerate them with
``pytest tests/test_snapshots.py --snapshot-update`` and look at the new SVGs before committing them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_textual_snapshot import SVGImageExtension

from steertui.tui.app import SteerApp

from test_tui import _settle, _until

SIZES = {"80x24": (80, 24), "160x48": (160, 48)}
# (snapshot name, keys pressed before it): in this order, each after the one before
WALK = (
    ("layers", ("l", "right_square_bracket")),
    ("pairs", ("d", "down")),
    ("code", ("o",)),
    ("steer", ("b",)),
    ("steer-cwe", ("w",)),
    ("tokens", ("s", "plus", "plus", "n")),
    ("lens-baseline", ("k",)),
    ("lens-steered", ("w",)),
    ("lens-delta", ("w",)),
    ("continuations", ("g",)),
    ("evaluation", ("e",)),
    ("sweep", ("a",)),
    ("grid", ("x",)),
    ("files", ("right", "right", "h")),  # the held-out files of the grid's cell at +2 steps of the steering layer
    ("help", ("s", "question_mark")),
)


@pytest.fixture
def one_thread():
    """One torch thread while the screens are made: the numbers on them do not depend on the machine's cores."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def fixed_session_name(tmp_path, monkeypatch):
    """The session file the console starts is ``snapshot.toml`` in a fresh folder (the header names it)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("steertui.engine.session.recorder.new_session_path", lambda: Path("snapshot.toml"))


async def _quiet(app, pilot) -> None:
    """Wait for every job, the live preview a steering change schedules, and Textual's animations."""
    await _settle(app, pilot)
    await _until(pilot, lambda: app.preview_timer is None and not app.steer_jobs())
    await _settle(app, pilot)
    await pilot.wait_for_scheduled_animations()
    app.clear_notifications()
    await pilot.pause()


@pytest.mark.slow
@pytest.mark.parametrize("size", list(SIZES))
async def test_console_screens(size, snapshot, one_thread, fixed_session_name):
    snapshot = snapshot.use_extension(SVGImageExtension)
    app = SteerApp(model="demo", dataset="builtin")
    mismatched = []
    async with app.run_test(size=SIZES[size]) as pilot:
        await _quiet(app, pilot)
        for name, keys in WALK:
            for key in keys:
                await pilot.press(key)
                await _quiet(app, pilot)
            assert not app.failures, app.failures
            if not snapshot(name=name) == app.export_screenshot():
                mismatched.append(name)
    assert not mismatched, f"screens that differ from tests/__snapshots__: {mismatched}"
