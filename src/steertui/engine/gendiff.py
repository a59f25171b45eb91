"""Output comparisons, baseline against steered: the next-token top-k and the generation diff.

``top_tokens`` compares the next-token distribution at each prompt's last token (top-k, rank changes and
KL(steered ‖ baseline) in nats), with one batched forward per side.

``generation_diff`` runs greedy baseline and steered continuations of a batch of prompts, side by side.

For each side (baseline, steered) the continuation comes from :func:`steering.generate` (greedy, EOS-safe:
each row's new ids are cut after its first EOS when ``stop_at_eos``). Per-token log-probabilities of the
chosen tokens then come from ONE extra teacher-forced forward per side over prompt + generated ids, with
the same steers applied through the same :class:`steering.SteerPlan`, told that the generated tokens start at
column P: ``all`` adds the vector at every position, ``prompt`` only at the prompt's columns (< P, the prompt
pass of generation) and ``generated`` only at the generated columns (>= P, the generation steps). The argmax of the teacher-forced
logits must reproduce the greedy tokens; each side reports that as ``consistent`` (True on CPU float32;
half precision can flip near-ties). With ``stop_at_eos=False`` generation suppresses EOS (``min_new_tokens``),
so the consistency argmax suppresses it too; the reported log-probs are always the model's unmasked ones.

The token-level diff is ``difflib.SequenceMatcher`` over token ids (equal/replace/insert/delete).

Every public function takes ``model.lock`` and runs under ``torch.no_grad()``; torch is imported lazily.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

from steertui.engine import steering
from steertui.engine.lens import LensError, TokenDecoder, TokenProb, check_cancel, check_k, lens_pass
from steertui.engine.steering import Steer, SteerPlan
from steertui.errors import Cancel, SteertuiError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from steertui.engine.model import LoadedModel

Progress = Callable[[str, int, int], None]  # (stage, done, total)


class GenDiffError(SteertuiError):
    """A generation-diff request that cannot run (no prompts, a bad token count or batch size)."""


@dataclass(frozen=True)
class RankChange:
    """A token of either top-k list: its probability and rank (1 = most likely) without and with steering."""

    id: int
    text: str
    baseline_prob: float
    steered_prob: float
    baseline_rank: int
    steered_rank: int

    @property
    def rank_change(self) -> int:
        """Positive when steering moved the token up (towards rank 1)."""
        return self.baseline_rank - self.steered_rank

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "baseline_prob": self.baseline_prob,
                "steered_prob": self.steered_prob, "baseline_rank": self.baseline_rank,
                "steered_rank": self.steered_rank, "rank_change": self.rank_change}


@dataclass(frozen=True)
class TopTokensRow:
    """Next-token top-k of one prompt, baseline and steered, KL(steered ‖ baseline) in nats."""

    prompt: str
    baseline: tuple[TokenProb, ...]
    steered: tuple[TokenProb, ...]
    kl: float
    changes: tuple[RankChange, ...]  # union of both top-k lists, baseline order first

    def to_dict(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "baseline": [t.to_dict() for t in self.baseline],
                "steered": [t.to_dict() for t in self.steered], "kl": self.kl,
                "changes": [c.to_dict() for c in self.changes]}


@dataclass(frozen=True)
class TopTokensResult:
    k: int
    rows: tuple[TopTokensRow, ...]
    steers: tuple[dict[str, Any], ...] = ()
    # each row's logits at its last token, baseline and steered ([B, V] float32 CPU); not part of to_dict
    logits: tuple["torch.Tensor", "torch.Tensor"] | None = field(default=None, repr=False, compare=False)

    def logit_diff(self, a: int, b: int, row: int = 0) -> tuple[float, float]:
        """logit(a) − logit(b) at ``row``'s last token, baseline and steered, from the forwards already run
        (the verdict score when a, b are the " Yes", " No" ids)."""
        if self.logits is None:
            raise LensError("this result carries no logits", "compute it with gendiff.top_tokens")
        return tuple(float(x[row, a] - x[row, b]) for x in self.logits)  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "rows": [r.to_dict() for r in self.rows], "steers": [dict(s) for s in self.steers]}


def _ranks(logp: "torch.Tensor", ids: "torch.Tensor") -> list[int]:
    """1-based rank of each id in the distribution ``logp`` [V]."""
    return [int((logp > logp[i]).sum()) + 1 for i in ids.tolist()]


def top_tokens(model: "LoadedModel", prompts: Sequence[str], steers: Iterable[Steer], *, k: int = 10,
               cancel: Cancel | None = None) -> TopTokensResult:
    """Next-token top-k at each prompt's last token, baseline against steered, with KL(steered ‖ baseline)
    = Σ p_s (log p_s − log p_b) in nats and each top token's rank change. One batched forward per side.

    Steers apply as in :func:`steering.forward`: ``all``/``prompt`` at every position, ``generated`` not at all
    (a single forward has no generation steps)."""
    import torch

    k = check_k(model, k)
    prompts = list(prompts)
    if not prompts:
        raise LensError("no prompts given", "pass at least one prompt")
    check_cancel(cancel, "top tokens")
    with model.lock, torch.no_grad():
        plan = SteerPlan(model, steers)
        enc = model.encode(prompts)
        base_logits = steering.forward(model, enc, logits_at="last").logits.float().cpu()
        check_cancel(cancel, "top tokens")
        steer_logits = steering.forward(model, enc, steers=plan.steers, logits_at="last").logits.float().cpu()
        base, steer = base_logits.log_softmax(-1), steer_logits.log_softmax(-1)
        kl = (steer.exp() * (steer - base)).sum(-1)
        dec = TokenDecoder(model.tokenizer)
        rows = []
        for r, prompt in enumerate(prompts):
            lists = []
            for logp in (base[r], steer[r]):
                lp, ids = logp.topk(k)
                lists.append(tuple(TokenProb(int(t), dec(int(t)), float(v.exp()), j + 1)
                                   for j, (t, v) in enumerate(zip(ids.tolist(), lp))))
            union = list(dict.fromkeys([t.id for t in lists[0]] + [t.id for t in lists[1]]))
            uid = torch.tensor(union)
            b_rank, s_rank = _ranks(base[r], uid), _ranks(steer[r], uid)
            changes = tuple(RankChange(t, dec(t), float(base[r, t].exp()), float(steer[r, t].exp()), br, sr)
                            for t, br, sr in zip(union, b_rank, s_rank))
            rows.append(TopTokensRow(prompt, lists[0], lists[1], float(kl[r]), changes))
        return TopTokensResult(k, tuple(rows), plan.describe(), (base_logits, steer_logits))


# ---- generation diff ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class GenSide:
    """One side's continuation of one prompt: new ids (cut after EOS), per-token texts and log-probs."""

    ids: tuple[int, ...]
    texts: tuple[str, ...]
    logprobs: tuple[float, ...]
    text: str  # decoded continuation, special tokens skipped
    stopped_at_eos: bool
    consistent: bool  # teacher-forced argmax reproduces every greedy token
    first_inconsistent: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"ids": list(self.ids), "texts": list(self.texts), "logprobs": list(self.logprobs),
                "text": self.text, "stopped_at_eos": self.stopped_at_eos, "consistent": self.consistent,
                "first_inconsistent": self.first_inconsistent}


