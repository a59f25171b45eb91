"""Token budgets: how many tokens each sample takes under a tokenizer, and what truncation leaves of it.

The rule: the code must fit ``context_length - reserve_tokens`` tokens (the reserve is room for the
question and the answer slot around it). When a file of a vulnerable/patched pair does not fit, both files
keep the same window of whole lines around the first hunk where they differ (:func:`fit_pair`): the window is
a run of rows of the pair's line alignment (``Pair.line_opcodes``), so it covers the same lines, relative to
the diff, in both files, and it is the largest such run (as many rows before the hunk as after it) with which
both files fit. A file without a pair partner keeps whole lines from the top, up to the last line that fits
(:func:`truncate_code`). No marker is inserted into the code, and every cut is reported with the lines it kept.
:func:`line_window` decides every window (also the fix-site prompt's in ``engine.gendiff``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from steertui.engine.data.model import Pair, Sample

RESERVE_TOKENS = 64  # room for the verdict question and the answer slot around the code
CONTEXT_KEYS = ("n_positions", "max_position_embeddings", "n_ctx", "seq_length")


def context_length(config: Any, tokenizer: Any = None) -> int | None:
    """The one rule for a model's context length: the first positive integer among ``CONTEXT_KEYS`` of its
    config (a ``PretrainedConfig`` or the parsed ``config.json``), else the tokenizer's ``model_max_length`` when
    it is a real limit, else None (unknown)."""
    for key in CONTEXT_KEYS:
        value = config.get(key) if isinstance(config, dict) else getattr(config, key, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 1_000_000:
        return limit
    return None


GROWS = ("after", "before", "around")  # where line_window grows a window


def truncation_rule(context_length: int, reserve_tokens: int) -> str:
    """The truncation rule, in words, for these numbers."""
    limit = context_length - reserve_tokens
    return (f"code longer than {limit} tokens (context {context_length} - {reserve_tokens} reserved for the "
            f"prompt around it): both files of a pair keep the same window of whole lines around the first hunk "
            f"where they differ (the largest that fits both, as many aligned lines before the hunk as after it); "
            f"a file without a pair keeps whole lines from the top, up to the last line that fits; "
            f"no marker is inserted, and every truncated sample is reported with the lines it kept")


def count_tokens(tokenizer: Any, text: str) -> int:
    """Tokens in ``text`` without special tokens, for a Hugging Face tokenizer or a ``tokenizers.Tokenizer``."""
    return len(_encode(tokenizer, text))


def _encode(tokenizer: Any, text: str) -> list[int]:
    if hasattr(tokenizer, "encode"):
        try:
            encoded = tokenizer.encode(text, add_special_tokens=False)
        except TypeError:
            encoded = tokenizer.encode(text)
    else:
        encoded = tokenizer(text)["input_ids"]
    ids = getattr(encoded, "ids", encoded)
    return list(ids)


def line_window(n: int, fits: Callable[[int, int], bool], *, anchor: int = 0, span: int = 0,
                grow: str = "after") -> tuple[int, int]:
    """The largest window ``[start, end)`` of ``n`` rows (lines, or aligned line pairs) for which
    ``fits(start, end)`` holds; ``(s, s)`` when not even one row fits.

    ``grow`` says where windows of ``w`` rows lie:
    - ``after``: ``[anchor, anchor + w)`` (with ``anchor=0``: whole lines from the top);
    - ``before``: ``[anchor - w, anchor)`` (the rows just before ``anchor``);
    - ``around``: the ``span`` rows from ``anchor`` (the first hunk) with as many rows before them as after
      them, shifted inwards where the file ends; below ``span`` rows, the first ``w`` rows of the hunk.
    A window of ``w + 1`` rows holds the window of ``w`` rows, so the fit is searched by bisection.
    """
    if grow not in GROWS:
        raise ValueError(f"unknown window growth {grow!r}: use one of {', '.join(GROWS)}")
    if not 0 <= anchor <= n:
        raise ValueError(f"anchor {anchor} outside 0..{n}")

    def at(w: int) -> tuple[int, int]:
        if grow == "after":
            return anchor, anchor + w
        if grow == "before":
            return anchor - w, anchor
        start = min(max(anchor - max(0, (w - span) // 2), 0), n - w)
        return start, start + w

    most = {"after": n - anchor, "before": anchor, "around": n}[grow]
    if fits(*at(most)):
        return at(most)
    low, high = 0, most  # invariant: a window of `low` rows fits (an empty one always does), of `high` does not
    while high - low > 1:
        mid = (low + high) // 2
        if fits(*at(mid)):
            low = mid
        else:
            high = mid
    return at(low)


def kept_window(first_line: int, kept_lines: int) -> tuple[int, int] | None:
    """Lines ``first_line`` .. ``first_line + kept_lines`` (0-based, end exclusive) as 1-based ``(first, last)``,
    both included; None when no line is kept."""
    return (first_line + 1, first_line + kept_lines) if kept_lines else None


@dataclass(frozen=True)
class Truncation:
    """What is left of one text after truncation: lines ``first_line`` .. ``first_line + kept_lines`` (0-based,
    end exclusive). ``windowed``: the pair window rule cut it (else the head rule did, or nothing)."""

    code: str
    tokens: int
    kept_tokens: int
    kept_lines: int
    total_lines: int
    first_line: int = 0
    windowed: bool = False

    @property
    def truncated(self) -> bool:
        return self.kept_lines < self.total_lines

    @property
    def dropped_lines(self) -> int:
        return self.total_lines - self.kept_lines

    @property
    def dropped_tokens(self) -> int:
        return max(self.tokens - self.kept_tokens, 0)

    @property
    def window(self) -> tuple[int, int] | None:
        """The kept lines as 1-based line numbers ``(first, last)``, both included; None when none is kept."""
        return kept_window(self.first_line, self.kept_lines)

    def describe(self) -> dict[str, Any]:
        """What was kept, for reports: ``windowed``, ``window`` ([first, last], 1-based) and the line counts."""
        return {"windowed": self.windowed, "window": list(self.window) if self.window else None,
                "kept_lines": self.kept_lines, "total_lines": self.total_lines}


def _keep(lines: Sequence[str], tokenizer: Any, start: int, end: int, tokens: int, windowed: bool) -> Truncation:
    kept = "".join(lines[start:end])
    return Truncation(kept, tokens, count_tokens(tokenizer, kept) if end > start else 0, end - start, len(lines),
                      start if end > start else 0, windowed)


def truncate_code(code: str, tokenizer: Any, max_tokens: int) -> Truncation:
    """The rule for a file without a pair partner: whole lines from the top while they fit ``max_tokens``."""
    lines = code.splitlines(keepends=True)
    total = count_tokens(tokenizer, code)
    if total <= max_tokens:
        return Truncation(code, total, total, len(lines), len(lines))
    start, end = line_window(len(lines), lambda s, e: count_tokens(tokenizer, "".join(lines[s:e])) <= max_tokens)
    return _keep(lines, tokenizer, start, end, total, False)


Row = tuple["int | None", "int | None", bool]


def aligned_rows(opcodes: Iterable[tuple[str, int, int, int, int]]) -> list[Row]:
    """The pair's line alignment, one row ``(vulnerable line, patched line, changed)`` per line pair of an
    ``equal`` run and, in a changed hunk, per position (the k-th line of each side, None where that side has
    fewer lines). Line indices are 0-based."""
    rows: list[Row] = []
    for tag, i1, i2, j1, j2 in opcodes:
        if tag == "equal":
            rows += [(i1 + k, j1 + k, False) for k in range(i2 - i1)]
        else:
            rows += [(i1 + k if i1 + k < i2 else None, j1 + k if j1 + k < j2 else None, True)
                     for k in range(max(i2 - i1, j2 - j1))]
    return rows


def side_lines(rows: Sequence[Row], side: int, start: int, end: int) -> tuple[int, int]:
    """The lines of one side (0 vulnerable, 1 patched) that rows ``[start, end)`` hold, as ``[first, last)``
    (``(0, 0)`` when they hold none)."""
    idx = [r[side] for r in rows[start:end] if r[side] is not None]
    return (idx[0], idx[-1] + 1) if idx else (0, 0)


@dataclass(frozen=True)
class PairFit:
    """Both files of a pair after the budget: the same window of the alignment when ``windowed``."""

    pair_id: str
    vulnerable_id: str
    patched_id: str
    vulnerable: Truncation
    patched: Truncation

    @property
    def windowed(self) -> bool:
        return self.vulnerable.windowed

    def side(self, sample: Sample | str) -> Truncation:
        """The cut of one file of the pair, by sample or sample id."""
        sid = sample if isinstance(sample, str) else sample.id
        if sid not in (self.vulnerable_id, self.patched_id):
            raise KeyError(f"{sid} is not a file of pair {self.pair_id}")
        return self.vulnerable if sid == self.vulnerable_id else self.patched


def fit_pair(pair: Pair, tokenizer: Any, max_tokens: int) -> PairFit:
    """Both files of ``pair`` cut to ``max_tokens``: untouched when both fit, else the same window of whole lines
    around the first hunk where they differ (:func:`line_window` over the :func:`aligned_rows` of
    ``pair.line_opcodes()``), the largest with which both fit. Identical files fall back to the head rule."""
    ids = (pair.id, pair.vulnerable.id, pair.patched.id)
    va, pa = pair.vulnerable.code.splitlines(keepends=True), pair.patched.code.splitlines(keepends=True)
    tv, tp = count_tokens(tokenizer, pair.vulnerable.code), count_tokens(tokenizer, pair.patched.code)
    if tv <= max_tokens and tp <= max_tokens:
        return PairFit(*ids, Truncation(pair.vulnerable.code, tv, tv, len(va), len(va)),
                       Truncation(pair.patched.code, tp, tp, len(pa), len(pa)))
    rows = aligned_rows(pair.line_opcodes())
    anchor = next((k for k, row in enumerate(rows) if row[2]), None)
    if anchor is None:
        return PairFit(*ids, truncate_code(pair.vulnerable.code, tokenizer, max_tokens),
                       truncate_code(pair.patched.code, tokenizer, max_tokens))
    span = next((k for k in range(anchor, len(rows)) if not rows[k][2]), len(rows)) - anchor

    def fits(start: int, end: int) -> bool:
        return all(count_tokens(tokenizer, "".join(lines[slice(*side_lines(rows, side, start, end))])) <= max_tokens
                   for side, lines in ((0, va), (1, pa)))

    start, end = line_window(len(rows), fits, anchor=anchor, span=span, grow="around")
    return PairFit(*ids, _keep(va, tokenizer, *side_lines(rows, 0, start, end), tv, True),
                   _keep(pa, tokenizer, *side_lines(rows, 1, start, end), tp, True))


def fit_samples(samples: Iterable[Sample], pairs: Iterable[Pair], tokenizer: Any,
                max_tokens: int) -> dict[str, Truncation]:
    """sample id -> its cut: the pair window for a file of one of ``pairs``, the head rule for any other."""
    by_sample = {s.id: p for p in pairs for s in p.samples}
    fits: dict[str, PairFit] = {}
    out = {}
    for sample in samples:
        pair = by_sample.get(sample.id)
        if pair is None:
            out[sample.id] = truncate_code(sample.code, tokenizer, max_tokens)
            continue
        if pair.id not in fits:
            fits[pair.id] = fit_pair(pair, tokenizer, max_tokens)
        out[sample.id] = fits[pair.id].side(sample)
    return out


def fit_code(code: str, tokenizer: Any, max_tokens: int, pair: Pair | None = None) -> Truncation:
    """``code`` cut to ``max_tokens``: by the window of ``pair`` when ``code`` is one of its files, else by the
    head rule."""
    if pair is not None:
        for sample in pair.samples:
            if sample.code == code:
                return fit_pair(pair, tokenizer, max_tokens).side(sample)
        raise ValueError(f"the code given is neither file of pair {pair.id}")
    return truncate_code(code, tokenizer, max_tokens)


@dataclass(frozen=True)
class TokenBudget:
    """One sample's token count under a budget, and what truncation keeps (``first_line``: 0-based)."""

    sample_id: str
    part: str
    tokens: int
    limit: int
    kept_tokens: int
    kept_lines: int
    total_lines: int
    caveats: tuple[str, ...] = ()
    first_line: int = 0
    windowed: bool = False
    pair_id: str | None = None

    @property
    def truncated(self) -> bool:
        return self.kept_lines < self.total_lines

    @property
    def dropped_tokens(self) -> int:
        return max(self.tokens - self.kept_tokens, 0)

    @property
    def dropped_lines(self) -> int:
        return self.total_lines - self.kept_lines

    @property
    def window(self) -> tuple[int, int] | None:
        """Kept lines, 1-based, both included (the whole file when nothing is cut); None when none is kept."""
        return kept_window(self.first_line, self.kept_lines)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.sample_id, "part": self.part, "pair": self.pair_id, "tokens": self.tokens,
                "limit": self.limit, "truncated": self.truncated, "windowed": self.windowed,
                "window": list(self.window) if self.window else None, "kept_tokens": self.kept_tokens,
                "dropped_tokens": self.dropped_tokens, "kept_lines": self.kept_lines,
                "dropped_lines": self.dropped_lines, "total_lines": self.total_lines, "caveats": list(self.caveats)}


