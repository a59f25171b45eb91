"""`steertui bench`: the real rows on the demo model, once each; what is checked is the report's structure and
that every baseline did the same work as steertui (never how fast either was)."""

from __future__ import annotations

import json
import math

from steertui.cli import main

KEYS = {"name", "model", "tokens", "median_s", "baseline_s", "ratio", "target", "peak_mem_mb"}
TOP = ("device", "dtype", "torch", "transformers", "nnsight", "threads", "results")


def _check_rows(rows: list[dict]) -> None:
    for r in rows:
        assert KEYS <= set(r), (r["name"], KEYS - set(r))
        for key in ("median_s", "baseline_s", "ratio"):
            assert isinstance(r[key], float) and math.isfinite(r[key]) and r[key] > 0, (r["name"], key, r[key])
        assert math.isclose(r["ratio"], r["median_s"] / r["baseline_s"], rel_tol=1e-9)
        assert r["target"] is None or r["target"] > 0
        assert r["met"] is None if r["target"] is None else r["met"] == (r["ratio"] <= r["target"])
        assert r["peak_mem_mb"] is None or r["peak_mem_mb"] >= 0
        assert r["repeats"] == 1 and len(r["times_s"]) == 1 and len(r["baseline_times_s"]) == 1
        # the baseline really did the same work: the same ids, logits, hidden states or scores (see each check)
        assert r["check_ok"] is True, (r["name"], r["check"])


def test_bench_command_writes_json(tmp_path, capsys):
    out, md = tmp_path / "bench.json", tmp_path / "bench.md"
    code = main(["bench", "--quick", "--repeats", "1", "--rows", "forward,lens,startup", "--dataset", "builtin",
                 "--json", str(out), "--markdown", str(md)])
    assert code == 0
    text = out.read_text()
    assert "NaN" not in text and "Infinity" not in text  # json.loads would accept them
    data = json.loads(text)
    assert all(key in data for key in TOP)
    assert data["device"] == "cpu" and data["dtype"] == "float32" and data["threads"] >= 1
    assert [r["name"] for r in data["results"]] == ["forward + answer logits", "lens grid", "lens diff grid",
                                                    "continuation reading", "steertui --help"]
    _check_rows(data["results"])
    assert data["results"][1]["target"] == 1.5 and data["results"][0]["target"] is None  # 1.05 is for the 1B shape
    printed = capsys.readouterr().out
    assert "lens diff grid" in printed and "ratio" in printed
    # the Markdown table: one line per row, the ratio and peak memory of each as the JSON has them
    lines = md.read_text().splitlines()
    assert lines[0].startswith("`steertui bench` on demo, cpu float32,") and lines[1] == ""
    assert lines[2].startswith("| row | tokens | steertui s |") and len(lines) == 4 + len(data["results"])
    for r, line in zip(data["results"], lines[4:]):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == r["name"] and cells[4] == f"×{r['ratio']:.2f}"
        assert cells[6] == ("-" if r["met"] is None else "yes" if r["met"] else "**no**")

    # --show prints the same table from the file, measuring nothing; a report read back writes the same JSON
    from steertui.engine.bench import BenchReport, markdown_table

    assert BenchReport.from_dict(data).to_dict() == data
    assert markdown_table(BenchReport.from_dict(data)) == md.read_text()
    md2 = tmp_path / "again.md"
    assert main(["bench", "--show", str(out), "--markdown", str(md2)]) == 0
    assert capsys.readouterr().out == printed and md2.read_text() == md.read_text()


def test_bench_show_refuses_what_it_cannot_read(tmp_path, capsys):
    """--show names the file and what is wrong with it, and measures nothing: options that measure are refused."""
    cases = {"missing.json": None, "text.json": "{not json", "list.json": "[1, 2]",
             "norows.json": '{"device": "cpu", "dtype": "float32", "threads": 1, "results": [{"name": "x"}]}',
             "binary.json": b"\xff\xfe\x00"}
    said = {"missing.json": "not found", "text.json": "is not JSON (line 1", "list.json": "no 'results' list",
            "norows.json": "result 1 (x): a row has no 'tokens'", "binary.json": "is not a text file"}
    for name, body in cases.items():
        path = tmp_path / name
        if isinstance(body, bytes):
            path.write_bytes(body)
        elif body is not None:
            path.write_text(body)
        assert main(["bench", "--show", str(path)]) == 2, name
        err = capsys.readouterr().err
        assert name in err and said[name] in err, (name, err)
    good = tmp_path / "good.json"
    good.write_text('{"device": "cpu", "dtype": "float32", "threads": 1, "results": []}')
    assert main(["bench", "--show", str(good), "--quick"]) == 2
    assert "--show measures nothing, so --quick does nothing with it" in capsys.readouterr().err
    assert main(["bench", "--show", str(good), "--markdown", str(tmp_path / "no" / "t.md")]) == 2
    assert "for --markdown does not exist" in capsys.readouterr().err


