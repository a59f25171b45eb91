"""Train the shipped demo model ``assets/models/demo-starcoder/`` from scratch, on this machine's CPU.

A tiny StarCoder-shaped model (``GPTBigCodeForCausalLM``, multi-query attention, the module tree of
``bigcode/starcoderbase-1b``) with its own byte-level BPE tokenizer, both trained on source code any fresh
Debian + Python 3.11 machine has: the C headers under /usr/include, the C example programs under
/usr/share/doc, and the Python standard library.
Nothing is downloaded.

Reproduce (about 27 minutes on 2 CPU cores):

    .venv/bin/pip install -e '.[train]'          # the `tokenizers` package
    .venv/bin/python scripts/train_demo_model.py  # defaults reproduce the shipped model

Flags: ``--out DIR`` (default assets/models/demo-starcoder), ``--steps N``, ``--seed S``. The tokenized corpus
is cached under scripts/.corpus_cache/ (git-ignored). The script ends by loading the folder afresh and
checking every target (size, speed, loss, " Yes"/" No" single tokens, a C-looking greedy continuation):
it exits non-zero if one is missed, and writes the model card README.md only when all pass.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import random
import re
import os
import sys
import sysconfig
import time
from pathlib import Path
from typing import NamedTuple

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (AutoModelForCausalLM, AutoTokenizer, GPTBigCodeConfig, GPTBigCodeForCausalLM,
                          PreTrainedTokenizerFast)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
import synth_vulns  # noqa: E402  (the synthetic vulnerable/patched pairs, beside this script)
from steertui.engine.data import DEFAULT_CWE_NAMES, load_builtin, load_checkout  # noqa: E402
from steertui.engine.verdict import TEMPLATE  # noqa: E402  (the question exactly as the engine asks it)

CACHE = ROOT / "scripts" / ".corpus_cache"
EOT = "<|endoftext|>"
STDLIB = Path(sysconfig.get_paths()["stdlib"])
CXX = re.compile(r"^\s*(?:namespace\b|template\s*<)", re.M)
# name: (roots, glob, path parts to skip, share of the character budget, reject files matching, times repeated in
# the training stream). Headers are declarations: under 1.1% of their characters are function bodies, and a model
# trained on headers alone answers `int main(...)\n{\n` with blank lines. The C sources (.c files: the example
# programs Debian's -dev packages install under /usr/share/doc, X11's Xtrans, the stdlib's C test files) are where
# function bodies are, so they are taken whole and repeated in the training stream.
class Source(NamedTuple):
    roots: tuple[Path, ...]
    glob: str
    skip: tuple[str, ...]
    share: float
    reject: re.Pattern | None
    repeat: int


SOURCES = {
    "c": Source((Path("/usr/include"),), "*.h", ("c++",), 0.6, CXX, 1),
    "py": Source((STDLIB,), "*.py", ("site-packages", "test", "tests", "idle_test"), 0.4, None, 1),
    "c-src": Source((Path("/usr/share/doc"), Path("/usr/include"), STDLIB), "*.c", ("site-packages",), 0.1, CXX, 8),
}
SOURCE_NAMES = {"c": "C headers (`*.h`)", "py": "Python stdlib (`*.py`)", "c-src": "C sources (`*.c`)"}
TOKENIZER_SOURCES = ("c", "py")  # the BPE vocabulary is learned from these (the C sources are tokenized with it)
CORPUS_CHARS = 28_000_000  # fixed cap on the whole corpus (held-out files included)
MAX_FILE_BYTES = 200_000  # skip huge generated headers
CORPUS_SEED = 0  # file order; independent of --seed so the corpus cache is shared
HOLDOUT_MOD = 50  # a file is held out when sha1(source:relpath) % 50 == 0 (~2%)
VOCAB = 8192
# GPT-2's split regex without the English contractions and with "_" as a letter: identifiers such as
# sk_X509_new stay one pre-token (GPT-2 splits at every underscore, which made "_" 10% of all tokens).
SPLIT = r" ?[\p{L}_][\p{L}\p{N}_]*| ?\p{N}+| ?[^\s\p{L}\p{N}_]+|\s+(?!\S)|\s+"
FORCED = (" Yes", " No", " yes", " no")  # must be single tokens (the verdict slot reads them)
# 4 x 128 rather than 6 x 192: a 256-token fp32 forward must stay under 20 ms on 2 CPU threads here
# (6 x 192 measured ~28 ms, 6 x 128 ~18 ms, 4 x 128 ~14 ms on this machine's 2-core AMD EPYC).
MODEL = dict(vocab_size=VOCAB, n_positions=1024, n_embd=128, n_layer=4, n_head=4, n_inner=512, multi_query=True,
             activation_function="gelu_pytorch_tanh", tie_word_embeddings=True, bos_token_id=0, eos_token_id=0,
             pad_token_id=0, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
# 4,096 tokens per step as 32 windows of 128, each at a random position offset so that all 1024 positions are
# trained. In 300-step trials at equal tokens and time this beat 8 x 512 by 0.44 nats on held-out 512-token
# windows (a batch of 8 long windows is ~8 files), and beat 24 x 128 + 1 x 1024 even on positions 512-1023.
TRAIN = dict(batch=32, seq=128, lr=5e-3, min_lr_frac=0.1, warmup=100, weight_decay=0.1, clip=1.0)
STEPS = 1600  # ~0.75 s/step on an idle 2-core machine: ~20 min of training
# Stage 2: the verdict question. Each step holds code windows (so stage 1 is not forgotten) and QA_PAIRS synthetic
# programs asked about their own CWE in both versions (vulnerable -> " Yes", patched -> " No": the pair differs
# only in the fix, so the fix is what decides) plus QA_OTHER files asked about a CWE they are not an instance of
# (-> " No", so the answer depends on the code and the question together). The answer token's cross-entropy is
# averaged over examples (" Yes" and " No" weighing the same in total) and added with weight ANSWER_WEIGHT to the language-model loss of every token.
QA = dict(steps=920, code_batch=8, pairs=4, other=1, lr=1e-3, min_lr_frac=0.1, warmup=50, answer_weight=2.0,
          question_lm_weight=0.25,
          synth_pairs=synth_vulns.DEFAULT_COUNT, same_language_other=0.7, chunk=3,
          yes_share=0.65)
# The stage-1 model that stage 2 of the shipped folder started from (--init): sha256 prefix, commit that shipped it.
STAGE1_COMMIT = ("538aa936eebd52a5", "602786a")
# Why " Yes" weighs more than " No" in the answer loss (the card says it as it is).
YES_SHARE_NOTE = ("With equal weights (0.5/0.5; same data, 1,000 steps) the model answered ` No` to 78% of the builtin "
                  "files (yes-rate 0.22, accuracy 0.656) while it answered held-out synthetic shapes evenly (yes-rate "
                  "0.46); 14 of the 16 builtin pairs still scored the vulnerable file above the patched one. The "
                  "weight 0.65 was chosen after seeing that, to shift the prior towards ` Yes`: the builtin accuracy "
                  "below is therefore not blind to this one choice.")
ANSWERS = (" Yes", " No")
STEER_ALPHA = 1.0  # the card's steering result: alpha in units of the layer's mean residual norm
# The C prompt ends at the end of a statement line, where the next token starts the next line. A prompt ending in
# "{\n" ends on a lone "\n" token, which in training text is only ever followed by column-0 text (the pre-tokenizer
# joins a newline with the indentation after it), so any model answers it with "}", "#" or more blank lines.
C_PROMPT = "#include <stdio.h>\n\nint main(int argc, char **argv)\n{\n    int i;\n\n    for (i = 1; i < argc; i++)"
# More C prompts whose greedy continuations the card shows verbatim (not checked; the model is tiny and loops).
MORE_C_PROMPTS = ("#include <stdio.h>\n\nint main(int argc, char **argv)\n{\n",
                  "#include <stdio.h>\n#include <stdlib.h>\n\nint main(int argc, char **argv)\n{\n    FILE *fp;\n\n"
                  "    if (argc < 2)",
                  "static int\nread_header(FILE *fp, struct header *h)\n{\n    if (fread(h, sizeof(*h), 1, fp) != 1)")
PY_PROMPT = 'import os\n\n\ndef read_lines(path):\n    """Return the lines of the file at *path*."""\n'
MAX_MB, MAX_FWD_MS = 12.0, 20.0


def collect() -> dict:
    """Deterministic file selection per source: sorted list, seeded shuffle, take until the character cap.
    Exact duplicates (e.g. node's per-architecture copies of the OpenSSL headers) and C++ headers are skipped."""
    docs, stats, seen = {"train": [], "heldout": []}, {}, set()
    for name, (roots, pattern, skip, share, reject, _) in SOURCES.items():
        paths = [(root, p) for root in roots if root.is_dir() for p in sorted(root.rglob(pattern))
                 if p.is_file() and not set(skip) & set(p.relative_to(root).parts)
                 and p.resolve().is_relative_to(root.resolve())]
        random.Random(f"{CORPUS_SEED}:{name}").shuffle(paths)
        budget, chars, counts = int(CORPUS_CHARS * share), {"train": 0, "heldout": 0}, {"train": 0, "heldout": 0}
        for root, p in paths:
            if chars["train"] + chars["heldout"] >= budget:
                break
            raw = p.read_bytes()
            if not raw.strip() or len(raw) > MAX_FILE_BYTES:
                continue
            digest = hashlib.sha1(raw).digest()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                continue
            if digest in seen or (reject and reject.search(text)):
                continue
            seen.add(digest)
            rel = p.relative_to(root).as_posix() if len(roots) == 1 else p.as_posix()
            split = "heldout" if int(hashlib.sha1(f"{name}:{rel}".encode()).hexdigest(), 16) % HOLDOUT_MOD == 0 else "train"
            docs[split].append((name, rel, text))
            chars[split] += len(text)
            counts[split] += 1
        stats[name] = dict(root=", ".join(str(r) for r in roots), available=len(paths), files=counts, chars=chars)
    return dict(docs=docs, stats=stats)


def train_tokenizer(texts: list[str]) -> tuple[Tokenizer, list[str]]:
    """Byte-level BPE. Any of FORCED that BPE did not learn gets its merges appended (lowest priority) to a
    vocabulary trained that many entries smaller, so the final size is still VOCAB."""
    reserve = 0
    for _ in range(4):
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(SPLIT), behavior="isolated"),
                                                     pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=VOCAB - reserve, min_frequency=2, special_tokens=[EOT],
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        tok.train_from_iterator(texts, trainer=trainer)
        spec = json.loads(tok.to_str())
        vocab, merges, added = spec["model"]["vocab"], spec["model"]["merges"], []
        for word in FORCED:
            pieces = [t.value for t in tok.model.tokenize(word.replace(" ", "\u0120"))]
            while len(pieces) > 1:
                a, b = pieces[0], pieces[1]
                merges.append([a, b] if isinstance(merges[0], list) else f"{a} {b}")
                vocab.setdefault(a + b, len(vocab))
                added.append(f"{a} + {b}")
                pieces = [a + b] + pieces[2:]
        if len(vocab) == VOCAB:
            return Tokenizer.from_str(json.dumps(spec)), added
        reserve = len(added)
    raise RuntimeError("could not fit the forced merges into the vocabulary")


