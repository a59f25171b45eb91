"""Interventions (add alpha·v to a layer's hidden state) and the traced forward/generate that apply them.

Every function here takes the model's lock, runs under ``torch.no_grad()``, reads each layer's hidden state
through the adapter (never a blind ``output[0]``), and visits layers in execution order, so several
interventions and reads can share one forward pass.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from steertui.engine.choices import POSITIONS  # declared once there, re-exported here
from steertui.errors import Cancel, CancelledError, ContextLengthError, VectorError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from steertui.engine.model import LoadedModel


# nnsight warns when an open-ended per-step loop outlives a generation that stopped early (EOS): expected.
_LOOP_WARNING = r".*was never reached: the loop asked for a step"


@dataclass(frozen=True, eq=False)
class Steer:
    """Add ``alpha * vector`` to layer ``layer``'s hidden state at ``positions``.

    positions: ``all`` — every position of every forward (prompt pass and each generation step);
    ``prompt`` — only the prompt pass (in a single forward: all positions); ``generated`` — only the
    generation steps after the prompt pass (in a single forward: nothing).
    """

    layer: int
    vector: "torch.Tensor"
    alpha: float
    positions: str = "all"
    label: str = ""

    def __post_init__(self) -> None:
        if self.positions not in POSITIONS:
            raise VectorError(f"unknown steering positions '{self.positions}'", f"use one of {', '.join(POSITIONS)}")
        if self.vector.ndim != 1:
            raise VectorError(f"steering vector '{self.label or self.layer}' has shape {tuple(self.vector.shape)}",
                              "a steering vector is one-dimensional [d_model]")

    @property
    def sha256(self) -> str:
        return vector_sha256(self.vector)

    def describe(self) -> dict[str, Any]:
        """Plain data for the UI's list of active interventions and for sessions."""
        return {"layer": self.layer, "alpha": float(self.alpha), "positions": self.positions, "label": self.label,
                "norm": float(self.vector.float().norm()), "d_model": int(self.vector.shape[0]),
                "sha256": self.sha256}


def float32_bytes(vector: "torch.Tensor") -> bytes:
    """A vector's float32 little-endian bytes, whatever its device and dtype of storage."""
    import numpy as np

    arr = vector.detach().to("cpu").float().contiguous().numpy().astype("<f4")
    return np.ascontiguousarray(arr).tobytes()


def vector_sha256(vector: "torch.Tensor") -> str:
    """sha256 of a vector's float32 little-endian bytes (stable across devices and dtypes of storage)."""
    return hashlib.sha256(float32_bytes(vector)).hexdigest()


def steer_columns(positions: str, generated_from: int | None) -> slice | None:
    """The columns of one forward that a steer with ``positions`` covers (None: none).

    ``generated_from`` is the first column of this forward that holds a generated token: None when none does
    (a plain forward, or generation's prompt pass), 0 for a generation step after the prompt pass, the prompt
    length for a teacher-forced pass over prompt + generated ids. ``all`` covers every column, ``prompt`` the
    columns before ``generated_from``, ``generated`` the columns from it on."""
    if positions == "all":
        return slice(None)
    if positions == "prompt":
        return slice(None, generated_from)
    return None if generated_from is None else slice(generated_from, None)


class SteerPlan:
    """Steers checked against a model and ready to add: the one place where a vector meets the model.

    Built once per call (layers and sizes validated, each ``alpha * vector`` cast to the model's device and
    dtype); :meth:`apply` is the only edit of a block's hidden state in steertui. Forward, generation, the
    lens, top tokens, teacher forcing and the evaluation all go through it, so they describe one intervention.
    """

    def __init__(self, model: "LoadedModel", steers: Iterable[Steer]) -> None:
        self.steers = list(steers)
        self.by_layer: dict[int, list[tuple[Steer, "torch.Tensor"]]] = {}
        for s in self.steers:
            layer = model.check_layer(s.layer)
            if s.vector.shape[0] != model.d_model:
                raise VectorError(
                    f"steering vector '{s.label or f'layer {s.layer}'}' has {s.vector.shape[0]} dimensions, "
                    f"{model.info.name} has d_model={model.d_model}",
                    "build the vector on this model, or load a model of the size the vector was made for")
            delta = (float(s.alpha) * s.vector.detach().float()).to(device=model.device, dtype=model.hf.dtype)
            self.by_layer.setdefault(layer, []).append((s, delta))

    @property
    def layers(self) -> list[int]:
        """The steered layers (non-negative), in execution order."""
        return sorted(self.by_layer)

    @property
    def last_layer(self) -> int:
        """The last steered layer, -1 when nothing is steered."""
        return max(self.by_layer, default=-1)

    def __bool__(self) -> bool:
        return bool(self.by_layer)

    def apply(self, hidden: "torch.Tensor", layer: int, *, rows: slice = slice(None),
              generated_from: int | None = None) -> None:
        """Add every steer of ``layer`` to ``hidden`` [B, S, D] in place, at ``rows`` and the columns its
        positions rule covers in this forward (:func:`steer_columns`). Padding columns are steered like any
        other: the attention mask keeps them out of every real token's computation."""
        for s, delta in self.by_layer.get(layer, ()):
            cols = steer_columns(s.positions, generated_from)
            if cols is not None:
                hidden[rows, cols] += delta

    def describe(self) -> tuple[dict[str, Any], ...]:
        return tuple(s.describe() for s in self.steers)