@dataclass(frozen=True)
class DiffOp:
    """One difflib opcode over token ids: baseline[a0:a1] → steered[b0:b1]."""

    tag: str  # equal | replace | insert | delete
    a0: int
    a1: int
    b0: int
    b1: int
    baseline_texts: tuple[str, ...]
    steered_texts: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"tag": self.tag, "a0": self.a0, "a1": self.a1, "b0": self.b0, "b1": self.b1,
                "baseline_texts": list(self.baseline_texts), "steered_texts": list(self.steered_texts)}


@dataclass(frozen=True)
class GenDiffRow:
    prompt: str
    baseline: GenSide
    steered: GenSide
    ops: tuple[DiffOp, ...]
    first_divergence: int | None  # first token index where the two differ (None: identical)

    @property
    def consistent(self) -> bool:
        return self.baseline.consistent and self.steered.consistent

    def to_dict(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "baseline": self.baseline.to_dict(), "steered": self.steered.to_dict(),
                "ops": [o.to_dict() for o in self.ops], "first_divergence": self.first_divergence,
                "consistent": self.consistent}


@dataclass(frozen=True)
class GenDiffResult:
    rows: tuple[GenDiffRow, ...]
    max_new_tokens: int
    stop_at_eos: bool
    steers: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"rows": [r.to_dict() for r in self.rows], "max_new_tokens": self.max_new_tokens,
                "stop_at_eos": self.stop_at_eos, "steers": [dict(s) for s in self.steers]}


