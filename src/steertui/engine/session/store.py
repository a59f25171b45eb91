"""Session files on disk: TOML written with tomli-w and read with tomllib, vectors in a safetensors sidecar.

Writes are atomic (``steertui.atomic``, the one writer of every user file): each file goes to a temporary file
in the same folder (``.NAME.XXXX.tmp``), is flushed and fsynced, then moved over the old one. The sidecar is
written first, then the TOML, so the TOML on disk always names vectors the sidecar on disk holds (the recorder only ever adds vectors,
and every vector is checked by its own sha256). A save that fails or is killed leaves the previous file.

Reading never executes anything: TOML is parsed by tomllib, tensors by safetensors. Every problem with a
file is a :class:`SessionError` naming the file, the key and what to do.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from pydantic import BaseModel, ValidationError

from steertui.atomic import atomic_write_bytes
from steertui.engine.session.schema import SCHEMA_VERSION, STEP_TYPES, VECTOR_STEPS, Session
from steertui.errors import SteertuiError

if TYPE_CHECKING:  # pragma: no cover
    import torch

SIDECAR_FORMAT = "steertui.session-vectors/1"
SUFFIX = ".toml"


class SessionError(SteertuiError):
    """A session file that cannot be used: ``<file>: <key>: <problem> — <what to do>``."""

    def __init__(self, file: str | os.PathLike[str], key: str, problem: str, hint: str | None = None) -> None:
        self.file = str(file)
        self.key = key
        self.detail = problem
        where = f"{self.file}: {key}" if key else self.file
        super().__init__(f"{where}: {_one_line(problem)}", hint)


class SessionSaveError(SessionError):
    """A save that failed; the previous file is intact. ``result`` holds the step's result, if any."""

    result: Any = None


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---- paths --------------------------------------------------------------------------------------------------
def sidecar_name(path: str | os.PathLike[str]) -> str:
    """The sidecar's file name for a session file: ``NAME.toml`` -> ``NAME.safetensors``."""
    name = Path(path).name
    stem = name[: -len(SUFFIX)] if name.endswith(SUFFIX) else name
    return f"{stem}.safetensors"


def lock_path(path: str | os.PathLike[str]) -> Path:
    """The lock file of a session file (``NAME.toml.lock``): see :mod:`steertui.engine.session.lock`."""
    path = Path(path)
    return path.with_name(f"{path.name}.lock")


def default_folder() -> Path:
    """Where sessions go by default: ``$STEERTUI_SESSIONS``, else the user data folder's ``sessions/``."""
    from steertui.paths import sessions_dir

    return sessions_dir()


def new_session_path(folder: str | os.PathLike[str] | None = None, name: str | None = None) -> Path:
    """A fresh session file path in ``folder`` (default :func:`default_folder`): ``session-<time>.toml``."""
    import datetime as dt

    base = Path(folder) if folder is not None else default_folder()
    stem = name or "session-" + dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    stem = stem[: -len(SUFFIX)] if stem.endswith(SUFFIX) else stem
    path, n = base / f"{stem}{SUFFIX}", 1
    while path.exists() or lock_path(path).exists():
        n += 1
        path = base / f"{stem}-{n}{SUFFIX}"
    return path


def resolve_session_file(file: str | os.PathLike[str], folder: str | os.PathLike[str] | None = None) -> Path:
    """A FILE argument: as given when it exists; a bare name is also looked up in the sessions folder."""
    path = Path(file).expanduser()
    if path.exists() or path.parent != Path("."):
        return path
    base = Path(folder) if folder is not None else default_folder()
    for cand in (base / path.name, base / f"{path.name}{SUFFIX}"):
        if cand.exists():
            return cand
    return path


def list_sessions(folder: str | os.PathLike[str] | None = None) -> list[Path]:
    """Session files in ``folder`` (default :func:`default_folder`), newest first; temporary files never count."""
    base = Path(folder) if folder is not None else default_folder()
    if not base.is_dir():
        return []
    found = [p for p in base.glob(f"*{SUFFIX}") if p.is_file() and not p.name.startswith(".")]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


