"""Which code does the model rather write where a pair's vulnerability is: the vulnerable lines or the fix?

A pair's fix site (:func:`gendiff.fix_hunk`, the site :class:`gendiff.FixSitePrompt` continues from) is the first
hunk of its patch that touches a line of code. The prompt is the vulnerable file up to the line before it
(windowed as the console's continuation is, leaving room for the longer version); the two continuations are the
two files' versions of that hunk, each followed by the same anchor (the lines both files share after the hunk, up
to the first one that is not blank), so that both end at the same point of the program:

    vulnerable:  newline + the blank lines before the hunk + the vulnerable hunk + the anchor
    patched:     newline + the blank lines before the hunk + the patched hunk + the anchor

Each is scored teacher-forced, token by token, with the steering applied exactly as in a steered generation of
that continuation (:func:`gendiff.teacher_forced`: ``all`` steers at every column, ``prompt`` at the prompt's,
``generated`` at the continuation's), as the sum of its tokens' log-probabilities; the prompt runs once for
both continuations, which read its keys and values (:func:`choice_logprobs`). The **preference** is
log p(patched) − log p(vulnerable) in nats: positive when the model would rather write the fix. Its shift under
steering is the generation-side counterpart of the verdict shift: does a vector change what code the model
writes where the vulnerability is, and not only what it answers about it?

The prompt's tokens are the tokenizer's for the prompt (special tokens as :meth:`LoadedModel.encode` adds them),
each continuation's are the tokenizer's for the continuation alone, appended: the token sequence a model writes
when it continues the prompt with that text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from steertui.engine.gendiff import GenDiffError, fix_hunk, fix_site_prompt
from steertui.engine.steering import Steer, SteerPlan
from steertui.errors import Cancel, CancelledError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from steertui.engine.data import Pair
    from steertui.engine.model import LoadedModel


@dataclass(frozen=True)
class FixSiteChoice:
    """One pair's prompt and its two continuations (module docstring); ``line`` is the 1-based number of the
    first changed line of the vulnerable file, ``dropped_lines`` the lines cut from the top to fit the context."""

    pair_id: str
    prompt: str
    line: int
    dropped_lines: int
    vulnerable: str
    patched: str
    anchor: str  # the shared text both continuations end with ("" when the hunk ends the files)
    prompt_tokens: int  # the prompt's tokens (with the special tokens LoadedModel.encode adds)
    vulnerable_ids: tuple[int, ...]  # each continuation's tokens, scored after the prompt's
    patched_ids: tuple[int, ...]

    @property
    def tail_tokens(self) -> int:
        """The longer continuation's tokens: with ``prompt_tokens``, what a batch holding this choice must hold."""
        return max(len(self.vulnerable_ids), len(self.patched_ids))

    def to_dict(self) -> dict[str, Any]:
        return {"pair_id": self.pair_id, "prompt": self.prompt, "line": self.line,
                "dropped_lines": self.dropped_lines, "vulnerable": self.vulnerable, "patched": self.patched,
                "anchor": self.anchor, "prompt_tokens": self.prompt_tokens, "tail_tokens": self.tail_tokens}


def _anchor(vuln: list[str], patched: list[str], i2: int, j2: int) -> list[str]:
    """The lines both files share right after the hunk, up to and including the first that is not blank."""
    out = []
    for k in range(i2, len(vuln)):
        if j2 + k - i2 >= len(patched) or vuln[k] != patched[j2 + k - i2]:
            break
        out.append(vuln[k])
        if vuln[k].strip():
            break
    return out


def _continuation_ids(model: "LoadedModel", text: str) -> list[int]:
    return list(model.tokenizer(text, add_special_tokens=False)["input_ids"])


def fix_site_choice(model: "LoadedModel", pair: "Pair") -> FixSiteChoice:
    """The prompt and both continuations of ``pair`` (module docstring), the prompt windowed to leave room for the
    longer continuation. :class:`GenDiffError` when the pair has no fix site to continue from, or when one side
    would be empty (a hunk that only inserts or deletes at the end of the files)."""
    vuln, patched = pair.vulnerable.code.splitlines(), pair.patched.code.splitlines()
    site, i2, j1, j2, kept = fix_hunk(pair)
    anchor = _anchor(vuln, patched, i2, j2)
    blank = vuln[kept:site]
    sides = {"vulnerable": blank + vuln[site:i2] + anchor, "patched": blank + patched[j1:j2] + anchor}
    empty = [name for name, lines in sides.items() if not "".join(lines).strip()]
    if empty:
        raise GenDiffError(f"pair {pair.id}: the {empty[0]} side of its fix site is empty (the patch only adds or "
                           "removes lines at the end of the file)", "pick another pair")
    texts = {name: "\n" + "\n".join(lines) for name, lines in sides.items()}
    ids = {name: tuple(_continuation_ids(model, t)) for name, t in texts.items()}
    longest = max(map(len, ids.values()))
    if longest >= model.context_length:
        raise GenDiffError(f"pair {pair.id}: a continuation of its fix site is {longest} tokens, more than "
                           f"{model.info.name}'s context of {model.context_length}", "pick another pair")
    prompt = fix_site_prompt(model, pair, max_new_tokens=longest)
    n_prompt = len(model.tokenizer(prompt.text)["input_ids"])
    if n_prompt + longest > model.context_length:  # the line before the fix site alone is too long
        raise GenDiffError(f"pair {pair.id}: the line before its fix site and the longer version of the fix are "
                           f"{n_prompt} + {longest} tokens, more than {model.info.name}'s context of "
                           f"{model.context_length}", "pick another pair")
    return FixSiteChoice(pair.id, prompt.text, prompt.line, prompt.dropped_lines, texts["vulnerable"],
                         texts["patched"], "\n".join(anchor), n_prompt, ids["vulnerable"], ids["patched"])