def token_diff(a: Sequence[int], b: Sequence[int], text: Callable[[int], str]) -> tuple[tuple[DiffOp, ...], int | None]:
    """difflib opcodes between two id lists, and the index of the first differing token (None if equal)."""
    sm = difflib.SequenceMatcher(None, list(a), list(b), autojunk=False)
    ops = tuple(DiffOp(tag, a0, a1, b0, b1, tuple(text(t) for t in a[a0:a1]), tuple(text(t) for t in b[b0:b1]))
                for tag, a0, a1, b0, b1 in sm.get_opcodes())
    first = next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), None)
    if first is None and len(a) != len(b):
        first = min(len(a), len(b))
    return ops, first


def _suppressed_eos(model: "LoadedModel") -> list[int]:
    """The ids generate() suppresses under ``min_new_tokens`` (the generation config's EOS ids)."""
    eos = getattr(getattr(model.hf, "generation_config", None), "eos_token_id", None)
    if eos is None:
        eos = model.tokenizer.eos_token_id
    if eos is None:
        return []
    return [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])]


def teacher_forced(model: "LoadedModel", gen: steering.GenerationResult, plan: SteerPlan,
                   mask_ids: Sequence[int] = ()) -> tuple["torch.Tensor", "torch.Tensor"]:
    """One traced forward over a generation's prompt + new ids with ``plan``'s steers on the columns their
    positions cover (the generated tokens start at column P).

    Returns (log-prob of each generated token [B, T], argmax at each generated step [B, T]) on CPU; the argmax
    ignores ``mask_ids``. Columns past a row's EOS hold padding and are meaningless."""
    import nnsight
    import torch

    seq, P = gen.sequences, gen.prompt_ids.shape[1]
    T = seq.shape[1] - P
    ids = seq[:, : P + T - 1]  # the last chosen token is never fed back
    mask = torch.cat([gen.attention_mask, torch.ones_like(seq[:, P:])], dim=1)[:, : P + T - 1]
    chosen = seq[:, P:].unsqueeze(-1)
    adapter, blocks = model.adapter, model.block_envoys()
    # the head computes the columns that predict a new token only (not [B, P + T, V] for a long prompt)
    keep = model.logits_only_at(torch.arange(P - 1, P + T - 1, device=ids.device), mask)
    with model.nn.trace({"input_ids": ids, "attention_mask": mask, **keep}):
        for i in plan.layers:
            plan.apply(adapter.hidden(blocks[i].output), i, generated_from=P)
        out = model.envoy(adapter.unembed).output
        logp = (out if keep else out[:, P - 1:]).float().log_softmax(-1)
        chosen_lp = nnsight.save(logp.gather(-1, chosen).squeeze(-1).cpu())
        if mask_ids:
            logp[..., list(mask_ids)] = float("-inf")
        argmax = nnsight.save(logp.argmax(-1).cpu())
    return chosen_lp, argmax


def _side(model: "LoadedModel", gen: steering.GenerationResult, lp: "torch.Tensor", am: "torch.Tensor",
          row: int, stop_at_eos: bool, text: Callable[[int], str]) -> GenSide:
    ids = gen.new_ids[row]
    mism = next((j for j, (g, a) in enumerate(zip(ids, am[row].tolist())) if g != a), None)
    eos = gen.eos_id
    return GenSide(tuple(ids), tuple(text(t) for t in ids), tuple(float(x) for x in lp[row, : len(ids)]),
                   model.tokenizer.decode(ids, skip_special_tokens=True),
                   stopped_at_eos(ids, eos, stop_at_eos), mism is None, mism)


