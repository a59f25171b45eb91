"""A session's steering vectors taken out of it: one vector's layers as a standalone safetensors file that says
what it holds and where it applies, and the reading (with its checks) of such a file or a session's sidecar; and
the way back in (:func:`import_vector`): a vector of such a file, of another tool's file of ``layer.L``
tensors, or of a GGUF control vector (``engine.gguf``: llama.cpp's and repeng's format, which an export to
``.gguf`` writes), checked against the model it is to steer.

An exported file holds one float32 ``[d_model]`` tensor per layer, named ``layer.L``, and in its metadata (all
strings, JSON where structured): ``format`` (``steertui.vectors/1``), ``name``, ``model`` (the session's model
spec), ``model_name``, ``weights_sha256``, ``d_model``, ``n_layers``, ``read_at`` (where each layer's vector was
read and is added: the nnsight access of the block's hidden state, ``{layer}`` standing for the layer),
``origin`` (for a vector the session imported: the file it came from and its sha256; else empty),
``method``, ``readout``, ``split``, ``seed``, ``pair_ids``, ``source`` (the data), ``data_commit`` (empty when
the data has none), ``sha256`` (per
layer, of the float32 little-endian bytes), ``vector_norm`` and ``residual_norm`` (per layer, from the build;
alpha ``a`` in residual units is the coefficient ``a * residual_norm / vector_norm``), ``steertui`` (the
version that wrote it). ``d_model``, ``n_layers``, ``seed``, ``pair_ids``, ``sha256``, ``vector_norm`` and
``residual_norm`` are JSON, the rest plain text. Nothing in it is pickled; reading it runs no code.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from steertui.engine.gguf import GGUF_FORMAT
from steertui.engine.session.store import (SIDECAR_FORMAT, SessionError, read_session, read_vectors,
                                           resolve_session_file)

if TYPE_CHECKING:  # pragma: no cover
    import torch

EXPORT_FORMAT = "steertui.vectors/1"
PLAIN_FORMAT = "plain safetensors"  # another tool's file: no format metadata, one [d_model] tensor per layer
_PLAIN_KEY = re.compile(r"^(layer\.)?(0|[1-9][0-9]{0,5})$")
JSON_KEYS = ("d_model", "n_layers", "seed", "pair_ids", "sha256", "vector_norm", "residual_norm")  # the rest: text


@dataclass(frozen=True)
class VectorFile:
    """What a vectors file holds: its format, per vector name its metadata and its tensors by layer (each
    checked against its sha256)."""

    path: Path
    format: str
    about: dict[str, dict[str, Any]]  # name -> metadata (method, readout, read_at, model, ...)
    vectors: dict[str, dict[int, "torch.Tensor"]]
    checked: bool = True  # False: the file records no sha256 (another tool's), the ones shown were computed here

    def choose(self, name: str | None) -> str:
        """The vector ``name`` names, or the file's only one when ``name`` is None; else a :class:`SessionError`
        listing the vectors it holds."""
        held = ", ".join(self.vectors) or "none"
        if name is None:
            if len(self.vectors) != 1:
                raise SessionError(self.path, "vectors", f"the file holds {len(self.vectors)} vectors ({held})",
                                   "name one (--vector NAME; in the console, after the path)")
            return next(iter(self.vectors))
        if name not in self.vectors:
            raise SessionError(self.path, "vectors", f"the file holds no vector {name!r} (it holds: {held})",
                               "name one of its vectors (--vector NAME; in the console, after the path)")
        return name


def _build_step(doc: Any, name: str) -> Any:
    """The session's last step that built or imported ``name`` (None when none did: vectors from an older
    file)."""
    from steertui.engine.session.schema import VECTOR_STEPS

    steps = [st for st in doc.steps if st.kind in VECTOR_STEPS and st.inputs.vector == name]
    return steps[-1] if steps else None


def _session_about(doc: Any, rec: Any, vectors: dict[int, "torch.Tensor"]) -> dict[str, Any]:
    from steertui import __version__

    build = _build_step(doc, rec.name)
    diagnostics = {d.layer: d for d in build.outputs.diagnostics} if build is not None else {}
    return {
        "format": EXPORT_FORMAT, "name": rec.name, "model": doc.model.spec, "model_name": doc.model.name,
        "weights_sha256": doc.model.weights_sha256, "d_model": rec.d_model, "n_layers": doc.model.n_layers,
        "read_at": rec.read_at, "origin": rec.origin or "", "method": rec.method, "readout": rec.readout,
        "split": rec.split, "seed": rec.seed,
        "pair_ids": list(rec.pair_ids), "source": rec.source or (doc.data.label if doc.data is not None else ""),
        "data_commit": (doc.data.commit or "") if doc.data is not None else "",
        "sha256": {str(L): rec.sha256[str(L)] for L in sorted(vectors)},  # read_vectors checked each tensor
        "vector_norm": {str(L): float(t.norm()) for L, t in sorted(vectors.items())},
        "residual_norm": {str(L): diagnostics[L].residual_norm for L in sorted(vectors) if L in diagnostics},
        "steertui": __version__,
    }


def session_vector_file(session: str | os.PathLike[str]) -> VectorFile:
    """Every vector of the session file ``session`` (its sidecar checked against the recorded sha256s), each with
    the metadata an export of it would carry."""
    path = resolve_session_file(session)
    doc = read_session(path)
    vectors = read_vectors(doc, path)
    about = {rec.name: _session_about(doc, rec, vectors[rec.name]) for rec in doc.vectors}
    return VectorFile(path, "session", about, vectors)


def export_vector(session: str | os.PathLike[str], name: str, out: str | os.PathLike[str],
                  layers: Iterable[int] | None = None) -> Path:
    """Write vector ``name`` of the session file ``session`` (every layer, or ``layers``) to ``out`` as an
    exported vectors file (module docstring), atomically. The session's sidecar is checked first (each tensor
    against its recorded sha256); a name or layer the session does not hold is a :class:`SessionError`."""
    from safetensors.torch import save

    from steertui.atomic import atomic_write_bytes

    path = resolve_session_file(session)
    doc = read_session(path)
    index = next((i for i, rec in enumerate(doc.vectors) if rec.name == name), None)
    if index is None:
        have = ", ".join(rec.name for rec in doc.vectors) or "none"
        raise SessionError(path, "vectors", f"the session holds no vector {name!r} (it holds: {have})",
                           "name one of its vectors")
    rec = doc.vectors[index]
    held = read_vectors(doc, path)[name]
    wanted = sorted(held) if layers is None else sorted({int(L) for L in layers})
    missing = [L for L in wanted if L not in held]
    if missing or not wanted:
        raise SessionError(path, f"vectors[{index}].layers", f"vector {name!r} has no layer {missing or wanted}",
                           f"use its layers {sorted(held)}")
    chosen = {L: held[L] for L in wanted}
    about = _session_about(doc, rec, chosen)
    out = Path(out)
    if out.suffix == ".gguf":  # a llama.cpp / repeng control vector (engine.gguf)
        from steertui.engine.gguf import control_vector_bytes

        if 0 in chosen:
            raise SessionError(out, "layer 0", "a GGUF control vector cannot hold layer 0: llama.cpp never steers "
                               "block 0's output", "export its other layers (--layers "
                               f"{','.join(str(L) for L in sorted(chosen) if L) or 'L'})")
        return atomic_write_bytes(out, control_vector_bytes(chosen, doc.model.model_type, about))
    if out.suffix != ".safetensors":
        raise SessionError(out, "--out", "an exported vector is a .safetensors file (steertui, or another tool's "
                           "layer.L tensors) or a .gguf file (a llama.cpp control vector)",
                           "name it FILE.safetensors or FILE.gguf")
    meta = {k: json.dumps(v) if k in JSON_KEYS else ("" if v is None else str(v)) for k, v in about.items()}
    tensors = {f"layer.{L}": t.detach().float().cpu().contiguous() for L, t in chosen.items()}
    return atomic_write_bytes(out, save(tensors, metadata=meta))


def _plain_name(path: Path) -> str:
    """A vector name (``schema.VectorName``) from another tool's file name."""
    name = re.sub(r"[^A-Za-z0-9_.\-]", "-", path.stem).lstrip("._-")[:64]
    return name or "imported"


