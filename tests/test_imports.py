"""The two halves stay apart, and the command line starts without the heavy libraries."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_engine_never_imports_textual():
    mods = _modules_after("import steertui.engine.model, steertui.engine.steering, steertui.engine.layers, "
                          "steertui.engine.adapters, steertui.engine.data")
    assert "textual" not in mods


def test_help_imports_no_torch():
    code = ("import sys, io, contextlib\nfrom steertui.cli import main\n"
            "buf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf):\n"
            "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
            "assert 'usage: steertui' in buf.getvalue()")
    mods = _modules_after(code)
    for heavy in ("torch", "transformers", "nnsight", "textual"):
        assert heavy not in mods, heavy


def test_python_dash_m_works():
    out = subprocess.run([sys.executable, "-m", "steertui", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "layers" in out.stdout


def test_tui_never_imports_torch_or_nnsight_directly():
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parents[1] / "src" / "steertui" / "tui"
    for path in root.rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+(torch|nnsight|transformers)\b", text, re.M), path
