"""The console's snapshot walk, in a process of its own: ``tests/test_snapshots.py`` starts it with the float
kernels pinned and compares the screens it writes.

    python tests/snapshot_walk.py OUT_DIR COLUMNSxROWS

One console walks through every pane on the demo model and the builtin examples, as a user would (``WALK``);
each screen is written to ``OUT_DIR/NAME.svg`` once every job it started, and the live preview a steering change
starts, has finished, notifications cleared. Everything on screen is deterministic: seeded builds and
evaluations, one torch thread (float sums do not depend on how work is split), the demo model named "demo", a
session file named ``snapshot.toml`` in the working folder, and the same float kernels on every x86 machine:
the test starts this process with ``MKL_CBWR=AVX2,STRICT`` (MKL's reproducible AVX2 path, independent of the CPU
beyond AVX2 and of memory alignment) and ``ATEN_CPU_CAPABILITY=avx2`` (ATen's AVX2 kernels). Without them an
AVX-512 machine's verdict scores differ from an AVX2 machine's by ~1e-6, which moves a braille dot of a plotted
sweep. They are set for this process alone: ATen's AVX2 kernels cannot run bfloat16 attention on a CPU with AMX,
which the other tests do. Exit code 1 when the console reported a failure.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

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
PINNED_KERNELS = {"MKL_CBWR": "AVX2,STRICT", "ATEN_CPU_CAPABILITY": "avx2"}


async def _walk(out: Path, size: tuple[int, int]) -> int:
    from steertui.tui.app import SteerApp
    from test_tui import _settle, _until

    async def quiet(app, pilot) -> None:
        """Every job, the live preview a steering change schedules, and Textual's animations, finished."""
        await _settle(app, pilot)
        await _until(pilot, lambda: app.preview_timer is None and not app.steer_jobs())
        await _settle(app, pilot)
        await pilot.wait_for_scheduled_animations()
        app.clear_notifications()
        await pilot.pause()

    app = SteerApp(model="demo", dataset="builtin")
    async with app.run_test(size=size) as pilot:
        await quiet(app, pilot)
        for name, keys in WALK:
            for key in keys:
                await pilot.press(key)
                await quiet(app, pilot)
            if app.failures:
                print(f"{name}: {app.failures}", file=sys.stderr)
                return 1
            (out / f"{name}.svg").write_text(app.export_screenshot(), encoding="utf-8")
    return 0


def main(argv: list[str]) -> int:
    import torch

    import steertui.engine.session.recorder as recorder

    out, size = Path(argv[0]), tuple(int(x) for x in argv[1].lower().split("x"))
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    recorder.new_session_path = lambda: Path("snapshot.toml")  # the header names it
    return asyncio.run(_walk(out, size))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