def corpus() -> dict:
    """Files, tokenizer and token streams (cached by a key over the file list and every corpus constant)."""
    sel = collect()
    key_src = json.dumps([TOKENIZER_SOURCES, [v.repeat for v in SOURCES.values()], CORPUS_CHARS, MAX_FILE_BYTES, CORPUS_SEED, HOLDOUT_MOD, VOCAB, FORCED, SPLIT, sel["stats"],
                          [(s, n, r, len(t)) for s in sel["docs"] for n, r, t in sel["docs"][s]]])
    path = CACHE / f"corpus-{hashlib.sha1(key_src.encode()).hexdigest()[:16]}.pt"
    if path.exists():
        print(f"corpus: cached {path.relative_to(ROOT)}", flush=True)
        return {**torch.load(path), "cached": True, "docs": sel["docs"]}
    t0 = time.time()
    tok, added = train_tokenizer([t for n, _, t in sel["docs"]["train"] if n in TOKENIZER_SOURCES])
    print(f"tokenizer: trained in {time.time() - t0:.0f}s, appended merges {added or 'none'}", flush=True)
    out = dict(tokenizer=tok.to_str(), added=added, stats=sel["stats"])
    for split, docs in sel["docs"].items():
        encs = tok.encode_batch([t for _, _, t in docs])
        reps = [SOURCES[n].repeat if split == "train" else 1 for n, _, _ in docs]
        ids = [i for e, k in zip(encs, reps) for _ in range(k) for i in [0] + e.ids]  # documents led by <|endoftext|>
        out[split] = torch.tensor(ids, dtype=torch.int16)
        for (name, _, _), e in zip(docs, encs):
            out["stats"][name].setdefault("tokens", {"train": 0, "heldout": 0})[split] += len(e.ids)
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save(out, path)
    print(f"corpus: tokenized in {time.time() - t0:.0f}s -> {path.relative_to(ROOT)}", flush=True)
    return {**out, "cached": False, "docs": sel["docs"]}


def windows(stream: torch.Tensor, length: int) -> torch.Tensor:
    n = (len(stream) // length) * length
    return stream[:n].view(-1, length).long()


@torch.no_grad()
def eval_loss(model, rows: torch.Tensor, bs: int = 8) -> tuple[float, torch.Tensor]:
    """Mean next-token loss (nats) over all rows, and the per-position mean."""
    model.eval()
    total = torch.zeros(rows.shape[1] - 1, dtype=torch.float64)
    for i in range(0, len(rows), bs):
        x = rows[i:i + bs]
        logits = model(input_ids=x).logits.float()
        nll = torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), x[:, 1:], reduction="none")
        total += nll.double().sum(0)
    per_pos = total / len(rows)
    return per_pos.mean().item(), per_pos


