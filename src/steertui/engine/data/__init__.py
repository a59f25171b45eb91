"""Paired vulnerable/patched code: the SecLLMHolmes loader, the builtin examples, sources and token budgets.

Plain data only (frozen dataclasses with ``to_dict``); no Textual, no torch, never pickle.
"""

from steertui.engine.data.budget import (
    CONTEXT_KEYS,
    RESERVE_TOKENS,
    BudgetReport,
    PairFit,
    TokenBudget,
    Truncation,
    aligned_rows,
    context_length,
    count_tokens,
    fit_code,
    fit_pair,
    fit_samples,
    line_window,
    token_budget,
    truncate_code,
    truncated_code,
    truncation_rule,
)
from steertui.engine.data.loader import load_builtin, load_checkout, load_choice, load_dataset
from steertui.engine.data.model import (
    BUILTIN,
    BUILTIN_LABEL,
    DEFAULT_CWE_NAMES,
    LABELS,
    PARTS,
    PATCHED,
    VULNERABLE,
    Dataset,
    DataSource,
    LoadWarning,
    Pair,
    Sample,
    normalize_cwe,
)
from steertui.engine.data.source import (
    PINNED_COMMIT,
    UPSTREAM_URL,
    Checkout,
    FetchResult,
    SourceChoice,
    fetch_dataset,
    locate_checkout,
    read_config,
    read_git_commit,
    resolve_source,
    write_config_value,
)
from steertui.engine.data.summary import summarize

__all__ = [
    "BUILTIN", "BUILTIN_LABEL", "CONTEXT_KEYS", "DEFAULT_CWE_NAMES", "LABELS", "PARTS", "PATCHED", "PINNED_COMMIT",
    "RESERVE_TOKENS", "UPSTREAM_URL", "VULNERABLE",
    "BudgetReport", "Checkout", "DataSource", "Dataset", "FetchResult", "LoadWarning", "Pair", "PairFit", "Sample",
    "SourceChoice", "TokenBudget", "Truncation",
    "aligned_rows", "context_length", "count_tokens", "fetch_dataset", "fit_code", "fit_pair", "fit_samples",
    "line_window", "load_builtin", "load_checkout", "load_choice", "load_dataset", "locate_checkout", "normalize_cwe",
    "read_config", "read_git_commit", "resolve_source", "summarize", "token_budget", "truncate_code",
    "truncated_code", "truncation_rule", "write_config_value",
]
