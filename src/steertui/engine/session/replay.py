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
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from steertui.engine.session import ops
from steertui.engine.session import schema as S
from steertui.engine.session.store import SessionError, read_session, read_vectors
from steertui.errors import SteertuiError

if TYPE_CHECKING:  # pragma: no cover
    from steertui.engine.data import Dataset
    from steertui.engine.model import ModelSession

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


# ---- loading and checking -------------------------------------------------------------------------------------
@dataclass
class OpenedSession:
    """A checked session with its model, data (None when no step needs it and none was given) and vectors."""

    path: Path
    doc: S.Session
    session: "ModelSession"
    dataset: "Dataset | None"
    vectors: dict[str, dict[int, Any]]
    notes: list[str]


def _needs_dataset(doc: S.Session) -> bool:
    return bool(doc.data.files) or any(s.kind in ("evaluate", "build_vectors") for s in doc.steps)


def load_data(doc: S.Session, path: Path, dataset_path: str | os.PathLike[str] | None = None) -> "Dataset":
    """The dataset the session names (or ``dataset_path`` instead), with every recorded file's sha256 checked."""
    from steertui.engine.data import load_builtin, load_checkout
    from steertui.errors import DatasetError

    data = doc.data
    try:
        if dataset_path is not None:
            from steertui.engine.data import load_dataset

            dataset = load_dataset(dataset_path)
        elif data.kind == "builtin":
            dataset = load_builtin(origin="session", reason=f"session {path.name}")
        else:
            root = Path(os.path.expanduser(data.root))
            if not root.is_absolute():
                root = path.parent / root
            dataset = load_checkout(root, origin="session", reason=f"data.root in {path.name}")
    except DatasetError as err:
        raise SessionError(path, "data.root", f"the dataset {data.label!r} is not available: {err.problem}",
                           "pass --dataset PATH to a copy of it (its files are checked against the recorded "
                           "sha256), or fetch it with `steertui data fetch`") from None
    kind = "builtin" if dataset.source.kind == "builtin" else "secllmholmes"
    if kind != data.kind:
        raise SessionError(path, "data.kind", f"the session was recorded on {data.label!r}, the dataset given is "
                           f"{dataset.source.label!r}", "pass the dataset the session names")
    for sid, sha in data.files.items():
        sample = dataset.get(sid)
        key = f'data.files."{sid}"'
        if sample is None or not hasattr(sample, "sha256"):
            raise SessionError(path, key, f"sample {sid!r} is not in {dataset.source.label}",
                               "pass the dataset the session was recorded on (--dataset PATH)")
        if sample.sha256 != sha:
            raise SessionError(path, key, f"the data file {sample.source_path} (sample {sid}) changed since the "
                               f"session was recorded (sha256 {sha[:12]}… now {sample.sha256[:12]}…)",
                               "restore the file" + (f" (git checkout {data.commit} in the checkout)" if data.commit
                                                      else "") + ", or re-record the session")
    return dataset


def load_model(doc: S.Session, path: Path, *, model: str | None = None, device: str | None = None,
               dtype: str | None = None) -> "ModelSession":
    """The model the session names (``spec`` relative to the session file), its weights checked."""
    from steertui.engine.model import ModelSession
    from steertui.errors import ModelLoadError

    m = doc.model
    spec = model
    if spec is None:
        spec = m.spec
        if spec != "demo":
            local = Path(os.path.expanduser(spec))
            cand = local if local.is_absolute() else path.parent / local
            if cand.exists() or spec.startswith((".", "/", "~")) or spec.count("/") > 1:
                spec = str(cand)
    try:
        session = ModelSession.load(spec, device=device or m.device, dtype=dtype or m.dtype, revision=m.revision)
    except ModelLoadError as err:
        raise SessionError(path, "model.spec", f"the model is not available: {err.problem}",
                           err.hint or "pass --model PATH to a copy of it") from None
    info = session.info
    if m.weights_sha256 and info.weights_sha256 != m.weights_sha256:
        raise SessionError(path, "model.weights_sha256",
                           f"the weights of {info.name} ({info.path}) are not the ones recorded "
                           f"(sha256 {m.weights_sha256[:12]}… now {info.weights_sha256[:12]}…)",
                           "load the model the session was recorded on (--model PATH), or re-record the session")
    for key in ("n_layers", "d_model", "vocab_size"):
        if getattr(info, key) != getattr(m, key):
            raise SessionError(path, f"model.{key}", f"the model has {key}={getattr(info, key)}, the session "
                               f"recorded {getattr(m, key)}", "load the model the session was recorded on")
    return session