# ---- TOML ---------------------------------------------------------------------------------------------------
def dumps(doc: Session) -> str:
    import tomli_w

    return tomli_w.dumps(doc.to_data(), indent=2)


def write_session(doc: Session, path: str | os.PathLike[str],
                  vectors: Mapping[str, Mapping[int, "torch.Tensor"]] | None = None) -> Path:
    """Save ``doc`` to ``path``; with ``vectors`` (name -> layer -> tensor), write the sidecar first.

    Every ``[[vectors]]`` entry's ``file`` is set to this path's sidecar name. Raises
    :class:`SessionSaveError` (the previous files intact) when the folder cannot be written."""
    path = Path(path)
    side = sidecar_name(path)
    for rec in doc.vectors:
        rec.file = side
    text = dumps(doc).encode("utf-8")
    target = path
    try:
        if vectors:
            target = path.parent / side
            write_sidecar(target, vectors, {rec.name: {"model": doc.model.name, "read_at": rec.read_at,
                                                       "method": rec.method, "readout": rec.readout,
                                                       "layers": list(rec.layers), "pair_ids": list(rec.pair_ids)}
                                      for rec in doc.vectors})
            target = path
        atomic_write_bytes(path, text)
    except OSError as err:
        what = "the session" if target == path else f"the session's vectors to {target}"
        raise SessionSaveError(path, "", f"could not save {what} ({err.strerror or type(err).__name__})",
                               "the previous file is intact; free some space or make the folder writable, or "
                               "record into another folder (STEERTUI_SESSIONS)") from err
    return path


def parse_error(err: tomllib.TOMLDecodeError) -> str:
    return _one_line(str(err))


def read_session(path: str | os.PathLike[str]) -> Session:
    """Read and validate a session file (schema and cross-references). Loads no model, data or tensors."""
    path = Path(path)
    if not path.exists():
        raise SessionError(path, "", "no such session file",
                           "check the path (bare names are also looked up in the sessions folder)")
    if not path.is_file():
        raise SessionError(path, "", "is not a file", "pass a session .toml file")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise SessionError(path, "", f"could not be read ({err.strerror or err})", "check its permissions") from err
    return loads(raw, path)


def loads(raw: bytes | str, file: str | os.PathLike[str] = "<session>") -> Session:
    """Parse and validate session TOML text. Raises only :class:`SessionError`."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise SessionError(file, "", f"is not a session file: not UTF-8 text (byte {err.start})",
                               "session files are TOML written by steertui") from None
    else:
        text = raw
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SessionError(file, "", f"is not TOML: {parse_error(err)}",
                           "session files are TOML written by steertui; fix the syntax or re-record it") from None
    except (RecursionError, ValueError, TypeError) as err:
        raise SessionError(file, "", f"is not TOML ({type(err).__name__})",
                           "session files are TOML written by steertui") from None
    return from_data(data, file)


def from_data(data: Any, file: str | os.PathLike[str] = "<session>") -> Session:
    """Validate parsed TOML data. Raises only :class:`SessionError`."""
    _check_version(data, file)
    try:
        doc = Session.model_validate(data)
    except ValidationError as err:
        raise validation_error(err, file) from None
    except (RecursionError, ValueError, TypeError) as err:  # pragma: no cover - defensive
        raise SessionError(file, "", f"could not be validated ({type(err).__name__}: {err})",
                           "re-record the session") from None
    check_references(doc, file)
    return doc


def _check_version(data: Any, file: str | os.PathLike[str]) -> None:
    if not isinstance(data, dict):
        return
    head = data.get("steertui")
    if not isinstance(head, dict):
        return
    version = head.get("schema")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise SessionError(file, "steertui.schema",
                           f"session schema {version} is newer than this steertui supports ({SCHEMA_VERSION})",
                           "upgrade steertui to open it")


# ---- pydantic errors -> one line naming the key -----------------------------------------------------------------
def _unwrap(tp: Any) -> Any:
    """Strip Annotated and Optional."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(args) == 1:
                tp = args[0]
                continue
        return tp


