"""A console session runs thousands of traces (every key that changes the steering re-runs the next tokens and
the lens): none of them may leave anything alive behind it."""

from __future__ import annotations

import gc
import warnings

import torch

from steertui.engine import ops
from steertui.engine.steering import Steer


def _live() -> tuple[int, int]:
    """(live torch tensors, all objects the collector tracks) after a full collection."""
    gc.collect()
    with warnings.catch_warnings():  # isinstance on torch's deprecated module attributes warns
        warnings.simplefilter("ignore")
        objects = gc.get_objects()
        return sum(1 for o in objects if isinstance(o, torch.Tensor)), len(objects)


def test_repeated_traces_leave_nothing_alive(demo_model):
    from steertui.engine.data import load_dataset

    s, pair = demo_model, load_dataset(None).pairs[0]
    v = torch.randn(s.d_model, generator=torch.Generator().manual_seed(0))

    def round_(i: int) -> None:  # what a few keys in the console run: a preview and a continuation
        steer = [Steer(1, v, 1.0 + i)]
        ops.next_tokens(s, pair, steer)
        ops.fix_site_continuation(s, pair, steer, max_new_tokens=4)

    for i in range(3):  # caches that fill once (tokenizer, modules' lazy state) fill here
        round_(i)
    tensors, objects = _live()
    for i in range(12):
        round_(i)
    after_tensors, after_objects = _live()
    assert after_tensors == tensors
    assert after_objects - objects < 100, f"{after_objects - objects} objects more after 12 rounds"
