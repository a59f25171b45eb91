"""Replay a session: load what it names, check it is what was recorded, re-run every step, compare.

Before anything runs, :func:`prepare` checks, in this order (each failure is a :class:`SessionError` that
names the file, the key and what to do): the TOML and its schema; the sidecar (present, every vector's
sha256 and size); the data (available, every recorded file's sha256 unchanged); the model (available, its
weights' sha256, its sizes against the vectors).

Comparison (:func:`compare`): token ids, texts, counts and every other discrete value exactly; floats within
``|replayed - recorded| <= ABS_TOL + REL_TOL * |recorded|`` (NaN matches NaN). A rebuilt vector is compared
element by element with the same rule against the sidecar (later steps steer with the sidecar's vectors,
exactly as recorded). Each step's verdict is plain data (:class:`StepVerdict`).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from steertui.engine.session import ops
from steertui.engine.session import schema as S
from steertui.engine.session.opening import OpenedSession, load_data, load_model, prepare  # re-exported
from steertui.engine.session.store import SessionError
from steertui.errors import SteertuiError

ABS_TOL = 1e-4
REL_TOL = 1e-3
TOLERANCE_RULE = "|replayed - recorded| <= 1e-4 + 1e-3 * |recorded| for floats; everything else exactly"
MAX_DIFFS = 20  # differences listed per step (all are counted)


def tolerance() -> dict[str, Any]:
    return {"abs": ABS_TOL, "rel": REL_TOL, "rule": TOLERANCE_RULE}


# ---- comparison -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Diff:
    path: str
    recorded: Any
    replayed: Any
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "recorded": _plain(self.recorded), "replayed": _plain(self.replayed),
                "note": self.note}

    def __str__(self) -> str:
        extra = f" ({self.note})" if self.note else ""
        return f"{self.path}: recorded {_show(self.recorded)}, replayed {_show(self.replayed)}{extra}"


def _plain(v: Any) -> Any:
    """JSON-safe: non-finite floats as strings, recursively."""
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


def _show(v: Any, limit: int = 80) -> str:
    text = repr(v)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def close(recorded: float, replayed: float) -> bool:
    if math.isnan(recorded) or math.isnan(replayed):
        return math.isnan(recorded) and math.isnan(replayed)
    if math.isinf(recorded) or math.isinf(replayed):
        return recorded == replayed
    return abs(replayed - recorded) <= ABS_TOL + REL_TOL * abs(recorded)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def compare(recorded: Any, replayed: Any, path: str, out: list[Diff]) -> None:
    """Append every difference between two plain-data trees to ``out``."""
    if isinstance(recorded, dict) and isinstance(replayed, dict):
        for key in list(recorded) + [k for k in replayed if k not in recorded]:
            sub = f"{path}.{key}" if str(key).replace("_", "").isalnum() else f'{path}["{key}"]'
            if key not in replayed:
                out.append(Diff(sub, recorded[key], None, "missing in the replay"))
            elif key not in recorded:
                out.append(Diff(sub, None, replayed[key], "not recorded"))
            else:
                compare(recorded[key], replayed[key], sub, out)
        return
    if isinstance(recorded, list) and isinstance(replayed, list):
        if len(recorded) != len(replayed):
            out.append(Diff(f"{path}", f"{len(recorded)} items", f"{len(replayed)} items", "length differs"))
        for i, (a, b) in enumerate(zip(recorded, replayed)):
            compare(a, b, f"{path}[{i}]", out)
        return
    if (isinstance(recorded, float) or isinstance(replayed, float)) and _is_num(recorded) and _is_num(replayed):
        if not close(float(recorded), float(replayed)):
            out.append(Diff(path, recorded, replayed, f"|Δ| = {abs(float(replayed) - float(recorded)):.3g}"))
        return
    if type(recorded) is not type(replayed) or recorded != replayed:
        out.append(Diff(path, recorded, replayed))


def _dump(model: Any) -> Any:
    return model.model_dump(mode="python", exclude_none=True)


# ---- verdicts ------------------------------------------------------------------------------------------------
@dataclass
class StepVerdict:
    index: int
    kind: str
    verdict: str  # "match" | "mismatch"
    n_diffs: int
    diffs: list[Diff]
    seconds: float
    summary: str = ""

    @property
    def ok(self) -> bool:
        return self.verdict == "match"

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "kind": self.kind, "verdict": self.verdict, "n_diffs": self.n_diffs,
                "diffs": [d.to_dict() for d in self.diffs], "seconds": round(self.seconds, 3),
                "summary": self.summary}


@dataclass
class ReplayReport:
    file: str
    model: dict[str, Any]
    data: str
    steps: list[StepVerdict]
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    @property
    def mismatched(self) -> list[StepVerdict]:
        return [s for s in self.steps if not s.ok]

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "ok": self.ok, "tolerance": tolerance(), "model": self.model, "data": self.data,
                "notes": list(self.notes), "seconds": round(self.seconds, 3),
                "steps": [s.to_dict() for s in self.steps]}


# ---- replay ---------------------------------------------------------------------------------------------------
SUMMARY_ROWS = 3  # an evaluation with more rows over all CWEs is summarised by its size and its largest shift


def summarize(kind: str, outputs: Any, inputs: Any = None) -> str:
    """One line about a step's (replayed) outputs (and, for an evaluation of layers steered at once, its
    ``inputs``), for the console and the CLI."""
    o = outputs
    if kind == "layers":
        flagged = sum(1 for m in o.modules if m.flags)
        return f"{len(o.modules)} modules, {o.n_layers} layers, prompt of {o.n_tokens} tokens, {flagged} flagged"
    if kind == "lens":
        last = o.baseline[-1] if o.baseline else None
        top = last.top_texts[-1][0] if last and last.top_texts and last.top_texts[-1] else "?"
        side = f", steered top {o.steered[-1].top_texts[-1][0]!r}" if o.steered and o.steered[-1].top_texts else ""
        return f"{len(o.baseline)} layers × {len(o.positions)} positions, last layer top {top!r}{side}"
    if kind == "top_tokens":
        parts = [f"{r.baseline_texts[0]!r}→{r.steered_texts[0]!r} KL {r.kl:.3g}" for r in o.rows[:3]]
        return f"{len(o.rows)} prompt(s): " + "; ".join(parts)
    if kind == "generate":
        r = o.rows[0]
        div = "identical" if r.first_divergence is None else f"diverge at token {r.first_divergence}"
        return f"{len(o.rows)} prompt(s); first: {r.baseline_text[:30]!r} vs {r.steered_text[:30]!r} ({div})"
    if kind == "evaluate":
        rows = [r for r in o.rows if r.cwe == "all"]
        per_cwe = ("a vector per CWE; " if getattr(inputs, "per_cwe", False) else "") + \
            ("few-shot prompts; " if getattr(inputs, "shot_pairs", None) else "")
        if len(rows) > SUMMARY_ROWS:  # an alpha sweep or a layer grid: its size and its largest shift
            top = max(rows, key=lambda r: abs(r.shift))
            n_layers, n_alphas = len({r.layer for r in rows}), len({r.alpha for r in rows})
            return (f"{per_cwe}{n_layers} layer(s) × {n_alphas} alphas; largest shift {top.shift:+.3g} at layer "
                    f"{top.layer} α {top.alpha:g} (random {top.random_shift:+.3g}, acc {top.accuracy:.2f}, "
                    f"KL {top.kl:.3g})")
        together = getattr(inputs, "together", None)
        which = (lambda r: f"layer {r.layer}") if together is None else \
            (lambda r: f"layers {'+'.join(map(str, inputs.layers))} together")
        return per_cwe + "; ".join(
            f"{which(r)} α {r.alpha:g}: shift {r.shift:+.3g}, acc {r.accuracy:.2f}, KL {r.kl:.3g}"
            + (f", fix site {r.fix_shift:+.3g} (rand {r.random_fix_shift:+.3g})" if r.fix_shift is not None else "")
            for r in rows)
    if kind in S.VECTOR_STEPS:
        return ", ".join(f"layer {d.layer}: norm {d.vector_norm:.3g}"
                         + (f", AUROC {d.auroc_pairs:.2f}" if d.auroc_pairs is not None else "")
                         for d in o.diagnostics)
    return ""


def replay_step(opened: OpenedSession, index: int, ctx: ops.StepContext | None = None) -> StepVerdict:
    """Re-run step ``index`` and compare it with the recording."""
    step = opened.doc.steps[index]
    ctx = ctx or ops.StepContext(opened.model, opened.dataset, opened.vectors)
    start = time.perf_counter()
    try:
        outputs, result = ops.run_step(ctx, step.kind, step.inputs)
    except SessionError:
        raise
    except SteertuiError as err:
        raise SessionError(opened.path, f"steps[{index}]", f"{step.kind} step cannot run: {err.problem}",
                           err.hint or "fix the step's inputs, or re-record the session") from None
    seconds = time.perf_counter() - start
    base = f"steps[{index}].outputs"
    diffs: list[Diff] = []
    rec_data, new_data = _dump(step.outputs), _dump(outputs)
    _unrecorded(step.kind, rec_data, new_data)
    if step.kind == "build_vectors":
        rec_data.pop("sha256", None)
        new_data.pop("sha256", None)
        name = step.inputs.vector
        recorded = opened.vectors.get(name, {})
        for L, v in sorted(result.vectors.vectors.items()):
            _compare_vector(recorded.get(L), v, f"{base}.vectors.{name}[layer {L}]", diffs)
    compare(rec_data, new_data, base, diffs)
    return StepVerdict(index, step.kind, "match" if not diffs else "mismatch", len(diffs), diffs[:MAX_DIFFS],
                       seconds, summarize(step.kind, outputs, step.inputs))


def _unrecorded(kind: str, recorded: dict[str, Any], replayed: dict[str, Any]) -> None:
    """Leave out of the comparison every output of ``schema.LATER_OUTPUTS`` that the file does not record."""
    for key in S.LATER_OUTPUTS.get(kind, ()):
        if key.startswith("rows[]."):
            name = key.removeprefix("rows[].")
            for rec, new in zip(recorded.get("rows", ()), replayed.get("rows", ())):
                if rec.get(name) is None:
                    rec.pop(name, None)
                    new.pop(name, None)
        elif not recorded.get(key):
            recorded.pop(key, None)
            replayed.pop(key, None)


def _compare_vector(recorded: Any, rebuilt: Any, path: str, out: list[Diff]) -> None:
    if recorded is None:
        out.append(Diff(path, None, "a vector", "not in the sidecar"))
        return
    a, b = recorded.float().cpu(), rebuilt.detach().float().cpu()
    if a.shape != b.shape:
        out.append(Diff(path, list(a.shape), list(b.shape), "shape differs"))
        return
    # NaN against a number (either way) is a difference; NaN against a recorded NaN, or equal infinities, are not
    close = ((b - a).abs() <= ABS_TOL + REL_TOL * a.abs()) | (a == b) | (a.isnan() & b.isnan())
    bad = ~close
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        out.append(Diff(f"{path}[{i}]", float(a[i]), float(b[i]),
                        f"{int(bad.sum())} of {a.numel()} elements beyond tolerance"))


def replay(path: str | os.PathLike[str] | OpenedSession, *, model: str | None = None,
           dataset_path: str | os.PathLike[str] | None = None, device: str | None = None,
           dtype: str | None = None, on_step: Callable[[StepVerdict], None] | None = None) -> ReplayReport:
    """Check and re-run every step of a session; returns per-step verdicts (raises :class:`SessionError` when
    the file, its sidecar, the model or the data cannot be used)."""
    start = time.perf_counter()
    opened = path if isinstance(path, OpenedSession) else prepare(path, model=model, dataset_path=dataset_path,
                                                                  device=device, dtype=dtype)
    ctx = ops.StepContext(opened.model, opened.dataset, opened.vectors)
    verdicts = []
    for i in range(len(opened.doc.steps)):
        v = replay_step(opened, i, ctx)
        verdicts.append(v)
        if on_step is not None:
            on_step(v)
    info = opened.model.info
    return ReplayReport(file=str(opened.path),
                        model={"spec": opened.doc.model.spec, "name": info.name, "device": info.device,
                               "dtype": info.dtype, "weights_sha256": info.weights_sha256},
                        data=opened.dataset.source.label if opened.dataset is not None else opened.doc.data.label,
                        steps=verdicts, notes=opened.notes, seconds=time.perf_counter() - start)


__all__ = ["ABS_TOL", "REL_TOL", "TOLERANCE_RULE", "Diff", "OpenedSession", "ReplayReport", "StepVerdict",
           "compare", "load_data", "load_model", "prepare", "replay", "replay_step", "summarize", "tolerance"]