def read_vector_file(file: str | os.PathLike[str]) -> VectorFile:
    """An exported vectors file or a session's sidecar, every tensor checked against the sha256 in its metadata;
    or another tool's safetensors file without format metadata whose tensors are named by layer (``layer.L`` or
    ``L``), named after the file, with nothing to check its tensors against; or a GGUF control vector (a file
    that starts with ``GGUF`` or is named ``.gguf``: :func:`_read_gguf`). Anything else (a missing file, not
    safetensors, another format, an altered tensor) is a :class:`SessionError` naming the file."""
    from safetensors import SafetensorError, safe_open

    from steertui.engine.steering import vector_sha256

    path = Path(file)
    if not path.is_file():
        raise SessionError(path, "file", "no such file",
                           "give the path of a .toml session, a .safetensors file or a .gguf control vector")
    with open(path, "rb") as fh:
        if fh.read(4) == b"GGUF" or path.suffix == ".gguf":
            return _read_gguf(path)
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            # shapes and names first, from the header: a model's weights given by mistake are refused unread
            shapes = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
            wide = next((k for k, shape in shapes.items() if len(shape) != 1), None)
            if wide is not None:
                raise SessionError(path, wide, f"tensor has shape {shapes[wide]}",
                                   "a steering vector is one-dimensional [d_model] (is this a model's weights?)")
            bad = [k for k in shapes if not _PLAIN_KEY.match(k)] if not meta.get("format") else []
            if bad:
                raise SessionError(path, "tensors", f"it holds tensors named {', '.join(sorted(bad)[:4])}"
                                   f"{' ...' if len(bad) > 4 else ''}, not by layer",
                                   "name each layer's [d_model] vector layer.L or L (e.g. layer.3)")
            tensors = {k: fh.get_tensor(k) for k in shapes}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise SessionError(path, "file", f"not a readable safetensors file ({str(err).splitlines()[0][:100]})",
                           "give a file exported by steertui vectors --export, or a session's sidecar") from None
    fmt = meta.get("format", "")
    try:
        if fmt == EXPORT_FORMAT:
            about = {k: json.loads(v) if k in JSON_KEYS else v for k, v in meta.items()}
            name = about["name"]
            vectors = {name: {int(k.removeprefix("layer.")): t for k, t in tensors.items()}}
            sha = {name: {int(L): s for L, s in about["sha256"].items()}}
            about = {name: about}
        elif fmt == SIDECAR_FORMAT:
            about = json.loads(meta["vectors"]) if "vectors" in meta else {}
            vectors, sha = {}, {}
            for key, t in tensors.items():
                name, layer = key.rsplit("/", 1)
                vectors.setdefault(name, {})[int(layer)] = t
            for key, s in json.loads(meta["sha256"]).items():
                name, layer = key.rsplit("/", 1)
                sha.setdefault(name, {})[int(layer)] = s
            for name in vectors:  # the table shows each layer's sha256, as an exported file's does
                about.setdefault(name, {})["sha256"] = {str(L): s for L, s in sha.get(name, {}).items()}
        elif not fmt and tensors:  # another tool's file: tensors named by layer, nothing to check them against
            name = _plain_name(path)
            vectors = {name: {int(k.removeprefix("layer.")): t for k, t in tensors.items()}}
            about = {name: {"name": name, "sha256": {str(L): vector_sha256(t) for L, t in sorted(
                vectors[name].items())}}}
            sha = None  # nothing recorded to check the tensors against
            fmt = PLAIN_FORMAT
        else:
            raise SessionError(path, "format", f"its format is {fmt or 'not given'!r}, not {EXPORT_FORMAT!r} or "
                               f"{SIDECAR_FORMAT!r}", "give a file steertui wrote, or tensors named layer.L")
    except (KeyError, ValueError, TypeError) as err:
        raise SessionError(path, "metadata", f"its metadata is incomplete or malformed ({err})",
                           "export it again with steertui vectors --export") from None
    altered = [(name, L) for name, layers in vectors.items() for L, t in layers.items()
               if sha is not None and sha.get(name, {}).get(L) != vector_sha256(t)]
    if altered:
        name, L = altered[0]
        raise SessionError(path, f"sha256 of {name} layer {L}", "the tensor does not match its sha256",
                           "the file was altered; export it again")
    return VectorFile(path, fmt, about, {n: dict(sorted(v.items())) for n, v in vectors.items()},
                      checked=fmt != PLAIN_FORMAT)