def stopped_at_eos(ids: Sequence[int], eos: int | None, stop_at_eos: bool) -> bool:
    """Whether a side's new ids (cut after their first EOS) end at the end token because generation stops there."""
    return bool(stop_at_eos and eos is not None and ids and ids[-1] == eos)


def generation_diff(model: "LoadedModel", prompts: Sequence[str], steers: Iterable[Steer], *,
                    max_new_tokens: int = 32, stop_at_eos: bool = True, batch_size: int | None = None,
                    cancel: Cancel | None = None, progress: Progress | None = None) -> GenDiffResult:
    """Greedy baseline and steered generations of ``prompts``, per-token log-probs and a token diff per row.

    Prompts run in chunks of ``batch_size`` (all at once by default). Per chunk: baseline generate, steered
    generate, one teacher-forced forward per side. ``cancel`` is checked before each of those four stages
    (so between the baseline and steered runs, and between chunks) and at every generation step, and raises
    :class:`steertui.errors.CancelledError`; a teacher-forced pass already running is not interrupted.
    ``progress(stage, done, total)`` is called after each stage; stages are ``baseline``, ``steered``,
    ``score-baseline``, ``score-steered``.
    """
    import torch

    prompts = list(prompts)
    if not prompts:
        raise GenDiffError("no prompts given", "pass at least one prompt")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise GenDiffError(f"max_new_tokens={max_new_tokens!r} is not a positive integer", "use 1 or more")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size < 1):
        raise GenDiffError(f"batch_size={batch_size!r} is not a positive integer", "use 1 or more, or None")
    bs = batch_size or len(prompts)
    steers = list(steers)
    chunks = [prompts[i: i + bs] for i in range(0, len(prompts), bs)]
    total, done = 4 * len(chunks), 0
    masked = [] if stop_at_eos else _suppressed_eos(model)
    text = TokenDecoder(model.tokenizer)

    def step(stage: str) -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(stage, done, total)

    rows: list[GenDiffRow] = []
    with model.lock, torch.no_grad():
        plan = SteerPlan(model, steers)
        model.encode(prompts, new_tokens=max_new_tokens)  # every prompt fits before any chunk runs
        for chunk in chunks:
            check_cancel(cancel, "generation diff")
            base = steering.generate(model, chunk, max_new_tokens=max_new_tokens, stop_at_eos=stop_at_eos,
                                     cancel=cancel)
            step("baseline")
            check_cancel(cancel, "generation diff")
            steered = steering.generate(model, chunk, steers=steers,
                                        max_new_tokens=max_new_tokens, stop_at_eos=stop_at_eos, cancel=cancel)
            step("steered")
            check_cancel(cancel, "generation diff")
            b_lp, b_am = teacher_forced(model, base, SteerPlan(model, ()), masked)
            step("score-baseline")
            check_cancel(cancel, "generation diff")
            s_lp, s_am = teacher_forced(model, steered, plan, masked)
            step("score-steered")
            for r, prompt in enumerate(chunk):
                b = _side(model, base, b_lp, b_am, r, stop_at_eos, text)
                s = _side(model, steered, s_lp, s_am, r, stop_at_eos, text)
                ops, first = token_diff(b.ids, s.ids, text)
                rows.append(GenDiffRow(prompt, b, s, ops, first))
    return GenDiffResult(tuple(rows), max_new_tokens, stop_at_eos, plan.describe())


# ---- each generated token, read from both runs and through every layer -------------------------------------
@dataclass(frozen=True)
class StepLens:
    """One side's token at one step of its continuation, read by the baseline run (index 0) and the steered run
    (index 1) over the same prefix, that side's own prompt + tokens: the token's log-prob and rank at the output,
    its log-prob through every layer's logit lens, and each run's top-k there."""

    id: int
    text: str
    logprob: tuple[float, float]
    rank: tuple[int, int]
    lens: tuple[tuple[float, ...], tuple[float, ...]]  # [run][layer]: log p(token) of the layer's hidden state
    top: tuple[tuple[TokenProb, ...], tuple[TokenProb, ...]]  # [run]: the top-k at the output

    @property
    def delta(self) -> float:
        """How much the steering moved this token's log-prob at the output (steered run − baseline run)."""
        return self.logprob[1] - self.logprob[0]

    @property
    def lens_delta(self) -> tuple[float, ...]:
        """Per layer, steered run − baseline run of the token's lens log-prob."""
        return tuple(s - b for b, s in zip(*self.lens))

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "text": self.text, "logprob": list(self.logprob), "rank": list(self.rank),
                "lens": [list(r) for r in self.lens], "top": [[t.to_dict() for t in r] for r in self.top]}


