"""Pilot tests: the console loads the demo model and the data in workers and shows what was computed."""

from __future__ import annotations

import asyncio

from steertui.tui.app import SteerApp
from steertui.tui.panes.dataset import DatasetPane
from steertui.tui.panes.layers import LayersPane


async def _settle(app, pilot):
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


def test_console_shows_layers_and_pairs(demo_model_path):
    asyncio.run(_shows_layers_and_pairs(demo_model_path))


async def _shows_layers_and_pairs(demo_model_path):
    app = SteerApp(model=str(demo_model_path), dataset="builtin")
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        assert not app.failures, app.failures
        assert app.session is not None and app.layers_report is not None
        layers = app.query_one(LayersPane)
        assert layers.row_count == len(app.layers_report.modules)
        blocks = app.layers_report.blocks()
        assert len(blocks) == app.session.n_layers
        assert all(b.shape == [1, app.layers_report.n_tokens, app.session.d_model] and not b.flags for b in blocks)
        pairs = app.query_one(DatasetPane)
        assert pairs.row_count == len(app.dataset.pairs) > 0
        assert "builtin examples" in pairs.border_title
        await pilot.press("l")
        assert app.focused is layers
        await pilot.press("d")
        assert app.focused is pairs


def test_console_survives_a_bad_model(tmp_path):
    asyncio.run(_survives_a_bad_model(tmp_path))


async def _survives_a_bad_model(tmp_path):
    app = SteerApp(model=str(tmp_path / "missing"), dataset="builtin")
    async with app.run_test(size=(100, 30)) as pilot:
        await _settle(app, pilot)
        assert app.session is None
        assert [f.job for f in app.failures] == ["load model"]
        assert "does not exist" in app.failures[0].error


def test_console_opens_a_session(demo_model_path):
    asyncio.run(_opens_a_session())


async def _opens_a_session():
    from pathlib import Path

    from steertui.engine.session.store import read_session

    path = Path(__file__).resolve().parents[1] / "sessions" / "demo-tour.toml"
    doc = read_session(path)
    app = SteerApp(session_file=str(path))
    async with app.run_test(size=(120, 40)) as pilot:
        await _settle(app, pilot)
        assert not app.failures, app.failures
        assert len(app.session_steps) == len(doc.steps) > 0
        assert app.session.info.weights_sha256 == doc.model.weights_sha256
        assert app.dataset is not None and app.dataset.source.label == "builtin examples"
        assert app.query_one(LayersPane).row_count > 0


def test_cli_session_bad_file_exits_2(tmp_path, capsys):
    from steertui.cli import main

    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    assert main(["--session", str(bad)]) == 2
    assert "bad.toml" in capsys.readouterr().err