def unigram_baseline(train: torch.Tensor, rows: torch.Tensor) -> float:
    """Cross-entropy of the (add-one) training unigram distribution on the held-out targets."""
    counts = torch.bincount(train.long(), minlength=VOCAB).double() + 1.0
    logp = (counts / counts.sum()).log()
    return -logp[rows[:, 1:].reshape(-1)].mean().item()


def lr_at(step: int, steps: int, cfg: dict = TRAIN) -> float:
    """Linear warm-up, then cosine down to ``min_lr_frac`` of the peak (``cfg``: TRAIN for stage 1, QA for 2)."""
    if step < cfg["warmup"]:
        return cfg["lr"] * (step + 1) / cfg["warmup"]
    frac = (step - cfg["warmup"]) / max(1, steps - cfg["warmup"])
    lo = cfg["min_lr_frac"]
    return cfg["lr"] * (lo + (1 - lo) * 0.5 * (1 + math.cos(math.pi * frac)))


def adamw(model, lr: float) -> torch.optim.AdamW:
    """AdamW (betas 0.9/0.95) with weight decay on matrices only (none on biases and norms)."""
    groups = [{"params": [p for p in model.parameters() if (p.dim() >= 2) == d], "weight_decay": wd}
              for d, wd in ((True, TRAIN["weight_decay"]), (False, 0.0))]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))