def test_generation_extraction_evaluation_rows(demo_model):
    from steertui.engine.bench import Plan, run_bench
    from steertui.engine.data import load_dataset

    pairs = list(load_dataset("builtin").pairs)
    plan = Plan(repeats=1, rows=("generate", "extract", "eval"), extract_pairs=4, eval_pairs=4, eval_folds=2,
                cheap_warmup=True)
    report = run_bench(demo_model, pairs, plan, source="builtin")
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert all(key in data for key in TOP)
    rows = {r["name"]: r for r in data["results"]}
    assert list(rows) == ["generate b1", "generate b8", "extract all layers", "verdict evaluation",
                          "evaluation split", "evaluation fix site"]
    _check_rows(data["results"])
    for b in (1, 8):  # steertui's steered generation and HF generate with the hook gave the same token ids
        gen = rows[f"generate b{b}"]
        assert gen["check"].startswith(f"same ids ({b}×") and gen["check"].endswith("True")
        assert gen["tokens"] == b * 64 and gen["batch"] == b and gen["target"] == 1.25
    assert rows["extract all layers"]["files"] == 8 and rows["extract all layers"]["target"] == 1.2
    assert rows["verdict evaluation"]["files"] == 8 and rows["verdict evaluation"]["files_per_s"] > 0
    split = rows["evaluation split"]  # the same evaluation with and without the split: the scores are the same
    assert split["tokens"] == 8 and split["target"] == 1.10 and split["check_ok"]
    assert split["check"] == "scores bit for bit the same: True; every file split: True"
    fix = rows["evaluation fix site"]  # with and without the fix sites: the verdict scores are the same
    assert fix["tokens"] == 8 and fix["target"] is None and fix["check_ok"]
    assert fix["check"] == "scores bit for bit the same: True; every pair's fix site scored: True"
    # the forwards each row makes (each reads every weight once); the demo model's 7.6 MB stay in the caches,
    # so no bandwidth is measured and no row gets a floor
    assert [rows[n]["forwards"] for n in rows] == [64, 64, 1, None, None, None]  # 8 files in one chunk of 8
    assert data["weight_bytes"] == sum(p.numel() * 4 for p in demo_model.hf.parameters())
    assert data["bandwidth_gbs"] is None and all(r["floor_s"] is None for r in data["results"])


def test_bandwidth_floor():
    """The floor of a row is its forwards × the weight bytes ÷ the bandwidth; the bandwidth is measured (a copy of
    a buffer: positive, finite); a model under the cache-sized threshold gets no floor."""
    from steertui.engine.bench import BenchRow, attach_floors, measure_bandwidth

    def row(passes):
        return BenchRow(name="r", model="m", tokens=1, median_s=2.0, baseline_s=1.0, target=None, peak_mem_mb=None,
                        baseline_peak_mem_mb=None, steertui="", baseline="", check="", check_ok=True, forwards=passes)

    rows = [row(64), row(1), row(None)]
    attach_floors(rows, 2 * 10**9, 4 * 10**12)  # 2 GB of weights at 4 TB/s: 0.5 ms a forward
    assert [r.floor_s for r in rows] == [0.032, 0.0005, None]
    assert rows[0].floor_ratio == 2.0 / 0.032 and rows[2].floor_ratio is None
    attach_floors(rows, 10 * 2**20, 4 * 10**12)
    assert all(r.floor_s is None for r in rows)
    bw = measure_bandwidth("cpu", nbytes=16 * 2**20, repeats=2)
    assert math.isfinite(bw) and bw > 1e8  # bytes per second


def test_shape_too_large_for_memory_is_refused_before_allocating(monkeypatch):
    """The 7B shape in float32 needs 27.3 GiB: with less free, build_shape says so (parameters, GiB, what is free and
    what to do) after counting the parameters on the meta device, before allocating anything."""
    import pytest

    from steertui.engine import bench
    from steertui.errors import SteertuiError

    monkeypatch.setattr(bench, "free_memory", lambda device: 16 * 2**30)
    with pytest.raises(SteertuiError) as err:
        bench.build_shape("starcoderbase-7b", device="cpu", dtype="float32")
    text = str(err.value) + " " + str(getattr(err.value, "hint", ""))
    assert "7.3 B parameters" in text and "GiB in float32" in text and "16.0 GiB free" in text
    assert "bfloat16" in text
    assert bench.free_memory("cpu") is None or bench.free_memory("cpu") > 0


def test_interleaved_and_first_call_measured():
    from steertui.engine.bench import Meter, interleave

    calls = []
    p = interleave(Meter("cpu"), lambda: calls.append("A") or "a", lambda: calls.append("B") or "b", 3)
    assert calls == ["A", "B"] + ["A", "B"] * 3  # warm-up, then alternating
    assert len(p.ours) == len(p.base) == 3 and (p.ours_out, p.base_out) == ("a", "b")
    assert p.ours_peak is None or p.ours_peak >= 0


def test_bare_model_is_restored(demo_model):
    from nnsight.intervention.source import Controller

    from steertui.engine.bench import bare

    wrapped = {id(m) for m in demo_model.hf.modules() if isinstance(m.__dict__.get("forward"), Controller)}
    assert wrapped
    with bare(demo_model) as hf:
        assert not any(isinstance(m.__dict__.get("forward"), Controller) for m in hf.modules())
    assert wrapped == {id(m) for m in demo_model.hf.modules() if isinstance(m.__dict__.get("forward"), Controller)}


def test_quick_refuses_other_models(capsys):
    assert main(["bench", "--quick", "--shape", "starcoderbase-1b"]) == 2
    assert "--quick runs on the demo model only" in capsys.readouterr().err
