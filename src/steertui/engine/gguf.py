"""Steering vectors as GGUF control vectors: the file llama.cpp takes with ``--control-vector`` (and
``--control-vector-scaled FILE STRENGTH``) and repeng writes with ``export_gguf``.

Such a file is GGUF (version 3, little-endian) with ``general.architecture = "controlvector"``,
``controlvector.model_hint`` (the model type) and ``controlvector.layer_count``, and one one-dimensional F32
tensor per layer named ``direction.K``. llama.cpp adds ``direction.K`` times the strength to the output of block
``K`` (0-based) at every position, prompt included; block 0's output is never steered there, so ``K`` starts
at 1. That is where steertui reads and adds a vector at layer ``K`` (``h[K].output`` on GPTBigCode): a vector's
layer ``K`` is ``direction.K`` and steertui's raw alpha is llama.cpp's strength. steertui adds its own metadata
under ``steertui.vector`` (one JSON string: what an exported ``.safetensors`` file says, the per-layer sha256
included), which llama.cpp and repeng ignore.

Reading is written for files from anywhere: every count, length and offset is checked against the file's size
before anything is read or allocated, the tensors are looked at (names, types, shapes) before their data is
read, and any problem is a :class:`SessionError` naming the file and what to do. Nothing in a GGUF file is
executed. No dependency: the format is small enough to read and write here.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Mapping

from steertui.engine.session.store import SessionError

if TYPE_CHECKING:  # pragma: no cover
    import torch

MAGIC = b"GGUF"
VERSION = 3
ALIGNMENT = 32  # general.alignment's default
ARCH = "controlvector"
GGUF_FORMAT = "gguf control vector"
STEERTUI_KEY = "steertui.vector"
F32 = 0  # ggml's tensor type of float32
MAX_DIMS = 4  # ggml tensors have at most 4 dimensions

# GGUF metadata value types: id -> (struct format, size) for the fixed-size ones
_SCALARS = {0: ("<B", 1), 1: ("<b", 1), 2: ("<H", 2), 3: ("<h", 2), 4: ("<I", 4), 5: ("<i", 4), 6: ("<f", 4),
            7: ("<?", 1), 10: ("<Q", 8), 11: ("<q", 8), 12: ("<d", 8)}
_STRING, _ARRAY = 8, 9
_UINT32 = 4


# ---- writing ---------------------------------------------------------------------------------------------------
def _string(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("<Q", len(raw)) + raw


def _kv_string(key: str, value: str) -> bytes:
    return _string(key) + struct.pack("<I", _STRING) + _string(value)


def _kv_uint32(key: str, value: int) -> bytes:
    return _string(key) + struct.pack("<I", _UINT32) + struct.pack("<I", value)


def _pad(n: int) -> int:
    return (ALIGNMENT - n % ALIGNMENT) % ALIGNMENT


def control_vector_bytes(vectors: Mapping[int, "torch.Tensor"], model_hint: str,
                         about: Mapping[str, Any] | None = None) -> bytes:
    """A GGUF control-vector file of ``vectors`` (layer -> ``[d_model]``, each layer 1 or above, all of one
    size), as float32; ``about`` (JSON-able) goes under :data:`STEERTUI_KEY`."""
    layers = sorted(vectors)
    if not layers or layers[0] < 1:
        raise ValueError(f"GGUF control vectors hold layers 1 and above, not {layers}")
    from steertui.engine.steering import float32_bytes

    data = {L: float32_bytes(vectors[L]) for L in layers}
    sizes = {len(b) // 4 for b in data.values()}
    if len(sizes) != 1:
        raise ValueError(f"the layers' vectors differ in size: {sorted(sizes)}")
    kv = [_kv_string("general.architecture", ARCH), _kv_string(f"{ARCH}.model_hint", model_hint),
          _kv_uint32(f"{ARCH}.layer_count", len(layers))]
    if about is not None:
        kv.append(_kv_string(STEERTUI_KEY, json.dumps(dict(about), sort_keys=True)))
    head = MAGIC + struct.pack("<IQQ", VERSION, len(layers), len(kv)) + b"".join(kv)
    offset, infos, blobs = 0, [], []
    for L in layers:
        blob = data[L]
        infos.append(_string(f"direction.{L}") + struct.pack("<I", 1) + struct.pack("<Q", len(blob) // 4)
                     + struct.pack("<IQ", F32, offset))
        blobs.append(blob + b"\0" * _pad(len(blob)))
        offset += len(blobs[-1])
    head += b"".join(infos)
    return head + b"\0" * _pad(len(head)) + b"".join(blobs)


# ---- reading ---------------------------------------------------------------------------------------------------
class _Reader:
    """Bounds-checked little-endian reads from a file of known size."""

    def __init__(self, fh: IO[bytes], size: int, path: Path) -> None:
        self.fh, self.size, self.path = fh, size, path

    def fail(self, key: str, problem: str) -> SessionError:
        return SessionError(self.path, key, problem, "give a GGUF control vector (llama.cpp's cvector-generator, "
                            "repeng's export_gguf, or steertui vectors --export --out FILE.gguf)")

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.fh.tell() + n > self.size:
            raise self.fail(what, f"the file ends inside {what} (it is {self.size} bytes; truncated?)")
        return self.fh.read(n)

    def scalar(self, fmt: str, size: int, what: str) -> Any:
        return struct.unpack(fmt, self.take(size, what))[0]

    def string(self, what: str) -> str:
        n = self.scalar("<Q", 8, what)
        try:
            return self.take(n, what).decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(what, f"{what} is not UTF-8 text") from None

    def value(self, kind: int, what: str, depth: int = 0) -> Any:
        if kind in _SCALARS:
            return self.scalar(*_SCALARS[kind], what)
        if kind == _STRING:
            return self.string(what)
        if kind == _ARRAY and depth < 4:
            inner, n = self.scalar("<I", 4, what), self.scalar("<Q", 8, what)
            if n > self.size - self.fh.tell():  # every element takes at least one byte
                raise self.fail(what, f"{what} claims {n} elements, more than the file holds")
            return [self.value(inner, what, depth + 1) for _ in range(n)]
        raise self.fail(what, f"{what} has an unknown value type {kind}")


def read_control_vector(file: str | os.PathLike[str]) -> tuple[dict[int, "torch.Tensor"], dict[str, Any]]:
    """The ``direction.K`` tensors of a GGUF control vector (layer ``K`` -> float32 ``[n]``) and its metadata
    (key -> value). A tensor named otherwise, of another type than F32, not one-dimensional, or at layer 0, a
    size that differs between layers, a file that ends early: each a :class:`SessionError` naming the file and
    the tensor or key. Two tensors of one layer are summed, as llama.cpp does."""
    import torch

    path = Path(file)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        r = _Reader(fh, size, path)
        if r.take(4, "the header") != MAGIC:
            raise r.fail("header", "not a GGUF file (it does not start with 'GGUF')")
        version = r.scalar("<I", 4, "the version")
        if version not in (2, 3):
            raise r.fail("version", f"GGUF version {version}; control vectors are read from versions 2 and 3")
        n_tensors, n_kv = r.scalar("<Q", 8, "the tensor count"), r.scalar("<Q", 8, "the key count")
        if n_tensors > size // 8 or n_kv > size // 8:
            raise r.fail("header", f"it claims {n_tensors} tensors and {n_kv} keys, more than the file holds")
        meta: dict[str, Any] = {}
        for i in range(n_kv):
            key = r.string(f"key {i}")
            meta[key] = r.value(r.scalar("<I", 4, f"the type of {key}"), key)
        infos = []
        for i in range(n_tensors):
            name = r.string(f"tensor {i}'s name")
            n_dims = r.scalar("<I", 4, f"{name}'s dimensions")
            if n_dims > MAX_DIMS:
                raise r.fail(name, f"tensor {name} claims {n_dims} dimensions")
            dims = [r.scalar("<Q", 8, f"{name}'s shape") for _ in range(n_dims)]
            kind, offset = r.scalar("<I", 4, f"{name}'s type"), r.scalar("<Q", 8, f"{name}'s offset")
            infos.append((name, dims, kind, offset))
        align = meta.get("general.alignment", ALIGNMENT)
        if not isinstance(align, int) or align < 1 or align > 1 << 20:
            raise r.fail("general.alignment", f"alignment {align!r} is not a small positive integer")
        start = fh.tell() + (align - fh.tell() % align) % align
        # names, types and shapes first: another GGUF (a model's weights) is refused before its data is read
        layers: dict[int, list[tuple[int, int]]] = {}
        for name, dims, kind, offset in infos:
            prefix, _, index = name.partition(".")
            if prefix != "direction" or not index.isdigit():
                raise r.fail(name, f"it holds a tensor named {name!r}, not direction.K (is this a model's weights?)")
            if int(index) == 0:
                raise r.fail(name, "direction.0: llama.cpp never steers block 0's output (layers start at 1)")
            if kind != F32:
                raise r.fail(name, f"tensor {name} has ggml type {kind}, not F32 (0)")
            if len(dims) != 1 or dims[0] < 1:
                raise r.fail(name, f"tensor {name} has shape {dims}; a control vector is one-dimensional")
            if start + offset + 4 * dims[0] > size:
                raise r.fail(name, f"tensor {name}'s data lies beyond the end of the file (truncated?)")
            layers.setdefault(int(index), []).append((offset, dims[0]))
        sizes = {n for parts in layers.values() for _, n in parts}
        if len(sizes) > 1:
            raise r.fail("tensors", f"the direction tensors differ in size ({', '.join(map(str, sorted(sizes)))})")
        vectors = {}
        for layer, parts in sorted(layers.items()):
            total = None
            for offset, n in parts:
                fh.seek(start + offset)
                t = torch.frombuffer(bytearray(r.take(4 * n, f"direction.{layer}")), dtype=torch.float32).clone()
                total = t if total is None else total + t
            vectors[layer] = total
    return vectors, meta
