"""Logit lens (plain, and steered against baseline), as plain data for the console.

The logit lens decodes every layer's hidden state through the model's own final norm and unembedding
(``adapter.final_norm``, ``adapter.unembed``, in float32: ``LoadedModel.float32_head``) from ONE traced
forward: the trace keeps each layer's hidden states at the lensed window of positions, and each layer is then
decoded and reduced to its top-k tokens and a target token's probability and rank. The lens at the last layer
is the model's real output distribution; every result carries ``final_logits_check``, the largest absolute
difference between the two (rounding for a float32 model; for bfloat16 the model's own rounding of its logits,
which the lens does not share). The window is decoded in chunks (``LENS_BUDGET``) so long prompts never hold
[layers, seq, vocab] at once.

Every public function takes ``model.lock`` and runs under ``torch.no_grad()``; torch is imported lazily.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from steertui.engine.steering import Steer, SteerPlan
from steertui.errors import Cancel, CancelledError, SteertuiError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from steertui.engine.model import LoadedModel


LENS_BUDGET = 1 << 24  # floats of transient lens log-probs per chunk of positions (64 MiB in float32)


class LensError(SteertuiError):
    """A lens or top-token request that does not fit the prompt or the model (positions, k)."""


class TargetTokenError(SteertuiError):
    """A target token that is not exactly one token of the model's vocabulary."""


# ---- result data ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TokenProb:
    """One token and its probability (``rank`` 1 is the most likely token)."""

    id: int
    text: str
    prob: float
    rank: int

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "prob": self.prob, "rank": self.rank}


@dataclass(frozen=True)
class LensLayer:
    """The lens at one layer. ``top[j]`` is the top-k at ``LensResult.positions[j]``; the target's probability
    and rank (1 = most likely) are aligned the same way, or None when no target was given."""

    layer: int
    top: tuple[tuple[TokenProb, ...], ...]
    target_prob: tuple[float, ...] | None
    target_rank: tuple[int, ...] | None

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "top": [[t.to_dict() for t in row] for row in self.top],
                "target_prob": None if self.target_prob is None else list(self.target_prob),
                "target_rank": None if self.target_rank is None else list(self.target_rank)}


@dataclass(frozen=True)
class LensResult:
    """Logit lens of one prompt: token ids/texts, the lensed positions (non-negative), one entry per layer."""

    prompt: str
    token_ids: tuple[int, ...]
    token_texts: tuple[str, ...]
    positions: tuple[int, ...]
    k: int
    target_id: int | None
    target_text: str | None
    layers: tuple[LensLayer, ...]
    final_logits_check: float  # max |lens(last layer) - softmax(real logits)| over the window
    steers: tuple[dict[str, Any], ...] = ()

    def layer(self, i: int) -> LensLayer:
        return next(x for x in self.layers if x.layer == i)

    def to_dict(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "token_ids": list(self.token_ids), "token_texts": list(self.token_texts),
                "positions": list(self.positions), "k": self.k, "target_id": self.target_id,
                "target_text": self.target_text, "layers": [x.to_dict() for x in self.layers],
                "final_logits_check": self.final_logits_check, "steers": [dict(s) for s in self.steers]}


@dataclass(frozen=True)
class TokenDelta:
    """A token's probability without and with steering (``delta`` = steered - baseline)."""

    id: int
    text: str
    baseline: float
    steered: float

    @property
    def delta(self) -> float:
        return self.steered - self.baseline

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "baseline": self.baseline, "steered": self.steered,
                "delta": self.delta}


@dataclass(frozen=True)
class LensDelta:
    """Steered minus baseline at one layer: the target's probability change per position, and for each
    position the tokens of both top-k lists (union) with both probabilities, largest |delta| first (``top``:
    made when first read, from the union's ids and both sides' log-probs that the lens pass kept)."""

    layer: int
    target_delta: tuple[float, ...] | None
    union: tuple[Any, Any, TokenDecoder] = field(repr=False, compare=False)  # ids [W, 2k], log-probs [2, W, 2k]

    @cached_property
    def top(self) -> tuple[tuple[TokenDelta, ...], ...]:
        u_id, u_lp, dec = self.union
        rows = []
        for ids_w, base_w, steer_w in zip(u_id.tolist(), *u_lp.exp().tolist()):
            first: dict[int, int] = {}  # each token once, at its first column
            for j, t in enumerate(ids_w):
                first.setdefault(t, j)
            cols = sorted(first.values(), key=lambda j: -abs(steer_w[j] - base_w[j]))
            ids = [ids_w[j] for j in cols]
            rows.append(tuple(map(TokenDelta, ids, dec.many(ids), [base_w[j] for j in cols],
                                  [steer_w[j] for j in cols])))
        return tuple(rows)

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer,
                "target_delta": None if self.target_delta is None else list(self.target_delta),
                "top": [[t.to_dict() for t in row] for row in self.top]}


