"""Token budgets: how many tokens each sample takes under a tokenizer, and what truncation leaves of it.

The rule: the code must fit ``context_length - reserve_tokens`` tokens (the reserve is room for the
question and the answer slot around it). Longer code is cut after the last whole line, counted from
the top, whose prefix still fits; no marker is inserted into the code, and every cut is reported.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from steertui.engine.data.model import Sample

DEFAULT_RESERVE_TOKENS = 64


def truncation_rule(context_length: int, reserve_tokens: int) -> str:
    """The truncation rule, in words, for these numbers."""
    limit = context_length - reserve_tokens
    return (f"code longer than {limit} tokens (context {context_length} - {reserve_tokens} reserved for the "
            f"prompt around it) keeps whole lines from the top, up to the last line that fits; "
            f"no marker is inserted, and every truncated sample is reported")


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


@dataclass(frozen=True)
class Truncation:
    """What is left of one text after the line-wise truncation."""

    code: str
    tokens: int
    kept_tokens: int
    kept_lines: int
    total_lines: int

    @property
    def truncated(self) -> bool:
        return self.kept_lines < self.total_lines

    @property
    def dropped_lines(self) -> int:
        return self.total_lines - self.kept_lines

    @property
    def dropped_tokens(self) -> int:
        return max(self.tokens - self.kept_tokens, 0)


def truncate_code(code: str, tokenizer: Any, max_tokens: int) -> Truncation:
    """Keep whole lines from the top while the kept prefix fits ``max_tokens`` (binary search over line counts)."""
    lines = code.splitlines(keepends=True)
    total = count_tokens(tokenizer, code)
    if total <= max_tokens:
        return Truncation(code, total, total, len(lines), len(lines))
    low, high = 0, len(lines)  # invariant: prefix of `low` lines fits, prefix of `high` lines does not
    while high - low > 1:
        mid = (low + high) // 2
        if count_tokens(tokenizer, "".join(lines[:mid])) <= max_tokens:
            low = mid
        else:
            high = mid
    kept = "".join(lines[:low])
    return Truncation(kept, total, count_tokens(tokenizer, kept) if low else 0, low, len(lines))


@dataclass(frozen=True)
class TokenBudget:
    """One sample's token count under a budget, and what truncation drops."""

    sample_id: str
    part: str
    tokens: int
    limit: int
    kept_tokens: int
    kept_lines: int
    total_lines: int
    caveats: tuple[str, ...] = ()

    @property
    def truncated(self) -> bool:
        return self.kept_lines < self.total_lines

    @property
    def dropped_tokens(self) -> int:
        return max(self.tokens - self.kept_tokens, 0)

    @property
    def dropped_lines(self) -> int:
        return self.total_lines - self.kept_lines

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.sample_id, "part": self.part, "tokens": self.tokens, "limit": self.limit,
                "truncated": self.truncated, "kept_tokens": self.kept_tokens, "dropped_tokens": self.dropped_tokens,
                "kept_lines": self.kept_lines, "dropped_lines": self.dropped_lines,
                "total_lines": self.total_lines, "caveats": list(self.caveats)}


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

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "tokenizer": self.tokenizer, "context_length": self.context_length,
                "reserve_tokens": self.reserve_tokens, "limit": self.limit, "rule": self.rule,
                "truncated": [item.sample_id for item in self.truncated],
                "samples": [item.to_dict() for item in self.items]}


def token_budget(samples: Iterable[Sample], tokenizer: Any, context_length: int,
                 reserve_tokens: int = DEFAULT_RESERVE_TOKENS, *, tokenizer_name: str | None = None) -> BudgetReport:
    """Count each sample's tokens and apply the truncation rule; nothing is truncated silently."""
    if context_length <= reserve_tokens:
        raise ValueError(f"context length {context_length} leaves no room after reserving {reserve_tokens} tokens")
    limit = context_length - reserve_tokens
    items = []
    source = ""
    for sample in samples:
        source = source or sample.source
        cut = truncate_code(sample.code, tokenizer, limit)
        caveats = sample.caveats + ((f"truncated to {cut.kept_lines} of {cut.total_lines} lines to fit {limit} "
                                     f"tokens",) if cut.truncated else ())
        items.append(TokenBudget(sample.id, sample.part, cut.tokens, limit, cut.kept_tokens, cut.kept_lines,
                                 cut.total_lines, caveats))
    name = tokenizer_name or str(getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__)
    return BudgetReport(name, context_length, reserve_tokens, truncation_rule(context_length, reserve_tokens),
                        tuple(items), source)


def truncated_code(sample: Sample, tokenizer: Any, context_length: int,
                   reserve_tokens: int = DEFAULT_RESERVE_TOKENS) -> Truncation:
    """The sample's code cut by the rule of :func:`token_budget` (the same cut, with the kept text)."""
    return truncate_code(sample.code, tokenizer, context_length - reserve_tokens)
