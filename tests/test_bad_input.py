"""Bad input gets one clear line naming the thing and what to do, and exit code 2 (1 only for a replay that ran and
differs): the command line in a subprocess, as a user runs it."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "steertui", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def _error_line(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if "error:" in ln]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


@pytest.mark.parametrize("flag, value, says", [
    ("--layers", "", "no layer given"),
    ("--layers", ",,,", "no layer given"),
    ("--alpha", "", "no value given"),
    ("--alpha", "nan", "not a finite number"),
    ("--alpha", "0,inf", "not a finite number"),
    ("--alpha", "1e400", "not a finite number"),
    ("--kl-tokens", "0", "at least 1"),
    ("--folds", "-2", "at least 1"),
    ("--chunk-size", "0", "at least 1"),
])
def test_eval_refuses_empty_and_non_finite_arguments(flag, value, says):
    args = {"--layers": "1", "--alpha": "0,1"}
    args[flag] = value
    argv = ["eval", "--dataset", "builtin"] + [f"{k}={v}" for k, v in args.items()]
    proc = _run(*argv)
    assert proc.returncode == 2
    line = _error_line(proc)
    assert flag in line and says in line, line


@pytest.mark.parametrize("flag, value, says", [("--context", "0", "at least 1"), ("--reserve", "-10", "negative")])
def test_data_budget_refuses_impossible_budgets(flag, value, says):
    proc = _run("data", "budget", "--dataset", "builtin", f"{flag}={value}")
    assert proc.returncode == 2
    line = _error_line(proc)
    assert flag in line and says in line, line


def test_console_refuses_to_start_without_a_terminal():
    proc = _run(timeout=60)  # stdin is /dev/null and stdout a pipe: no terminal
    assert proc.returncode == 2 and proc.stdout == ""
    line = _error_line(proc)
    assert "terminal" in line and "steertui layers" in line, line


def test_eval_json_never_holds_nan(tmp_path):
    out = tmp_path / "out.json"
    proc = _run("eval", "--dataset", "builtin", "--layers", "1", "--alpha=0,1", "--folds", "2", "--kl-tokens", "8",
                "--json", str(out), timeout=300)
    assert proc.returncode == 0, proc.stderr

    def refuse(name: str):
        raise AssertionError(f"{name} in the JSON")

    data = json.loads(out.read_text(), parse_constant=refuse)
    # the KL of vulnerable files is a mean over no files: null, not NaN
    assert any(f["steered"][0]["kl"] is None for f in data["files"] if f["label"] == 1)
    for row in data["results"]:
        assert all(not (isinstance(v, float) and not math.isfinite(v)) for v in row.values())


def test_replay_counts_a_nan_in_a_sidecar_vector_as_a_difference(tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    from steertui.engine.steering import vector_sha256

    for name in ("demo-tour.toml", "demo-tour.safetensors"):
        shutil.copy(REPO / "sessions" / name, tmp_path / name)
    side = tmp_path / "demo-tour.safetensors"
    tensors = load_file(side)
    v = tensors["vuln/1"].clone()
    old = vector_sha256(v)
    v[0] = float("nan")
    tensors["vuln/1"] = v
    save_file(tensors, side)
    toml = tmp_path / "demo-tour.toml"
    text = toml.read_text()
    head, sep, rest = text.partition("[vectors.sha256]")
    toml.write_text(head + sep + rest.replace(old, vector_sha256(v), 1))  # the vector's own record only
    assert not torch.isfinite(v).all()
    proc = _run("replay", str(toml), "--check", timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "nan" in proc.stdout.lower()


def test_console_shows_an_error_with_markup_characters_and_keeps_running(tmp_path):
    """A model path holding Textual markup ([/red], brackets) fails to load; the error is shown as text in the
    status line and a notification, and the console goes on (it used to die with a MarkupError)."""
    import asyncio

    from textual.widgets import Static

    from steertui.tui.app import SteerApp

    bad = tmp_path / "[red]x[" / "red]model[b]"  # the path reads .../[red]x[/red]model[b]
    bad.mkdir(parents=True)

    async def run() -> None:
        app = SteerApp(model=str(bad), dataset="builtin")
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert [f.job for f in app.failures] == ["load model"]
            status = str(app.query_one("#status", Static).render())
            assert "model not loaded" in status and "[/red]model[b]" in status
            assert app.is_running
            await pilot.press("d")  # still answers keys
            assert app.focused is not None

    asyncio.run(run())


def _tiny_checkout(tmp_path: Path) -> Path:
    """The builtin examples laid out as a SecLLMHolmes hand-crafted part."""
    root = tmp_path / "checkout"
    shutil.copytree(REPO / "assets" / "examples" / "dataset", root / "datasets" / "hand-crafted" / "dataset")
    return root


def test_special_files_in_a_dataset_are_skipped_not_read(tmp_path):
    import os

    root = _tiny_checkout(tmp_path)
    cwe = root / "datasets" / "hand-crafted" / "dataset" / "CWE-476"
    (cwe / "1.c").unlink()
    os.mkfifo(cwe / "1.c")  # would block a plain read forever
    (cwe / "2.c").unlink()
    (cwe / "2.c").symlink_to("/dev/zero")  # would be read until memory runs out
    secret = tmp_path / "secret.c"
    secret.write_text("int leaked_outside_the_dataset;\n")
    (cwe / "p_1.c").unlink()
    (cwe / "p_1.c").symlink_to(secret)  # a link out of the checkout
    proc = _run("data", "summary", "--dataset", str(root), "--json", timeout=60)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    text = json.dumps(data)
    assert "leaked_outside_the_dataset" not in text
    assert "CWE-476/1.c is a FIFO" in text and "CWE-476/2.c is a link to /dev/zero" in text
    assert "CWE-476/p_1.c is a link to" in text and "outside the dataset folder" in text

    from steertui.engine.data import load_checkout

    ds = load_checkout(root)
    assert not any(s.id.startswith("hand-crafted/CWE-476/") and s.id.endswith(("/1", "/2", "/p_1"))
                   for s in ds.samples)
    codes = {w.code for w in ds.warnings}
    assert {"special-file", "outside-dataset"} <= codes


def _model_copy(tmp_path: Path, name: str) -> Path:
    folder = tmp_path / name
    shutil.copytree(REPO / "assets" / "models" / "demo-starcoder", folder)
    return folder


@pytest.mark.parametrize("damage", ["truncated", "random", "empty", "pickle-only"])
def test_damaged_weights_get_one_line_naming_the_file(tmp_path, damage):
    folder = _model_copy(tmp_path, damage)
    weights = folder / "model.safetensors"
    raw = weights.read_bytes()
    if damage == "truncated":
        weights.write_bytes(raw[: len(raw) // 2])
    elif damage == "random":
        weights.write_bytes(bytes(range(256)) * 64)
    elif damage == "empty":
        weights.write_bytes(b"")
    else:
        weights.unlink()
        (folder / "pytorch_model.bin").write_bytes(b"not opened")
    proc = _run("layers", "--model", str(folder), timeout=120)
    assert proc.returncode == 2, proc.stderr
    line = _error_line(proc)
    if damage == "pickle-only":
        assert "no *.safetensors weights" in line and "pytorch_model.bin" in line, line
    else:
        assert "model.safetensors" in line and "cannot be read" in line, line


def _truncated_model(tmp_path: Path) -> Path:
    folder = _model_copy(tmp_path, "truncated")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    return folder


@pytest.mark.parametrize("command", ["eval", "replay"])
def test_damaged_weights_in_eval_and_replay_get_one_line(tmp_path, command):
    folder = _truncated_model(tmp_path)
    if command == "eval":
        argv = ["eval", "--dataset", "builtin", "--layers=1", "--alpha=0,1", "--model", str(folder)]
    else:
        for name in ("demo-tour.toml", "demo-tour.safetensors"):
            shutil.copy(REPO / "sessions" / name, tmp_path / name)
        argv = ["replay", str(tmp_path / "demo-tour.toml"), "--model", str(folder)]
    proc = _run(*argv, timeout=180)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = _error_line(proc)
    assert "model.safetensors" in line and "cannot be read" in line, line


async def test_console_with_damaged_weights_says_so_and_keeps_running(tmp_path):
    from steertui.tui.app import SteerApp

    app = SteerApp(model=str(_truncated_model(tmp_path)), dataset="builtin")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert app.model is None and [f.job for f in app.failures] == ["load model"]
        assert "model.safetensors" in app.failures[0].error and "cannot be read" in app.failures[0].error
        assert "model not loaded" in str(app.query_one("#status").render())
        await pilot.press("d")  # still answering keys
        assert app.focused is app.query_one("#pairs")


@pytest.mark.parametrize("device", ["tpu9", "meta"])
def test_unknown_devices_are_refused(device):
    proc = _run("layers", "--device", device, timeout=120)
    assert proc.returncode == 2
    line = _error_line(proc)
    assert f"unknown device '{device}'" in line, line


_FULL_DISK_CONSOLE = r'''
import asyncio, json, resource, sys

from steertui.tui.app import SteerApp


async def settle(app, pilot):
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()


async def main():
    app = SteerApp(model=sys.argv[1], dataset="builtin")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        # from here on no file of this process may grow past 2 KB: the new session's TOML (~0.5 KB) is written,
        # the vectors' sidecar (~2.7 KB) fails with EFBIG, as on a full disk (CPython ignores SIGXFSZ)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        await pilot.press("b")
        await settle(app, pilot)
        out = {"failures": [[f.job, f.error] for f in app.failures], "built": app.build is not None,
               "vectors": sorted(app.recorder.vectors), "title": app.sub_title, "path": str(app.recorder.path)}
        await pilot.press("plus", "t")
        await settle(app, pilot)
        out.update(tokens=app.tokens is not None, later_failures=len(app.failures) - len(out["failures"]),
                   steps=[st.kind for st in app.recorder.steps], running=app.is_running)
    print(json.dumps(out))


asyncio.run(main())
'''


def test_a_full_disk_while_the_vectors_are_saved_keeps_them_and_stops_autosave(tmp_path, demo_model_path):
    """The sidecar write fails for real (a file-size limit: EFBIG, as ENOSPC on a full disk): the console says
    once, in one line naming the sidecar, that the session could not be saved, keeps the built vectors, shows
    NOT SAVED in the header and goes on working (it used to get a raw SafetensorError, drop the vectors and
    fail every later job)."""
    import os

    # PYTHONDONTWRITEBYTECODE: under the size limit a module compiled late (first imported by the job) would be
    # cached as a truncated .pyc, and every later import of it in other processes would fail
    env = dict(os.environ, STEERTUI_SESSIONS=str(tmp_path / "sessions"), PYTHONDONTWRITEBYTECODE="1")
    proc = subprocess.run([sys.executable, "-c", _FULL_DISK_CONSOLE, str(demo_model_path)], capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.splitlines()[-1])
    assert [job for job, _ in out["failures"]] == ["save session"], out["failures"]
    error = out["failures"][0][1]
    side = out["path"].removesuffix(".toml") + ".safetensors"
    assert "\n" not in error and f"could not save the session's vectors to {side} (File too large)" in error, error
    assert "free some space" in error and "SafetensorError" not in error, error
    assert out["built"] and out["vectors"] == ["v1"]
    assert "NOT SAVED" in out["title"] and "autosaved" not in out["title"]
    assert out["tokens"] and out["later_failures"] == 0 and out["running"]
    assert out["steps"] == ["build_vectors", "top_tokens", "lens"]
    assert not Path(side).exists()  # the previous state: no sidecar, and the TOML without the build
    from steertui.engine.session.store import read_session

    assert read_session(out["path"]).steps == []


_CONSOLE_ENDING = r'''
import sys

from steertui.tui import app as console


def on_mount(self):  # the console's own mount replaced: it fails at once, or quits as `q` does
    if sys.argv[1] == "error":
        raise RuntimeError("the console failed here")
    self.call_after_refresh(self.run_action, "quit")


console.SteerApp.on_mount = on_mount
from steertui.cli import main

sys.exit(main(["--dataset", "builtin"]))
'''


def _run_in_a_terminal(script: str, *args: str, timeout: float = 120) -> tuple[int, str]:
    """Run ``python -c script args`` with a pseudo-terminal (100x30) on stdin, stdout and stderr; its exit code and
    everything it wrote."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-c", script, *args], stdin=slave, stdout=slave, stderr=slave,
                            env=dict(os.environ, TERM="xterm-256color"), close_fds=True)
    os.close(slave)
    out = b""
    try:
        while select.select([master], [], [], timeout)[0]:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        return proc.wait(timeout=30), out.decode("utf-8", "replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)


@pytest.mark.parametrize("ending, code", [("error", 1), ("quit", 0)])
def test_the_console_exits_non_zero_when_it_ends_on_an_error(ending, code):
    """`steertui` in a terminal: an unhandled exception in the app ends the process with Textual's return code 1
    (it used to exit 0); a quit exits 0."""
    rc, out = _run_in_a_terminal(_CONSOLE_ENDING, ending)
    assert rc == code, out[-2000:]
    assert ("the console failed here" in out) == (ending == "error")


_SESSION_WRITER = r'''
import sys

from steertui.engine.data import load_dataset
from steertui.engine.model import LoadedModel
from steertui.engine.session import SessionRecorder

session = LoadedModel.load(sys.argv[2], device="cpu", dtype="float32")
rec = SessionRecorder.open(sys.argv[1], loaded=session, dataset=load_dataset("builtin"))
rec.probe_layers("x = 1")
print("writing", flush=True)
sys.stdin.readline()  # hold the file until the test says
rec.probe_layers("x = 2")
rec.close()
'''


def _session_writer(path: Path, model: Path) -> subprocess.Popen:
    """A second process that opens the session ``path`` to record into it, records one step and holds it until
    its stdin is closed (then records one more step and closes it)."""
    proc = subprocess.Popen([sys.executable, "-c", _SESSION_WRITER, str(path), str(model)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert line == "writing\n", proc.stderr.read() if proc.poll() is not None else line
    return proc


def _recorded_session(tmp_path: Path, demo_model) -> Path:
    from steertui.engine.data import load_dataset
    from steertui.engine.session import SessionRecorder

    path = tmp_path / "shared.toml"
    with SessionRecorder.new(demo_model, load_dataset("builtin"), path) as rec:
        rec.probe_layers("x = 0")
    assert not (tmp_path / "shared.toml.lock").exists()
    return path


def test_a_session_file_has_one_writer(tmp_path, demo_model, demo_model_path):
    """While another process records into a session file, opening it to record, or creating it anew, is refused
    with one line naming the file, the holder's pid and what to do (two writers used to lose about half the
    steps); the console opens it read-only and appends nothing. When the writer ends, its lock is gone."""
    import socket

    from steertui.engine.data import load_dataset
    from steertui.engine.session import SessionRecorder, read_session
    from steertui.engine.session.lock import SessionLockedError

    path = _recorded_session(tmp_path, demo_model)
    writer = _session_writer(path, demo_model_path)
    try:
        lock = tmp_path / "shared.toml.lock"
        assert json.loads(lock.read_text())["pid"] == writer.pid
        for second in (lambda: SessionRecorder.open(path, loaded=demo_model, dataset=load_dataset("builtin")),
                       lambda: SessionRecorder.new(demo_model, load_dataset("builtin"), path)):
            with pytest.raises(SessionLockedError) as info:
                second()
            line = str(info.value)
            assert "\n" not in line and line.startswith(f"{path}: is being written by another steertui "
                                                        f"(pid {writer.pid} on {socket.gethostname()}"), line
            assert "quit that steertui first, or open a copy of the file" in line, line
        before = path.read_bytes()
        view = SessionRecorder.open(path, loaded=demo_model, dataset=load_dataset("builtin"),
                                    read_only_if_locked=True)  # the console's way: a view that never saves
        assert isinstance(view.read_only, SessionLockedError) and not view.autosave
        view.probe_layers("not saved")
        assert path.read_bytes() == before and len(view.steps) == 3
        assert [st.inputs.prompt for st in read_session(path).steps] == ["x = 0", "x = 1"]
    finally:
        _, err = writer.communicate("\n", timeout=120)
    assert writer.returncode == 0, err
    assert not lock.exists()
    assert [st.inputs.prompt for st in read_session(path).steps] == ["x = 0", "x = 1", "x = 2"]  # nothing lost
    with SessionRecorder.open(path, loaded=demo_model, dataset=load_dataset("builtin")) as rec:
        rec.probe_layers("x = 3")  # the file is free again
    assert len(read_session(path).steps) == 4 and not lock.exists()


def test_a_lock_left_by_a_killed_writer_is_taken_over(tmp_path, demo_model, demo_model_path):
    import signal

    from steertui.engine.data import load_dataset
    from steertui.engine.session import SessionRecorder, read_session

    path = _recorded_session(tmp_path, demo_model)
    writer = _session_writer(path, demo_model_path)
    writer.send_signal(signal.SIGKILL)
    writer.communicate(timeout=60)  # reaped: its pid runs no more
    lock = tmp_path / "shared.toml.lock"
    assert json.loads(lock.read_text())["pid"] == writer.pid  # left behind by the kill
    rec = SessionRecorder.open(path, loaded=demo_model, dataset=load_dataset("builtin"))
    assert json.loads(lock.read_text())["pid"] == os.getpid()
    rec.probe_layers("x = 9")
    rec.close()
    assert not lock.exists()
    assert [st.inputs.prompt for st in read_session(path).steps] == ["x = 0", "x = 1", "x = 9"]


def test_a_lock_whose_holder_cannot_be_checked_is_not_taken_over(tmp_path, demo_model):
    from steertui.engine.data import load_dataset
    from steertui.engine.session import SessionRecorder, read_session
    from steertui.engine.session.lock import SessionLockedError

    path = _recorded_session(tmp_path, demo_model)
    lock = tmp_path / "shared.toml.lock"
    for content, says in [('{"pid": 1, "host": "elsewhere"}', "pid 1 on elsewhere"),
                          ("", "an unknown process")]:
        lock.write_text(content)
        with pytest.raises(SessionLockedError) as info:
            SessionRecorder.open(path, loaded=demo_model, dataset=load_dataset("builtin"))
        assert says in str(info.value) and f"delete {lock}" in str(info.value), str(info.value)
        assert lock.read_text() == content
    lock.unlink()
    with SessionRecorder.open(path, loaded=demo_model, dataset=load_dataset("builtin")) as rec:
        with pytest.raises(SessionLockedError, match="this process"):  # one writer within a process too
            SessionRecorder.open(path, loaded=demo_model, dataset=load_dataset("builtin"))
        rec.probe_layers("y")
        lock.unlink()  # deleted by hand, and taken by a writer elsewhere: the next save is refused
        lock.write_text('{"pid": 1, "host": "elsewhere"}')
        with pytest.raises(SessionLockedError, match="pid 1 on elsewhere") as info:
            rec.probe_layers("z")
        assert info.value.result is not None  # the step's result is still handed back
    assert lock.read_text() == '{"pid": 1, "host": "elsewhere"}'  # closing removed no other writer's lock
    assert [st.inputs.prompt for st in read_session(path).steps] == ["x = 0", "y"]


def test_the_console_opens_a_session_another_process_writes_read_only(tmp_path, demo_model, demo_model_path):
    """`steertui --session FILE` while another process records into FILE: the console opens it as a view (the
    header says READ-ONLY and names the writer's pid), computes as usual and appends nothing to the file; the
    writer's lock stays its own."""
    import asyncio

    from steertui.engine.session.lock import SessionLockedError
    from steertui.tui.app import SteerApp

    path = _recorded_session(tmp_path, demo_model)
    writer = _session_writer(path, demo_model_path)
    lock = tmp_path / "shared.toml.lock"

    async def run() -> None:
        app = SteerApp(session_file=str(path))
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert not app.failures, [f.error for f in app.failures]
            assert isinstance(app.recorder.read_only, SessionLockedError) and not app.recorder.autosave
            assert "READ-ONLY" in app.sub_title and f"pid {writer.pid}" in app.sub_title, app.sub_title
            before = path.read_bytes()
            await pilot.press("t")
            await pilot.pause()
            await app.workers.wait_for_complete()
            await pilot.pause()
            assert app.tokens is not None and not app.failures and app.is_running
            assert path.read_bytes() == before
        assert json.loads(lock.read_text())["pid"] == writer.pid

    try:
        asyncio.run(run())
    finally:
        _, err = writer.communicate("\n", timeout=120)
    assert writer.returncode == 0, err
    assert not lock.exists()
