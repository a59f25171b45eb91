"""Which layers write the verdict: the direct contribution of the embeddings, of every layer's attention and MLP,
and of the steering added at a layer, to the verdict score logit(" Yes") − logit(" No") at the answer slot,
baseline against steered.

The residual stream at the answer slot is a sum: the embeddings, then per block what its attention and its MLP
add (pre-norm blocks: ``h = h + attn(norm(h)); h = h + mlp(norm(h))``), then what steering adds at the block's
output. The final norm is linear once its scale is frozen at the final residual's value (LayerNorm: centre, then
divide by σ; RMSNorm: divide by the root mean square), so the score splits exactly into one number per part plus
a constant (the norm's bias and the unembedding's, through ``W[yes] − W[no]``). This is direct logit
attribution: what each part writes straight into the answer, not what it does through later layers; steering's
indirect effect is the change of the later layers' parts between the two sides.

The parts are read at the answer slot in the forward that scores the prompt (``steering.forward(read_parts=True)``):
for the console's split one forward of two identical rows (baseline, steered), for an evaluation its own scoring
forwards of a chunk of files (:class:`ScoreSplitter`, ``verdict.score_answers(split=...)``). A block's part is
the block's output minus its input (the previous block's output, steered; the embeddings for block 0),
split into the MLP's output (where the block has an ``mlp`` child) and the rest, the attention's. The parts are
summed in float64 and checked against the scored logits (:attr:`Attribution.check`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from steertui.engine.lens import check_cancel
from steertui.engine.steering import Steer, SteerPlan, mlp_child, steer_columns
from steertui.errors import Cancel, SteertuiError

if TYPE_CHECKING:  # pragma: no cover
    from steertui.engine.model import LoadedModel
    from steertui.engine.verdict import AnswerTokens


@dataclass(frozen=True)
class LayerPart:
    """One block's direct contribution to the verdict score: its attention, its MLP (None when the block has no
    ``mlp`` child: ``attn`` is then the whole block) and the steering added at its output."""

    layer: int
    attn: float
    mlp: float | None
    steer: float

    @property
    def total(self) -> float:
        return self.attn + (self.mlp or 0.0) + self.steer


@dataclass(frozen=True)
class Attribution:
    """One side's verdict score, split into direct contributions; ``embed + Σ layer totals + constant`` is the
    score, up to ``check``."""

    embed: float
    layers: tuple[LayerPart, ...]
    constant: float  # the final norm's bias and the unembedding's bias, through W[yes] − W[no]
    score: float  # the verdict score at the answer slot, through the float32 head
    check: float  # |embed + Σ layers + constant − score|

    def to_dict(self) -> dict[str, Any]:
        return {"embed": self.embed, "constant": self.constant, "score": self.score, "check": self.check,
                "layers": [{"layer": p.layer, "attn": p.attn, "mlp": p.mlp, "steer": p.steer} for p in self.layers]}


@dataclass(frozen=True)
class VerdictAttribution:
    """Baseline and steered (None when nothing is steered) attribution of one prompt's verdict score."""

    prompt: str
    answers: "AnswerTokens"
    norm: str  # "layernorm" or "rmsnorm": how the final norm's frozen scale was taken
    split: bool  # each block split into attention and MLP
    baseline: Attribution
    steered: Attribution | None
    steers: tuple[dict[str, Any], ...]

    def to_dict(self) -> dict[str, Any]:
        return {"norm": self.norm, "split": self.split, "answers": self.answers.to_dict(),
                "baseline": self.baseline.to_dict(),
                "steered": None if self.steered is None else self.steered.to_dict(), "steers": list(self.steers)}


def _norm_kind(norm: Any) -> tuple[str, float]:
    """(``layernorm`` or ``rmsnorm``, eps) of the final norm; anything else is refused by name."""
    import torch

    if isinstance(norm, torch.nn.LayerNorm):
        return "layernorm", float(norm.eps)
    name = type(norm).__name__
    eps = getattr(norm, "variance_epsilon", getattr(norm, "eps", None))
    if "rms" in name.lower() and eps is not None and getattr(norm, "weight", None) is not None:
        return "rmsnorm", float(eps)
    raise SteertuiError(f"the final norm is a {name}, neither a LayerNorm nor an RMSNorm",
                        "verdict attribution freezes the final norm's scale and knows only those two")


def check_model(model: "LoadedModel") -> tuple[str, float]:
    """(norm kind, eps) when ``model``'s verdict score can be split (a LayerNorm or RMSNorm final norm, a Linear
    unembedding); else a SteertuiError naming the module (before any forward is spent)."""
    import torch

    adapter = model.adapter
    kind, eps = _norm_kind(model.hf_module(adapter.final_norm))
    head = model.hf_module(adapter.unembed)
    if not isinstance(head, torch.nn.Linear):
        raise SteertuiError(f"the unembedding {adapter.unembed} is a {type(head).__name__}, not a Linear",
                            "verdict attribution reads the unembedding's rows for the two answers")
    return kind, eps