def fix_site_choices(model: "LoadedModel", pairs: Sequence["Pair"]) -> tuple[list[FixSiteChoice | None], list[str]]:
    """:func:`fix_site_choice` of every pair: None (and a line in the second list saying why) for a pair that has
    none."""
    out, skipped = [], []
    for pair in pairs:
        try:
            out.append(fix_site_choice(model, pair))
        except GenDiffError as err:
            out.append(None)
            skipped.append(err.problem)
    return out, skipped


def _chunks(model: "LoadedModel", choices: Sequence[FixSiteChoice], per_chunk: int) -> list[list[int]]:
    """Choice indices in order, ``per_chunk`` at most per chunk, and no more than fit the context together: a
    batch is as long as its longest prompt (left-padded) plus its longest continuation (right-padded), and every
    column of it must be a position the model has. One choice alone always fits (:func:`fix_site_choice` refuses
    a pair whose prompt and longer continuation do not)."""
    chunks: list[list[int]] = []
    longest_prompt = longest_tail = 0
    for i, c in enumerate(choices):
        p, t = c.prompt_tokens, c.tail_tokens
        fits = max(longest_prompt, p) + max(longest_tail, t) <= model.context_length
        if chunks and len(chunks[-1]) < per_chunk and fits:
            chunks[-1].append(i)
            longest_prompt, longest_tail = max(longest_prompt, p), max(longest_tail, t)
        else:
            chunks.append([i])
            longest_prompt, longest_tail = p, t
    return chunks


def takes_cache(model: "LoadedModel") -> bool:
    """Whether the model's forward takes a ``cache`` (every transformers causal LM does): then a choice's prompt
    runs once and both continuations read its keys and values (:func:`choice_logprobs`)."""
    import inspect

    return "cache" in inspect.signature(model.hf.forward).parameters