@dataclass(frozen=True)
class LensDiff:
    """Baseline and steered lens of one prompt, and their per-layer differences."""

    baseline: LensResult
    steered: LensResult
    deltas: tuple[LensDelta, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": self.baseline.to_dict(), "steered": self.steered.to_dict(),
                "deltas": [d.to_dict() for d in self.deltas]}


# ---- helpers ----------------------------------------------------------------------------------------------
def check_cancel(cancel: Cancel | None, what: str) -> None:
    if cancel is not None and cancel.is_set():
        raise CancelledError(f"{what} cancelled")


def resolve_target(model: "LoadedModel", target: int | str | None) -> tuple[int | None, str | None]:
    """A target given as a token id or as text that is exactly one token → (id, decoded text)."""
    if target is None:
        return None, None
    vocab = model.info.vocab_size
    if isinstance(target, bool) or not isinstance(target, (int, str)):
        raise TargetTokenError(f"target {target!r} is neither a token id nor a string", "pass an int id or a token")
    if isinstance(target, int):
        if not 0 <= target < vocab:
            raise TargetTokenError(f"target token id {target} is outside the vocabulary (0..{vocab - 1})",
                                   "pass an id from the tokenizer, or the token's text")
        return target, model.tokenizer.decode([target])
    tid = model.token_id(target)
    if tid is None:
        pieces = model.tokenizer(target, add_special_tokens=False)["input_ids"]
        shown = [model.tokenizer.decode([i]) for i in pieces]
        raise TargetTokenError(f"target {target!r} is {len(pieces)} tokens {shown}, not one",
                               "pick a single token (mind a leading space), or pass its id")
    return tid, model.tokenizer.decode([tid])


def resolve_positions(positions: slice | Sequence[int] | int | None, n_tokens: int) -> list[int]:
    """Non-negative token positions from None (last), an int, a slice or a list (negatives count from the end)."""
    if positions is None:
        return [n_tokens - 1]
    if isinstance(positions, slice):
        out = list(range(n_tokens))[positions]
    else:
        raw = [positions] if isinstance(positions, int) else list(positions)
        out = []
        for p in raw:
            if isinstance(p, bool) or not isinstance(p, int) or not -n_tokens <= p < n_tokens:
                raise LensError(f"position {p!r} is outside the prompt ({n_tokens} tokens)",
                                f"use 0..{n_tokens - 1}, or negative positions from the end")
            if p % n_tokens not in out:
                out.append(p % n_tokens)
    if not out:
        raise LensError(f"positions {positions!r} select no token of the prompt ({n_tokens} tokens)",
                        "give a non-empty slice or list")
    return out


class TokenDecoder:
    """Token id → text, memoised: for a loaded model's tokenizer in the cache it keeps for its lifetime (a token's
    text never changes), else for this decoder's lifetime."""

    def __init__(self, tokenizer: Any) -> None:
        self.tok = tokenizer
        self.cache = tokenizer.__dict__.get("token_texts", {}) if hasattr(tokenizer, "__dict__") else {}

    def __call__(self, tid: int) -> str:
        if tid not in self.cache:
            self.cache[tid] = self.tok.decode([tid])
        return self.cache[tid]

    def many(self, ids: Iterable[int]) -> list[str]:
        """The texts of ``ids``, in order (one loop: the lens decodes thousands of ids per call)."""
        cache, decode, out = self.cache, self.tok.decode, []
        for t in ids:
            text = cache.get(t)
            if text is None:
                text = cache[t] = decode([t])
            out.append(text)
        return out


def check_k(model: "LoadedModel", k: int) -> int:
    vocab = model.info.vocab_size
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= vocab:
        raise LensError(f"k={k!r} is out of range", f"use 1..{vocab}")
    return k