def code_windows(stream: torch.Tensor, batch: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``batch`` windows of TRAIN["seq"] tokens at random places of the stream, each at a random position offset."""
    seq = TRAIN["seq"]
    starts = torch.randint(0, len(stream) - seq, (batch,), generator=gen)
    x = torch.stack([stream[s:s + seq] for s in starts.tolist()]).long()
    pos = torch.randint(0, MODEL["n_positions"] - seq + 1, (batch, 1), generator=gen) + torch.arange(seq)
    return x, pos


def train(model, stream: torch.Tensor, steps: int, seed: int) -> list[float]:
    opt = adamw(model, TRAIN["lr"])
    gen = torch.Generator().manual_seed(seed)
    losses, t0 = [], time.time()
    model.train()
    for step in range(steps):
        x, pos = code_windows(stream, TRAIN["batch"], gen)
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps)
        loss = model(input_ids=x, labels=x, position_ids=pos).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), TRAIN["clip"])
        opt.step()
        losses.append(loss.item())
        if (step + 1) % 50 == 0 or step + 1 == steps:
            el = time.time() - t0
            print(f"step {step + 1}/{steps}  loss {sum(losses[-50:]) / len(losses[-50:]):.3f}  "
                  f"lr {lr_at(step, steps):.2e}  {el / 60:.1f} min  eta {el / (step + 1) * (steps - step - 1) / 60:.1f} min",
                  flush=True)
    return losses


@torch.no_grad()
def forward_ms(model, rounds: int = 10) -> float:
    """Median of 20 single 256-token forwards after warm-up; the best of a few rounds (shared machines are noisy)."""
    x = torch.randint(1, VOCAB, (1, 256), generator=torch.Generator().manual_seed(0))

    def once() -> float:
        t = time.perf_counter()
        model(input_ids=x)
        return (time.perf_counter() - t) * 1000

    best = float("inf")
    for _ in range(rounds):
        [once() for _ in range(3)]  # warm-up
        best = min(best, sorted(once() for _ in range(20))[10])
        time.sleep(0.5)
    return best


def looks_like_c(text: str) -> bool:
    """At least two statements (`;`), a call or condition (`(` ... `)`), three different identifiers, three different
    non-blank lines, and not mostly blank: blank-line loops, `{\n{\n{`, `(__(__(__` and one repeated line all fail."""
    words = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", text)
    lines = {line.strip() for line in text.splitlines() if line.strip()}
    return (text.count(";") >= 2 and "(" in text and ")" in text and len(set(words)) >= 3 and len(lines) >= 3
            and len(text.strip()) >= 0.5 * len(text))


@torch.no_grad()
def greedy(model, tok, prompt: str, new: int = 40) -> str:
    ids = tok(prompt, return_tensors="pt").input_ids
    out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new, do_sample=False,
                         pad_token_id=tok.pad_token_id)
    return tok.decode(out[0, ids.shape[1]:])


def shared_dataset() -> Path:
    """The SecLLMHolmes checkout the model is measured on ($STEERTUI_DATASET, else ../shared/secllmholmes)."""
    path = Path(os.environ.get("STEERTUI_DATASET") or ROOT.parent / "shared" / "secllmholmes")
    if not (path / "datasets").is_dir():
        raise SystemExit(f"SecLLMHolmes checkout not found at {path}: set STEERTUI_DATASET to it (the training data is "
                         "checked against every file of it before training)")
    return path


def reference_texts() -> list[str]:
    """Every text file of the builtin examples and of the SecLLMHolmes checkout: what the model is measured on."""
    texts = []
    for root in (ROOT / "assets" / "examples", shared_dataset() / "datasets"):  # not LICENSE: the GPL text is in headers
        for p in sorted(root.rglob("*")):
            if p.is_file() and not p.is_symlink() and p.stat().st_size < 2_000_000:
                try:
                    texts.append(p.read_bytes().decode("utf-8"))
                except UnicodeDecodeError:
                    continue
    return texts


def check_disjoint(pairs: list, docs: list[tuple[str, str, str]], refs: list[str]) -> dict:
    """Refuse to train when any synthetic file or corpus file shares a 3-line window (60+ characters, blank lines
    dropped, whitespace normalised) with a reference file, or when a reference file is in the corpus verbatim."""
    hits = synth_vulns.overlaps(pairs, refs)
    ref_windows = set().union(*(synth_vulns.windows3(t) for t in refs))
    ref_hashes = {hashlib.sha1(" ".join(t.split()).encode()).digest() for t in refs if t.strip()}
    corpus_hits = [(f"{n}:{r}", w) for n, r, t in docs for w in synth_vulns.windows3(t) & ref_windows]
    verbatim = [f"{n}:{r}" for n, r, t in docs if hashlib.sha1(" ".join(t.split()).encode()).digest() in ref_hashes]
    if hits or corpus_hits or verbatim:
        shown = "\n  ".join(f"{i}: {w!r}" for i, w in (hits + corpus_hits)[:10])
        raise SystemExit(f"training data overlaps the evaluation files ({len(hits)} synthetic, {len(corpus_hits)} "
                         f"corpus windows, {len(verbatim)} verbatim files):\n  {shown}")
    return dict(reference_files=len(refs), reference_windows=len(ref_windows), synthetic_files=2 * len(pairs),
                corpus_files=len(docs))


def verdict_prompt(code: str, cwe: str) -> str:
    return TEMPLATE.format(code=code.rstrip("\n"), cwe_name=DEFAULT_CWE_NAMES[cwe])


def fitting(pairs: list, tok) -> list:
    """The pairs whose two versions fit the context with any CWE's question and the answer token after it."""
    longest = max(synth_vulns.CWES, key=lambda c: len(DEFAULT_CWE_NAMES[c]))
    texts = [verdict_prompt(code, longest) for p in pairs for code in (p.vulnerable, p.patched)]
    lengths = [len(ids) for ids in tok(texts)["input_ids"]]
    room = MODEL["n_positions"] - 8  # a shorter CWE name never makes a question longer
    return [p for k, p in enumerate(pairs) if max(lengths[2 * k], lengths[2 * k + 1]) <= room]


def qa_items(pairs: list, tok, seed: int) -> list[dict]:
    """Per pair: the two own-CWE questions and two other-CWE questions, tokenized once."""
    rng = random.Random(f"qa:{seed}")
    texts, meta = [], []
    for k, p in enumerate(pairs):
        same = [c for c in synth_vulns.CWES if c != p.cwe and synth_vulns.LANG[c] == p.lang]
        other = [c for c in synth_vulns.CWES if c != p.cwe and synth_vulns.LANG[c] != p.lang]
        for code, label in ((p.vulnerable, 1), (p.patched, 0)):
            texts.append(verdict_prompt(code, p.cwe))
            meta.append((k, label, True))
            wrong = rng.choice(same if same and rng.random() < QA["same_language_other"] else other)
            texts.append(verdict_prompt(code, wrong))
            meta.append((k, label, False))
    enc = tok(texts)["input_ids"]
    return [dict(pair=k, label=label, own=own, ids=ids) for (k, label, own), ids in zip(meta, enc)]


def qa_batch(items: list[dict], picks: list[int], answer_ids: tuple[int, int]):
    """Right-padded batch; labels -100 on padding; the index of the position that predicts the answer."""
    seqs = [items[i]["ids"] + [answer_ids[0] if items[i]["label"] and items[i]["own"] else answer_ids[1]]
            for i in picks]
    width = max(map(len, seqs))
    x = torch.zeros(len(seqs), width, dtype=torch.long)
    mask = torch.zeros(len(seqs), width, dtype=torch.long)
    for b, s in enumerate(seqs):
        x[b, :len(s)] = torch.tensor(s)
        mask[b, :len(s)] = 1
    labels = x.masked_fill(mask == 0, -100)
    slot = torch.tensor([len(s) - 2 for s in seqs])
    target = torch.tensor([s[-1] for s in seqs])
    return x, mask, labels, slot, target


def log_summary(path: Path) -> tuple[list[dict], float]:
    """The last stage-2 progress line of a printed training log: its 25-step running means and its minutes."""
    line = [ln for ln in path.read_text().splitlines() if ln.startswith("qa step ")][-1]
    m = re.search(r"code ([\d.]+)\s+qa-lm ([\d.]+)\s+answer ([\d.]+)\s+([\d.]+) min", line)
    return [dict(code=float(m[1]), qa_lm=float(m[2]), answer=float(m[3]))], float(m[4])


def train_qa(model, stream: torch.Tensor, items: list[dict], n_pairs: int, answer_ids: tuple[int, int], steps: int,
             seed: int) -> list[dict]:
    opt = adamw(model, QA["lr"])
    gen = torch.Generator().manual_seed(seed + 1)
    rng = random.Random(f"qa-steps:{seed}")
    by_pair: dict[int, list[int]] = {}
    for i, it in enumerate(items):
        by_pair.setdefault(it["pair"], []).append(i)
    log, t0 = [], time.time()
    model.train()
    for step in range(steps):
        xc, pos = code_windows(stream, QA["code_batch"], gen)
        picks = []
        for k in rng.sample(range(n_pairs), QA["pairs"]):  # both versions, asked about their own CWE
            picks += [i for i in by_pair[k] if items[i]["own"]]
        for k in rng.sample(range(n_pairs), QA["other"]):  # one version, asked about another CWE
            picks.append(rng.choice([i for i in by_pair[k] if not items[i]["own"]]))
        for g in opt.param_groups:
            g["lr"] = lr_at(step, steps, QA)
        code_loss = model(input_ids=xc, labels=xc, position_ids=pos).loss
        # The questions run in chunks of similar length (less padding than one batch padded to the longest file);
        # the losses are the same as one batch's: token losses summed over all chunks, then averaged.
        picks.sort(key=lambda i: len(items[i]["ids"]))
        lm_sum, lm_count, per, targets = 0.0, 0, [], []
        for c in range(0, len(picks), QA["chunk"]):
            x, mask, labels, slot, target = qa_batch(items, picks[c:c + QA["chunk"]], answer_ids)
            logits = model(input_ids=x, attention_mask=mask).logits
            shifted = labels[:, 1:]
            lm_sum = lm_sum + torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), shifted.flatten(),
                                                                ignore_index=-100, reduction="sum")
            lm_count += int((shifted != -100).sum())
            per.append(torch.nn.functional.cross_entropy(logits[torch.arange(len(target)), slot], target,
                                                         reduction="none"))
            targets.append(target)
        qa_lm = lm_sum / lm_count
        per, target = torch.cat(per), torch.cat(targets)
        # the " Yes" examples of a step weigh QA["yes_share"] of its answer loss in total, the " No" ones the rest
        is_yes = target == answer_ids[0]
        weight = torch.where(is_yes, QA["yes_share"] / is_yes.sum().clamp_min(1),
                             (1 - QA["yes_share"]) / (~is_yes).sum().clamp_min(1))
        answer_loss = (per * weight).sum()
        loss = code_loss + QA["question_lm_weight"] * qa_lm + QA["answer_weight"] * answer_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), TRAIN["clip"])
        opt.step()
        log.append(dict(code=code_loss.item(), qa_lm=qa_lm.item(), answer=answer_loss.item()))
        if (step + 1) % 25 == 0 or step + 1 == steps:
            last = log[-25:]
            el = time.time() - t0
            print(f"qa step {step + 1}/{steps}  code {sum(d['code'] for d in last) / len(last):.3f}  "
                  f"qa-lm {sum(d['qa_lm'] for d in last) / len(last):.3f}  "
                  f"answer {sum(d['answer'] for d in last) / len(last):.3f}  {el / 60:.1f} min  "
                  f"eta {el / (step + 1) * (steps - step - 1) / 60:.1f} min", flush=True)
    return log


@torch.no_grad()
def answer_metrics(model, tok, files: list[tuple[str, str, int]], answer_ids: tuple[int, int]) -> dict:
    """files: (code, cwe, label). Unsteered p(" Yes"), p(" No") at the answer slot of the engine's prompt:
    answer mass, accuracy of the plain Yes/No argmax, yes-rate, and how many prompts did not fit the context."""
    model.eval()
    mass, correct, yes, too_long = [], 0, 0, 0
    for code, cwe, label in files:
        ids = tok(verdict_prompt(code, cwe), return_tensors="pt").input_ids
        if ids.shape[1] > MODEL["n_positions"]:
            too_long += 1
            ids = ids[:, -MODEL["n_positions"]:]
        probs = model(input_ids=ids).logits[0, -1].float().softmax(-1)
        py, pn = probs[answer_ids[0]].item(), probs[answer_ids[1]].item()
        mass.append(py + pn)
        yes += py > pn
        correct += (py > pn) == bool(label)
    n = max(len(files), 1)
    return dict(n=len(files), answer_mass=sum(mass) / n, accuracy=correct / n, yes_rate=yes / n, too_long=too_long)