def last_real_columns(attention_mask: "torch.Tensor") -> "torch.Tensor":
    """Each row's last real (mask 1) column [B]: read from the mask, so left and right padding both work."""
    S = attention_mask.shape[1]
    return S - 1 - attention_mask.flip(-1).long().argmax(-1)


@dataclass
class ForwardResult:
    """Result of one traced forward: logits ``[B, S, V]`` and the hidden states read (layer -> tensor)."""

    input_ids: "torch.Tensor"
    attention_mask: "torch.Tensor"
    logits: "torch.Tensor | None"
    hidden: dict[int, "torch.Tensor"]
    # with read_parts, at each row's last real token: "embed" [B, D] (token + position embeddings), "out"
    # [B, n_layers, D] (every block's output, after its steering) and, when every block has an MLP child,
    # "mlp" [B, n_layers, D] (its output): what engine.attribution splits the verdict score into
    parts: dict[str, "torch.Tensor"] | None = None


def mlp_child(model: "LoadedModel") -> str | None:
    """``mlp`` when every block has a child module of that name (its output is an attribution part), else None."""
    import torch

    blocks = model.hf_module(model.adapter.blocks)
    return "mlp" if all(isinstance(getattr(b, "mlp", None), torch.nn.Module) for b in blocks) else None


def _first_tensor(output: Any) -> Any:
    """A module's output tensor: itself, or the first element of a tuple (an MLP that returns extras)."""
    return output[0] if isinstance(output, (tuple, list)) else output


def forward(model: "LoadedModel", texts: Sequence[str] | dict[str, Any], *, steers: Iterable[Steer] = (),
            read_layers: Iterable[int] = (), read: str = "all", want_logits: bool = True,
            logits_at: str = "all", steer_rows: slice = slice(None), read_parts: bool = False) -> ForwardResult:
    """One traced forward over a batch, applying ``steers`` and reading ``read_layers``.

    ``read``: ``all`` keeps ``[B, S, D]`` per layer, ``last`` keeps each row's last real token ``[B, D]``.
    ``logits_at``: ``all`` keeps ``[B, S, V]``; ``last`` keeps each row's last real token ``[B, V]``, which is
    what scoring a batch needs. "Last real" is read from the attention mask (left or right padding). For a model
    in bfloat16 or float16, ``last`` logits come from :meth:`LoadedModel.float32_head` (float32).
    ``steer_rows``: the rows the steers are added to (all of them by default). ``read_parts``: also keep, at each
    row's last real token, the embeddings, every block's output and every block's MLP output
    (:attr:`ForwardResult.parts`), in the same forward.
    """
    import nnsight
    import torch

    enc = texts if isinstance(texts, dict) else model.encode(list(texts))
    plan = SteerPlan(model, steers)
    wanted = sorted({model.check_layer(i) for i in read_layers})
    # logits at the last token of a model in another dtype than float32 are read through the float32 head
    head32 = want_logits and logits_at == "last" and model.hf.dtype != torch.float32
    final = model.n_layers - 1
    last_needed = max([plan.last_layer] + wanted + ([final] if head32 or read_parts else []))
    adapter, blocks = model.adapter, model.block_envoys()
    B = enc["input_ids"].shape[0]
    rows = torch.arange(B, device=enc["input_ids"].device)
    last = last_real_columns(enc["attention_mask"]).to(rows.device)
    mlp = mlp_child(model) if read_parts else None
    keep: dict[str, Any] = {}
    if logits_at == "last":  # the head computes the rows' last columns only (one column with left padding)
        columns, at = torch.unique(last, return_inverse=True)
        keep = model.logits_only_at(columns, enc["attention_mask"])
    with model.lock, torch.no_grad():
        with model.nn.trace({**enc, **keep}):
            saved = nnsight.save({})
            if read_parts:
                embed = model.envoy(adapter.embed).output[rows, last]
                if adapter.pos_embed is not None:  # [B, S, D], or [1, S, D] when the positions are one row
                    pos = model.envoy(adapter.pos_embed).output
                    embed = embed + pos.expand(B, -1, -1)[rows, last]
                saved["embed"] = embed.clone()
            for i in range(last_needed + 1):
                if mlp is not None:
                    saved[f"mlp{i}"] = _first_tensor(getattr(blocks[i], mlp).output)[rows, last].clone()
                h = adapter.hidden(blocks[i].output)
                plan.apply(h, i, rows=steer_rows)
                if i in wanted:
                    saved[i] = (h[rows, last] if read == "last" else h).clone()
                if read_parts:
                    saved[f"out{i}"] = h[rows, last].clone()
                elif head32 and i == final:
                    saved["final"] = h[rows, last].clone()
            if want_logits and not head32:
                out = model.envoy(adapter.unembed).output
                logits = (out if logits_at == "all" else out[rows, at if keep else last]).save()
        saved = dict(saved)
        parts = None
        if read_parts:
            n = model.n_layers
            parts = {"embed": saved.pop("embed"), "out": torch.stack([saved.pop(f"out{i}") for i in range(n)], 1)}
            if mlp is not None:
                parts["mlp"] = torch.stack([saved.pop(f"mlp{i}") for i in range(n)], 1)
            if head32:
                saved["final"] = parts["out"][:, final]
        if head32:
            logits = model.float32_head()(saved.pop("final"))
    return ForwardResult(enc["input_ids"], enc["attention_mask"], logits if want_logits else None, saved, parts)


