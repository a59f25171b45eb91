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


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES)
def test_console_screens(size, snapshot, tmp_path):
    """The walk runs in its own process (``snapshot_walk.py``: the float kernels pinned there alone), in a fresh
    folder; each screen it writes is compared with its snapshot."""
    snapshot = snapshot.use_extension(SVGImageExtension)
    out = tmp_path / "screens"
    env = {**os.environ, **{k: os.environ.get(k, v) for k, v in PINNED_KERNELS.items()}}
    proc = subprocess.run([sys.executable, str(HERE / "snapshot_walk.py"), str(out), size], cwd=tmp_path, env=env,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    mismatched = [name for name, _ in WALK if not snapshot(name=name) == (out / f"{name}.svg").read_text("utf-8")]
    assert not mismatched, f"screens that differ from tests/__snapshots__: {mismatched}"
