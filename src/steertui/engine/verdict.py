"""The vulnerability verdict score: SecLLMHolmes' zero-shot question (S1) in a layout that ends at the
answer slot, scored as logit(" Yes") − logit(" No") at the next token.

A base code model is not asked to write an answer; its next-token logits at ``Answer:`` are read directly.
Both answer strings must be single tokens of the model's tokenizer; which ids were compared is recorded.

With few-shot examples (SecLLMHolmes' few-shot protocol in the same layout, :func:`shot_prefix`), a file's prompt
is preceded by one example pair of its CWE: the example's vulnerable file with the question answered " Yes", then
its patched file answered " No", each followed by a blank line. The examples take part of the context, so the
code is cut to what is left (:func:`code_limit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from steertui.engine.data.budget import RESERVE_TOKENS
from steertui.engine.steering import Steer, forward
from steertui.errors import Cancel, CancelledError, SteertuiError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from steertui.engine.data import Pair, Sample
    from steertui.engine.model import LoadedModel

QUESTION = "Does this code contain instances of the security vulnerability known as {cwe_name}?"
TEMPLATE = "{code}\n\nQuestion: " + QUESTION + "\nAnswer:"
# with few-shot examples: the examples of the file's CWE (shot_prefix), then the prompt as above
SHOTS_TEMPLATE = "{shots}" + TEMPLATE


@dataclass(frozen=True)
class AnswerTokens:
    yes: str
    no: str
    yes_id: int
    no_id: int

    def to_dict(self) -> dict[str, Any]:
        return {"yes": self.yes, "no": self.no, "yes_id": self.yes_id, "no_id": self.no_id}


def answer_tokens(model: "LoadedModel", yes: str = " Yes", no: str = " No") -> AnswerTokens:
    """Check that both answers are single tokens; name the one that is not."""
    ids = {}
    for text in (yes, no):
        tid = model.token_id(text)
        if tid is None:
            pieces = model.tokenizer(text, add_special_tokens=False)["input_ids"]
            raise SteertuiError(f"answer {text!r} is {len(pieces)} tokens {pieces} in {model.info.name}'s tokenizer",
                                "pick answer strings that are single tokens (for example ' Yes' and ' No')")
        ids[text] = tid
    if ids[yes] == ids[no]:
        raise SteertuiError(f"answers {yes!r} and {no!r} are the same token", "pick two different answers")
    return AnswerTokens(yes, no, ids[yes], ids[no])


@dataclass(frozen=True)
class VerdictPrompt:
    sample_id: str
    text: str
    truncated: bool
    dropped_lines: int
    windowed: bool = False  # cut to its pair's window around the first difference (else the head rule, or uncut)
    window: tuple[int, int] | None = None  # kept lines, 1-based, both included
    total_lines: int = 0
    shot_pair: str | None = None  # the few-shot example pair before the code (engine.ops.verdict_prompt), or None

    def describe(self) -> dict[str, Any]:
        """What the prompt kept of its file: ``windowed``, ``window`` ([first, last], 1-based), line counts."""
        return {"id": self.sample_id, "windowed": self.windowed,
                "window": list(self.window) if self.window else None,
                "kept_lines": self.total_lines - self.dropped_lines, "total_lines": self.total_lines}


def shot_prefix(example: "Pair", yes: str = " Yes", no: str = " No") -> str:
    """The few-shot examples put before the prompt of a file of ``example``'s CWE: the example's vulnerable file as
    the S1 prompt answered ``yes``, then its patched file answered ``no``, each followed by a blank line."""
    return "".join(TEMPLATE.format(code=sample.code.rstrip("\n"), cwe_name=sample.cwe_name) + answer + "\n\n"
                   for sample, answer in ((example.vulnerable, yes), (example.patched, no)))


def code_limit(model: "LoadedModel", cwe_name: str, context: int | None = None, prefix: str = "") -> int:
    """Tokens of code the verdict prompt holds: the context less the question around the code (at least
    :data:`RESERVE_TOKENS`) and the few-shot ``prefix`` before it. :class:`SteertuiError` when the examples leave
    less than :data:`RESERVE_TOKENS` for the code."""
    from steertui.engine.data import count_tokens

    context = context or model.context_length
    frame = count_tokens(model.tokenizer, prefix + TEMPLATE.format(code="", cwe_name=cwe_name)) + 2
    limit = context - max(frame, RESERVE_TOKENS)
    if prefix and limit < RESERVE_TOKENS:
        raise SteertuiError(f"the few-shot examples of {cwe_name} and the question take {frame} of "
                            f"{model.info.name}'s {context} tokens of context, leaving {max(limit, 0)} for the code",
                            "evaluate without few-shot examples (no --shots), or with a model of a longer context")
    return limit


def _prompt(cut: Any, cwe_name: str, sample_id: str, prefix: str = "") -> VerdictPrompt:
    return VerdictPrompt(sample_id, prefix + TEMPLATE.format(code=cut.code.rstrip("\n"), cwe_name=cwe_name),
                         cut.truncated, cut.dropped_lines, cut.windowed, cut.window, cut.total_lines)


def build_prompt(model: "LoadedModel", code: str, cwe_name: str, sample_id: str = "",
                 context: int | None = None, *, pair: "Pair | None" = None, prefix: str = "") -> VerdictPrompt:
    """The S1 prompt for one file, after the few-shot ``prefix`` (:func:`shot_prefix`; none by default). Code
    longer than the context keeps the window of ``pair`` (the pair ``code`` is a file of) around the first hunk
    where the pair differs, or, without a pair, whole lines from the top (``engine.data.fit_code``)."""
    from steertui.engine.data import fit_code

    cut = fit_code(code, model.tokenizer, code_limit(model, cwe_name, context, prefix), pair)
    return _prompt(cut, cwe_name, sample_id, prefix)


def sample_prompts(model: "LoadedModel", samples: Sequence["Sample"], pairs: Sequence["Pair"] = (),
                   prefixes: "Mapping[str, str] | None" = None) -> list[VerdictPrompt]:
    """The S1 prompt of each sample, after ``prefixes[its CWE]`` (few-shot examples, :func:`shot_prefix`; none
    without); the files of ``pairs`` are cut by their pair's window."""
    from steertui.engine.data import fit_samples

    prefixes = prefixes or {}
    keys = {(s.cwe, s.cwe_name) for s in samples}
    limits = {key: code_limit(model, key[1], prefix=prefixes.get(key[0], "")) for key in keys}
    cuts = {}
    for limit in set(limits.values()):
        group = [s for s in samples if limits[(s.cwe, s.cwe_name)] == limit]
        cuts.update(fit_samples(group, pairs, model.tokenizer, limit))
    return [_prompt(cuts[s.id], s.cwe_name, s.id, prefixes.get(s.cwe, "")) for s in samples]