@dataclass(frozen=True)
class ContinuationLens:
    """Every token of a continuation's two sides as :class:`StepLens` (``baseline[j]``: the baseline's token
    at step j). ``final_logits_check``: the largest difference between the last layer's lens and the model's own
    output distribution (float32 rounding, or a bfloat16 model's rounding of its own logits)."""

    baseline: tuple[StepLens, ...]
    steered: tuple[StepLens, ...]
    k: int
    final_logits_check: float
    steers: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"baseline": [s.to_dict() for s in self.baseline], "steered": [s.to_dict() for s in self.steered],
                "k": self.k, "final_logits_check": self.final_logits_check, "steers": [dict(s) for s in self.steers]}


def continuation_lens(model: "LoadedModel", prompt: str, row: GenDiffRow, steers: Iterable[Steer], *, k: int = 3,
                      cancel: Cancel | None = None) -> ContinuationLens:
    """Read every token of ``row`` (a continuation of ``prompt``, as :func:`generation_diff` made it with
    ``steers``) from both runs: per side ONE traced forward of two identical rows, prompt + that side's tokens,
    row 0 unsteered and row 1 steered as the generation was (``steers`` on the columns their positions cover,
    the generated tokens from column P); the logit lens of every layer (:func:`lens.lens_pass`, float32 head) at
    the columns that predict the side's tokens, each column's target its own token. The steered run's
    log-prob of a steered token is its generation's log-prob; the baseline run's is what the unsteered model
    would have given the same token after the same prefix. ``cancel`` is checked before each side."""
    import torch

    k = check_k(model, k)
    n = model.n_layers
    dec = TokenDecoder(model.tokenizer)
    check = 0.0

    def side(tokens: tuple[int, ...], prompt_ids: "torch.Tensor", plan: SteerPlan) -> tuple[StepLens, ...]:
        nonlocal check
        if not tokens:
            return ()
        P, T = prompt_ids.shape[1], len(tokens)
        ids = torch.cat([prompt_ids, torch.tensor([tokens[:-1]], device=prompt_ids.device)], dim=1)
        pos = list(range(P - 1, P + T - 1))
        data, c = lens_pass(model, ids.expand(2, -1), plan, slice(1, 2), pos, set(range(n)), k, list(tokens),
                            pair=False, generated_from=P)
        check = max(check, c)
        lens = torch.stack([data[i]["t_lp"] for i in range(n)], dim=-1).tolist()  # [2][T][n]
        out = data[n - 1]
        lp, rank = out["t_lp"].tolist(), out["t_rank"].tolist()
        top_id, top_p = out["top_id"].tolist(), out["top_lp"].exp().tolist()
        return tuple(StepLens(t, dec(t), (lp[0][j], lp[1][j]), (rank[0][j], rank[1][j]),
                              (tuple(lens[0][j]), tuple(lens[1][j])),
                              tuple(tuple(TokenProb(i, dec(i), p, r + 1)
                                          for r, (i, p) in enumerate(zip(top_id[run][j], top_p[run][j])))
                                    for run in (0, 1)))
                     for j, t in enumerate(tokens))

    with model.lock, torch.no_grad():
        plan = SteerPlan(model, steers)
        longest = max(len(row.baseline.ids), len(row.steered.ids))
        prompt_ids = model.encode([prompt], new_tokens=longest)["input_ids"]
        sides = []
        for name, tokens in (("baseline", row.baseline.ids), ("steered", row.steered.ids)):
            check_cancel(cancel, f"continuation lens ({name})")
            sides.append(side(tokens, prompt_ids, plan))
        return ContinuationLens(sides[0], sides[1], k, check, plan.describe())


