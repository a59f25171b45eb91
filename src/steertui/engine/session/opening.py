"""Opening a recorded session: read and check the file, its sidecar, the data and the model it names, and the
environment it was recorded in. Shared by the recorder (the console's ``--session FILE``) and the replay.
Nothing in a session file is ever executed."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from steertui.engine.session import schema as S
from steertui.engine.session.store import SessionError, read_session, read_vectors

if TYPE_CHECKING:  # pragma: no cover
    from steertui.engine.data import Dataset
    from steertui.engine.model import LoadedModel


def _version(module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(module)
    except PackageNotFoundError:
        return "unknown"


def environment() -> dict[str, str]:
    """The versions a session records (and a replay compares, as notes)."""
    from steertui import __version__

    return {"version": __version__, "python": platform.python_version(), "torch": _version("torch"),
            "transformers": _version("transformers"), "nnsight": _version("nnsight")}


# ---- loading and checking -------------------------------------------------------------------------------------
@dataclass
class OpenedSession:
    """A checked session with its model, data (None when no step needs it and none was given) and vectors."""

    path: Path
    doc: S.Session
    model: "LoadedModel"
    dataset: "Dataset | None"
    vectors: dict[str, dict[int, Any]]
    notes: list[str]


def _needs_dataset(doc: S.Session) -> bool:
    return bool(doc.data.files) or any(s.kind in ("evaluate", *S.VECTOR_STEPS) for s in doc.steps)


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
               dtype: str | None = None) -> "LoadedModel":
    """The model the session names (``spec`` relative to the session file), its weights checked."""
    from steertui.engine.model import LoadedModel
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
        loaded = LoadedModel.load(spec, device=device or m.device, dtype=dtype or m.dtype, revision=m.revision)
    except ModelLoadError as err:
        raise SessionError(path, "model.spec", f"the model is not available: {err.problem}",
                           err.hint or "pass --model PATH to a copy of it") from None
    info = loaded.info
    if m.weights_sha256 and info.weights_sha256 != m.weights_sha256:
        raise SessionError(path, "model.weights_sha256",
                           f"the weights of {info.name} ({info.path}) are not the ones recorded "
                           f"(sha256 {m.weights_sha256[:12]}… now {info.weights_sha256[:12]}…)",
                           "load the model the session was recorded on (--model PATH), or re-record the session")
    for key in ("n_layers", "d_model", "vocab_size"):
        if getattr(info, key) != getattr(m, key):
            raise SessionError(path, f"model.{key}", f"the model has {key}={getattr(info, key)}, the session "
                               f"recorded {getattr(m, key)}", "load the model the session was recorded on")
    return loaded


def prepare(path: str | os.PathLike[str], *, loaded: "LoadedModel | None" = None,
            dataset: "Dataset | None" = None, model: str | None = None,
            dataset_path: str | os.PathLike[str] | None = None, device: str | None = None,
            dtype: str | None = None, need_dataset: bool | None = None) -> OpenedSession:
    """Read and check everything a session names; nothing in the file is executed."""
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
    if loaded is None:
        loaded = load_model(doc, path, model=model, device=device, dtype=dtype)
    elif doc.model.weights_sha256 and loaded.info.weights_sha256 and \
            loaded.info.weights_sha256 != doc.model.weights_sha256:
        raise SessionError(path, "model.weights_sha256", f"the loaded model {loaded.info.name} is not the one "
                           "recorded (weights sha256 differs)", "load the model the session names")
    for i, rec in enumerate(doc.vectors):
        if rec.d_model != loaded.d_model:
            raise SessionError(path, f"vectors[{i}].d_model", f"vector {rec.name!r} has {rec.d_model} dimensions, "
                               f"{loaded.info.name} has d_model={loaded.d_model}",
                               "replay on the model the vectors were built on")
        here = loaded.adapter.block_access_template
        if rec.read_at and rec.read_at != here:
            raise SessionError(path, f"vectors[{i}].read_at", f"vector {rec.name!r} was read at {rec.read_at}, and "
                               f"{loaded.info.name} gives its blocks' hidden state at {here}",
                               "replay on the model (and transformers version) the vectors were built on")
    env = environment()
    for key in ("version", "torch", "transformers", "nnsight", "python"):
        then, now = getattr(doc.steertui, key), env[key]
        if then != now:
            label = "steertui" if key == "version" else key
            notes.append(f"recorded with {label} {then}, replaying with {now}")
    info = loaded.info
    if info.device != doc.model.device or info.dtype != doc.model.dtype:
        notes.append(f"recorded on {doc.model.device}/{doc.model.dtype}, replaying on {info.device}/{info.dtype}")
    return OpenedSession(path, doc, loaded, dataset, vectors, notes)


def _check_files(doc: S.Session, path: Path, dataset: "Dataset") -> None:
    for sid, sha in doc.data.files.items():
        sample = dataset.get(sid)
        if sample is None or getattr(sample, "sha256", None) != sha:
            raise SessionError(path, f'data.files."{sid}"', f"sample {sid!r} is missing from or changed in "
                               f"{dataset.source.label}", "use the dataset the session was recorded on")