@dataclass(frozen=True)
class BudgetReport:
    """Token budgets of a set of samples under one tokenizer and context length."""

    tokenizer: str
    context_length: int
    reserve_tokens: int
    rule: str
    items: tuple[TokenBudget, ...]
    source: str = ""

    @property
    def limit(self) -> int:
        return self.context_length - self.reserve_tokens

    @property
    def truncated(self) -> tuple[TokenBudget, ...]:
        return tuple(item for item in self.items if item.truncated)

    @property
    def windowed_pairs(self) -> tuple[str, ...]:
        """Ids of the pairs whose files were cut to a window around their first difference."""
        return tuple(dict.fromkeys(item.pair_id for item in self.items if item.windowed and item.pair_id))

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "tokenizer": self.tokenizer, "context_length": self.context_length,
                "reserve_tokens": self.reserve_tokens, "limit": self.limit, "rule": self.rule,
                "truncated": [item.sample_id for item in self.truncated], "windowed": list(self.windowed_pairs),
                "samples": [item.to_dict() for item in self.items]}


def _cut_caveat(cut: Truncation, limit: int) -> str:
    if cut.windowed and cut.window:
        return (f"truncated to lines {cut.window[0]}-{cut.window[1]} of {cut.total_lines} (the window around the "
                f"first difference from its pair) to fit {limit} tokens")
    return f"truncated to {cut.kept_lines} of {cut.total_lines} lines to fit {limit} tokens"