# ---- the prompt the console continues: a pair's vulnerable file up to the line its patch changes -------------
@dataclass(frozen=True)
class FixSitePrompt:
    """The vulnerable file's lines before the first hunk the patch changes, without the last newline.

    Hunks are ``difflib`` opcodes over lines; the first one after line 1 that touches a line of code is taken
    (hunks of only comments, blank lines, preprocessor lines or imports are skipped when a later hunk has code).

    The prompt stops at the end of a line rather than after its newline: byte-level BPE joins a newline with
    the indentation that follows it, so a prompt ending in a lone newline is a token sequence the model has only
    seen before column-0 text. ``line`` is the 1-based number of the first changed line; when the prefix does
    not fit the context, it keeps the window of whole lines that ends at the fix site (lines are dropped from
    the top, ``dropped_lines``), chosen by ``engine.data.line_window`` like the pair windows of the verdict
    prompt and the extraction."""

    pair_id: str
    text: str
    line: int
    dropped_lines: int
    vulnerable_line: str  # the hunk's lines in the vulnerable file ("" when the patch only inserts)
    patched_line: str  # the hunk's lines in the patched file ("" when the patch only deletes)

    def to_dict(self) -> dict[str, Any]:
        return {"pair_id": self.pair_id, "text": self.text, "line": self.line, "dropped_lines": self.dropped_lines,
                "vulnerable_line": self.vulnerable_line, "patched_line": self.patched_line}


def fix_hunk(pair: Any) -> tuple[int, int, int, int, int]:
    """The hunk a pair's fix site is at (see :class:`FixSitePrompt`): (site, i2, j1, j2, kept) with the
    vulnerable file's lines ``[site, i2)`` replaced by the patched file's ``[j1, j2)`` (0-based), and ``kept``
    the number of vulnerable lines the prompt may hold (``site`` less the blank lines right before it)."""
    vuln, patched = pair.vulnerable.code.splitlines(), pair.patched.code.splitlines()
    hunks = [op for op in pair.line_opcodes() if op[0] != "equal" and op[1] > 0]
    code_hunks = [op for op in hunks if not all(_not_code(x) for x in vuln[op[1]:op[2]] + patched[op[3]:op[4]])]
    if not hunks:
        raise GenDiffError(f"pair {pair.id}: the patch changes nothing after the first line",
                           "pick a pair whose files share at least one line at the top")
    _tag, site, i2, j1, j2 = (code_hunks or hunks)[0]
    kept = site
    while kept and not vuln[kept - 1].strip():
        kept -= 1  # end on a line of text, not on blank lines
    if not kept:
        raise GenDiffError(f"pair {pair.id}: only blank lines come before the first line its patch changes",
                           "pick another pair")
    return site, i2, j1, j2, kept


def fix_site_prompt(model: "LoadedModel", pair: Any, max_new_tokens: int = 32) -> FixSitePrompt:
    """The continuation prompt for ``pair`` (see :class:`FixSitePrompt`), sized to leave room for the new tokens."""
    from steertui.engine.data import count_tokens, line_window

    vuln, patched = pair.vulnerable.code.splitlines(), pair.patched.code.splitlines()
    site, i2, j1, j2, kept = fix_hunk(pair)
    lines = vuln[:kept]
    room = model.context_length - max_new_tokens
    # the window of whole lines ending at the fix site, the largest that fits (engine.data.line_window decides
    # every window); the last line is kept even when it alone is too long
    def fits(a: int, b: int) -> bool:
        return count_tokens(model.tokenizer, "\n".join(lines[a:b])) <= room

    start, _end = line_window(len(lines), fits, anchor=len(lines), grow="before")
    dropped = min(start, len(lines) - 1)
    return FixSitePrompt(pair.id, "\n".join(lines[dropped:]), site + 1, dropped, "\n".join(vuln[site:i2]),
                         "\n".join(patched[j1:j2]))


NOT_CODE = ("#", "//", "/*", "*", "import ", "from ", '"' * 3, "'" * 3)


def _not_code(line: str) -> bool:
    """Blank lines, comments, preprocessor lines and imports: a hunk made only of these is not the fix."""
    t = line.strip()
    return not t or t.startswith(NOT_CODE)