def _read_gguf(path: Path) -> VectorFile:
    """A GGUF control vector (``engine.gguf``): one vector, its layers the ``direction.K`` tensors. One steertui
    exported carries its metadata (checked like an exported file's, each tensor against its sha256); another
    tool's is named after the file, with its model hint kept."""
    from steertui.engine.gguf import STEERTUI_KEY, read_control_vector
    from steertui.engine.steering import vector_sha256

    vectors, meta = read_control_vector(path)
    if not vectors:
        raise SessionError(path, "tensors", "the GGUF file holds no direction.K tensor",
                           "give a control vector with at least one layer")
    ours = STEERTUI_KEY in meta
    if ours:
        try:
            about = json.loads(meta[STEERTUI_KEY])
            name, sha = about["name"], {int(L): s for L, s in about["sha256"].items()}
            if not isinstance(name, str) or not name:
                raise ValueError(f"name {name!r} is not a vector name")
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            raise SessionError(path, STEERTUI_KEY, f"its steertui metadata is malformed ({err})",
                               "export it again with steertui vectors --export") from None
        altered = [L for L, t in vectors.items() if sha.get(L) != vector_sha256(t)]
        if altered:
            raise SessionError(path, f"direction.{altered[0]}", "the tensor does not match its sha256",
                               "the file was altered; export it again")
    else:
        name = _plain_name(path)
        about = {"name": name, "sha256": {str(L): vector_sha256(t) for L, t in sorted(vectors.items())},
                 "model_hint": str(meta.get("controlvector.model_hint", "")),
                 "architecture": str(meta.get("general.architecture", ""))}
    return VectorFile(path, GGUF_FORMAT, {name: about}, {name: vectors}, checked=ours)


