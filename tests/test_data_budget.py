"""Token budgets: counts per sample and the stated, reported, whole-line truncation rule."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fixtures_data import build_tokenizer

from steertui.engine.data import (
    Dataset,
    count_tokens,
    load_builtin,
    load_dataset,
    token_budget,
    truncate_code,
    truncated_code,
)


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return build_tokenizer()


@pytest.fixture(scope="module")
def shared(shared_dataset: Path) -> Dataset:
    return load_dataset(shared_dataset)


def test_real_world_file_is_truncated_and_reported(shared: Dataset, tokenizer: Any) -> None:
    sample = shared.sample("real-world/libtiff/CVE-2023-40745/vuln")
    report = token_budget([sample], tokenizer, context_length=512, reserve_tokens=64)
    item = report.items[0]
    assert report.limit == 448
    assert item.tokens == count_tokens(tokenizer, sample.code) > 448
    assert item.truncated and report.truncated == (item,)
    assert 0 < item.kept_lines < item.total_lines == len(sample.code.splitlines())
    assert item.kept_tokens <= 448 and item.dropped_tokens == item.tokens - item.kept_tokens
    assert any(c.startswith("truncated to") for c in item.caveats)
    assert "whole lines from the top" in report.rule and "448" in report.rule
    assert report.source == sample.source
    assert report.to_dict()["truncated"] == [sample.id]


def test_truncated_code_keeps_whole_lines_up_to_the_last_that_fits(shared: Dataset, tokenizer: Any) -> None:
    sample = shared.sample("real-world/linux/CVE-2023-40283/vuln")
    cut = truncated_code(sample, tokenizer, context_length=300, reserve_tokens=44)
    lines = sample.code.splitlines(keepends=True)
    assert cut.truncated
    assert cut.code == "".join(lines[:cut.kept_lines])
    assert count_tokens(tokenizer, cut.code) <= 256
    assert count_tokens(tokenizer, "".join(lines[:cut.kept_lines + 1])) > 256
    assert "[truncated" not in cut.code


def test_small_samples_fit_untouched(tokenizer: Any) -> None:
    samples = load_builtin().samples
    report = token_budget(samples, tokenizer, context_length=2048)
    assert report.truncated == ()
    assert all(item.kept_lines == item.total_lines and item.dropped_tokens == 0 for item in report.items)
    assert [item.sample_id for item in report.items] == [s.id for s in samples]


def test_edge_cases(tokenizer: Any) -> None:
    long_first_line = "x" * 5000 + "\nint y;\n"
    cut = truncate_code(long_first_line, tokenizer, 10)
    assert (cut.kept_lines, cut.code, cut.kept_tokens) == (0, "", 0)
    assert truncate_code("", tokenizer, 10).truncated is False
    with pytest.raises(ValueError):
        token_budget([], tokenizer, context_length=64, reserve_tokens=64)


def test_hugging_face_tokenizer_objects_work(tokenizer: Any, shared: Dataset) -> None:
    from transformers import PreTrainedTokenizerFast

    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<|endoftext|>",
                                      eos_token="<|endoftext|>")
    sample = shared.sample("hand-crafted/CWE-787/1")
    assert count_tokens(wrapped, sample.code) == count_tokens(tokenizer, sample.code)
    report = token_budget([sample], wrapped, 1024)
    assert report.items[0].tokens == count_tokens(tokenizer, sample.code)