def _field_names(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _field(model: type[BaseModel], key: str) -> Any:
    for name, f in model.model_fields.items():
        if key in (name, f.alias):
            return f.annotation
    return None


def _walk(loc: tuple[Any, ...]) -> tuple[str, type[BaseModel] | None]:
    """The display path of a pydantic error location (union tags dropped) and the model holding its last key."""
    tp: Any = Session
    parts: list[str] = []
    parent: type[BaseModel] | None = None
    for item in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            parent = tp
            key = _toml_key(str(item))
            parts.append(f".{key}" if parts else key)
            tp = _field(tp, str(item))
            continue
        origin = typing.get_origin(tp)
        if origin in (list, tuple) and isinstance(item, int):
            parts.append(f"[{item}]")
            tp = typing.get_args(tp)[0] if typing.get_args(tp) else Any
            continue
        if origin is dict:
            parts.append(f".{_toml_key(str(item))}")
            tp = typing.get_args(tp)[1] if typing.get_args(tp) else Any
            continue
        if origin in (typing.Union, types.UnionType):
            # a step's tag ("lens"), or the member type a plain union tried ("int", "str"): not part of the key
            tp = STEP_TYPES.get(item, Any) if isinstance(item, str) else Any
            continue
        parts.append(f".{_toml_key(item)}" if isinstance(item, str) else f"[{item}]")
        tp = Any
    return "".join(parts), parent


_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key: str) -> str:
    """A key as TOML would write it: bare when it can be, else quoted (escapes keep it on one line)."""
    return key if _BARE.match(key) else json.dumps(key)


_EXPECTED = {
    "int_type": "an integer", "float_type": "a number", "string_type": "a string", "bool_type": "true or false",
    "list_type": "an array", "dict_type": "a table", "model_type": "a table", "model_attributes_type": "a table",
}