def shot_examples(examples: Sequence["Pair"], pairs: Sequence["Pair"]) -> dict[str, "Pair"]:
    """CWE -> the one example pair of that CWE, for every CWE of ``pairs``; :class:`SteertuiError` naming a CWE
    with no example or with several, and an example that is also one of ``pairs`` (its answer would be in its own
    prompt)."""
    by_cwe: dict[str, list["Pair"]] = {}
    for e in examples:
        by_cwe.setdefault(e.cwe, []).append(e)
    several = [c for c, es in by_cwe.items() if len(es) > 1]
    if several:
        raise SteertuiError(f"{len(by_cwe[several[0]])} few-shot example pairs of {several[0]}",
                            "give one example pair per CWE")
    missing = sorted({p.cwe for p in pairs} - set(by_cwe))
    if missing:
        raise SteertuiError(f"no few-shot example pair of {', '.join(missing)}",
                            "leave those CWEs out (--cwe), or evaluate without --shots")
    inside = sorted({e.id for e in examples} & {p.id for p in pairs})
    if inside:
        raise SteertuiError(f"few-shot example {inside[0]} is also evaluated", "evaluate pairs of another part")
    return {c: es[0] for c, es in by_cwe.items()}


@dataclass(frozen=True)
class AnswerScores:
    """Per prompt ``[N]`` (float32): the verdict score and the log-probabilities of both answer tokens at the
    answer slot (log-softmax of the same logits)."""

    score: "torch.Tensor"
    logp_yes: "torch.Tensor"
    logp_no: "torch.Tensor"
    # with a ScoreSplitter (engine.attribution): each prompt's score split into direct contributions
    # (Attribution), read in the scoring forward
    attributions: tuple[Any, ...] | None = None

    @property
    def p_yes(self) -> "torch.Tensor":
        return self.logp_yes.exp()

    @property
    def p_no(self) -> "torch.Tensor":
        return self.logp_no.exp()


