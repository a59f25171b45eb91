"""``SessionRecorder``: run engine operations and record each as a step, autosaving after every one.

    rec = SessionRecorder.new(model, dataset, path)      # writes the file at once
    rec.build_vectors(pairs, name="v1", layers=[2])
    rec.set_steering([{"vector": "v1", "layer": 2, "alpha": 4.0}])
    rec.lens(prompt); rec.top_tokens([prompt]); rec.generate([prompt], max_new_tokens=16)
    rec.evaluate(pairs, EvalSettings(layers=(2,), alphas=(0.0, 4.0), folds=2))

Each method runs the engine operation (the same function a replay runs), appends a step with its inputs and
outputs, and saves atomically. Steps that steer take ``steering=`` (a list of interventions naming recorded
vectors); left out, the recorder's current steering (``set_steering``) applies. A cancelled or failing
operation records nothing. The recorder is thread-safe: one operation runs at a time.

One process writes a session file: the recorder holds its lock file (``NAME.toml.lock``,
:mod:`~steertui.engine.session.lock`) from its first save, or from ``open``, until :meth:`close`; another
writer gets a :class:`~steertui.engine.session.lock.SessionLockedError` naming the holder.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

from steertui.engine.session import ops
from steertui.engine.session import schema as S
from steertui.engine.session.lock import SessionLock, SessionLockedError
from steertui.engine.session.opening import environment, prepare
from steertui.engine.session.store import SessionSaveError, new_session_path, sidecar_name, write_session
from steertui.errors import Cancel

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from steertui.engine.data import Dataset, Pair
    from steertui.engine.model import LoadedModel


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def header(note: str | None = None) -> S.Header:
    return S.Header(schema=S.SCHEMA_VERSION, created=_now(), note=note, **environment())


def model_spec(info: Any, session_path: str | os.PathLike[str]) -> str:
    """``demo`` for the shipped model, a path relative to the session file's folder for a local folder (so a
    session and its model can move together), else the Hugging Face id as given."""
    if info.is_demo:
        return "demo"
    name = str(info.name)
    local = Path(os.path.expanduser(name))
    if info.path and local.exists():
        folder = Path(session_path).resolve().parent
        try:
            return os.path.relpath(local.resolve(), folder)
        except ValueError:  # another drive (Windows)
            return str(local.resolve())
    return name


def model_rec(loaded: "LoadedModel", session_path: str | os.PathLike[str]) -> S.ModelRec:
    info = loaded.info
    return S.ModelRec(spec=model_spec(info, session_path), name=str(info.name), weights_sha256=info.weights_sha256,
                      revision=info.revision, dtype=info.dtype, device=str(info.device), model_type=info.model_type,
                      n_layers=info.n_layers, d_model=info.d_model, vocab_size=info.vocab_size)


def data_rec(dataset: "Dataset") -> S.DataRec:
    src = dataset.source
    kind = "builtin" if src.kind == "builtin" else "secllmholmes"
    return S.DataRec(label=src.label, kind=kind, root="builtin" if kind == "builtin" else str(src.root),
                     commit=src.commit)


def _as_interventions(items: Iterable[Any] | None) -> list[S.Intervention]:
    out = []
    for item in items or ():
        if isinstance(item, S.Intervention):
            out.append(item)
        elif isinstance(item, Mapping):
            conv = {"alpha": float, "layer": int}
            out.append(S.Intervention(**{k: conv[k](v) if k in conv else v for k, v in item.items()}))
        else:  # an object with vector/layer/alpha/positions attributes
            out.append(S.Intervention(vector=item.vector, layer=int(item.layer), alpha=float(item.alpha),
                                      positions=getattr(item, "positions", "all")))
    return out


class SessionRecorder:
    """A session being recorded: the model, the data, the vectors by name, the steps so far."""

    def __init__(self, doc: S.Session, path: str | os.PathLike[str], loaded: "LoadedModel",
                 dataset: "Dataset | None", vectors: dict[str, dict[int, "torch.Tensor"]] | None = None, *,
                 autosave: bool = True) -> None:
        self.doc = doc
        self.path = Path(path)
        self.model = loaded
        self.dataset = dataset
        self.vectors: dict[str, dict[int, Any]] = dict(vectors or {})
        self.autosave = autosave
        self.lock = threading.RLock()
        self._sidecar_names: set[str] | None = set(self.vectors) if self.path.exists() else None
        self._file_lock: SessionLock | None = None
        self.read_only: SessionSaveError | None = None  # why it was opened without its lock: it never saves

    # ---- creating and opening ------------------------------------------------------------------------------
    @classmethod
    def new(cls, loaded: "LoadedModel", dataset: "Dataset | None" = None,
            path: str | os.PathLike[str] | None = None, *, autosave: bool = True,
            note: str | None = None) -> "SessionRecorder":
        """A new session on ``session`` and ``dataset`` (default: the dataset steertui would pick), saved to
        ``path`` (default: a new file in the sessions folder) at once when ``autosave``."""
        if dataset is None:
            from steertui.engine.data import load_dataset

            dataset = load_dataset(None)
        tries = 0
        while True:
            where = Path(path) if path is not None else new_session_path()
            doc = S.Session(steertui=header(note), model=model_rec(loaded, where), data=data_rec(dataset))
            rec = cls(doc, where, loaded, dataset, autosave=autosave)
            if not autosave:
                return rec
            try:
                rec.save()
            except SessionLockedError:
                tries += 1
                if path is not None or tries == 5:
                    raise
                continue  # another process took the new name between the look and the lock: pick another
            return rec

    @classmethod
    def open(cls, path: str | os.PathLike[str], loaded: "LoadedModel | None" = None,
             dataset: "Dataset | None" = None, *, model: str | None = None, dataset_path: str | None = None,
             device: str | None = None, dtype: str | None = None, autosave: bool = True,
             read_only_if_locked: bool = False) -> "SessionRecorder":
        """Open a saved session to look at and continue it (the console's ``--session FILE``): checks the file,
        its sidecar, the data and the model exactly as a replay does (a :class:`SessionError` says what is
        wrong) and loads them, without re-running any step. ``session``/``dataset``: already loaded ones to use
        (checked against the recording); ``model``/``dataset_path``/``device``/``dtype``: overrides.

        With ``autosave`` the file's lock is taken first: another writer holding it is a
        :class:`SessionLockedError` (a lock file that cannot be created, a :class:`SessionSaveError`), or with
        ``read_only_if_locked`` a recorder that never saves, its ``read_only`` holding that error."""
        held, read_only = None, None
        if autosave:
            try:
                held = SessionLock.acquire(path)  # another writer: stop before loading anything
            except SessionSaveError as err:
                if not read_only_if_locked:
                    raise
                read_only, autosave = err, False
        try:
            opened = prepare(path, loaded=loaded, dataset=dataset, model=model, dataset_path=dataset_path,
                             device=device, dtype=dtype, need_dataset=True)
        except BaseException:
            if held is not None:
                held.release()
            raise
        rec = cls(opened.doc, opened.path, opened.model, opened.dataset, opened.vectors, autosave=autosave)
        rec._sidecar_names = set(opened.vectors)
        rec._file_lock, rec.read_only = held, read_only
        return rec

    # ---- state ---------------------------------------------------------------------------------------------
    @property
    def steps(self) -> list[Any]:
        return list(self.doc.steps)

    @property
    def steering(self) -> list[S.Intervention]:
        return list(self.doc.steering.interventions)

    def context(self, cancel: Cancel | None = None, progress: Any = None) -> ops.StepContext:
        return ops.StepContext(self.model, self.dataset, self.vectors, cancel=cancel, progress=progress)

    def steers(self, steering: Iterable[Any] | None = None) -> list[Any]:
        """``Steer`` objects for interventions (default: the current steering)."""
        ivs = self.steering if steering is None else _as_interventions(steering)
        return ops.steers_from(self.context(), ivs)

    def set_steering(self, interventions: Iterable[Any]) -> None:
        """The current steering (dicts ``{vector, layer, alpha, positions}`` or :class:`Intervention`); saved."""
        ivs = _as_interventions(interventions)
        ops.steers_from(self.context(), ivs)  # every vector and layer must exist
        with self.lock:
            self.doc.steering = S.Steering(interventions=ivs)
            self._autosave(None)

    def next_vector_name(self) -> str:
        n = len(self.vectors) + 1
        while f"v{n}" in self.vectors:
            n += 1
        return f"v{n}"

    # ---- saving --------------------------------------------------------------------------------------------
    def free_name(self, wanted: str) -> str:
        """``wanted`` when the session holds no vector of that name, else the next free ``vN``."""
        return wanted if wanted not in self.vectors else self.next_vector_name()

    def hold(self) -> None:
        """Take the session file's lock, if not held yet: :class:`SessionLockedError` when another writer has
        it, :class:`SessionSaveError` when the lock file cannot be created."""
        with self.lock:
            if self._file_lock is None or not self._file_lock.held:  # never taken, or deleted or taken over
                if self._file_lock is not None:
                    self._file_lock.release()  # removes nothing that is not this lock
                self._file_lock = SessionLock.acquire(self.path)

    def close(self) -> None:
        """Stop autosaving and release the session file's lock (a later :meth:`save` takes it again)."""
        with self.lock:
            self.autosave = False
            if self._file_lock is not None:
                self._file_lock.release()
                self._file_lock = None

    def __enter__(self) -> "SessionRecorder":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def save(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Save atomically (sidecar first when the vectors changed, then the TOML), holding the file's lock. With
        ``path``: save a copy there and keep recording into it (its lock taken, the old one released)."""
        with self.lock:
            if path is not None and Path(path) != self.path:
                new = SessionLock.acquire(path)
                if self._file_lock is not None:
                    self._file_lock.release()
                self._file_lock = new
                self.path = Path(path)
                self._sidecar_names = None
            self.hold()
            need_sidecar = bool(self.vectors) and self._sidecar_names != set(self.vectors)
            write_session(self.doc, self.path, self.vectors if need_sidecar else None)
            if need_sidecar:
                self._sidecar_names = set(self.vectors)
            return self.path

    def _autosave(self, result: Any) -> None:
        if not self.autosave:
            return
        try:
            self.save()
        except SessionSaveError as err:
            err.result = result
            raise

    # ---- recording -----------------------------------------------------------------------------------------
    def _record(self, kind: str, inputs: Any, *, cancel=None, progress=None, on_done=None) -> Any:
        with self.lock:
            ctx = self.context(cancel, progress)
            start = time.perf_counter()
            at = _now()
            outputs, result = ops.run_step(ctx, kind, inputs)
            seconds = round(time.perf_counter() - start, 3)
            if on_done is not None:
                on_done(result)
            step = S.STEP_TYPES[kind](kind=kind, inputs=inputs, outputs=outputs, seconds=seconds, at=at)
            self.doc.steps.append(step)
            self.doc.data.files.update(ops.files_used(kind, inputs, self.dataset))
            self.doc.data.files = dict(sorted(self.doc.data.files.items()))
            self._autosave(result)
            return result

    def _pair_ids(self, pairs: Sequence["Pair | str"]) -> list[str]:
        return [p if isinstance(p, str) else p.id for p in pairs]

    def build_vectors(self, pairs: Sequence["Pair | str"], *, name: str | None = None,
                      layers: Sequence[int] | None = None, method: str = "mean-diff", readout: str = "last",
                      seed: int | None = None, split: str = "", k_folds: int = 5, chunk_size: int = 8,
                      progress=None, cancel=None):
        """Build vectors from ``pairs`` (training pairs: objects or ids) and record them as ``name``."""
        name = name or self.next_vector_name()
        if name in self.vectors:
            raise ValueError(f"a vector named {name!r} is already in the session")
        layers = list(range(self.model.n_layers)) if layers is None else \
            sorted({self.model.check_layer(L) for L in layers})
        inputs = S.BuildVectorsInputs(vector=name, pair_ids=self._pair_ids(pairs), layers=layers, method=method,
                                      readout=readout, split=split, seed=seed, k_folds=k_folds,
                                      chunk_size=chunk_size)

        def add(result) -> None:
            vs = result.vectors
            self.vectors[name] = {int(L): v.detach().float().cpu() for L, v in vs.vectors.items()}
            self.doc.vectors.append(S.VectorRec(
                name=name, file=sidecar_name(self.path), layers=layers, method=method, readout=readout,
                d_model=vs.d_model, pair_ids=list(inputs.pair_ids), split=split, seed=seed, source=vs.source,
                read_at=self.model.adapter.block_access_template,
                sha256={str(L): self._sha(v) for L, v in sorted(self.vectors[name].items())}))

        return self._record("build_vectors", inputs, progress=progress, cancel=cancel, on_done=add)

    def import_vectors(self, imported: Any, pairs: Sequence["Pair | str"], *, name: str | None = None,
                       readout: str = "last", chunk_size: int = 8, progress=None, cancel=None):
        """Add a vector read from a file (an ``export.ImportedVector``, checked against this model) as ``name``
        (default: its name in the file, or the next free ``vN`` when the session holds that name) and record its
        diagnostics on ``pairs`` less those it was built from (``left_out``). Its tensors go to the sidecar like
        a built vector's; the file is named in ``origin`` and the step, and not needed to replay."""
        from steertui.engine.choices import METHODS, READOUTS
        from steertui.errors import SteertuiError

        name = name or self.free_name(imported.name)
        if name in self.vectors:
            raise ValueError(f"a vector named {name!r} is already in the session")
        kept, left_out = imported.held_out(self._pair_ids(pairs))
        if not kept:
            raise SteertuiError(f"every loaded pair ({len(left_out)}) was used to build vector {imported.name!r}",
                                "load other data (--dataset) to read it on pairs it was not built from")
        inputs = S.ImportVectorsInputs(vector=name, file=str(imported.path), file_sha256=imported.file_sha256,
                                       format=imported.format, pair_ids=kept, left_out=left_out,
                                       layers=imported.layers, readout=readout, chunk_size=chunk_size)
        about = imported.about
        with self.lock:
            steps = len(self.doc.steps)
            self.vectors[name] = {int(L): v.detach().float().cpu() for L, v in imported.vectors.items()}
            rec = S.VectorRec(
                name=name, file=sidecar_name(self.path), layers=imported.layers,
                method=about.get("method") if about.get("method") in METHODS else S.UNKNOWN,
                readout=about.get("readout") if about.get("readout") in READOUTS else S.UNKNOWN,
                d_model=self.model.d_model, pair_ids=list(imported.pair_ids), split=str(about.get("split") or ""),
                seed=about.get("seed") if isinstance(about.get("seed"), int) else None,
                source=str(about.get("source") or ""), read_at=self.model.adapter.block_access_template,
                origin=f"{imported.path} sha256:{imported.file_sha256}",
                sha256={str(L): imported.about["sha256"][str(L)] for L in imported.layers})
            self.doc.vectors.append(rec)
            try:
                return self._record("import_vectors", inputs, progress=progress, cancel=cancel)
            except BaseException:
                if len(self.doc.steps) == steps:  # the step did not land (a save that failed after it did keeps it)
                    self.doc.vectors.remove(rec)
                    del self.vectors[name]
                raise

    @staticmethod
    def _sha(v: Any) -> str:
        from steertui.engine.steering import vector_sha256

        return vector_sha256(v)

    def _steering(self, steering: Iterable[Any] | None) -> list[S.Intervention]:
        return self.steering if steering is None else _as_interventions(steering)

    def probe_layers(self, prompt: str | None = None):
        from steertui.engine.layers import DEFAULT_PROMPT

        return self._record("layers", S.LayersInputs(prompt=DEFAULT_PROMPT if prompt is None else prompt))

    def lens(self, prompt: str, *, steering: Iterable[Any] | None = None, k: int = 10,
             positions: slice | Sequence[int] | int | None = None, target: int | str | None = None,
             layers: Iterable[int] | None = None, cancel=None):
        """Logit lens of ``prompt``; with steering, baseline and steered (``LensDiff``), else ``LensResult``."""
        from steertui.engine.lens import resolve_positions

        ids = self.model.encode([prompt])["input_ids"]
        pos = resolve_positions(positions, int(ids.shape[1]))
        inputs = S.LensInputs(prompt=prompt, k=k, positions=pos, target=target,
                              layers=None if layers is None else sorted({self.model.check_layer(L) for L in layers}),
                              steers=self._steering(steering))
        return self._record("lens", inputs, cancel=cancel)

    def top_tokens(self, prompts: Sequence[str], *, steering: Iterable[Any] | None = None, k: int = 10,
                   cancel=None):
        inputs = S.TopTokensInputs(prompts=list(prompts), k=k, steers=self._steering(steering))
        return self._record("top_tokens", inputs, cancel=cancel)

    def generate(self, prompts: Sequence[str], *, steering: Iterable[Any] | None = None, max_new_tokens: int = 32,
                 stop_at_eos: bool = True, batch_size: int | None = None, cancel=None, progress=None):
        inputs = S.GenerateInputs(prompts=list(prompts), max_new_tokens=max_new_tokens, stop_at_eos=stop_at_eos,
                                  batch_size=batch_size, steers=self._steering(steering))
        return self._record("generate", inputs, cancel=cancel, progress=progress)

    def evaluate(self, pairs: Sequence["Pair | str"], settings: Any, *, progress=None, cancel=None):
        """Held-out evaluation (``settings``: an ``EvalSettings``) on ``pairs`` (objects or ids)."""
        return self._record("evaluate", ops.evaluate_inputs(self._pair_ids(pairs), settings), progress=progress,
                            cancel=cancel)