def validation_error(err: ValidationError, file: str | os.PathLike[str]) -> SessionError:
    """The first pydantic error as a :class:`SessionError` naming the key, with a did-you-mean for unknown keys."""
    errors = err.errors(include_url=False)
    # A misspelt key shows up as "unknown key" plus "missing key": name the misspelling first.
    rank = {"extra_forbidden": 0, "missing": 2}
    errors = sorted(errors, key=lambda e: rank.get(e.get("type", ""), 1))
    first = errors[0]
    loc = tuple(first.get("loc", ()))
    kind = first.get("type", "")
    key, parent = _walk(loc)
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    if kind == "extra_forbidden":
        name = str(loc[-1]) if loc else ""
        known = _field_names(parent) if parent is not None else []
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else (
            f"remove it; the keys here are {', '.join(known)}" if known else "remove it")
        return SessionError(file, key, f"unknown key{more}", hint)
    if kind == "missing":
        return SessionError(file, key, f"required key is missing{more}",
                            "add it, or re-record the session (files are written by steertui)")
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tag = (first.get("ctx") or {}).get("tag", first.get("input"))
        if kind == "union_tag_not_found":
            return SessionError(file, f"{key}.kind", f"step has no 'kind'{more}",
                                f"use one of {', '.join(STEP_TYPES)}")
        close = difflib.get_close_matches(str(tag), list(STEP_TYPES), n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else f"use one of {', '.join(STEP_TYPES)}"
        return SessionError(file, f"{key}.kind", f"unknown step kind {_short(tag)}{more}", hint)
    msg = first.get("msg", "invalid value")
    expected = _EXPECTED.get(kind)
    value = first.get("input")
    # A plain union (``int | str``) reports one error per member at the same key: say them together.
    same = [e for e in errors if _walk(tuple(e.get("loc", ())))[0] == key and e.get("type") in _EXPECTED]
    if expected and len(same) > 1:
        expected = " or ".join(dict.fromkeys(_EXPECTED[e["type"]] for e in same))
        msg = f"Input should be {expected}"
        rest = len(errors) - len(same)
        more = f" (and {rest} more problem{'s' if rest > 1 else ''})" if rest else ""
    got = f"; got {_short(value)}" if not isinstance(value, (dict, list)) else \
        f"; got {'a table' if isinstance(value, dict) else 'an array'}"
    hint = f"write {expected} here" if expected else "fix the value, or re-record the session"
    if kind == "literal_error":
        hint = f"use {(first.get('ctx') or {}).get('expected', 'one of the allowed values')}"
    return SessionError(file, key, f"{msg}{got}{more}", hint)


# ---- cross-references -----------------------------------------------------------------------------------------
def check_references(doc: Session, file: str | os.PathLike[str]) -> None:
    """What the schema alone cannot check: unique vector names, steers naming known vectors and their layers,
    layers inside the model, every vector built before it is used."""
    n_layers = doc.model.n_layers
    names: dict[str, int] = {}
    for i, v in enumerate(doc.vectors):
        if v.name in names:
            raise SessionError(file, f"vectors[{i}].name", f"vector name {v.name!r} is used twice",
                               "give every vector its own name")
        names[v.name] = i
        if len(set(v.layers)) != len(v.layers):
            raise SessionError(file, f"vectors[{i}].layers", "a layer is listed twice", "list each layer once")
        if set(v.sha256) != {str(L) for L in v.layers}:
            raise SessionError(file, f"vectors[{i}].sha256",
                               f"has layers {sorted(v.sha256, key=int)}, the vector lists {v.layers}",
                               "give one sha256 per layer, or re-record the session")
        for L in v.layers:
            if L >= n_layers:
                raise SessionError(file, f"vectors[{i}].layers", f"layer {L} is outside the model ({n_layers} layers)",
                                   f"use 0..{n_layers - 1}")
        if v.d_model != doc.model.d_model:
            raise SessionError(file, f"vectors[{i}].d_model",
                               f"vector {v.name!r} has {v.d_model} dimensions, the model has d_model="
                               f"{doc.model.d_model}", "build the vector on this session's model")

    built: set[str] = set()
    _check_steers(doc, doc.steering.interventions, "steering.interventions", names, None, file)
    for s, step in enumerate(doc.steps):
        where = f"steps[{s}].inputs"
        inputs = step.inputs
        if step.kind in VECTOR_STEPS:
            if inputs.vector not in names:
                raise SessionError(file, f"{where}.vector", f"no [[vectors]] entry named {inputs.vector!r}",
                                   "every built or imported vector needs its [[vectors]] entry; re-record the "
                                   "session")
            if inputs.vector in built:
                raise SessionError(file, f"{where}.vector", f"vector {inputs.vector!r} is made twice",
                                   "give every built or imported vector its own name")
            built.add(inputs.vector)
            rec = doc.vectors[names[inputs.vector]]
            if sorted(inputs.layers) != sorted(rec.layers):
                raise SessionError(file, f"{where}.layers", f"layers {inputs.layers} differ from vector "
                                   f"{rec.name!r}'s layers {rec.layers}", "re-record the session")
        for field in ("layers",):
            layers = getattr(inputs, field, None)
            for L in layers or ():
                if L >= n_layers:
                    raise SessionError(file, f"{where}.{field}", f"layer {L} is outside the model ({n_layers} layers)",
                                       f"use 0..{n_layers - 1}")
        given = getattr(inputs, "vector", None) if step.kind == "evaluate" else None
        if given is not None and (given not in names or given not in built):
            raise SessionError(file, f"{where}.vector", f"vector {given!r} is evaluated before a step makes it"
                               if given in names else f"no [[vectors]] entry named {given!r}",
                               "steps run in order; re-record the session")
        steers = getattr(inputs, "steers", None)
        if steers:
            _check_steers(doc, steers, f"{where}.steers", names, built, file)
        if step.kind == "evaluate":
            _check_eval_files(step, f"steps[{s}].outputs", file)


def _check_eval_files(step: Any, where: str, file: str | os.PathLike[str]) -> None:
    """Each recorded file record has one score per cell of its step, ``controls`` random scores per cell, a KL per
    cell or none, and a fold the step records (``schema.EvalFileRec``)."""
    inputs, outputs = step.inputs, step.outputs
    n_cells = len(inputs.cells())
    folds = {f.fold for f in outputs.folds}
    fix = "re-record the session (or delete the step's files to keep its rows alone)"
    for j, rec in enumerate(outputs.files):
        key = f"{where}.files[{j}]"
        wants = {"score": (len(rec.score), (n_cells,)), "random_scores": (len(rec.random_scores),
                                                                         (n_cells * inputs.controls,)),
                 "kl": (len(rec.kl), (0, n_cells)),
                 "random_kl": (len(rec.random_kl), (0, n_cells * inputs.controls)),
                 "direct": (len(rec.direct), (n_cells,) if inputs.attribution else (0,)),
                 "through": (len(rec.through), (n_cells,) if inputs.attribution else (0,)),
                 # a file with its pair's unsteered fix-site preference has the steered ones of every cell
                 "fix": (len(rec.fix), (n_cells,) if rec.fix_baseline is not None else (0,)),
                 "random_fix": (len(rec.random_fix), (n_cells * inputs.controls,) if rec.fix_baseline is not None
                                else (0,))}
        if rec.fix_baseline is not None and not inputs.fix_site:
            raise SessionError(file, f"{key}.fix_baseline", "the step did not score the fix site (its inputs' "
                               "fix_site is false), yet this file has a fix-site preference", fix)
        for name, (n, allowed) in wants.items():
            if n not in allowed:
                raise SessionError(file, f"{key}.{name}", f"has {n} values, the step's {n_cells} cells (layers × "
                                   f"alphas{' × controls' if name.startswith('random') else ''}) need "
                                   f"{' or '.join(map(str, allowed))}", fix)
        if bool(rec.kl) != bool(rec.random_kl):
            raise SessionError(file, f"{key}.random_kl", "a patched file has the vector's KL and the controls' "
                               "(a vulnerable one neither)", fix)
        if rec.fold not in folds:
            raise SessionError(file, f"{key}.fold", f"fold {rec.fold} is not one of the step's folds "
                               f"{sorted(folds)}", fix)


def _check_steers(doc: Session, steers, where: str, names: dict[str, int], built: set[str] | None,
                  file: str | os.PathLike[str]) -> None:
    built_somewhere = {s.inputs.vector for s in doc.steps if s.kind in VECTOR_STEPS}
    for j, st in enumerate(steers):
        if st.vector not in names:
            close = difflib.get_close_matches(st.vector, list(names), n=1, cutoff=0.5)
            raise SessionError(file, f"{where}[{j}].vector", f"no [[vectors]] entry named {st.vector!r}",
                               f"did you mean '{close[0]}'?" if close else "add the vector or fix the name")
        rec = doc.vectors[names[st.vector]]
        if st.layer not in rec.layers:
            raise SessionError(file, f"{where}[{j}].layer", f"vector {st.vector!r} has no layer {st.layer}",
                               f"use one of its layers {rec.layers}")
        if built is not None and st.vector in built_somewhere and st.vector not in built:
            raise SessionError(file, f"{where}[{j}].vector", f"vector {st.vector!r} is used before the step "
                               "that builds it", "steps run in order; re-record the session")


# ---- sidecar ------------------------------------------------------------------------------------------------
def tensor_key(name: str, layer: int) -> str:
    return f"{name}/{layer}"


def write_sidecar(path: str | os.PathLike[str], vectors: Mapping[str, Mapping[int, "torch.Tensor"]],
                  about: Mapping[str, Mapping[str, Any]] | None = None) -> Path:
    """All vectors of a session in one safetensors file (``NAME/LAYER`` -> float32 ``[d_model]``), atomically.

    ``about``: per vector name, what a reader of the file alone needs (the model, where the vectors were read and
    are added, the method and readout), kept as JSON in the file's metadata under ``vectors``.

    The file is serialized in memory and written by the atomic writer, so a full disk or a file-size limit is an
    ``OSError`` with its errno (safetensors' own writer reports it as a ``SafetensorError``)."""
    from safetensors.torch import save

    from steertui.engine.steering import vector_sha256

    tensors = {tensor_key(name, int(L)): t.detach().float().cpu().contiguous()
               for name, layers in vectors.items() for L, t in layers.items()}
    meta = {"format": SIDECAR_FORMAT,
            "sha256": json.dumps({k: vector_sha256(t) for k, t in sorted(tensors.items())})}
    if about:
        meta["vectors"] = json.dumps({name: dict(info) for name, info in about.items() if name in vectors})
    return atomic_write_bytes(path, save(tensors, metadata=meta))


def read_vectors(doc: Session, path: str | os.PathLike[str],
                 d_model: int | None = None) -> dict[str, dict[int, "torch.Tensor"]]:
    """Every ``[[vectors]]`` entry's tensors from its sidecar, each checked against its sha256 and size.

    ``d_model``: the loaded model's size (default: the session's ``model.d_model``)."""
    from safetensors import SafetensorError, safe_open

    from steertui.engine.steering import vector_sha256

    path = Path(path)
    d_model = d_model or doc.model.d_model
    out: dict[str, dict[int, Any]] = {}
    opened: dict[str, dict[str, Any]] = {}
    for i, rec in enumerate(doc.vectors):
        side = path.parent / rec.file
        if rec.file not in opened:
            if not side.is_file():
                raise SessionError(path, f"vectors[{i}].file", f"the sidecar {side} is missing",
                                   f"put {rec.file} beside the session file (it holds the vectors), "
                                   "or re-record the session")
            try:
                with safe_open(str(side), framework="pt") as fh:
                    opened[rec.file] = {k: fh.get_tensor(k) for k in fh.keys()}
            except (SafetensorError, OSError, ValueError, RuntimeError) as err:
                raise SessionError(path, f"vectors[{i}].file", f"the sidecar {side} is not a readable safetensors "
                                   f"file ({_one_line(str(err))[:120]})",
                                   "restore the sidecar that was saved with this session, or re-record it") from None
        tensors = opened[rec.file]
        out[rec.name] = {}
        for L in rec.layers:
            key = tensor_key(rec.name, L)
            t = tensors.get(key)
            if t is None:
                raise SessionError(path, f"vectors[{i}].sha256.{L}", f"the sidecar {side} has no tensor {key!r}",
                                   "the sidecar was altered or belongs to another session; restore it or re-record")
            if t.ndim != 1:
                raise SessionError(path, f"vectors[{i}]", f"{side}: tensor {key!r} has shape {tuple(t.shape)}",
                                   "a steering vector is one-dimensional [d_model]; restore the sidecar")
            if vector_sha256(t) != rec.sha256[str(L)]:
                raise SessionError(path, f"vectors[{i}].sha256.{L}",
                                   f"vector {rec.name!r} layer {L} in the sidecar {side} does not match its "
                                   "recorded sha256", "the sidecar was altered; restore the one saved with this "
                                   "session, or re-record it")
            if t.shape[0] != d_model:
                raise SessionError(path, f"vectors[{i}]",
                                   f"vector {rec.name!r} layer {L} has {t.shape[0]} dimensions, the model has "
                                   f"d_model={d_model}", "replay on the model the vectors were built on")
            out[rec.name][L] = t.float()
    return out