@dataclass
class GenerationResult:
    """Greedy generation: the padded prompt ids ``[B, P]`` and the new ids per row (cut at EOS, inclusive)."""

    prompt_ids: "torch.Tensor"
    attention_mask: "torch.Tensor"
    sequences: "torch.Tensor"  # [B, P + T] as returned by generate (T <= max_new_tokens)
    new_ids: list[list[int]]
    eos_id: int | None


def generate(model: "LoadedModel", texts: Sequence[str], *, steers: Iterable[Steer] = (),
             max_new_tokens: int = 32, stop_at_eos: bool = True,
             cancel: "Cancel | None" = None) -> GenerationResult:
    """Greedy generation with ``steers`` applied at every step they cover; EOS-safe for batches.

    ``cancel`` is checked at every step; when set, generation stops there and
    :class:`~steertui.errors.CancelledError` is raised."""
    import torch

    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise ContextLengthError(f"max_new_tokens={max_new_tokens!r} is not a positive integer", "use 1 or more")
    enc = model.encode(list(texts), new_tokens=max_new_tokens)
    plan = SteerPlan(model, steers)
    adapter, blocks = model.adapter, model.block_envoys()
    eos = model.tokenizer.eos_token_id
    kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "do_sample": False,
                              "pad_token_id": model.tokenizer.pad_token_id}
    if not stop_at_eos:
        kwargs["min_new_tokens"] = max_new_tokens
    try:
        with model.lock, torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_LOOP_WARNING)
            with model.nn.generate(**kwargs) as tracer:
                with tracer.invoke(dict(enc)):
                    if plan or cancel is not None:
                        for step in tracer.all():
                            # Every step reads each steered layer, applying or not: a step whose body asks
                            # nnsight for no value does not wait for the model and would spin forever.
                            for layer in plan.layers:
                                plan.apply(adapter.hidden(blocks[layer].output), layer,
                                           generated_from=None if step == 0 else 0)
                            if not plan:
                                blocks[0].output
                            if cancel is not None and cancel.is_set():
                                tracer.stop()
                with tracer.invoke():
                    ids = tracer.result.save()
    except Exception:
        if cancel is not None and cancel.is_set():  # tracer.stop() leaves the result unread
            raise CancelledError("generation cancelled") from None
        raise
    if cancel is not None and cancel.is_set():
        raise CancelledError("generation cancelled")
    P = enc["input_ids"].shape[1]
    new_ids = []
    for row in ids[:, P:].tolist():
        if stop_at_eos and eos is not None and eos in row:
            row = row[: row.index(eos) + 1]
        new_ids.append(row)
    return GenerationResult(enc["input_ids"], enc["attention_mask"], ids, new_ids, eos)