def choice_logprobs(model: "LoadedModel", choices: Sequence[FixSiteChoice], steers: Iterable[Steer] = (), *,
                    chunk_size: int = 8, cancel: Cancel | None = None,
                    shared_prefix: bool | None = None) -> "torch.Tensor":
    """``[N, 2]`` (float32, CPU): each choice's log p(vulnerable continuation) and log p(patched continuation)
    given its prompt, with ``steers`` applied as in a steered generation of it, per chunk of at most
    ``chunk_size`` continuations that fit the context together (both of a choice in the same chunk, so a
    choice's two sides see the same padding; the chunks depend on the choices alone, so the same choices are
    batched the same way steered or not).

    ``shared_prefix`` (default: when the model :func:`takes_cache`): per chunk one traced forward of the prompts
    (left-padded; ``all`` and ``prompt`` steers on every column), which gives each first continuation token's
    log-prob and the keys and values, repeated for the two continuations; then one traced forward of the
    continuations on them (right-padded; ``all`` and ``generated`` steers on every column), as a generation's
    steps run. Each prompt runs once instead of once per continuation. Without it, one teacher-forced forward
    of prompt + continuation per row (:func:`gendiff.teacher_forced`). Both give the same numbers to float32
    rounding (tests, for every supported architecture)."""
    import torch

    choices = list(choices)
    out = torch.zeros(len(choices), 2)
    if shared_prefix is None:
        shared_prefix = takes_cache(model)
    score = _shared_prefix_chunk if shared_prefix else _full_chunk
    with model.lock, torch.no_grad():
        plan = SteerPlan(model, steers)
        for rows in _chunks(model, choices, max(1, chunk_size // 2)):
            if cancel is not None and cancel.is_set():
                raise CancelledError(f"fix-site scoring cancelled after {rows[0]} of {len(choices)} pairs")
            chunk = [choices[i] for i in rows]
            conts = [list(ids) for c in chunk for ids in (c.vulnerable_ids, c.patched_ids)]
            logp = score(model, chunk, conts, plan)
            out[rows] = torch.stack([logp[r, :len(ids)].sum() for r, ids in enumerate(conts)]).view(len(chunk), 2)
    return out


def _full_chunk(model: "LoadedModel", chunk: list[FixSiteChoice], conts: list[list[int]],
                plan: SteerPlan) -> "torch.Tensor":
    """Each continuation's tokens' log-probs [2C, T] (right-padded), one forward of prompt + continuation per row."""
    import torch

    from steertui.engine.gendiff import teacher_forced
    from steertui.engine.steering import GenerationResult

    T = max(len(ids) for ids in conts)
    enc = model.encode([c.prompt for c in chunk for _ in range(2)], new_tokens=T)
    pad = model.tokenizer.pad_token_id
    tail = torch.tensor([ids + [pad] * (T - len(ids)) for ids in conts], device=enc["input_ids"].device)
    gen = GenerationResult(enc["input_ids"], enc["attention_mask"], torch.cat([enc["input_ids"], tail], 1),
                           conts, None)
    return teacher_forced(model, gen, plan)[0]


def _shared_prefix_chunk(model: "LoadedModel", chunk: list[FixSiteChoice], conts: list[list[int]],
                         plan: SteerPlan) -> "torch.Tensor":
    """As :func:`_full_chunk`, each prompt run once and its keys and values shared by its two continuations."""
    import nnsight
    import torch

    from steertui.engine.model import mask_positions

    T = max(len(ids) for ids in conts)
    enc = model.encode([c.prompt for c in chunk], new_tokens=T)
    P = enc["input_ids"].shape[1]
    adapter, blocks = model.adapter, model.block_envoys()
    keep = model.logits_only_at(torch.tensor([P - 1], device=enc["input_ids"].device), enc["attention_mask"])
    with model.nn.trace({**enc, "position_ids": mask_positions(enc["attention_mask"]), **keep, "use_cache": True}):
        for i in plan.layers:  # every column is the prompt's
            plan.apply(adapter.hidden(blocks[i].output), i)
        out = model.nn.output
        first = nnsight.save(out.logits[:, -1].float().log_softmax(-1).cpu())
        cache = nnsight.save(out.cache)
    first = first.repeat_interleave(2, 0)
    pad = model.tokenizer.pad_token_id
    tail = torch.tensor([ids + [pad] * (T - len(ids)) for ids in conts])
    logp = first.gather(-1, tail[:, :1])
    if T > 1:  # the continuations' tokens but the last, on the prompts' keys and values
        cache.batch_repeat_interleave(2)
        mask = enc["attention_mask"].repeat_interleave(2, 0)
        mask = torch.cat([mask, torch.ones(len(conts), T - 1, dtype=mask.dtype, device=mask.device)], 1)
        inputs = {"input_ids": tail[:, :-1].to(mask.device), "attention_mask": mask,
                  "position_ids": mask_positions(mask)[:, P:], "cache": cache, "use_cache": True}
        with model.nn.trace(inputs):
            for i in plan.layers:  # every column is a continuation's
                plan.apply(adapter.hidden(blocks[i].output), i, generated_from=0)
            rest = nnsight.save(model.envoy(adapter.unembed).output.float().log_softmax(-1)
                                .gather(-1, tail[:, 1:, None].to(mask.device)).squeeze(-1).cpu())
        logp = torch.cat([logp, rest], 1)
    return logp


def preferences(logprobs: "torch.Tensor") -> list[float]:
    """log p(patched) − log p(vulnerable) per choice, from :func:`choice_logprobs`."""
    return [float(x) for x in logprobs[:, 1] - logprobs[:, 0]]


@dataclass(frozen=True)
class FixSitePreference:
    """One pair's fix-site choice scored without and with a steering: each side's (log p(vulnerable), log
    p(patched)) continuation."""

    choice: FixSiteChoice
    baseline: tuple[float, float]
    steered: tuple[float, float]

    @property
    def baseline_preference(self) -> float:
        return self.baseline[1] - self.baseline[0]

    @property
    def steered_preference(self) -> float:
        return self.steered[1] - self.steered[0]

    @property
    def shift(self) -> float:
        """How far the steering moved the preference towards the fix (nats)."""
        return self.steered_preference - self.baseline_preference

    def to_dict(self) -> dict[str, Any]:
        return {"choice": self.choice.to_dict(), "baseline": list(self.baseline), "steered": list(self.steered),
                "baseline_preference": self.baseline_preference, "steered_preference": self.steered_preference}


def fix_site_preference(model: "LoadedModel", pair: "Pair", steers: Iterable[Steer] = (), *,
                        cancel: Cancel | None = None) -> FixSitePreference | None:
    """``pair``'s fix-site choice scored unsteered and with ``steers`` (one forward of its two continuations each;
    one in all without steers); None when the pair has no fix site to score."""
    try:
        choice = fix_site_choice(model, pair)
    except GenDiffError:
        return None
    steers = list(steers)
    base = choice_logprobs(model, [choice], cancel=cancel)[0]
    steered = choice_logprobs(model, [choice], steers, cancel=cancel)[0] if steers else base
    return FixSitePreference(choice, (float(base[0]), float(base[1])), (float(steered[0]), float(steered[1])))
