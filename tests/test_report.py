"""`steertui report FILE`: a saved session read from the file alone (no model, no data), every step shown with
its recorded numbers; saved as HTML or text; bad input is one line and exit 2."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest
import tomli_w

from steertui.cli import main
from steertui.engine.session import read_session

REPO = Path(__file__).resolve().parents[1]
SESSIONS = REPO / "sessions"


@pytest.fixture
def no_model(monkeypatch):
    """A report loads no model: loading one fails the test."""
    from steertui.engine.model import LoadedModel

    def refuse(*_args, **_kwargs):
        raise AssertionError("the report loaded a model")

    monkeypatch.setattr(LoadedModel, "load", refuse)


def _report(capsys, *argv: str) -> str:
    assert main(["report", *argv]) == 0
    return capsys.readouterr().out


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_the_tour_is_reported_with_its_recorded_numbers(capsys, no_model):
    path = SESSIONS / "demo-tour.toml"
    doc = read_session(path)
    out = _report(capsys, str(path))
    flat = _flat(out)
    m = doc.model
    assert f"model {m.spec}" in out and m.weights_sha256[:16] in out and f"d_model {m.d_model}" in out
    assert "every tensor in the sidecar matches its sha256" in out
    vec = doc.vectors[0]
    assert f"1:{vec.sha256['1'][:12]}" in out and vec.read_at in out
    assert "steering vuln at layer 2 × 4 (all)" in out
    assert f"{len(doc.steps)} step(s)" in out
    for i, step in enumerate(doc.steps):
        assert f"steps[{i}] {step.kind}" in out
    build, layers, lens, top, gen, ev = doc.steps
    for d in build.outputs.diagnostics:  # the build's diagnostics, as recorded
        assert f"{d.auroc_pairs:.3f}" in out and f"{d.norm_ratio:.3f}" in out
    assert "no module flagged" in out and f"{layers.outputs.n_tokens} tokens" in out
    last = lens.outputs.steered[-1]
    assert f"{last.top_texts[-1][0]!r} {last.top_probs[-1][0]:.2f}" in out
    assert f"{lens.outputs.final_logits_check:.2g}" in out
    for row in top.outputs.rows:
        assert f"KL(steered ‖ baseline) {row.kl:.4g}" in flat
        assert repr(row.steered_texts[0]) in out and f"{row.steered_probs[0]:.3f}" in out
    for row in gen.outputs.rows:
        assert repr(row.baseline_text) in out and repr(row.steered_text) in out
    assert "they differ from token 7 on" in out  # the first prompt's first divergence
    every = [r for r in ev.outputs.rows if r.cwe == "all"]
    assert every and all(f"{r.shift:+.3f}" in out and f"{r.kl:.4f}" in out for r in every)
    assert f"{len(ev.outputs.files)} held-out file records" in out


def test_an_imported_vector_and_steering_on_two_layers(capsys, no_model):
    out = _flat(_report(capsys, str(SESSIONS / "demo-import.toml")))
    assert "imported from demo-tour-vuln.safetensors" in out
    assert "8 pair(s) it was built from left out" in out
    assert "steering vuln at layer 1 × 2 (all); vuln at layer 2 × 4 (all)" in out
    assert "vector 'vuln' as given, in every fold" in out


def test_saved_as_html_and_text_and_read_while_another_process_records(tmp_path, capsys, demo_model, no_model):
    from steertui.engine.data import load_dataset
    from steertui.engine.session import SessionRecorder

    builtin = load_dataset("builtin")
    path = tmp_path / "live.toml"
    rec = SessionRecorder.new(demo_model, builtin, path)  # holds the session's lock while the test reads it
    rec.top_tokens(["char buf[8];\nbuf[i] = x[b]; /* [bold] */"], k=3, steering=[])  # brackets are code
    try:
        out = _report(capsys, str(path), "--html", str(tmp_path / "r.html"), "--text", str(tmp_path / "r.txt"))
    finally:
        rec.close()
    assert "vectors none" in out and "steering none" in out and "steps[0] top_tokens" in out
    assert "'buf[i] = x[b]; /* [bold] */' (last line of 2" in out  # printed as written, not read as markup
    assert (tmp_path / "r.txt").read_text() == out  # the same report, 150 columns
    html = (tmp_path / "r.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and "top_tokens" in html and "live.toml" in html


def test_missing_sidecar_and_older_files_are_said_not_refused(tmp_path, capsys, no_model):
    for name in ("demo-tour.toml", "demo-tour.safetensors"):
        shutil.copy(SESSIONS / name, tmp_path / name)
    path = tmp_path / "demo-tour.toml"
    data = tomllib.loads(path.read_text())
    data["steps"][-1]["outputs"].pop("files")  # an evaluation written before per-file records were kept
    path.write_text(tomli_w.dumps(data))
    (tmp_path / "demo-tour.safetensors").unlink()
    out = _flat(_report(capsys, str(path)))
    assert "vectors not checked:" in out and "the sidecar" in out and "demo-tour.safetensors is missing" in out
    assert "no per-file records (written before they were kept)" in out


@pytest.mark.parametrize("argv, says", [
    (["nope.toml"], "no such session file"),
    (["BAD"], "is not TOML: Expected"),
    (["TOUR", "--html", "/no/such/folder/r.html"], "folder '/no/such/folder' for --html does not exist"),
    (["TOUR", "--text", "FOLDER"], "is a folder"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, says, no_model):
    bad = tmp_path / "bad.toml"
    bad.write_text("[steertui\nschema = 1\n")
    swap = {"BAD": str(bad), "TOUR": str(SESSIONS / "demo-tour.toml"), "FOLDER": str(tmp_path),
            "nope.toml": str(tmp_path / "nope.toml")}
    assert main(["report", *[swap.get(a, a) for a in argv]]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err and err.startswith("steertui: error:")


async def test_the_consoles_r_key_writes_the_report_beside_the_session(tour, capsys):
    """`R` in the console: the session's report as HTML beside its file (what `steertui report FILE --html` writes
    for the same steps), named in a notification; before any step there is nothing to report and the key is off."""
    from test_tui import _settle, _until

    from steertui.tui.app import SteerApp

    async with SteerApp(session_file=str(tour)).run_test(size=(120, 40)) as pilot:
        app = pilot.app
        await _settle(app, pilot)
        assert not app.failures, app.failures
        assert app.check_action("report", ()) is True
        await pilot.press("R")
        await _until(pilot, lambda: app.report_path is not None or app.failures)
        assert not app.failures, app.failures
        out = tour.with_suffix(".html")
        assert app.report_path == str(out) and out.is_file()
    html = out.read_text()
    cli = tour.parent / "cli.html"
    assert main(["report", str(tour), "--html", str(cli)]) == 0
    capsys.readouterr()
    assert html == cli.read_text()  # the same report, from the same steps


async def test_no_report_before_a_step(demo_model_path):
    from test_tui import _console

    async with _console(demo_model_path) as (app, _pilot):
        assert app.recorder is None and app.check_action("report", ()) is None
