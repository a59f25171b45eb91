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

Each block's part is read from one traced forward of two identical rows (baseline, steered), as the lens reads
them: the block's output minus its input (the previous block's output, steered; the embeddings for block 0),
split into the MLP's output (where the block has an ``mlp`` child) and the rest, the attention's. The parts are
summed in float64 and checked against the score through the float32 head (:attr:`Attribution.check`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from steertui.engine.lens import check_cancel
from steertui.engine.steering import Steer, SteerPlan, steer_columns
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


def _mlp_child(model: "LoadedModel") -> str | None:
    """``mlp`` when every block has a child module of that name (the MLP's output is read there), else None."""
    import torch

    blocks = model.hf_module(model.adapter.blocks)
    ok = all(isinstance(getattr(b, "mlp", None), torch.nn.Module) for b in blocks)
    return "mlp" if ok else None


def _tensor(output: Any) -> Any:
    """A module's output tensor: itself, or the first element of a tuple (an MLP that returns extras)."""
    return output[0] if isinstance(output, (tuple, list)) else output


def verdict_attribution(model: "LoadedModel", prompt: str, steers: Iterable[Steer] = (), *,
                        answers: "AnswerTokens | None" = None, cancel: Cancel | None = None) -> VerdictAttribution:
    """The module docstring's split of ``prompt``'s verdict score at its last token, baseline against steered,
    from one traced forward (two identical rows when something is steered, row 1 steered)."""
    import nnsight
    import torch

    from steertui.engine.verdict import answer_tokens

    answers = answers or answer_tokens(model)
    adapter = model.adapter
    norm, head = model.hf_module(adapter.final_norm), model.hf_module(adapter.unembed)
    kind, eps = check_model(model)
    mlp = _mlp_child(model)
    check_cancel(cancel, "verdict attribution")
    with model.lock, torch.no_grad():
        plan = SteerPlan(model, steers)
        ids = model.encode([prompt])["input_ids"]
        R = 2 if plan else 1
        rows = ids.expand(R, -1)
        blocks = model.block_envoys()
        enc = {"input_ids": rows, "attention_mask": torch.ones_like(rows)}
        last = torch.tensor([rows.shape[1] - 1], device=rows.device)
        keep = model.logits_only_at(last, enc["attention_mask"])  # the head's product at the answer slot only
        with model.nn.trace({**enc, **keep}):
            saved = nnsight.save({})
            embed = model.envoy(adapter.embed).output[:, -1]
            if adapter.pos_embed is not None:
                embed = embed + model.envoy(adapter.pos_embed).output[..., -1, :]
            saved["embed"] = embed.clone()
            for i in range(adapter.n_layers):
                if mlp is not None:
                    saved[f"mlp{i}"] = _tensor(blocks[i].mlp.output)[:, -1].clone()
                h = adapter.hidden(blocks[i].output)
                plan.apply(h, i, rows=slice(1, 2))
                saved[f"out{i}"] = h[:, -1].clone()
        parts = {k: v.detach().double().cpu() for k, v in dict(saved).items()}
        score32 = model.float32_head()(parts[f"out{adapter.n_layers - 1}"].float().to(model.device)).double().cpu()

    w = head.weight.detach().double().cpu()
    direction = w[answers.yes_id] - w[answers.no_id]  # [D]
    gamma = norm.weight.detach().double().cpu()
    beta = getattr(norm, "bias", None)
    const = float(beta.detach().double().cpu() @ direction) if beta is not None else 0.0
    if head.bias is not None:
        b = head.bias.detach().double().cpu()
        const += float(b[answers.yes_id] - b[answers.no_id])
    # what each layer's steers add at the answer slot: in one forward, `generated` steers add nothing
    deltas = {L: sum(float(s.alpha) * s.vector.detach().double().cpu() for s, _ in plan.by_layer[L]
                     if steer_columns(s.positions, None) is not None) for L in plan.layers}
    deltas = {L: d for L, d in deltas.items() if not isinstance(d, int)}

    def side(r: int) -> Attribution:
        x = parts[f"out{adapter.n_layers - 1}"][r]
        if kind == "layernorm":
            scale = 1.0 / float((x.var(unbiased=False) + eps).sqrt())
        else:
            scale = 1.0 / float((x.pow(2).mean() + eps).sqrt())
        u = gamma * direction * scale

        def read(c: Any) -> float:
            return float(((c - c.mean()) if kind == "layernorm" else c) @ u)

        prev = parts["embed"][r]
        out = []
        for i in range(adapter.n_layers):
            cur = parts[f"out{i}"][r]
            steer = deltas[i] if r == 1 and i in deltas else torch.zeros_like(cur)
            m = parts[f"mlp{i}"][r] if mlp is not None else None
            rest = cur - prev - steer - (m if m is not None else 0.0)
            out.append(LayerPart(i, read(rest), None if m is None else read(m), read(steer) if r == 1 else 0.0))
            prev = cur
        embed_part = read(parts["embed"][r])
        score = float(score32[r, answers.yes_id] - score32[r, answers.no_id])
        total = embed_part + sum(p.total for p in out) + const
        return Attribution(embed_part, tuple(out), const, score, abs(total - score))

    return VerdictAttribution(prompt, answers, kind, mlp is not None, side(0), side(1) if plan else None,
                              plan.describe())
