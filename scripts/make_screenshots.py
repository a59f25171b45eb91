"""Render the README's screenshots of the console (SVG) on the demo model and the builtin examples.

The screens come from the console itself, driven as a user drives it (Textual's ``App.run_test`` pressing keys,
then ``save_screenshot``), through the same code path as the snapshot tests in ``tests/test_snapshots.py``. The
session the console records goes to a temporary folder.

    .venv/bin/python scripts/make_screenshots.py            # writes docs/screens/*.svg
    .venv/bin/python scripts/make_screenshots.py --out DIR --size 120x36
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# (file name, keys pressed before it), in order; each screen after every job it started has finished
SHOTS = (
    ("layers", ("l", "right_square_bracket", "right_square_bracket", "z")),
    ("steer", ("z", "b", "s", "plus", "plus")),
    ("cwe", ("w",)),
    ("lens-delta", ("k", "w", "w")),
    ("evaluation", ("e",)),
    ("sweep", ("a",)),
    ("grid", ("x",)),
    ("files", ("right", "right", "h")),
    ("continuation", ("plus", "plus", "g", "z")),
    ("tokens", ("z", "n")),
    ("tokens-by-layer", ("w",)),
)


async def render(out: Path, size: tuple[int, int]) -> list[Path]:
    from steertui.engine.session import SessionRecorder
    from steertui.tui.app import SteerApp

    app = SteerApp(model="demo", dataset="builtin")
    written = []

    async def quiet(pilot) -> None:
        for _ in range(2400):  # the jobs, then the live preview a steering change schedules 0.2 s later
            await pilot.pause(0.05)
            await app.workers.wait_for_complete()
            if app.model is not None and app.dataset is not None and app.preview_timer is None \
                    and not app.steer_jobs():
                break
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
        app.clear_notifications()
        await pilot.pause()

    async with app.run_test(size=size) as pilot:
        await quiet(pilot)
        if app.model is None:
            raise SystemExit(f"the demo model did not load: {app.failures}")
        app.recorder = SessionRecorder.new(app.model, app.dataset, path="screens.toml")  # the header names it
        for name, keys in SHOTS:
            for key in keys:
                await pilot.press(key)
                await quiet(pilot)
            if app.failures:
                raise SystemExit(f"{name}: {app.failures}")
            path = out / f"{name}.svg"
            app.save_screenshot(filename=path.name, path=str(out))
            written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(REPO / "docs" / "screens"), help="folder for the SVGs")
    parser.add_argument("--size", default="100x30", help="terminal size, COLUMNSxROWS (default 100x30)")
    args = parser.parse_args()
    cols, rows = (int(x) for x in args.size.lower().split("x"))
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)

    import torch

    torch.set_num_threads(1)  # the same numbers on every machine's cores
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["STEERTUI_SESSIONS"] = tmp
        os.environ["STEERTUI_DATA_DIR"] = tmp
        cwd = os.getcwd()
        os.chdir(tmp)  # the session file screens.toml is written here
        try:
            written = asyncio.run(render(out, (cols, rows)))
        finally:
            os.chdir(cwd)
    for path in written:
        print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)


if __name__ == "__main__":
    main()