@dataclass(frozen=True)
class ImportedVector:
    """One vector of a vectors file, checked against the model it will steer: float32 ``[d_model]`` tensors by
    layer, each finite and non-zero, at layers the model has."""

    name: str
    path: Path
    format: str  # EXPORT_FORMAT, SIDECAR_FORMAT or PLAIN_FORMAT
    file_sha256: str  # of the whole file, as read
    about: dict[str, Any]  # the file's metadata for this vector (method, readout, read_at, model, pair_ids, ...)
    vectors: dict[int, "torch.Tensor"]
    notes: tuple[str, ...]  # what the file says that differs from the loaded model (its name, weights, access)

    @property
    def pair_ids(self) -> tuple[str, ...]:
        """The pairs it was built from, where the file says (an exported or a session's vector)."""
        return tuple(self.about.get("pair_ids") or ())

    @property
    def layers(self) -> list[int]:
        return sorted(self.vectors)

    def held_out(self, pair_ids: Iterable[str]) -> tuple[list[str], list[str]]:
        """``pair_ids`` split into those it can be measured on and those it was built from (left out)."""
        trained = set(self.pair_ids)
        ids = list(pair_ids)
        return [p for p in ids if p not in trained], [p for p in ids if p in trained]


def import_vector(file: str | os.PathLike[str], model: Any, name: str | None = None,
                  layers: Iterable[int] | None = None) -> ImportedVector:
    """Vector ``name`` (or the file's only vector) of the vectors file ``file`` (:func:`read_vector_file`), every
    layer or ``layers``, checked against ``model`` (an ``engine.model.LoadedModel``): each layer must exist in the
    model, and each tensor must be one-dimensional of the model's hidden size, finite and non-zero. A model name,
    weights hash or access path recorded in the file that differs from the model's is kept as a note, not refused
    (a vector can be tried on a sibling model). Every refusal is a :class:`SessionError` naming the file and the
    tensor, and saying what to do."""
    import hashlib

    import torch

    info = read_vector_file(file)
    path = info.path
    name = info.choose(name)
    held = info.vectors[name]
    wanted = sorted(held) if layers is None else sorted({int(L) for L in layers})
    missing = [L for L in wanted if L not in held]
    if missing or not wanted:
        raise SessionError(path, name, f"the vector has no layer {', '.join(map(str, missing or wanted))}",
                           f"use its layers {', '.join(map(str, sorted(held)))}")
    n, d = model.n_layers, model.d_model
    label = model.info.name
    vectors = {}
    for L in wanted:
        t = held[L]
        key = f"{name} layer {L}"
        if L >= n:
            raise SessionError(path, key, f"{label} has {n} layers (0..{n - 1})",
                               "use a vector made for this model, or only its layers below "
                               f"{n} (--layers)")
        if t.shape[0] != d:  # (read_vector_file holds one-dimensional tensors only)
            raise SessionError(path, key, f"the vector has shape {tuple(t.shape)}; {label}'s hidden size is {d}",
                               f"use a vector made for this model: one [{d}] tensor per layer")
        if not t.is_floating_point():
            raise SessionError(path, key, f"the vector's dtype is {t.dtype}", "store it as float32")
        v = t.detach().to(torch.float32).cpu().contiguous()
        if not bool(torch.isfinite(v).all()):
            raise SessionError(path, key, "the vector holds NaN or infinite values", "rebuild or re-export it")
        if not bool(v.any()):
            raise SessionError(path, key, "the vector is all zeros: steering with it changes nothing",
                               "rebuild it; a zero vector usually means the activations were never read")
        vectors[L] = v
    about = dict(info.about.get(name, {}))
    notes = []
    made_for = about.get("model_name") or (about.get("model") if info.format == SIDECAR_FORMAT else "")
    theirs, ours = about.get("weights_sha256") or "", model.info.weights_sha256 or ""
    if theirs and ours:  # the weights say which model; a name can be a path or an alias
        if theirs != ours:
            notes.append(f"made for {made_for or 'another model'} (weights sha256 {theirs[:12]}), steering {label} "
                         f"(weights sha256 {ours[:12]})")
    elif made_for and made_for not in (label, Path(label).name):
        notes.append(f"made for {made_for}, steering {label}")
    here = model.adapter.block_access_template
    if about.get("read_at") and about["read_at"] != here:
        notes.append(f"read at {about['read_at']}, added at {here}")
    if info.format == PLAIN_FORMAT:
        notes.append("a plain safetensors file: where and how it was read is not recorded")
    if info.format == GGUF_FORMAT and not info.checked:  # another tool's control vector
        hint = about.get("model_hint") or ""
        notes.append(f"a GGUF control vector{f' for model type {hint}' if hint else ''}: direction.K is added at "
                     "block K's output, as steertui's layer K; how it was read is not recorded")
        if hint and hint != model.info.model_type:
            notes.append(f"its model hint is {hint}, the model is {model.info.model_type}")
    if not about.get("pair_ids"):
        notes.append("the file does not name the pairs it was built from: none can be left out of its measures")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return ImportedVector(name, path, info.format, digest, about, vectors, tuple(notes))
