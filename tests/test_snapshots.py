"""Snapshot tests of the console's screens (pytest-textual-snapshot's SVG snapshots, compared by syrupy).

One console per terminal size walks through every pane on the demo model and the builtin examples, as a user
would (``snapshot_walk.py``, in a process of its own with the float kernels pinned: its docstring says why): the
pairs, the code, the layers, the steering vectors with their plots and CWE directions, the next tokens, the lens
grid in its three views, the continuations, the evaluation, the alpha sweep, the layer grid, a grid cell's
held-out files and the help panel.

After a change that is meant to change the screens, regenerate them with
``pytest tests/test_snapshots.py --snapshot-update`` and look at the new SVGs before committing them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_textual_snapshot import SVGImageExtension

from snapshot_walk import PINNED_KERNELS, WALK

SIZES = ("80x24", "160x48")
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def walks(tmp_path_factory):
    """Both sizes' walks, started together: each runs on one torch thread and the test process only waits, so
    on a machine with two cores they take the time of one. Size -> (process, the folder it writes to)."""
    env = {**os.environ, **{k: os.environ.get(k, v) for k, v in PINNED_KERNELS.items()}}
    started = {}
    for size in SIZES:
        cwd = tmp_path_factory.mktemp(f"walk-{size}")
        started[size] = (subprocess.Popen([sys.executable, str(HERE / "snapshot_walk.py"), str(cwd / "screens"), size],
                                          cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, text=True), cwd / "screens")
    yield started
    for proc, _ in started.values():
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_console_screens(size, snapshot, walks):
    """The walk runs in its own process (``snapshot_walk.py``: the float kernels pinned there alone), in a fresh
    folder; each screen it writes is compared with its snapshot."""
    snapshot = snapshot.use_extension(SVGImageExtension)
    proc, out = walks[size]
    try:
        _, stderr = proc.communicate(timeout=900)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
        pytest.fail(f"the {size} walk took over 900 s: {stderr[-4000:]}")
    assert proc.returncode == 0, stderr[-4000:]
    mismatched = [name for name, _ in WALK if not snapshot(name=name) == (out / f"{name}.svg").read_text("utf-8")]
    assert not mismatched, f"screens that differ from tests/__snapshots__: {mismatched}"