def token_budget(samples: Iterable[Sample], tokenizer: Any, context_length: int,
                 reserve_tokens: int = RESERVE_TOKENS, *, tokenizer_name: str | None = None,
                 pairs: Iterable[Pair] = ()) -> BudgetReport:
    """Count each sample's tokens and apply the truncation rule (the window rule to the files of ``pairs``, the
    head rule to any other); nothing is truncated silently."""
    if context_length <= reserve_tokens:
        raise ValueError(f"context length {context_length} leaves no room after reserving {reserve_tokens} tokens")
    limit = context_length - reserve_tokens
    samples, pairs = list(samples), list(pairs)
    cuts = fit_samples(samples, pairs, tokenizer, limit)
    pair_of = {s.id: p.id for p in pairs for s in p.samples}
    items = []
    source = ""
    for sample in samples:
        source = source or sample.source
        cut = cuts[sample.id]
        caveats = sample.caveats + ((_cut_caveat(cut, limit),) if cut.truncated else ())
        items.append(TokenBudget(sample.id, sample.part, cut.tokens, limit, cut.kept_tokens, cut.kept_lines,
                                 cut.total_lines, caveats, cut.first_line, cut.windowed, pair_of.get(sample.id)))
    name = tokenizer_name or str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)
    return BudgetReport(name, context_length, reserve_tokens, truncation_rule(context_length, reserve_tokens),
                        tuple(items), source)


def truncated_code(sample: Sample, tokenizer: Any, context_length: int,
                   reserve_tokens: int = RESERVE_TOKENS, pair: Pair | None = None) -> Truncation:
    """The sample's code cut by the rule of :func:`token_budget` (the same cut, with the kept text); pass the
    sample's ``pair`` for the window rule."""
    return fit_code(sample.code, tokenizer, context_length - reserve_tokens, pair)