def measured_parts(held: list) -> dict[str, list[tuple[str, str, int]]]:
    """The files the card reports on: held-out synthetic shapes (own CWE, and another CWE's question), the builtin
    examples, and SecLLMHolmes' hand-crafted part."""
    rng = random.Random("card")
    sample = rng.sample(held, min(len(held), 120))
    other = [(p.vulnerable, rng.choice([c for c in synth_vulns.CWES if c != p.cwe]), 0) for p in sample[:60]]
    builtin = load_builtin()
    hand = load_checkout(shared_dataset()).select(parts=["hand-crafted"])
    return {
        "held-out synthetic shapes": [(c, p.cwe, y) for p in sample for c, y in ((p.vulnerable, 1), (p.patched, 0))],
        "held-out synthetic, another CWE's question (all No)": other,
        "builtin examples": [(s.code, s.cwe, s.label_int) for s in builtin.samples],
        "SecLLMHolmes hand-crafted": [(s.code, s.cwe, s.label_int) for s in hand.samples],
    }


def steering_results(out: Path, held: list) -> dict:
    """Per part: the best layer by the vectors' held-out AUROC, and at that layer the held-out direction effect
    of `steertui eval --layers all --alpha-scale residual --alpha=-A,0,A` (3 folds by pair)."""
    import tempfile

    from steertui.engine.build import build_vectors
    from steertui.engine.evaluate import EvalSettings, direction_effect, evaluate
    from steertui.engine.model import LoadedModel
    from steertui.engine.vectors import best_layer

    loaded = LoadedModel.load(str(out), device="cpu", dtype="float32")
    parts = {}
    with tempfile.TemporaryDirectory() as tmp:
        synth = load_checkout(synth_vulns.write_checkout(held, Path(tmp), per_cwe=6)).select(parts=["hand-crafted"])
        sources = {"held-out synthetic shapes": synth, "builtin examples": load_builtin(),
                   "SecLLMHolmes hand-crafted": load_checkout(shared_dataset()).select(parts=["hand-crafted"])}
        for name, ds in sources.items():
            pairs = list(ds.pairs)
            diags = build_vectors(loaded, pairs, seed=0).diagnostics
            best = best_layer(diags)
            settings = EvalSettings(layers=tuple(range(loaded.n_layers)), alphas=(-STEER_ALPHA, 0.0, STEER_ALPHA),
                                    alpha_scale="residual", folds=3, seed=0)
            result = evaluate(loaded, pairs, settings)
            e = direction_effect(result.files, best.layer, STEER_ALPHA)
            row = next(r for r in result.rows if r.layer == best.layer and r.alpha == STEER_ALPHA and r.cwe == "all")
            parts[name] = dict(pairs=len(pairs), layer=best.layer, auroc=best.auroc_pairs or float("nan"), up=e.up,
                               up_random=e.up_random, down=e.down, down_random=e.down_random, flip=row.flip_rate,
                               flip_random=row.random_flip_rate, kl=row.kl)
            print(f"steering, {name}: {parts[name]}", flush=True)
    return dict(alpha=STEER_ALPHA, folds=3, parts=parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "assets" / "models" / "demo-starcoder")
    ap.add_argument("--steps", type=int, default=STEPS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--qa-steps", type=int, default=QA["steps"])
    ap.add_argument("--init", type=Path, default=None,
                    help="skip stage 1: start stage 2 from this saved stage-1 model folder (same tokenizer)")
    ap.add_argument("--card-only", action="store_true",
                    help="do not train: evaluate the model already in --out and (re)write its card, "
                         "listing any missed target in it")
    ap.add_argument("--log", type=Path, default=None,
                    help="with --card-only: the printed log of the run that trained --out, for the card's stage-2 "
                         "losses and time (and --init for its stage-1 weights)")
    args = ap.parse_args()
    t_start = time.time()
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)

    data = corpus()
    heldout = windows(data["heldout"], 512)
    train_rows = windows(data["train"], 512)
    train_rows = train_rows[torch.randperm(len(train_rows), generator=torch.Generator().manual_seed(1))[:128]]
    for name, s in data["stats"].items():
        print(f"{name}: {s['files']} files, {s['chars']} chars, {s['tokens']} tokens (of {s['available']} files)")

    pairs = synth_vulns.generate(QA["synth_pairs"], args.seed)
    qa_train, qa_held = synth_vulns.split(pairs)
    t_check = time.time()
    disjoint = check_disjoint(pairs, [d for split in data["docs"].values() for d in split], reference_texts())
    print(f"disjoint from the evaluation files: {disjoint} ({time.time() - t_check:.0f}s)", flush=True)
    tok_obj = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(data["tokenizer"]), bos_token=EOT,
                                      eos_token=EOT, unk_token=EOT, pad_token=EOT,
                                      model_max_length=MODEL["n_positions"], clean_up_tokenization_spaces=False)
    answer_ids = tuple(tok_obj.encode(a, add_special_tokens=False)[0] for a in ANSWERS)
    fit = fitting(qa_train, tok_obj)
    print(f"stage 2: {len(qa_train) - len(fit)} of {len(qa_train)} training pairs do not fit the context with "
          "the question; left out", flush=True)
    qa_train = fit
    stage1_min, qa_log, qa_min, init_sha = float("nan"), [], float("nan"), None
    if args.card_only:
        model = AutoModelForCausalLM.from_pretrained(args.out, dtype=torch.float32).eval()
        n_params = sum(p.numel() for p in model.parameters())
        losses, train_min = [float("nan")], float("nan")
        if args.log is not None:
            qa_log, qa_min = log_summary(args.log)
        if args.init is not None:
            init_sha = hashlib.sha256((args.init / "model.safetensors").read_bytes()).hexdigest()
    else:
        if args.init is not None:  # stage 1 already done: its saved (fp16) weights
            init_sha = hashlib.sha256((args.init / "model.safetensors").read_bytes()).hexdigest()
            model = AutoModelForCausalLM.from_pretrained(args.init, dtype=torch.float32)
            if json.loads(Tokenizer.from_file(str(args.init / "tokenizer.json")).to_str())["model"]["vocab"] != \
                    json.loads(data["tokenizer"])["model"]["vocab"]:
                raise SystemExit(f"{args.init} has another tokenizer than this corpus'")
            n_params = sum(p.numel() for p in model.parameters())
            losses = [float("nan")]
            print(f"stage 1: loaded {args.init} (sha256 {init_sha[:16]})", flush=True)
        else:
            model = GPTBigCodeForCausalLM(GPTBigCodeConfig(**MODEL))
            n_params = sum(p.numel() for p in model.parameters())
            print(f"model: {n_params:,} parameters; stage 1: {args.steps} steps of code", flush=True)
            t_train = time.time()
            losses = train(model, data["train"], args.steps, args.seed)
            stage1_min = (time.time() - t_train) / 60
            model.half().float()  # stage 2 starts from the fp16-rounded weights, as from a saved stage 1
        items = qa_items(qa_train, tok_obj, args.seed)
        print(f"stage 2: {len(qa_train)} synthetic pairs ({len(items)} questions), {args.qa_steps} steps", flush=True)
        t_qa = time.time()
        qa_log = train_qa(model, data["train"], items, len(qa_train), answer_ids, args.qa_steps, args.seed)
        qa_min = (time.time() - t_qa) / 60
        train_min = (stage1_min if stage1_min == stage1_min else 0.0) + qa_min

        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "README.md").unlink(missing_ok=True)  # the card is written only once every check passes
        model.half().save_pretrained(args.out)  # evaluate exactly the shipped (fp16-rounded) weights, in float32
        model.float()
        cfg_path = args.out / "config.json"  # fp16 on disk, but a plain from_pretrained gives float32 on CPU
        cfg_path.write_text(json.dumps({**json.loads(cfg_path.read_text()), "dtype": "float32"}, indent=2) + "\n")
        tok_obj.save_pretrained(args.out)
    train_loss, _ = eval_loss(model, train_rows)
    held_loss, _ = eval_loss(model, heldout)
    _, long_pos = eval_loss(model, windows(data["heldout"], MODEL["n_positions"]))
    first, second = long_pos[:511].mean().item(), long_pos[511:].mean().item()
    uni = unigram_baseline(data["train"], heldout)
    print(f"train loss {train_loss:.3f}  held-out {held_loss:.3f}  unigram {uni:.3f}  "
          f"1024-windows: positions 1-511 {first:.3f}, 512-1023 {second:.3f}", flush=True)

    ref_loss, _ = eval_loss(model, heldout[:32])

    # --- verification from a fresh load ---
    model = AutoModelForCausalLM.from_pretrained(args.out, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(args.out)
    failures = []
    ids = {w: tok.encode(w, add_special_tokens=False) for w in FORCED}
    failures += [f"{w!r} is not one token: {i}" for w, i in ids.items() if len(i) != 1]
    sample = C_PROMPT + PY_PROMPT + "\tx = y->z;  /* é */\r\n"
    if tok.decode(tok.encode(sample, add_special_tokens=False)) != sample:
        failures.append("tokenizer does not round-trip source code")
    if AutoModelForCausalLM.from_pretrained(args.out).dtype != torch.float32:
        failures.append("a plain from_pretrained does not load float32")
    reload_loss, _ = eval_loss(model, heldout[:32])
    c_text, py_text = greedy(model, tok, C_PROMPT), greedy(model, tok, PY_PROMPT)
    more = [(prompt, greedy(model, tok, prompt)) for prompt in MORE_C_PROMPTS]
    fwd = forward_ms(model)
    print(f"C continuation: {c_text!r}\nPython continuation: {py_text!r}\nforward 256 tokens: {fwd:.1f} ms")
    if not looks_like_c(c_text):
        failures.append("the C continuation does not look like C")
    if fwd >= MAX_FWD_MS:
        failures.append(f"256-token forward {fwd:.1f} ms >= {MAX_FWD_MS} ms")
    if not held_loss < uni - 1.0:
        failures.append(f"held-out loss {held_loss:.3f} is not well below the unigram baseline {uni:.3f}")
    if second > first + 0.5:  # attention spans more keys than in training; garbage would be ~unigram or worse
        failures.append(f"positions 512-1023 are worse than 1-511 ({second:.3f} vs {first:.3f})")
    if abs(reload_loss - ref_loss) > 1e-3:
        failures.append("the saved folder does not reproduce the trained model")
    t_m = time.time()
    answers = {name: answer_metrics(model, tok, files, answer_ids) for name, files in measured_parts(qa_held).items()}
    for name, m in answers.items():
        print(f"{name}: {m}", flush=True)
    print(f"answer metrics in {time.time() - t_m:.0f}s", flush=True)
    b = answers["builtin examples"]
    if b["answer_mass"] < 0.9:
        failures.append(f"answer mass on the builtin examples {b['answer_mass']:.3f} < 0.9")
    if b["accuracy"] < 0.75:
        failures.append(f"Yes/No accuracy on the builtin examples {b['accuracy']:.3f} < 0.75")
    if failures and not args.card_only:
        raise SystemExit("TARGETS MISSED:\n  " + "\n  ".join(failures))
    t_s = time.time()
    steering = steering_results(args.out, qa_held)
    print(f"steering results in {time.time() - t_s:.0f}s", flush=True)

    wall = (time.time() - t_start) / 60
    write_card(args, data, dict(n_params=n_params, train_loss=train_loss, held_loss=held_loss, uni=uni, first=first,
                                second=second, fwd=fwd, c_text=c_text, py_text=py_text, train_min=train_min,
                                wall=wall, ids={w: i[0] for w, i in ids.items()}, last=sum(losses[-50:]) / 50,
                                heldout_rows=len(heldout), missed=failures, more=more, answers=answers,
                                disjoint=disjoint, qa_log=qa_log, qa_min=qa_min, stage1_min=stage1_min,
                                init_sha=init_sha, synth=(len(pairs), len(qa_train), len(qa_held)),
                                steering=steering))
    size_mb = sum(f.stat().st_size for f in args.out.iterdir()) / 1e6
    print(f"folder {args.out}: {size_mb:.2f} MB; wall-clock {wall:.1f} min")
    if size_mb > MAX_MB:
        raise SystemExit(f"TARGETS MISSED:\n  folder is {size_mb:.2f} MB > {MAX_MB} MB")


def more_section(more: list[tuple[str, str]]) -> str:
    blocks = "\n".join(f"```\n{prompt}{text}\n```" for prompt, text in more)
    return ("\nThe same for more C prompts (shown, not checked). The prompt ending in a lone `\\n` is the tokenizer trap "
            f"described in the script:\n{blocks}\n")


def _missed_section(r: dict) -> str:
    if not r.get("missed"):
        return ""
    lines = "\n".join(f"- {m}" for m in r["missed"])
    return ("\n## Targets missed by this model\nThe card was written with `--card-only` from the saved folder; "
            f"these checks of the script did not pass:\n{lines}\n")


def _where(roots: str) -> str:
    """Corpus folders as a reader finds them on any machine: the interpreter's standard library by name, not by
    the install path of the machine that trained the model."""
    return ", ".join("the Python standard library (`sysconfig.get_paths()['stdlib']`)" if r == str(STDLIB) else f"`{r}`"
                     for r in roots.split(", "))


def stage1_note(args, r: dict) -> str:
    if r.get("init_sha"):
        where = (f"the demo model of commit {STAGE1_COMMIT[1]}" if r["init_sha"].startswith(STAGE1_COMMIT[0])
                 else f"`{args.init.name}`")
        return (f"For this folder, stage 1 was not run again: stage 2 started from {where} "
                f"(`model.safetensors` sha256 `{r['init_sha'][:16]}...`), an earlier demo model, which is this stage 1 "
                "(same corpus, tokenizer, steps and seed) saved in fp16; that run took 24.4 min of training on this "
                "machine. A run without `--init` does both stages.")
    return f"Stage 1 took {r['stage1_min']:.1f} min."


def synth_note(r: dict) -> str:
    n, tr, held = r["synth"]
    shapes = sum(len(v) for v in synth_vulns.SHAPES.values())
    return (f"Synthetic programs from `scripts/synth_vulns.py` (seeded): {n:,} distinct vulnerable/patched pairs for the eight "
            f"SecLLMHolmes CWEs in {shapes} program shapes (C for CWE-22, 77, 190, 416, 476, 787; Python for 79 and 89), "
            "each shape filled with drawn names, constants, messages and fix styles and surrounded by a drawn amount of "
            f"unrelated code. Two shapes per CWE are held out ({'; '.join(f'{c}: ' + ', '.join(s) for c, s in synth_vulns.HELDOUT_SHAPES.items())}): "
            f"{tr:,} pairs train, {held:,} are never seen"
            + (f", {n - tr - held} training pairs are left out because a question about them would not fit the "
               "context." if n - tr - held else "."))


def _wall(args, r: dict, data: dict) -> str:
    if args.card_only:
        return ("this card was written afterwards from the saved folder by `--card-only` (checks, losses and results "
                "below are from that run; stage-2 figures from the training run's log)")
    return f"the whole script {r['wall']:.1f} min (corpus cache {'warm' if data['cached'] else 'cold'})"


def _last(r: dict, key: str) -> str:
    last = r["qa_log"][-25:]
    return f"{sum(d[key] for d in last) / len(last):.3f}" if last else "n/a"


def answers_table(r: dict) -> str:
    rows = "\n".join(f"| {name} | {m['n']} | {m['answer_mass']:.3f} | {m['accuracy']:.3f} | {m['yes_rate']:.3f} |"
                     for name, m in r["answers"].items())
    return "| files | n | answer mass | accuracy | yes-rate |\n|---|---|---|---|---|\n" + rows


def steering_section(r: dict) -> str:
    st = r.get("steering")
    if not st:
        return ""
    rows = "\n".join(
        f"| {name} | {e['pairs']} | {e['layer']} | {e['auroc']:.2f} | {e['up']:+.2f} / {e['up_random']:+.2f} | "
        f"{e['down']:+.2f} / {e['down_random']:+.2f} | {e['flip']:.2f} / {e['flip_random']:.2f} | {e['kl']:.4f} |"
        for name, e in st["parts"].items())
    return (f"\n### Steering (`steertui eval --layers all --alpha-scale residual --alpha=-{st['alpha']:g},0,{st['alpha']:g}`, "
            f"{st['folds']} folds by pair)\n"
            "Vectors (mean difference, last token) and thresholds are fit on each fold's training pairs; every number "
            "is from held-out files. Layer: the best by the vectors' held-out AUROC (by pair). Up: the yes-rate of "
            f"patched files at +{st['alpha']:g} minus unsteered; down: the yes-rate of vulnerable files, unsteered minus at "
            f"-{st['alpha']:g}; each for the vector / a random vector of equal norm. Flips: the flip rate over all files at "
            f"+{st['alpha']:g}, vector / random. KL: mean per-token KL(steered || unsteered) on neutral code at +{st['alpha']:g}.\n\n"
            "| files | pairs | layer | AUROC | up | down | flips | KL |\n|---|---|---|---|---|---|---|---|\n" + rows + "\n")


def write_card(args, data: dict, r: dict) -> None:
    st, added = data["stats"], data["added"]
    total_tok = sum(s["tokens"]["train"] * SOURCES[n].repeat for n, s in st.items())  # the stream, repeats included
    src_share = st["c-src"]["tokens"]["train"] * SOURCES["c-src"].repeat / total_tok
    how = (f"BPE did not learn every one of them from the corpus, so the merges {', '.join(f'`{m}`' for m in added)} "
           f"were appended after training (lowest priority, trained vocabulary made {len(added)} smaller so the total "
           "stays 8192); `Yes`/`No` still merge by ordinary BPE rules everywhere else."
           if added else "all four arose as ordinary BPE merges from the corpus (docstrings and comments).")
    held_files = sum(s["files"]["heldout"] for s in st.values())
    held_frac = sum(s["chars"]["heldout"] for s in st.values()) / sum(sum(s["chars"].values()) for s in st.values())
    size_wo_card = sum(f.stat().st_size for f in args.out.iterdir() if f.name != "README.md") / 1e6
    corpus_rows = "\n".join(
        f"| {SOURCE_NAMES[n]} | {_where(s['root'])} | {s['files']['train']} / {s['files']['heldout']} "
        f"| {s['chars']['train'] + s['chars']['heldout']:,} | {s['tokens']['train']:,} / {s['tokens']['heldout']:,} "
        f"| {SOURCES[n].repeat} |"
        for n, s in st.items())
    cfg = ", ".join(f"{k}={MODEL[k]}" for k in ("vocab_size", "n_positions", "n_embd", "n_layer", "n_head", "n_inner",
                                                "multi_query", "activation_function", "tie_word_embeddings"))
    card = f"""# demo-starcoder

A tiny StarCoder-shaped code model shipped with steertui so the console works offline. It answers the\nSecLLMHolmes zero-shot question with ` Yes` or ` No`, so that steering has a verdict to move. It is trained from scratch
by `scripts/train_demo_model.py` (`--steps {args.steps} --seed {args.seed}`); the weights are free to use.
It is a demo: it writes C- and Python-looking text, not correct programs.

## Architecture
`GPTBigCodeForCausalLM` with multi-query attention, the module tree of `bigcode/starcoderbase-1b`
(`transformer.wte`, `transformer.wpe`, `transformer.h[i].{{ln_1, attn.{{c_attn, c_proj}}, ln_2, mlp.{{c_fc, c_proj}}}}`,
`transformer.ln_f`, `lm_head`). Config: {cfg}; bos/eos/pad/unk `<|endoftext|>` = id 0.
Parameters: {r['n_params']:,} (embeddings tied). Weights stored as fp16 safetensors; `config.json` says
`dtype: float32`, so `from_pretrained(folder)` (or `dtype=torch.float32`) gives a float32 model.

## Corpus
Source code any Debian + Python 3.11 machine has; nothing downloaded. Files are listed sorted, shuffled with a fixed
seed, and taken until each source's share of a cap of {CORPUS_CHARS:,} characters: C headers 60%, Python 40%, and
C sources up to 10% (there are fewer than that, so all are taken). Files over {MAX_FILE_BYTES:,} bytes, empty files and
files that are not UTF-8 are skipped; Python `test`, `tests`, `idle_test` folders and every `site-packages` are
excluded (the Python folder is `sysconfig.get_paths()["stdlib"]`); byte-identical duplicates (node's per-architecture
copies of the OpenSSL headers) are taken once; C++ (`c++/`, and files with a line starting `namespace` or
`template <`) is skipped. Held out: every file whose `sha1("<source>:<path>") % 50 == 0` (path relative to the
source's folder when it has one folder), here {held_files} files, {held_frac:.1%} of the characters.

Headers are mostly declarations (about 1% of their characters are function bodies), so a model trained on them
alone answers `{{` after a function signature with blank lines. The C sources are the function bodies: the example
programs that Debian's `-dev` packages install under `/usr/share/doc`, X11's `Xtrans` `.c` files, and the C test
files of the Python standard library. They are repeated in the training stream (last column), so that
{src_share:.0%} of the training stream is C sources.

| source | folders | files train / held-out | characters | tokens train / held-out | times in the training stream |
|---|---|---|---|---|---|
{corpus_rows}

## Tokenizer
Byte-level BPE (`tokenizers`) trained on the training files, vocabulary {VOCAB}, `model_max_length` {MODEL['n_positions']}.
Pre-tokenizer: GPT-2's split regex with `_` counted as a letter (identifiers such as `sk_X509_new` stay whole; GPT-2
splits at every underscore) and without the English contractions, then the byte-level map; no normalization and no
prefix space, so decoding round-trips source code exactly.
Single-token answers: `" Yes"` = {r['ids'][' Yes']}, `" No"` = {r['ids'][' No']}, `" yes"` = {r['ids'][' yes']},
`" no"` = {r['ids'][' no']}; {how}

## Training, stage 1: code
{args.steps} steps of AdamW (betas 0.9/0.95, weight decay {TRAIN['weight_decay']}, peak lr {TRAIN['lr']}, {TRAIN['warmup']} warm-up
steps then cosine to {TRAIN['min_lr_frac']:g}x, gradient clip {TRAIN['clip']}), 4,096 tokens per step in random windows
of the training stream ({total_tok:,} tokens, documents separated by `<|endoftext|>`; about
{args.steps * 4096 / total_tok:.1f} epochs) as {TRAIN['batch']} windows of {TRAIN['seq']} tokens, each placed at a random position offset in
0..{MODEL['n_positions'] - TRAIN['seq']} (randomized positions), so every position up to {MODEL['n_positions'] - 1} is trained. In 300-step trials at equal
tokens and time, this beat 8 x 512 windows (a batch of ~8 files) by 0.44 nats on held-out 512-token windows, and
beat 24 x 128 plus 1 x 1024 per step even on positions 512-1023. `torch.manual_seed({args.seed})`, 2 CPU threads, no
dropout. The stage-1 weights are rounded to fp16 (as a saved folder is) before stage 2.
{stage1_note(args, r)}

## Training, stage 2: the verdict question
{synth_note(r)}

{args.qa_steps} steps of AdamW (peak lr {QA['lr']}, {QA['warmup']} warm-up steps then cosine to {QA['min_lr_frac']:g}x, the same betas, weight
decay and clip). Each step holds {QA['code_batch']} code windows of {TRAIN['seq']} tokens from the stage-1 stream (so the code is not
forgotten), {QA['pairs']} synthetic programs asked about their own CWE in both versions (vulnerable: ` Yes`, patched:
` No`; the two differ only in the fix, so the fix decides) and {QA['other']} synthetic files asked about a CWE they are
not an instance of (` No`; {QA['same_language_other']:.0%} of those questions name a CWE of the same language, so that the answer
depends on the code and the question together). Every question is laid out exactly as `steertui` asks it
(`engine/verdict.py`: `<code>\\n\\nQuestion: Does this code contain instances of the security vulnerability known
as <CWE name>?\\nAnswer:`), right-padded, from position 0. The loss is the code windows' language-model loss, plus
{QA['question_lm_weight']:g} x the questions' language-model loss over all their tokens (low, so that the synthetic programs do not
crowd out the stage-1 code), plus {QA['answer_weight']:g} x the cross-entropy of the answer token
(over the whole vocabulary, so the answer mass moves onto ` Yes`/` No`; the ` Yes` examples of a step weigh
{QA['yes_share']:g} of it in total and the ` No` examples {1 - QA['yes_share']:g}). {YES_SHARE_NOTE} The questions of a step run in chunks of
{QA['chunk']} of similar length (the same losses as one padded batch, less padding). Stage 2 took {r['qa_min']:.1f} min; {_wall(args, r, data)}.
Last 25 steps (running means): code {_last(r, 'code')}, question tokens {_last(r, 'qa_lm')}, answer {_last(r, 'answer')}.

Before training, the script checks that no synthetic file and no corpus file shares a window of 3 consecutive
non-blank, whitespace-normalised lines holding 60+ characters with any text file of the builtin examples or of the
SecLLMHolmes `datasets/` folder (the model is measured on both), and that no corpus file equals one of them: here
{r['disjoint']['reference_files']} reference files ({r['disjoint']['reference_windows']:,} windows) against
{r['disjoint']['synthetic_files']:,} synthetic and {r['disjoint']['corpus_files']:,} corpus files, no overlap.

## Results (nats per token)
| | loss |
|---|---|
| train (last 50 steps, running) | {r['last']:.3f} |
| train (eval, 128 random 512-token windows) | {r['train_loss']:.3f} |
| held-out ({r['heldout_rows']} windows of 512 tokens) | **{r['held_loss']:.3f}** |
| unigram baseline: training unigram distribution (add-one) as cross-entropy on the same held-out tokens | {r['uni']:.3f} |
| uniform chance, ln {VOCAB} | {math.log(VOCAB):.3f} |
| held-out 1024-token windows: positions 1-511 / 512-1023 | {r['first']:.3f} / {r['second']:.3f} |

One 256-token forward in float32 on 2 CPU threads (`torch.no_grad`, median of 20 after warm-up, best of 10 rounds):
{r['fwd']:.1f} ms. Size on disk: {size_wo_card:.2f} MB without this card.

## The verdict (from the saved folder)
Unsteered, at the answer slot of the question above, never-trained files only. Answer mass: mean p(` Yes`) +
p(` No`); accuracy: the plain argmax of the two against the label; yes-rate: share answered ` Yes`.

{answers_table(r)}
{steering_section(r)}
## Greedy continuations (40 new tokens, from the saved folder, verbatim)
C prompt `{C_PROMPT!r}` continues as:
```
{C_PROMPT}{r['c_text']}
```
Python prompt `{PY_PROMPT!r}` continues as:
```
{PY_PROMPT}{r['py_text']}
```
{more_section(r['more'])}{_missed_section(r)}
## License
Trained by `scripts/train_demo_model.py`; the weights are free to use. Reproduce with
`.venv/bin/python scripts/train_demo_model.py` (needs the `train` extra, i.e. `tokenizers`).
"""
    (args.out / "README.md").write_text(card)


if __name__ == "__main__":
    main()