class ScoreSplitter:
    """The module docstring's read-out for one model and answer pair: the final norm's kind and eps, its scale
    ``gamma``, the answer direction ``W[yes] − W[no]`` and the constant, in float64 on the CPU, taken once.
    :meth:`side` splits one row of a forward's parts (``steering.forward(read_parts=True)``); the console's
    split (:func:`verdict_attribution`) and the evaluation's (every scored file, ``score_answers(split=...)``)
    are this one rule."""

    def __init__(self, model: "LoadedModel", answers: "AnswerTokens | None" = None) -> None:
        from steertui.engine.verdict import answer_tokens

        self.answers = answers or answer_tokens(model)
        self.kind, self.eps = check_model(model)
        self.split = mlp_child(model) is not None
        norm, head = model.hf_module(model.adapter.final_norm), model.hf_module(model.adapter.unembed)
        # the two answers' rows only: the whole unembedding in float64 would be vocab × d_model × 8 bytes
        # (805 MB for starcoderbase-1b's), copied for two rows
        yes, no = self.answers.yes_id, self.answers.no_id
        w = head.weight.detach()[[yes, no]].double().cpu()
        self.direction = w[0] - w[1]  # [D]
        self.gamma = norm.weight.detach().double().cpu()
        beta = getattr(norm, "bias", None)
        self.constant = float(beta.detach().double().cpu() @ self.direction) if beta is not None else 0.0
        if head.bias is not None:
            b = head.bias.detach()[[yes, no]].double().cpu()
            self.constant += float(b[0] - b[1])

    def deltas(self, model: "LoadedModel", steers: Iterable[Steer]) -> dict[int, Any]:
        """What ``steers`` add at the answer slot of one forward, per layer (:func:`steer_deltas`)."""
        return steer_deltas(SteerPlan(model, steers))

    def side(self, parts: dict[str, Any], row: int, deltas: dict[int, Any], score: float) -> Attribution:
        """Row ``row`` of ``parts`` (:attr:`steertui.engine.steering.ForwardResult.parts`) split into direct
        contributions; ``deltas`` (layer -> [D], :func:`steer_deltas`) what steering added to this row, ``score``
        its verdict score (the check's reference)."""
        out = parts["out"][row].detach().double().cpu()  # [n, D]
        mlps = parts["mlp"][row].detach().double().cpu() if "mlp" in parts else None
        x = out[-1]
        if self.kind == "layernorm":
            scale = 1.0 / float((x.var(unbiased=False) + self.eps).sqrt())
        else:
            scale = 1.0 / float((x.pow(2).mean() + self.eps).sqrt())
        u = self.gamma * self.direction * scale

        def read(c: Any) -> float:
            return float(((c - c.mean()) if self.kind == "layernorm" else c) @ u)

        embed = parts["embed"][row].detach().double().cpu()
        prev, layers = embed, []
        for i in range(out.shape[0]):
            steer = deltas.get(i)
            m = mlps[i] if mlps is not None else None
            rest = out[i] - prev - (steer if steer is not None else 0.0) - (m if m is not None else 0.0)
            layers.append(LayerPart(i, read(rest), None if m is None else read(m),
                                    read(steer) if steer is not None else 0.0))
            prev = out[i]
        embed_part = read(embed)
        total = embed_part + sum(p.total for p in layers) + self.constant
        return Attribution(embed_part, tuple(layers), self.constant, float(score), abs(total - float(score)))


def steer_deltas(plan: SteerPlan) -> dict[int, Any]:
    """What each layer's steers add at the answer slot of one forward (float64, CPU): ``alpha·v`` summed per
    layer; a ``generated`` steer adds nothing in a single forward, so a layer with only those is left out."""
    out = {}
    for L in plan.layers:
        added = [float(s.alpha) * s.vector.detach().double().cpu() for s, _ in plan.by_layer[L]
                 if steer_columns(s.positions, None) is not None]
        if added:
            out[L] = sum(added[1:], added[0])
    return out


def verdict_attribution(model: "LoadedModel", prompt: str, steers: Iterable[Steer] = (), *,
                        answers: "AnswerTokens | None" = None, cancel: Cancel | None = None) -> VerdictAttribution:
    """The module docstring's split of ``prompt``'s verdict score at its last token, baseline against steered,
    from one traced forward (two identical rows when something is steered, row 1 steered)."""
    import torch

    from steertui.engine.steering import forward

    splitter = ScoreSplitter(model, answers)
    answers = splitter.answers
    check_cancel(cancel, "verdict attribution")
    with model.lock, torch.no_grad():
        plan = SteerPlan(model, steers)
        ids = model.encode([prompt])["input_ids"]
        rows = ids.expand(2 if plan else 1, -1)
        res = forward(model, {"input_ids": rows, "attention_mask": torch.ones_like(rows)}, steers=plan.steers,
                      steer_rows=slice(1, 2), logits_at="last", read_parts=True)
        logits = res.logits.double().cpu()
    scores = (logits[:, answers.yes_id] - logits[:, answers.no_id]).tolist()
    baseline = splitter.side(res.parts, 0, {}, scores[0])
    steered = splitter.side(res.parts, 1, steer_deltas(plan), scores[1]) if plan else None
    return VerdictAttribution(prompt, answers, splitter.kind, splitter.split, baseline, steered, plan.describe())