# ---- logit lens -------------------------------------------------------------------------------------------
def lens_pass(model: "LoadedModel", ids: "torch.Tensor", plan: SteerPlan, steer_rows: slice,
              pos: list[int], wanted: set[int], k: int, target_id: int | Sequence[int] | None, pair: bool,
              generated_from: int | None = None) -> tuple[dict, float]:
    """One traced forward over ``ids`` [R, S] (R = 1, or 2 identical rows for baseline/steered).

    ``plan``'s steers are added to rows ``steer_rows`` at the columns their positions cover, the generated
    tokens starting at column ``generated_from`` (:func:`steering.steer_columns`; None: a plain forward). The
    trace keeps each wanted layer's hidden states at the window ``pos`` ([R, W, D]: d_model / vocab of the
    logits they make); after it, all of them are decoded together through :meth:`LoadedModel.float32_head` in
    chunks of rows and reduced. ``target_id`` is one token id, or one per position of ``pos``. Per wanted layer
    returns (on CPU) top-k log-probs and ids [R, W, k], the target's log-prob and rank [R, W], and with ``pair``
    the log-probs of the union of both rows' top-k ids [R, W, 2k] with those ids [W, 2k]."""
    import nnsight
    import torch

    adapter, blocks = model.adapter, model.block_envoys()
    n = model.n_layers
    idx = torch.tensor(pos, device=model.device)
    enc = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    keep = model.logits_only_at(idx, enc["attention_mask"])  # the model's own logits are needed at the window only
    with model.nn.trace({**enc, **keep}):
        states = nnsight.save({})
        for i in range(n):
            h = adapter.hidden(blocks[i].output)
            plan.apply(h, i, rows=steer_rows, generated_from=generated_from)
            if i in wanted or i == n - 1:
                states[i] = h[:, idx].clone()
        out = model.envoy(adapter.unembed).output
        real = (out if keep else out[:, idx]).float().save()

    # Every decoded layer's window in one matrix, ordered (layer, position, row): the unembedding is read once
    # per chunk of rows, not once per layer, and a chunk holds whole (layer, position) groups so the union of
    # both rows' top-k is taken inside it. Chunks keep the transient log-probs near LENS_BUDGET floats.
    decoded = sorted(set(wanted) | {n - 1})
    R, W, V = ids.shape[0], len(pos), model.info.vocab_size
    x = torch.stack([states[i] for i in decoded]).transpose(1, 2).reshape(len(decoded) * W * R, -1)
    head = model.float32_head()
    groups = max(1, LENS_BUDGET // (R * V))
    real_wr = real.transpose(0, 1).softmax(-1)  # [W, R, V]: the model's own distribution at the window
    per_pos = target_id is not None and not isinstance(target_id, int)
    if per_pos:  # one target per position: group g (layer g // W, position g % W) reads target_id[g % W]
        tid = torch.tensor(list(target_id), device=x.device).repeat(len(decoded))
    recs: list[dict[str, "torch.Tensor"]] = []
    check = 0.0
    for g0 in range(0, len(decoded) * W, groups):
        g1 = min(g0 + groups, len(decoded) * W)
        logp = head(x[g0 * R: g1 * R]).float().log_softmax(-1).view(g1 - g0, R, V)
        top_lp, top_id = logp.topk(k, dim=-1)
        rec = {"top_lp": top_lp, "top_id": top_id}
        if target_id is not None:
            t_lp = (logp.gather(-1, tid[g0:g1].view(-1, 1, 1).expand(-1, R, 1)).squeeze(-1) if per_pos
                    else logp[..., target_id])
            rec["t_lp"], rec["t_rank"] = t_lp, (logp > t_lp.unsqueeze(-1)).sum(-1, dtype=torch.int32) + 1
        if pair:
            union = top_id.reshape(g1 - g0, R * k)  # both rows' top-k, row 0's first
            rec["u_id"], rec["u_lp"] = union, logp.gather(-1, union.unsqueeze(1).expand(-1, R, -1))
        last = [g for g in range(g0, g1) if g // W == len(decoded) - 1]  # groups of the last layer
        if last:
            sel = torch.tensor(last, device=logp.device) - g0
            cols = torch.tensor([g % W for g in last], device=real_wr.device)
            check = max(check, float((logp[sel].exp() - real_wr[cols]).abs().max()))
        recs.append({key: v.to("cpu") for key, v in rec.items()})
    flat = {key: torch.cat([r[key] for r in recs]) for key in recs[0]}
    out = {}
    for j, i in enumerate(decoded):
        if i not in wanted:
            continue
        part = {key: v[j * W:(j + 1) * W] for key, v in flat.items()}  # [W, R, ...]
        out[i] = {key: (v if key == "u_id" else v.transpose(0, 1)) for key, v in part.items()}
    return out, check


def _layers(model: "LoadedModel", layers: Iterable[int] | None) -> list[int]:
    if layers is None:
        return list(range(model.n_layers))
    return sorted({model.check_layer(i) for i in layers})


def _build_result(model: "LoadedModel", prompt: str, ids: list[int], pos: list[int], k: int,
                  target: tuple[int | None, str | None], data: dict, row: int, check: float,
                  steers: tuple[dict[str, Any], ...], dec: TokenDecoder) -> LensResult:
    layers, ranks = [], range(1, k + 1)
    for i in sorted(data):
        rec = data[i]
        ids_k, probs_k = rec["top_id"][row].tolist(), rec["top_lp"][row].exp().tolist()  # [W][k], converted once
        top = tuple(tuple(map(TokenProb, ids_w, dec.many(ids_w), probs_w, ranks))
                    for ids_w, probs_w in zip(ids_k, probs_k))
        tp = tr = None
        if target[0] is not None:
            tp = tuple(rec["t_lp"][row].exp().tolist())
            tr = tuple(rec["t_rank"][row].tolist())
        layers.append(LensLayer(i, top, tp, tr))
    return LensResult(prompt, tuple(ids), tuple(dec.many(ids)), tuple(pos), k, target[0], target[1],
                      tuple(layers), check, steers)


def logit_lens(model: "LoadedModel", prompt: str, *, steers: Iterable[Steer] = (), k: int = 10,
               positions: slice | Sequence[int] | int | None = None, target: int | str | None = None,
               layers: Iterable[int] | None = None, cancel: Cancel | None = None) -> LensResult:
    """Logit lens of ONE prompt (batch 1) for every layer (or ``layers``) in one traced forward.

    ``positions``: None = last token; an int, a list (negatives count from the end) or a slice. ``target``: a
    token id, or text that must be exactly one token (else :class:`TargetTokenError`). ``steers`` are applied
    as in :func:`steering.forward` (``generated`` steers do nothing in a single forward); the lens at a steered
    layer reads the hidden state after the addition.
    """
    import torch

    k = check_k(model, k)
    tgt = resolve_target(model, target)
    check_cancel(cancel, "logit lens")
    with model.lock, torch.no_grad():
        plan = SteerPlan(model, steers)
        ids = model.encode([prompt])["input_ids"]
        pos = resolve_positions(positions, ids.shape[1])
        data, check = lens_pass(model, ids, plan, slice(None), pos, set(_layers(model, layers)), k,
                                 tgt[0], pair=False)
        return _build_result(model, prompt, ids[0].tolist(), pos, k, tgt, data, 0, check, plan.describe(),
                             TokenDecoder(model.tokenizer))


def lens_diff(model: "LoadedModel", prompt: str, steers: Iterable[Steer], *, k: int = 10,
              positions: slice | Sequence[int] | int | None = None, target: int | str | None = None,
              layers: Iterable[int] | None = None, cancel: Cancel | None = None) -> LensDiff:
    """Baseline and steered logit lens of ONE prompt, and steered minus baseline per layer.

    Both are computed in one traced forward of a batch of two identical rows (row 0 plain, row 1 steered), so
    each side is exactly one forward and the deltas cover the union of both top-k lists.
    """
    import torch

    k = check_k(model, k)
    tgt = resolve_target(model, target)
    check_cancel(cancel, "logit lens")
    with model.lock, torch.no_grad():
        plan = SteerPlan(model, steers)
        ids = model.encode([prompt])["input_ids"]
        pos = resolve_positions(positions, ids.shape[1])
        data, check = lens_pass(model, ids.expand(2, -1), plan, slice(1, 2), pos,
                                 set(_layers(model, layers)), k, tgt[0], pair=True)
        dec = TokenDecoder(model.tokenizer)
        token_ids = ids[0].tolist()
        base = _build_result(model, prompt, token_ids, pos, k, tgt, data, 0, check, (), dec)
        steered = _build_result(model, prompt, token_ids, pos, k, tgt, data, 1, check, plan.describe(), dec)
        deltas = []
        for i in sorted(data):
            rec = data[i]
            td = None
            if tgt[0] is not None:
                b_p, s_p = rec["t_lp"].exp().tolist()
                td = tuple(sp - bp for bp, sp in zip(b_p, s_p))
            deltas.append(LensDelta(i, td, (rec["u_id"], rec["u_lp"], dec)))
        return LensDiff(base, steered, tuple(deltas))
