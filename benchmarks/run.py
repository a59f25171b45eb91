"""Benchmarks: every timing is reported as a ratio against a baseline measured in the same run.

    python benchmarks/run.py [--model M] [--repeats N] [--json FILE]

1. forward overhead: the engine's traced forward (steering + logits) against a plain transformers forward
   with a torch hook doing the same addition;
2. activation extraction: the engine's batched all-layer extraction (one forward per chunk) against one
   trace per sample and against a plain batched transformers forward with ``output_hidden_states``;
3. the verdict evaluation on the builtin examples: seconds per scored file and peak resident memory,
   against the time of one plain forward over the same files.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from pathlib import Path


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_forward(session, repeats):
    import torch

    from steertui.engine import steering

    prompt = ["#include <stdio.h>\nint main(void)\n{\n    char buf[64];\n    gets(buf);\n    puts(buf);\n}\n" * 3]
    v = torch.randn(session.d_model)
    enc = session.encode(prompt)
    block = session.hf_module(session.adapter.block_path(session.n_layers // 2))

    def plain():
        h = block.register_forward_hook(lambda _m, _i, out: out + 4.0 * v)
        try:
            with torch.no_grad():
                session.hf(**enc)
        finally:
            h.remove()

    def engine():
        steering.forward(session, enc, steers=[steering.Steer(session.n_layers // 2, v, 4.0)])

    base, ours = _median_time(plain, repeats), _median_time(engine, repeats)
    return {"tokens": int(enc["input_ids"].shape[1]), "hf_hook_ms": base * 1e3, "engine_ms": ours * 1e3,
            "ratio": ours / base}


def bench_extraction(session, texts, repeats):
    import torch

    from steertui.engine.activations import extract

    def batched():
        extract(session, texts, readout="last", chunk_size=8)

    def per_sample():
        for t in texts:
            extract(session, [t], readout="last", chunk_size=1)

    def hf_batched():
        for start in range(0, len(texts), 8):
            enc = session.encode(texts[start:start + 8])
            with torch.no_grad():
                session.hf(**enc, output_hidden_states=True)

    b, p, h = (_median_time(f, max(1, repeats // 3)) for f in (batched, per_sample, hf_batched))
    return {"samples": len(texts), "batched_s": b, "one_trace_per_sample_s": p, "hf_batched_s": h,
            "per_sample_over_batched": p / b, "batched_over_hf": b / h}


def bench_eval(session, pairs):
    import torch

    from steertui.engine.evaluate import EvalSettings, evaluate
    from steertui.engine.verdict import sample_prompts

    prompts = [p.text for p in sample_prompts(session, [s for pr in pairs for s in pr.samples], pairs)]

    def one_pass():
        for start in range(0, len(prompts), 8):
            with torch.no_grad():
                session.hf(**session.encode(prompts[start:start + 8]))

    base = _median_time(one_pass, 3)
    settings = EvalSettings(layers=(session.n_layers // 2,), alphas=(0.0, 4.0), folds=2)
    t = time.perf_counter()
    res = evaluate(session, pairs, settings)
    took = time.perf_counter() - t
    files = res.rows[-1].n
    return {"files": files, "layers": 1, "alphas": 2, "eval_s": took, "s_per_file": took / files,
            "one_plain_pass_s": base, "eval_over_one_pass": took / base,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    import torch

    from steertui.engine.data import load_dataset
    from steertui.engine.model import ModelSession

    torch.manual_seed(0)
    session = ModelSession.load(args.model)
    pairs = list(load_dataset("builtin").pairs)
    texts = [s.code for p in pairs for s in p.samples]
    results = {"model": session.info.name, "device": session.info.device, "threads": torch.get_num_threads(),
               "forward": bench_forward(session, args.repeats),
               "extraction": bench_extraction(session, texts, args.repeats),
               "eval": bench_eval(session, pairs)}
    text = json.dumps(results, indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