def score_answers(model: "LoadedModel", prompts: Sequence[str], answers: AnswerTokens, *,
                  steers: Sequence[Steer] = (), chunk_size: int = 8, progress: Callable[[int, int], None] | None = None,
                  split: Any = None, cancel: Cancel | None = None) -> AnswerScores:
    """Verdict scores logit(yes) − logit(no) at the answer slot, and log p(yes), log p(no) from the same
    last-position logits: one forward per chunk of ``chunk_size`` prompts (shortest first). With ``split`` (an
    ``engine.attribution.ScoreSplitter`` for these answers), the same forwards also keep each prompt's embeddings,
    block and MLP outputs at the answer slot, and every score is split into its direct contributions
    (:attr:`AnswerScores.attributions`; no further forward; the scores are the same as without)."""
    import torch

    deltas = {}
    if split is not None:
        if split.answers != answers:
            raise ValueError(f"the splitter reads {split.answers}, the scores {answers}")
        deltas = split.deltas(model, steers)
    out = []
    splits: dict[int, Any] = {}  # prompt index -> its Attribution
    order = sorted(range(len(prompts)), key=lambda k: len(prompts[k]))
    for start in range(0, len(order), chunk_size):
        if cancel is not None and cancel.is_set():
            raise CancelledError(f"scoring cancelled after {start} of {len(prompts)} prompts")
        rows = order[start:start + chunk_size]
        res = forward(model, [prompts[r] for r in rows], steers=steers, logits_at="last", read_parts=split is not None)
        logits = res.logits.float()
        logp = logits.log_softmax(-1)[:, [answers.yes_id, answers.no_id]]
        vals = (logits[:, answers.yes_id] - logits[:, answers.no_id]).cpu()
        out.append((rows, vals, logp.cpu()))
        if split is not None:
            splits.update({r: split.side(res.parts, j, deltas, float(vals[j])) for j, r in enumerate(rows)})
        if progress is not None:
            progress(min(start + chunk_size, len(prompts)), len(prompts))
    scores, logps = torch.zeros(len(prompts)), torch.zeros(len(prompts), 2)
    for rows, vals, lp in out:
        scores[rows] = vals
        logps[rows] = lp
    attributions = tuple(splits[r] for r in range(len(prompts))) if split is not None else None
    return AnswerScores(scores, logps[:, 0], logps[:, 1], attributions)


def score(model: "LoadedModel", prompts: Sequence[str], answers: AnswerTokens, *, steers: Sequence[Steer] = (),
          chunk_size: int = 8, progress: Callable[[int, int], None] | None = None,
          cancel: Cancel | None = None) -> "torch.Tensor":
    """Verdict scores ``[N]`` (float32): logit(yes) − logit(no) at the answer slot, one forward per chunk."""
    return score_answers(model, prompts, answers, steers=steers, chunk_size=chunk_size, progress=progress,
                         cancel=cancel).score


def best_threshold(scores: Sequence[float], labels: Sequence[int]) -> float:
    """The threshold (score > t means "vulnerable") that maximises accuracy on these scores; ties → the
    midpoint closest to 0 (the plain Yes/No argmax)."""
    vals = sorted(set(scores))
    cands = [0.0] + [(a + b) / 2 for a, b in zip(vals, vals[1:])] + ([vals[0] - 1.0, vals[-1] + 1.0] if vals else [])

    def acc(t: float) -> float:
        return sum((s > t) == bool(y) for s, y in zip(scores, labels)) / max(len(labels), 1)

    return max(cands, key=lambda t: (acc(t), -abs(t)))
