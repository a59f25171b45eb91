"""The two halves stay apart, and the command line starts without the heavy libraries."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_help_imports_no_torch():
    code = ("import sys, io, contextlib\nfrom steertui.cli import main\n"
            "buf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf):\n"
            "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
            "assert 'usage: steertui' in buf.getvalue()")
    mods = _modules_after(code)
    for heavy in ("torch", "transformers", "nnsight", "textual"):
        assert heavy not in mods, heavy
    # the parser's choices come from engine.choices, not from the modules that implement them
    for engine_module in ("steertui.engine.evaluate", "steertui.engine.build", "steertui.engine.verdict"):
        assert engine_module not in mods, engine_module


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


def _steertui_modules(*packages: str) -> list[str]:
    import pathlib

    src = pathlib.Path(__file__).resolve().parents[1] / "src"
    out = []
    for pkg in packages:
        for path in sorted((src / pkg.replace(".", "/")).rglob("*.py")):
            parts = path.relative_to(src).with_suffix("").parts
            out.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return out


def test_every_engine_and_command_module_loads_without_textual_in_a_fresh_interpreter():
    modules = _steertui_modules("steertui.engine", "steertui.commands") + ["steertui.atomic", "steertui.errors",
                                                                           "steertui.paths"]
    assert len(modules) >= 35  # every module of both packages, found on disk
    for mod in modules:
        mods = _modules_after(f"import {mod}")
        assert mod in mods
        assert not any(m == "textual" or m.startswith("textual.") for m in mods), mod


def test_console_and_its_engine_operations_load_without_torch():
    """The console imports torch only when a job first computes: its app and the engine operations its jobs
    call load without it (a worker pays for it, not the start)."""
    for mod in ("steertui.tui.app", "steertui.engine.ops", "steertui.engine.session.recorded",
                "steertui.engine.session.resume"):
        mods = _modules_after(f"import {mod}")
        assert mod in mods and not {"torch", "nnsight", "transformers"} & mods, mod


def _import_graph() -> dict[str, set[str]]:
    """Module -> the steertui modules it imports, at any level (functions too), except under TYPE_CHECKING."""
    import ast
    import pathlib

    src = pathlib.Path(__file__).resolve().parents[1] / "src"
    modules = set(_steertui_modules("steertui"))
    graph: dict[str, set[str]] = {}
    for mod in modules:
        rel = mod.replace(".", "/")
        path = src / f"{rel}.py" if (src / f"{rel}.py").exists() else src / rel / "__init__.py"
        tree = ast.parse(path.read_text())
        skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        deps = set()
        for node in ast.walk(tree):
            if id(node) in skip:
                continue
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            deps |= {n for n in names if n in modules and n != mod}
        graph[mod] = deps
    return graph


def test_no_import_cycle_between_modules():
    """A package's ``__init__`` re-exporting its own modules is not a cycle; any other loop is."""
    graph = _import_graph()
    for mod, deps in graph.items():  # a module importing its own package's __init__ goes through the package
        graph[mod] = {d for d in deps if not mod.startswith(d + ".")}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(d):] + [d]))
            if d not in state:
                visit(d)
        path.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m)


def test_bench_show_imports_no_torch(tmp_path):
    """A saved bench run's table can be read on a machine without torch (the laptop beside a GPU box)."""
    saved = tmp_path / "b.json"
    saved.write_text('{"device": "cuda", "dtype": "bfloat16", "threads": 1, "torch": "2.11", "results": [{"name": '
                     '"generate b1", "tokens": 64, "median_s": 0.5, "baseline_s": 0.4, "target": 1.1}]}')
    code = ("import io, contextlib\nfrom steertui.cli import main\nbuf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf):\n"
            f"    assert main(['bench', '--show', {str(saved)!r}]) == 0\n"
            "assert '×1.25' in buf.getvalue() and 'generate b1' in buf.getvalue()")
    mods = _modules_after(code)
    for heavy in ("torch", "transformers", "nnsight", "textual"):
        assert heavy not in mods, heavy
