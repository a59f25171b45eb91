"""Record the example sessions in ``sessions/`` with the shipped demo model and the builtin examples.

    .venv/bin/python scripts/make_example_sessions.py [--out sessions]

Every step kind is covered: ``demo-tour`` builds a vector and runs the layers probe, a steered logit lens,
steered top tokens, a steered generation and a held-out evaluation; ``demo-baseline`` runs the
unsteered steps only (no vectors, so no sidecar, and no data); ``demo-import`` imports the tour's vector from
``demo-tour-vuln.safetensors`` (exported from the tour: ``steertui vectors --export``), evaluates it as given on
pairs it was not built from, and steers two layers with it. The tests replay each with ``--check``.
Re-run this whenever the demo model or the engine's outputs change on purpose.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

C_PROMPT = "#include <string.h>\n\nvoid copy(char *dst, const char *src)\n{\n    strcpy("
PY_PROMPT = "import os\n\ndef read(name):\n    path = os.path.join(BASE, name)\n    return open("
PROMPTS = [C_PROMPT, PY_PROMPT]


def _pairs(dataset, per_cwe: int = 1, n_cwes: int = 8):
    """A small, fixed selection: the first ``per_cwe`` pairs of the first ``n_cwes`` CWEs."""
    groups = dataset.pairs_by_cwe()
    return [p for cwe in list(groups)[:n_cwes] for p in groups[cwe][:per_cwe]]


def tour(model, dataset, path: Path) -> None:
    from steertui.engine.evaluate import EvalSettings
    from steertui.engine.session import SessionRecorder

    rec = SessionRecorder.new(model, dataset, path, note="example: every step kind, demo model, builtin examples")
    pairs = _pairs(dataset, per_cwe=1)
    rec.build_vectors(pairs, name="vuln", layers=[1, 2], method="mean-diff", readout="last", seed=0,
                      split="all selected pairs (one per CWE)")
    rec.set_steering([{"vector": "vuln", "layer": 2, "alpha": 4.0, "positions": "all"}])
    rec.probe_layers()
    rec.lens(C_PROMPT, k=5, positions=[-3, -2, -1], target=_single_token(model, " dst", " src", "(", " ("))
    rec.top_tokens(PROMPTS, k=5)
    rec.generate(PROMPTS, max_new_tokens=8)
    short = sorted(pairs, key=lambda p: len(p.vulnerable.code) + len(p.patched.code))[:2]  # keeps the replay fast
    rec.evaluate(short, EvalSettings(layers=(2,), alphas=(0.0, 4.0), folds=2, kl_tokens=16, seed=0))


def baseline(model, dataset, path: Path) -> None:
    from steertui.engine.session import SessionRecorder

    rec = SessionRecorder.new(model, dataset, path, note="example: unsteered steps only, no vectors")
    rec.probe_layers(PY_PROMPT)
    rec.lens(PY_PROMPT, k=3, steering=[])
    rec.top_tokens(PROMPTS, k=8, steering=[])
    rec.generate([C_PROMPT], max_new_tokens=16, steering=[])


def imported(model, dataset, path: Path) -> None:
    """Needs ``demo-tour`` beside it: its vector, exported, is brought back in as another tool's would be."""
    import os

    from steertui.engine.evaluate import EvalSettings
    from steertui.engine.session import SessionRecorder
    from steertui.engine.session.export import export_vector, import_vector

    name = "demo-tour-vuln.safetensors"
    export_vector(path.parent / "demo-tour.toml", "vuln", path.parent / name)
    here = os.getcwd()
    os.chdir(path.parent)  # the step records the file as given: its name, beside the session
    try:
        vector = import_vector(name, model)
    finally:
        os.chdir(here)
    rec = SessionRecorder.new(model, dataset, path, note="example: a vector imported from a file, evaluated as given")
    rec.import_vectors(vector, dataset.pairs)  # the 8 pairs it was built from are left out
    kept = [p for p in _pairs(dataset, per_cwe=2) if p.id not in set(vector.pair_ids)]
    short = sorted(kept, key=lambda p: len(p.vulnerable.code) + len(p.patched.code))[:2]  # keeps the replay fast
    rec.evaluate(short, EvalSettings(layers=(2,), alphas=(0.0, 4.0), folds=2, kl_tokens=16, seed=0, vector="vuln"))
    rec.set_steering([{"vector": "vuln", "layer": 1, "alpha": 2.0, "positions": "all"},
                      {"vector": "vuln", "layer": 2, "alpha": 4.0, "positions": "all"}])
    rec.top_tokens(PROMPTS, k=5)


def _single_token(model, *candidates: str) -> str | int:
    """The first candidate that is one token of the model's tokenizer (else the id of the first's first token)."""
    for text in candidates:
        if model.token_id(text) is not None:
            return text
    return model.tokenizer(candidates[0], add_special_tokens=False)["input_ids"][0]


EXAMPLES = {"demo-tour": tour, "demo-baseline": baseline, "demo-import": imported}  # in this order


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "sessions", help="folder to write (default: sessions/)")
    parser.add_argument("--only", choices=sorted(EXAMPLES), action="append", help="record only these examples")
    args = parser.parse_args(argv)

    from steertui.engine.data import load_dataset
    from steertui.engine.model import LoadedModel
    from steertui.engine.session import sidecar_name

    model = LoadedModel.load(None, device="cpu", dtype="float32")  # "demo": the shipped model
    dataset = load_dataset("builtin")
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.only or EXAMPLES:
        path = args.out / f"{name}.toml"
        for old in (path, path.parent / sidecar_name(path)):
            old.unlink(missing_ok=True)
        start = time.perf_counter()
        EXAMPLES[name](model, dataset, path)
        print(f"{path} ({time.perf_counter() - start:.1f}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
