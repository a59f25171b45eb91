"""Activation extraction: every layer at once, one padded forward per chunk, reduced inside the pass.

Readouts (what one sample contributes per layer, ``[d_model]``):
- ``last``: the last real token;
- ``mean``: the mean over all real tokens;
- ``diff``: the mean over the tokens where the sample differs from its pair twin (a token-level diff of the
  vulnerable and patched files). Where one side only *lacks* tokens (a pure insertion on the other side), the
  token at the edit point stands in, so every side of a pair that differs at all gets a non-empty mask.

The reduction happens inside the trace with a per-row weight matrix, so memory holds ``[samples, layers,
d_model]``, never every position. Texts longer than ``max_length`` tokens are cut keeping the head; the cut is
recorded per sample (``truncated``), and a ``diff`` mask that the cut emptied falls back to ``mean`` (recorded
in ``fallbacks``). Pairs are read through ``engine.build.pair_activations``, which first cuts both files of a
long pair to the same window of lines around their first difference (``engine.data.fit_pair``), so this head
cut is only a safety net there.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence

from steertui.engine.choices import READOUTS  # declared once there, re-exported here
from steertui.errors import Cancel, CancelledError, SteertuiError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from steertui.engine.model import LoadedModel


Progress = Callable[[int, int], None]  # (done, total) samples


@dataclass
class Activations:
    """``values[n, k]`` is sample n's readout at ``layers[k]`` (float32, CPU)."""

    values: "torch.Tensor"
    layers: list[int]
    readout: str
    n_tokens: list[int]  # tokens fed to the model per sample (after truncation)
    n_readout_tokens: list[int]  # tokens averaged per sample (1 for ``last``)
    truncated: list[bool] = field(default_factory=list)
    fallbacks: list[int] = field(default_factory=list)  # samples whose diff mask was empty → mean

    def at(self, layer: int) -> "torch.Tensor":
        return self.values[:, self.layers.index(layer)]


def token_diff_masks(a_ids: Sequence[int], b_ids: Sequence[int]) -> tuple[list[bool], list[bool]]:
    """Per-token masks marking where two token sequences differ (difflib opcodes over token ids)."""
    ma, mb = [False] * len(a_ids), [False] * len(b_ids)
    ops = difflib.SequenceMatcher(a=list(a_ids), b=list(b_ids), autojunk=False).get_opcodes()
    for tag, i1, i2, j1, j2 in ops:
        if tag == "equal":
            continue
        for i in range(i1, i2):
            ma[i] = True
        for j in range(j1, j2):
            mb[j] = True
        if i1 == i2 and ma:  # pure insertion on b's side: mark a's token at the edit point
            ma[min(i1, len(ma) - 1)] = True
        if j1 == j2 and mb:
            mb[min(j1, len(mb) - 1)] = True
    return ma, mb


def tokenize(model: "LoadedModel", texts: Sequence[str], max_length: int | None) -> tuple[list[list[int]], list[bool]]:
    """Token ids per text (the tokenizer's own special tokens included), cut to ``max_length`` from the head."""
    ids, cut = [], []
    for text in texts:
        row = model.tokenizer(text)["input_ids"]
        if not row:
            raise SteertuiError("an empty text cannot be read", "drop empty samples before extracting")
        cut.append(max_length is not None and len(row) > max_length)
        ids.append(row[:max_length] if max_length else row)
    return ids, cut


def extract(model: "LoadedModel", texts: Sequence[str], *, layers: Sequence[int] | None = None,
            readout: str = "last", diff_masks: Sequence[Sequence[bool]] | None = None,
            ids: Sequence[Sequence[int]] | None = None, chunk_size: int = 8, max_length: int | None = None,
            progress: Progress | None = None, cancel: Cancel | None = None) -> Activations:
    """Read ``layers`` (default: all) for every text with one forward per chunk of ``chunk_size`` texts.

    ``diff_masks`` (required for ``readout="diff"``) are per-token masks over the same token ids (pass ``ids``
    from :func:`tokenize` to share them). Cancellation is checked between chunks.
    """
    import nnsight
    import torch

    if readout not in READOUTS:
        raise SteertuiError(f"unknown readout '{readout}'", f"use one of {', '.join(READOUTS)}")
    if chunk_size < 1:
        raise SteertuiError(f"chunk size {chunk_size} must be at least 1")
    layer_list = sorted({model.check_layer(i) for i in (range(model.n_layers) if layers is None else layers)})
    max_length = max_length or model.context_length
    if ids is None:
        ids, truncated = tokenize(model, texts, max_length)
    else:
        ids, truncated = [list(r)[:max_length] for r in ids], [len(r) > max_length for r in ids]
    if readout == "diff" and (diff_masks is None or len(diff_masks) != len(ids)):
        raise SteertuiError("the diff readout needs one token mask per sample", "build them with token_diff_masks")

    n, D = len(ids), model.d_model
    values = torch.zeros(n, len(layer_list), D, dtype=torch.float32)
    counts, fallbacks = [0] * n, []
    order = sorted(range(n), key=lambda k: len(ids[k]))  # similar lengths share a chunk: less padding
    pad = model.tokenizer.pad_token_id
    adapter, blocks = model.adapter, model.block_envoys()
    last_layer = layer_list[-1] if layer_list else -1
    done = 0
    for start in range(0, n, chunk_size):
        if cancel is not None and cancel.is_set():
            raise CancelledError(f"extraction cancelled after {done} of {n} samples")
        rows = order[start:start + chunk_size]
        S = max(len(ids[r]) for r in rows)
        input_ids = torch.full((len(rows), S), pad, dtype=torch.long)
        mask = torch.zeros(len(rows), S, dtype=torch.long)
        weights = torch.zeros(len(rows), S, dtype=torch.float32)
        for b, r in enumerate(rows):
            L = len(ids[r])
            input_ids[b, S - L:] = torch.tensor(ids[r])
            mask[b, S - L:] = 1
            w = _readout_weights(readout, L, diff_masks[r][:L] if readout == "diff" else None)
            if w is None:  # diff mask emptied by truncation (or identical twins): mean instead
                fallbacks.append(r)
                w = _readout_weights("mean", L, None)
            weights[b, S - L:] = w
            counts[r] = int((w > 0).sum())
        weights = (weights / weights.sum(1, keepdim=True)).to(model.device, model.hf.dtype)
        enc = {"input_ids": input_ids.to(model.device), "attention_mask": mask.to(model.device)}
        with model.lock, torch.no_grad():
            with model.nn.trace(enc) as tracer:
                out = nnsight.save([])
                for i in range(last_layer + 1):
                    if i in layer_list:
                        h = adapter.hidden(blocks[i].output)
                        out.append((h * weights[:, :, None]).sum(1).float())
                tracer.stop()
        chunk = torch.stack([o.cpu() for o in out], dim=1)  # [B, L, D]
        for b, r in enumerate(rows):
            values[r] = chunk[b]
        done += len(rows)
        if progress is not None:
            progress(done, n)
    return Activations(values, layer_list, readout, [len(r) for r in ids], counts, list(truncated), sorted(fallbacks))


def _readout_weights(readout: str, length: int, diff_mask: Sequence[bool] | None):
    import torch

    if readout == "last":
        w = torch.zeros(length)
        w[-1] = 1.0
        return w
    if readout == "mean":
        return torch.ones(length)
    w = torch.tensor([1.0 if m else 0.0 for m in diff_mask], dtype=torch.float32)
    if len(w) < length:
        w = torch.cat([w, torch.zeros(length - len(w))])
    return w if w.sum() > 0 else None