def prepare(path: str | os.PathLike[str], *, session: "ModelSession | None" = None,
            dataset: "Dataset | None" = None, model: str | None = None,
            dataset_path: str | os.PathLike[str] | None = None, device: str | None = None,
            dtype: str | None = None, need_dataset: bool | None = None) -> OpenedSession:
    """Read and check everything a session names; nothing in the file is executed."""
    from steertui.engine.session.recorder import environment

    path = Path(path)
    doc = read_session(path)
    vectors = read_vectors(doc, path)
    notes: list[str] = []
    if need_dataset is None:
        need_dataset = _needs_dataset(doc)
    if dataset is not None:
        _check_files(doc, path, dataset)
    elif need_dataset or dataset_path is not None:
        dataset = load_data(doc, path, dataset_path)
    if dataset is not None and doc.data.commit and dataset.source.commit and dataset.source.commit != doc.data.commit:
        notes.append(f"data: recorded at commit {doc.data.commit}, the checkout is at {dataset.source.commit} "
                     "(the files the session used are unchanged)")
    if session is None:
        session = load_model(doc, path, model=model, device=device, dtype=dtype)
    elif doc.model.weights_sha256 and session.info.weights_sha256 and \
            session.info.weights_sha256 != doc.model.weights_sha256:
        raise SessionError(path, "model.weights_sha256", f"the loaded model {session.info.name} is not the one "
                           "recorded (weights sha256 differs)", "load the model the session names")
    for i, rec in enumerate(doc.vectors):
        if rec.d_model != session.d_model:
            raise SessionError(path, f"vectors[{i}].d_model", f"vector {rec.name!r} has {rec.d_model} dimensions, "
                               f"{session.info.name} has d_model={session.d_model}",
                               "replay on the model the vectors were built on")
    env = environment()
    for key in ("version", "torch", "transformers", "nnsight", "python"):
        then, now = getattr(doc.steertui, key), env[key]
        if then != now:
            label = "steertui" if key == "version" else key
            notes.append(f"recorded with {label} {then}, replaying with {now}")
    info = session.info
    if info.device != doc.model.device or info.dtype != doc.model.dtype:
        notes.append(f"recorded on {doc.model.device}/{doc.model.dtype}, replaying on {info.device}/{info.dtype}")
    return OpenedSession(path, doc, session, dataset, vectors, notes)


def _check_files(doc: S.Session, path: Path, dataset: "Dataset") -> None:
    for sid, sha in doc.data.files.items():
        sample = dataset.get(sid)
        if sample is None or getattr(sample, "sha256", None) != sha:
            raise SessionError(path, f'data.files."{sid}"', f"sample {sid!r} is missing from or changed in "
                               f"{dataset.source.label}", "use the dataset the session was recorded on")


# ---- replay ---------------------------------------------------------------------------------------------------
def summarize(kind: str, outputs: Any) -> str:
    """One line about a step's (replayed) outputs, for the console and the CLI."""
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
        return "; ".join(f"layer {r.layer} α {r.alpha:g}: shift {r.shift:+.3g}, acc {r.accuracy:.2f}, KL {r.kl:.3g}"
                         for r in rows)
    if kind == "build_vectors":
        return ", ".join(f"layer {d.layer}: norm {d.vector_norm:.3g}"
                         + (f", AUROC {d.auroc_pairs:.2f}" if d.auroc_pairs is not None else "")
                         for d in o.diagnostics)
    return ""


def replay_step(opened: OpenedSession, index: int, ctx: ops.StepContext | None = None) -> StepVerdict:
    """Re-run step ``index`` and compare it with the recording."""
    step = opened.doc.steps[index]
    ctx = ctx or ops.StepContext(opened.session, opened.dataset, opened.vectors)
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
    if step.kind == "build_vectors":
        rec_data.pop("sha256", None)
        new_data.pop("sha256", None)
        name = step.inputs.vector
        recorded = opened.vectors.get(name, {})
        for L, v in sorted(result.vectors.vectors.items()):
            _compare_vector(recorded.get(L), v, f"{base}.vectors.{name}[layer {L}]", diffs)
    compare(rec_data, new_data, base, diffs)
    return StepVerdict(index, step.kind, "match" if not diffs else "mismatch", len(diffs), diffs[:MAX_DIFFS],
                       seconds, summarize(step.kind, outputs))


def _compare_vector(recorded: Any, rebuilt: Any, path: str, out: list[Diff]) -> None:
    if recorded is None:
        out.append(Diff(path, None, "a vector", "not in the sidecar"))
        return
    a, b = recorded.float().cpu(), rebuilt.detach().float().cpu()
    if a.shape != b.shape:
        out.append(Diff(path, list(a.shape), list(b.shape), "shape differs"))
        return
    bad = (b - a).abs() > ABS_TOL + REL_TOL * a.abs()
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
    ctx = ops.StepContext(opened.session, opened.dataset, opened.vectors)
    verdicts = []
    for i in range(len(opened.doc.steps)):
        v = replay_step(opened, i, ctx)
        verdicts.append(v)
        if on_step is not None:
            on_step(v)
    info = opened.session.info
    return ReplayReport(file=str(opened.path),
                        model={"spec": opened.doc.model.spec, "name": info.name, "device": info.device,
                               "dtype": info.dtype, "weights_sha256": info.weights_sha256},
                        data=opened.dataset.source.label if opened.dataset is not None else opened.doc.data.label,
                        steps=verdicts, notes=opened.notes, seconds=time.perf_counter() - start)


__all__ = ["ABS_TOL", "REL_TOL", "TOLERANCE_RULE", "Diff", "OpenedSession", "ReplayReport", "StepVerdict",
           "compare", "load_data", "load_model", "prepare", "replay", "replay_step", "summarize", "tolerance"]
