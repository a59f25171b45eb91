"""Speed and memory of steertui's engine against plain transformers, in the same process.

Every row times steertui's way of doing one job and a plain-transformers baseline of the same job, interleaved
(steertui, baseline, steertui, baseline, ...) after one warm-up call of each, and reports both medians and their
ratio: the ratio is the figure, because absolute times on a shared machine move with its load. Each row also
checks that the baseline really did the same work (the same generated ids, the same logits, the same hidden
states) and says how close the two came.

Every baseline runs the same HF model as plain transformers: nnsight's per-module ``forward`` wrappers are
taken off for the call and put back afterwards (:func:`bare`), so it pays nothing for nnsight.

Peak memory of one call (the last timed one of each side): on CUDA ``torch.cuda.max_memory_allocated`` above
what was allocated when the call started; on Linux CPU the process's resident-set high-water mark (``VmHWM``,
reset through ``/proc/self/clear_refs`` after ``gc.collect()`` and ``malloc_trim(0)``) above the resident set
when the call started; elsewhere it is not measured (``None``).

``build_shape`` builds a randomly initialised model with the configuration of a published checkpoint (no
weights, no download) and the shipped demo tokenizer, whose ids are all valid in the larger vocabulary.
"""

from __future__ import annotations

import ctypes
import gc
import os
import platform
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from steertui.atomic import finite_json
from steertui.errors import SteertuiError

if TYPE_CHECKING:  # pragma: no cover
    from steertui.engine.data import Pair
    from steertui.engine.model import LoadedModel

# Published configurations that --shape builds with random weights.
SHAPES: dict[str, dict[str, Any]] = {
    "starcoderbase-1b": {  # bigcode/starcoderbase-1b config.json
        "model_type": "gpt_bigcode", "vocab_size": 49152, "n_positions": 8192, "n_embd": 2048, "n_layer": 24,
        "n_head": 16, "n_inner": 8192, "multi_query": True, "activation_function": "gelu_pytorch_tanh",
        "layer_norm_epsilon": 1e-5, "attention_softmax_in_fp32": True, "scale_attention_softmax_in_fp32": True,
        "scale_attn_weights": True, "initializer_range": 0.02, "bos_token_id": 0, "eos_token_id": 0,
        "pad_token_id": 0,
    },
    "starcoderbase-7b": {  # bigcode/starcoderbase-7b config.json: 7.3 B parameters, 27.3 GiB in float32
        "model_type": "gpt_bigcode", "vocab_size": 49152, "n_positions": 8192, "n_embd": 4096, "n_layer": 42,
        "n_head": 32, "n_inner": 16384, "multi_query": True, "activation_function": "gelu",
        "layer_norm_epsilon": 1e-5, "attention_softmax_in_fp32": True, "scale_attention_softmax_in_fp32": True,
        "scale_attn_weights": True, "initializer_range": 0.02, "bos_token_id": 0, "eos_token_id": 0,
        "pad_token_id": 0,
    },
}
FLOOR_MIN_BYTES = 256 * 2**20  # below this, weights stay in caches and a bandwidth floor means nothing

GEN_TOKENS = 64  # new tokens per generation row
LENS_WINDOW = 16  # positions of the logit-lens rows
CONTINUATION_TOKENS = 32  # new tokens per side of the continuation-reading row (the console's `g`)
ALPHA = 4.0  # steering coefficient of every steered row (a unit vector at the middle layer)

Progress = Callable[[str], None]


# ---- rows --------------------------------------------------------------------------------------------------
@dataclass
class BenchRow:
    """One measured job: steertui's median time against its baseline's, and what each call peaked at."""

    name: str
    model: str
    tokens: int  # what the row's unit of work holds (its ``unit`` says what is counted)
    median_s: float
    baseline_s: float
    target: float | None  # the ratio the row should stay at or under (None: reported, no target)
    peak_mem_mb: float | None  # steertui's call (see the module docstring for how it is measured)
    baseline_peak_mem_mb: float | None
    steertui: str  # what was timed, in words
    baseline: str
    check: str  # how the baseline was shown to do the same work, with the measured difference
    check_ok: bool
    unit: str = ""
    repeats: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    times: list[float] = field(default_factory=list)  # every timed run, in order
    base_times: list[float] = field(default_factory=list)
    target_s: float | None = None  # an absolute target for ``median_s`` (the console's event-loop gap)
    forwards: int | None = None  # model forwards the row's steertui call makes, each reading every weight once
    floor_s: float | None = None  # forwards × weight bytes ÷ measured bandwidth (see :func:`attach_floors`)

    @property
    def ratio(self) -> float:
        return self.median_s / self.baseline_s if self.baseline_s > 0 else float("inf")

    @property
    def min_ratio(self) -> float | None:
        """The fastest steertui run over the fastest baseline run: less moved by other processes than the
        medians, shown beside the ratio as a reading of the noise (the ratio of medians is the figure)."""
        if not self.times or not self.base_times or min(self.base_times) <= 0:
            return None
        return min(self.times) / min(self.base_times)

    @property
    def floor_ratio(self) -> float | None:
        """steertui's median over the memory-bandwidth floor: how many times the time it takes only to read the
        weights once per forward."""
        return None if self.floor_s is None or self.floor_s <= 0 else self.median_s / self.floor_s

    @property
    def target_text(self) -> str:
        """The target as the tables print it: an absolute time, a ratio, or ``-``."""
        if self.target_s is not None:
            return f"≤ {self.target_s * 1e3:g} ms"
        return "-" if self.target is None else f"≤ {self.target:g}"

    @property
    def met(self) -> bool | None:
        if self.target_s is not None:
            return self.median_s <= self.target_s
        return None if self.target is None else self.ratio <= self.target

    def to_dict(self) -> dict[str, Any]:
        return finite_json({"name": self.name, "model": self.model, "tokens": self.tokens, "median_s": self.median_s,
                        "baseline_s": self.baseline_s, "ratio": self.ratio, "min_ratio": self.min_ratio,
                        "target": self.target, "target_s": self.target_s,
                        "met": self.met, "peak_mem_mb": self.peak_mem_mb, "forwards": self.forwards,
                        "floor_s": self.floor_s, "floor_ratio": self.floor_ratio,
                        "baseline_peak_mem_mb": self.baseline_peak_mem_mb, "unit": self.unit,
                        "repeats": self.repeats, "times_s": list(self.times), "baseline_times_s": list(self.base_times),
                        "steertui": self.steertui, "baseline": self.baseline,
                        "check": self.check, "check_ok": self.check_ok, **self.extra})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BenchRow":
        """A row as :meth:`to_dict` wrote it (the computed keys are computed again; other keys go to ``extra``)."""
        own = {f: data.get(f) for f in ("name", "model", "tokens", "median_s", "baseline_s", "target", "peak_mem_mb",
                                         "baseline_peak_mem_mb", "steertui", "baseline", "check", "check_ok",
                                         "target_s", "forwards", "floor_s")}
        for key in ("name", "tokens", "median_s", "baseline_s"):
            if own[key] is None:
                raise ValueError(f"a row has no {key!r}")
        own["median_s"], own["baseline_s"] = float(own["median_s"]), float(own["baseline_s"])
        extra = {k: v for k, v in data.items() if k not in own and k not in _ROW_COMPUTED}
        return cls(**{**own, "model": own["model"] or "", "steertui": own["steertui"] or "",
                      "baseline": own["baseline"] or "", "check": own["check"] or "",
                      "check_ok": bool(own["check_ok"])},
                   unit=data.get("unit") or "", repeats=int(data.get("repeats") or 0), extra=extra,
                   times=list(data.get("times_s") or ()), base_times=list(data.get("baseline_times_s") or ()))


# keys of BenchRow.to_dict that are computed from the others (or renamed), not kept in ``extra``
_ROW_COMPUTED = frozenset({"ratio", "min_ratio", "met", "floor_ratio", "unit", "repeats", "times_s",
                           "baseline_times_s"})


@dataclass
class BenchReport:
    device: str
    dtype: str
    threads: int
    machine: str
    model: str
    memory: str  # how peak memory was measured
    results: list[BenchRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    weight_bytes: int = 0
    bandwidth_gbs: float | None = None  # measured device memory bandwidth, 10^9 bytes per second
    versions: dict[str, str] | None = None  # torch, transformers, nnsight of a report read back (else this process's)

    def library_versions(self) -> dict[str, str]:
        """The versions the run was made with: those read back with the report, else this process's."""
        if self.versions is not None:
            return dict(self.versions)
        import nnsight
        import torch
        import transformers

        return {"torch": torch.__version__, "transformers": transformers.__version__,
                "nnsight": _version("nnsight", nnsight)}

    def to_dict(self) -> dict[str, Any]:
        return finite_json({"device": self.device, "dtype": self.dtype, **self.library_versions(),
                        "threads": self.threads, "machine": self.machine, "model": self.model,
                        "memory": self.memory, "seconds": self.seconds, "notes": list(self.notes),
                        "weight_bytes": self.weight_bytes, "bandwidth_gbs": self.bandwidth_gbs,
                        "results": [r.to_dict() for r in self.results]})

    @classmethod
    def from_dict(cls, data: Any) -> "BenchReport":
        """A report as :meth:`to_dict` wrote it (``steertui bench --json``); ValueError says what is missing."""
        if not isinstance(data, dict) or not isinstance(data.get("results"), list):
            raise ValueError("no 'results' list at the top level")
        missing = [k for k in ("device", "dtype", "threads") if k not in data]
        if missing:
            raise ValueError(f"no {', '.join(repr(k) for k in missing)} at the top level")
        rows = []
        for i, row in enumerate(data["results"]):
            if not isinstance(row, dict):
                raise ValueError(f"result {i + 1} is not a table of keys")
            try:
                rows.append(BenchRow.from_dict(row))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"result {i + 1} ({row.get('name', 'unnamed')}): {exc}") from None
        return cls(device=str(data["device"]), dtype=str(data["dtype"]), threads=int(data["threads"]),
                   machine=str(data.get("machine") or "?"), model=str(data.get("model") or "?"),
                   memory=str(data.get("memory") or ""), results=rows, notes=[str(n) for n in data.get("notes") or ()],
                   seconds=float(data.get("seconds") or 0.0), weight_bytes=int(data.get("weight_bytes") or 0),
                   bandwidth_gbs=data.get("bandwidth_gbs"),
                   versions={k: str(data.get(k) or "?") for k in ("torch", "transformers", "nnsight")})


def mb_text(x: float | None) -> str:
    """A peak memory in MB as the tables print it (``-``: not measured)."""
    return "-" if x is None else f"{x:,.0f}" if x >= 10 else f"{x:.1f}"


def ratio_text(x: float | None) -> str:
    return "-" if x is None else f"×{x:.2f}"


def markdown_table(report: BenchReport) -> str:
    """The report as a Markdown table (the README's Performance tables), with a line saying where it ran."""
    v = report.library_versions()

    def g(x: float) -> str:
        return f"{x:.4g}"

    floors = any(r.floor_s is not None for r in report.results)
    head = (f"`steertui bench` on {report.model}, {report.device} {report.dtype}, {report.threads} threads, "
            f"{report.machine}, torch {v['torch']}, transformers {v['transformers']}, nnsight {v['nnsight']}"
            + (f"; memory bandwidth {report.bandwidth_gbs:.0f} GB/s by the bench's copy" if report.bandwidth_gbs
               else "") + f"; the run took {report.seconds:.0f} s:")
    cols = ["row", "tokens", "steertui s", "baseline s", "ratio", "target", "met", "min ratio",
            *(["× floor"] if floors else []), "peak MB steertui / baseline"]
    lines = [head, "", "| " + " | ".join(cols) + " |",
             "| " + " | ".join("---" if c == "row" else ":---:" if c == "met" else "---:" for c in cols) + " |"]
    for r in report.results:
        met = "-" if r.met is None else "yes" if r.met else "**no**"
        cells = [r.name + ("" if r.check_ok else " (check FAILED)"), f"{r.tokens:,}", g(r.median_s), g(r.baseline_s),
                 ratio_text(r.ratio), r.target_text, met, ratio_text(r.min_ratio),
                 *([ratio_text(r.floor_ratio)] if floors else []),
                 f"{mb_text(r.peak_mem_mb)} / {mb_text(r.baseline_peak_mem_mb)}"]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _version(dist: str, module: Any) -> str:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # pragma: no cover
        return str(getattr(module, "__version__", "unknown"))


# ---- timing and memory -------------------------------------------------------------------------------------
class Meter:
    """Times calls (synchronising CUDA) and measures one call's peak memory."""

    def __init__(self, device: Any) -> None:
        self.cuda = getattr(device, "type", str(device)) == "cuda"
        self._libc = None
        self.rss = False
        if not self.cuda and sys.platform.startswith("linux"):
            try:
                with open("/proc/self/clear_refs", "w") as fh:
                    fh.write("5")
                self.rss = _status_kb("VmHWM") is not None
            except OSError:
                self.rss = False
            try:
                self._libc = ctypes.CDLL("libc.so.6")
            except OSError:
                self._libc = None

    @property
    def how(self) -> str:
        if self.cuda:
            return "peak MB: torch.cuda.max_memory_allocated above the allocation at the call's start"
        if self.rss:
            return ("peak MB: resident-set high-water mark (VmHWM, reset via /proc/self/clear_refs after gc and "
                    "malloc_trim) above the resident set at the call's start")
        return "peak memory not measured on this platform"

    def sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()

    def timed(self, fn: Callable[[], Any]) -> tuple[float, Any]:
        t = time.perf_counter()
        out = fn()
        self.sync()
        return time.perf_counter() - t, out

    def peak(self, fn: Callable[[], Any]) -> tuple[float, Any, float | None]:
        """(seconds, result, peak MB above the start) of one call."""
        gc.collect()
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            before = torch.cuda.memory_allocated()
            took, out = self.timed(fn)
            return took, out, (torch.cuda.max_memory_allocated() - before) / 2**20
        if not self.rss:
            took, out = self.timed(fn)
            return took, out, None
        if self._libc is not None:
            self._libc.malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        before = _status_kb("VmRSS") or 0
        took, out = self.timed(fn)
        return took, out, max(0, (_status_kb("VmHWM") or 0) - before) / 1024


def _status_kb(key: str, path: str = "/proc/self/status") -> int | None:
    """The kB value of ``key`` in a Linux /proc file (``VmRSS`` in the process's status, ``MemAvailable`` in
    /proc/meminfo), or None where it cannot be read."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


@dataclass
class Pairing:
    """Interleaved timings of the two sides and the last result of each."""

    ours: list[float]
    base: list[float]
    ours_out: Any
    base_out: Any
    ours_peak: float | None
    base_peak: float | None

    @property
    def median(self) -> float:
        return statistics.median(self.ours)

    @property
    def baseline(self) -> float:
        return statistics.median(self.base)


def interleave(meter: Meter, ours: Callable[[], Any], base: Callable[[], Any], repeats: int, *,
               warm: tuple[Callable[[], Any], Callable[[], Any]] | None = None, memory: bool = True,
               min_seconds: float = 0.0, max_repeats: int = 99) -> Pairing:
    """Warm up both sides (``warm``: cheaper stand-ins; default the calls themselves), then time them
    alternately, pair after pair: at least ``repeats`` pairs, and more (up to ``max_repeats``) while less than
    ``min_seconds`` were spent. The first timed call of each side also measures its peak memory."""
    warm_ours, warm_base = warm or (ours, base)
    warm_ours()
    warm_base()
    t_o: list[float] = []
    t_b: list[float] = []
    ours_out = base_out = None
    p_o = p_b = None
    start = time.perf_counter()
    while len(t_o) < repeats or (time.perf_counter() - start < min_seconds and len(t_o) < max_repeats):
        if not t_o and memory:
            took, ours_out, p_o = meter.peak(ours)
            t_o.append(took)
            took, base_out, p_b = meter.peak(base)
            t_b.append(took)
        else:
            took, ours_out = meter.timed(ours)
            t_o.append(took)
            took, base_out = meter.timed(base)
            t_b.append(took)
    return Pairing(t_o, t_b, ours_out, base_out, p_o, p_b)


# ---- the memory-bandwidth floor ------------------------------------------------------------------------------
def weight_bytes(model: "LoadedModel") -> int:
    """The bytes of the model's parameters (a weight shared by two modules, as a tied unembedding, counts once)."""
    return sum(p.numel() * p.element_size() for p in model.hf.parameters())


def measure_bandwidth(device: str, *, nbytes: int = 256 * 2**20, repeats: int = 5) -> float:
    """The device's memory bandwidth in bytes per second, measured: the fastest of ``repeats`` copies of a
    ``nbytes`` buffer into another (each reads and writes it: 2 × ``nbytes`` moved)."""
    import torch

    src = torch.empty(nbytes // 4, dtype=torch.float32, device=device).fill_(1.0)
    dst = torch.empty_like(src)
    sync = torch.cuda.synchronize if src.is_cuda else (lambda: None)
    dst.copy_(src)
    sync()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        dst.copy_(src)
        sync()
        best = min(best, time.perf_counter() - t)
    return 2 * src.numel() * src.element_size() / best


def attach_floors(rows: Sequence[BenchRow], nbytes: int, bandwidth: float,
                  min_bytes: int = FLOOR_MIN_BYTES) -> None:
    """Give each row that counts its forwards the time of reading every weight once per forward at
    ``bandwidth``: the floor no implementation of that row can go under (for a generation, weight bytes ÷
    bandwidth per generated token). Not for a model under ``min_bytes``, whose weights stay in the caches."""
    for row in rows:
        row.floor_s = (row.forwards * nbytes / bandwidth
                       if row.forwards and nbytes >= min_bytes and bandwidth > 0 else None)


# ---- models ------------------------------------------------------------------------------------------------
def build_shape(shape: str, *, device: str | None = None, dtype: str | None = None, seed: int = 0) -> "LoadedModel":
    """A randomly initialised model with the configuration of ``shape`` (see :data:`SHAPES`), built directly in
    ``dtype`` on ``device``, seeded, with the shipped demo tokenizer (its ids are all valid in the larger
    vocabulary; ids it does not know decode to an empty string)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    from steertui.engine.model import LoadedModel, pick_device, pick_dtype
    from steertui.paths import demo_model_dir

    if shape not in SHAPES:
        raise SteertuiError(f"unknown shape '{shape}'", f"use one of {', '.join(SHAPES)}")
    dev = pick_device(device)
    dt = pick_dtype(dtype, dev)
    spec = dict(SHAPES[shape])
    config = AutoConfig.for_model(spec.pop("model_type"), **spec)
    with torch.device("meta"):  # the parameter count, nothing allocated
        n = sum(p.numel() for p in AutoModelForCausalLM.from_config(config).parameters())
    need, free = n * getattr(torch, dt).itemsize, free_memory(dev)
    if free is not None and need > 0.9 * free:
        raise SteertuiError(f"the {shape} shape has {n / 1e9:.1f} B parameters, {need / 2**30:.1f} GiB in {dt}, "
                            f"and {dev} has {free / 2**30:.1f} GiB free",
                            "pass --dtype bfloat16, run it on a GPU with more memory (--device cuda), or use the "
                            "starcoderbase-1b shape")
    torch.manual_seed(seed)
    with torch.device(dev):
        hf = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dt))
    tok = AutoTokenizer.from_pretrained(demo_model_dir())
    tok.model_max_length = config.n_positions
    return LoadedModel.from_modules(hf, tok, name=f"{shape} shape (random weights)")


def free_memory(device: str) -> int | None:
    """Bytes free for a model on ``device``: CUDA's free memory, or the machine's available memory for the CPU
    (Linux ``MemAvailable``); None where it cannot be read."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.mem_get_info(torch.device(device))[0]
    if device == "cpu":
        kb = _status_kb("MemAvailable", "/proc/meminfo")
        return None if kb is None else kb * 1024
    return None


# ---- the jobs ---------------------------------------------------------------------------------------------
@dataclass
class Plan:
    """What a run measures and how often."""

    repeats: int = 5
    rows: tuple[str, ...] = ()  # row groups to run (empty: all)
    gen_batches: tuple[int, ...] = (1, 8)
    gen_prompt_tokens: int = 128
    extract_pairs: int | None = None  # None: every pair of the part; else this many, one CWE after another
    eval_pairs: int | None = None  # the same for the evaluation
    eval_folds: int = 3
    memory_lengths: tuple[int, ...] = ()  # tokens of the extraction-memory rows
    cheap_warmup: bool = False  # warm up on short inputs (a large model's full call is too dear to repeat)
    min_seconds: float = 0.0  # a row repeats (past ``repeats``) until about this long was spent timing it
    startup_repeats: int = 5

    def wants(self, group: str) -> bool:
        return not self.rows or group in self.rows


ROW_GROUPS = ("generate", "forward", "lens", "extract", "memory", "eval", "startup", "console")


@contextmanager
def bare(model: "LoadedModel") -> Iterator[Any]:
    """The loaded model's HF module as plain transformers for the duration: nnsight wraps every module by putting
    its own ``forward`` in the module's ``__dict__`` (inert outside a trace, but a call still goes through it);
    these are taken off and put back afterwards, under the model's lock, so a baseline pays nothing for nnsight."""
    from nnsight.intervention.source import Controller

    with model.lock:
        saved = [(m, m.__dict__.pop("forward")) for m in model.hf.modules()
                 if isinstance(m.__dict__.get("forward"), Controller)]
        try:
            yield model.hf
        finally:
            for m, forward in saved:
                m.__dict__["forward"] = forward


def plain(model: "LoadedModel", enc: dict[str, Any], **kwargs: Any) -> Any:
    """A plain transformers forward of a left-padded batch (:func:`bare`), with the position ids ``generate``
    derives from the attention mask (a plain call would count the padding as positions)."""
    import torch

    from steertui.engine.model import mask_positions

    mask = enc["attention_mask"]
    with torch.no_grad(), bare(model) as hf:
        return hf(input_ids=enc["input_ids"], attention_mask=mask, position_ids=mask_positions(mask), **kwargs)


def _hook(module: Any, delta: Any) -> Any:
    """A torch forward hook adding ``delta`` to a block's hidden state (a tensor, or the first element of a tuple)."""

    def add(_m: Any, _i: Any, out: Any) -> Any:
        if isinstance(out, tuple):
            return (out[0] + delta,) + tuple(out[1:])
        return out + delta

    return module.register_forward_hook(add)


class Bench:
    """The rows of one run on one loaded model."""

    def __init__(self, model: "LoadedModel", pairs: Sequence["Pair"], plan: Plan, *, source: str = "",
                 progress: Progress | None = None, on_rows: Callable[[list[BenchRow]], None] | None = None) -> None:
        import torch

        self.model = model
        self.pairs = list(pairs)
        self.plan = plan
        self.source = source
        self.progress = progress or (lambda _msg: None)
        self.on_rows = on_rows
        self.meter = Meter(model.device)
        self.model_name = model.info.name
        self.layer = model.n_layers // 2
        gen = torch.Generator().manual_seed(0)
        v = torch.randn(model.d_model, generator=gen)
        self.vector = v / v.norm()
        self.delta = (ALPHA * self.vector).to(device=model.device, dtype=model.hf.dtype)
        self.block = model.hf_module(model.adapter.block_path(self.layer))
        self.files = [s for p in self.pairs for s in p.samples]

    # -- helpers --
    def steers(self) -> list:
        from steertui.engine.steering import Steer

        return [Steer(self.layer, self.vector, ALPHA, label="bench")]

    def _tokens(self, text: str) -> int:
        return len(self.model.tokenizer(text)["input_ids"])

    def _head(self, text: str, n: int) -> str:
        """The text of the first ``n`` tokens of ``text``."""
        ids = self.model.tokenizer(text)["input_ids"][:n]
        return self.model.tokenizer.decode(ids)

    def _verdict_prompts(self, samples: Sequence[Any]) -> list[str]:
        from steertui.engine.verdict import sample_prompts

        return [p.text for p in sample_prompts(self.model, samples, self.pairs)]

    def _row(self, name: str, p: Pairing, **kw: Any) -> BenchRow:
        return BenchRow(name=name, model=self.model_name, median_s=p.median, baseline_s=p.baseline,
                        peak_mem_mb=p.ours_peak, baseline_peak_mem_mb=p.base_peak, repeats=len(p.ours),
                        times=list(p.ours), base_times=list(p.base), **kw)

    def run(self) -> list[BenchRow]:
        rows: list[BenchRow] = []
        plan = self.plan
        jobs: list[tuple[str, Callable[[], list[BenchRow]]]] = []
        if plan.wants("generate"):
            jobs += [("generate", lambda b=b: [self.generation(b)]) for b in plan.gen_batches]
        if plan.wants("forward"):
            jobs.append(("forward", lambda: [self.forward()]))
        if plan.wants("lens"):
            jobs.append(("lens", lambda: [self.lens(diff=False), self.lens(diff=True), self.continuation()]))
        if plan.wants("extract"):
            jobs.append(("extract", lambda: [self.extraction()]))
        if plan.wants("memory") and plan.memory_lengths:
            jobs += [("memory", lambda n=n: [self.extraction_memory(n)]) for n in plan.memory_lengths]
        if plan.wants("eval"):
            jobs.append(("eval", lambda: [self.evaluation(), self.evaluation_split(), self.evaluation_fix_site()]))
        if plan.wants("startup"):
            jobs.append(("startup", lambda: [startup_row(plan.startup_repeats)]))
        for group, job in jobs:
            self.progress(group)
            rows += job()
            if self.on_rows is not None:
                self.on_rows(list(rows))
        return rows

    # -- generation --
    def generation(self, batch: int) -> BenchRow:
        import torch

        from steertui.engine.steering import generate

        s = self.model
        texts = [self._head(f.code, self.plan.gen_prompt_tokens) for f in self.files[:batch]]
        if len(texts) < batch:
            raise SteertuiError(f"generation batch {batch} needs {batch} files, the data has {len(texts)}")
        kwargs = {"max_new_tokens": GEN_TOKENS, "min_new_tokens": GEN_TOKENS, "do_sample": False,
                  "pad_token_id": s.tokenizer.pad_token_id}

        def ours(texts=texts, n=GEN_TOKENS):
            return generate(s, texts, steers=self.steers(), max_new_tokens=n, stop_at_eos=False).sequences

        def base(texts=texts, n=GEN_TOKENS):
            enc = s.encode(texts, new_tokens=n)
            h = _hook(self.block, self.delta)
            try:
                with torch.no_grad(), bare(s) as hf:
                    return hf.generate(**enc, **{**kwargs, "max_new_tokens": n, "min_new_tokens": n})
            finally:
                h.remove()

        warm = None
        if self.plan.cheap_warmup:
            short = [self._head(t, 8) for t in texts]
            warm = (lambda: ours(short, 2), lambda: base(short, 2))
        p = interleave(self.meter, ours, base, self.plan.repeats, warm=warm,
                       min_seconds=self.plan.min_seconds)
        same = p.ours_out.shape == p.base_out.shape and bool(torch.equal(p.ours_out.cpu(), p.base_out.cpu()))
        prompt_len = int(s.encode(texts)["input_ids"].shape[1])
        return self._row(f"generate b{batch}", p, tokens=batch * GEN_TOKENS, unit="new tokens", forwards=GEN_TOKENS,
                         target=1.10 if self.big else 1.25,
                         steertui=f"steering.generate: {GEN_TOKENS} greedy tokens, batch {batch}, +{ALPHA:g}·v at "
                                  f"layer {self.layer}, every position",
                         baseline="HF generate (min_new_tokens) with a torch forward hook adding the same vector",
                         check=f"same ids ({batch}×{prompt_len}+{GEN_TOKENS}): {same}", check_ok=same,
                         extra={"prompt_tokens": prompt_len, "batch": batch,
                                "ms_per_step": 1e3 * p.median / GEN_TOKENS,
                                "baseline_ms_per_step": 1e3 * p.baseline / GEN_TOKENS})

    @property
    def big(self) -> bool:
        return not self.model.info.is_demo

    # -- one steered forward at the answer slot --
    def _one_prompt(self) -> str:
        """The verdict prompt of a file of median length."""
        files = sorted(self.files, key=lambda f: len(f.code))
        return self._verdict_prompts([files[len(files) // 2]])[0]

    def forward(self) -> BenchRow:
        from steertui.engine.steering import forward

        s = self.model
        prompt = self._one_prompt()

        def ours(prompt=prompt):
            return forward(s, [prompt], steers=self.steers(), logits_at="last").logits

        def base(prompt=prompt):
            enc = s.encode([prompt])
            h = _hook(self.block, self.delta)
            try:
                return plain(s, enc).logits[:, -1]
            finally:
                h.remove()

        warm = (lambda: ours("int main"), lambda: base("int main")) if self.plan.cheap_warmup else None
        p = interleave(self.meter, ours, base, self.plan.repeats, warm=warm,
                       min_seconds=self.plan.min_seconds)
        diff = float((p.ours_out.float().cpu() - p.base_out.float().cpu()).abs().max())
        tol = _tolerance(s)
        n = self._tokens(prompt)
        return self._row("forward + answer logits", p, tokens=n, unit="prompt tokens", forwards=1,
                         target=1.05 if self.big else None,
                         steertui=f"steering.forward: one verdict prompt, +{ALPHA:g}·v at layer {self.layer}, "
                                  "logits at the last real token",
                         baseline="HF forward with a torch forward hook adding the same vector, logits[:, -1]",
                         check=f"max |Δ logit| at the answer slot {diff:.2g} (≤ {tol:g})", check_ok=diff <= tol)

    # -- logit lens --
    def lens(self, *, diff: bool) -> BenchRow:
        from steertui.engine.lens import lens_diff, logit_lens

        s = self.model
        prompt = self._one_prompt()
        window = slice(-LENS_WINDOW, None)
        rows = 2 if diff else 1

        def ours(prompt=prompt):
            if diff:
                return lens_diff(s, prompt, self.steers(), positions=window, target=" Yes", k=10)
            return logit_lens(s, prompt, positions=window, target=" Yes", k=10)

        def base(prompt=prompt):
            enc = s.encode([prompt])
            if rows == 2:
                enc = {k: v.expand(2, -1) for k, v in enc.items()}
            return plain(s, enc).logits

        warm = (lambda: ours("int main(void) { return 0; }"), lambda: base("int main(void) { return 0; }")) \
            if self.plan.cheap_warmup else None
        p = interleave(self.meter, ours, base, self.plan.repeats, warm=warm,
                       min_seconds=self.plan.min_seconds)
        # the unsteered lens at the last layer is the model's own distribution: its top-1 at every lensed
        # position must be the plain forward's argmax there
        res = p.ours_out.baseline if diff else p.ours_out
        logits = p.base_out[0].float().cpu()
        pos = list(res.positions)
        top = [res.layers[-1].top[w][0].id for w in range(len(pos))]
        agree = sum(int(t == int(logits[q].argmax())) for t, q in zip(top, pos))
        check = (f"unsteered last-layer top-1 = plain argmax at {agree}/{len(pos)} positions; "
                 f"lens vs softmax max |Δp| {res.final_logits_check:.2g}")
        ok = agree == len(pos)
        n = self._tokens(prompt)
        what = ("lens_diff: unsteered and steered lens (2 rows, one forward)" if diff
                else "logit_lens: unsteered lens (1 row)")
        return self._row("lens diff grid" if diff else "lens grid", p, tokens=n, unit="prompt tokens", target=1.5,
                         forwards=1,
                         steertui=f"{what}, all {s.n_layers} layers × {len(pos)} positions, top-10 and p(' Yes')",
                         baseline=f"one plain HF forward of the same {rows} row(s), full logits",
                         check=check, check_ok=ok)

    # -- the reading of a continuation's tokens (the Gen tab's cursor) --
    def continuation(self) -> BenchRow:
        import torch

        from steertui.engine import gendiff

        s = self.model
        text = self._head(self.files[0].code, self.plan.gen_prompt_tokens)
        row = gendiff.generation_diff(s, [text], self.steers(), max_new_tokens=CONTINUATION_TOKENS).rows[0]
        prompt_ids = s.encode([text])["input_ids"]
        inputs = [torch.cat([prompt_ids, torch.tensor([list(side.ids[:-1])], device=prompt_ids.device)], 1)
                  .expand(2, -1) for side in (row.baseline, row.steered)]

        def ours():
            return gendiff.continuation_lens(s, text, row, self.steers())

        def base():  # the same two forwards of two rows each, plain, with every position's logits
            return [plain(s, {"input_ids": ids, "attention_mask": torch.ones_like(ids)}).logits for ids in inputs]

        p = interleave(self.meter, ours, base, self.plan.repeats, min_seconds=self.plan.min_seconds)
        # the unsteered run's reading of the baseline's tokens at the last layer is the plain forward's log-prob
        P, ids = prompt_ids.shape[1], list(row.baseline.ids)
        logp = p.base_out[0][0, P - 1: P - 1 + len(ids)].float().log_softmax(-1).cpu()
        plain_lp = [float(logp[j, t]) for j, t in enumerate(ids)]
        gap = max(abs(st.logprob[0] - q) for st, q in zip(p.ours_out.baseline, plain_lp))
        ok = gap <= 1e-3
        n = len(row.baseline.ids) + len(row.steered.ids)
        return self._row("continuation reading", p, tokens=n, unit="generated tokens read", target=None,
                         forwards=2,
                         steertui=f"gendiff.continuation_lens: both sides of a {CONTINUATION_TOKENS}-token "
                                  "continuation, each read by the unsteered and the steered run (2 rows, one forward "
                                  "per side), "
                                  f"every one of {s.n_layers} layers decoded at every generated token",
                         baseline="the same two forwards of two rows, plain, every position's logits",
                         check=f"unsteered last-layer log-prob of the baseline's tokens vs plain: max |Δ| {gap:.2g}",
                         check_ok=ok)

    # -- extraction --
    def _extract_files(self) -> list[str]:
        return [f.code for p in spread(self.pairs, self.plan.extract_pairs) for f in p.samples]

    def extraction(self) -> BenchRow:
        import torch

        from steertui.engine.activations import extract

        s = self.model
        texts = self._extract_files()
        ctx = s.context_length
        order = sorted(range(len(texts)), key=lambda k: self._tokens(texts[k]))  # extract's chunking

        def ours(texts=texts):
            return extract(s, texts, readout="last", chunk_size=8)

        def base(texts=texts, order=order):
            out = {}
            for start in range(0, len(order), 8):
                rows = order[start:start + 8]
                enc = s.encode([texts[r] for r in rows], max_length=ctx)
                hs = plain(s, enc, output_hidden_states=True).hidden_states
                for b, r in enumerate(rows):
                    out[r] = torch.stack([h[b, -1] for h in hs[1:]]).float().cpu()  # left padding: -1 is real
            return torch.stack([out[r] for r in range(len(texts))])

        warm = None
        if self.plan.cheap_warmup:
            short = [self._head(t, 16) for t in texts[:8]]
            warm = (lambda: ours(short), lambda: base(short, list(range(len(short)))))
        p = interleave(self.meter, ours, base, self.plan.repeats, warm=warm,
                       min_seconds=self.plan.min_seconds)
        # hidden_states[-1] has the final norm applied; every other block output must match
        mine, theirs = p.ours_out.values[:, :-1], p.base_out[:, :-1]
        diff = float((mine - theirs).abs().max() / theirs.abs().max().clamp_min(1e-12))
        tol = _tolerance(s)
        n = sum(p.ours_out.n_tokens)
        subset = ("" if self.plan.extract_pairs is None
                  else f" ({len(texts) // 2} pairs of {len(self.pairs)}, one CWE after another)")
        return self._row("extract all layers", p, tokens=n, unit="tokens of all files", target=1.2,
                         forwards=-(-len(texts) // 8),
                         steertui=f"activations.extract: {len(texts)} files{subset}, all {s.n_layers} layers, "
                                  "readout last, chunks of 8",
                         baseline="HF forward with output_hidden_states, the same chunks of 8",
                         check=f"blocks 0..{s.n_layers - 2}: max relative |Δ| {diff:.2g} (≤ {tol:g})",
                         check_ok=diff <= tol, extra={"files": len(texts)})

    def extraction_memory(self, length: int) -> BenchRow:
        """Extraction of one text of ``length`` tokens: memory that must not grow with layers × length."""
        import torch

        from steertui.engine.activations import extract

        s = self.model
        ids: list[int] = []
        for f in self.files:
            ids += s.tokenizer(f.code)["input_ids"]
            if len(ids) >= length:
                break
        if len(ids) < length:
            ids = (ids * (length // max(len(ids), 1) + 1))
        ids = ids[:length]
        t = torch.tensor([ids], device=s.device)

        def ours():
            return extract(s, [""], ids=[ids], readout="mean", chunk_size=1)

        def base():
            enc = {"input_ids": t, "attention_mask": torch.ones_like(t)}
            hs = plain(s, enc, output_hidden_states=True).hidden_states
            return torch.stack([h[0].float().mean(0) for h in hs[1:]]).cpu()

        short = ids[:16]
        warm = (lambda: extract(s, [""], ids=[short], readout="mean", chunk_size=1),
                lambda: plain(s, {"input_ids": torch.tensor([short], device=s.device),
                                  "attention_mask": torch.ones(1, len(short), dtype=torch.long, device=s.device)}))
        with torch.no_grad():
            p = interleave(self.meter, ours, base, 1, warm=warm)
        mine, theirs = p.ours_out.values[0, :-1], p.base_out[:-1]
        diff = float((mine - theirs).abs().max() / theirs.abs().max().clamp_min(1e-12))
        tol = _tolerance(s)
        D, L = s.d_model, s.n_layers
        itemsize = torch.finfo(s.hf.dtype).bits // 8
        grid_mb = (L + 1) * length * D * itemsize / 2**20
        return self._row(f"extract memory {_k(length)}", p, tokens=length, unit="tokens (one file)", target=1.2,
                         forwards=1,
                         steertui=f"activations.extract: one {length}-token text, all {L} layers, readout mean",
                         baseline="HF forward with output_hidden_states",
                         check=f"blocks 0..{L - 2}: max relative |Δ| {diff:.2g} (≤ {tol:g})", check_ok=diff <= tol,
                         extra={"layers_x_seq_mb": grid_mb})

    # -- the verdict evaluation --
    def evaluation(self) -> BenchRow:
        import torch

        from steertui.engine.evaluate import EvalSettings, evaluate
        from steertui.engine.verdict import answer_tokens

        s = self.model
        pairs = spread(self.pairs, self.plan.eval_pairs)
        settings = EvalSettings(layers=(self.layer,), alphas=(ALPHA,), folds=self.plan.eval_folds)
        samples = [p.vulnerable for p in pairs] + [p.patched for p in pairs]
        prompts = self._verdict_prompts(samples)
        codes = [sm.code for sm in samples]
        neutral = [p.patched.code for p in pairs]
        answers = answer_tokens(s)
        ctx, chunk, kl = s.context_length, settings.chunk_size, settings.kl_tokens

        def passes(texts: list[str], max_length: int | None, keep: bool = False):
            order = sorted(range(len(texts)), key=lambda k: len(texts[k]))
            scores = torch.zeros(len(texts))
            for start in range(0, len(order), chunk):
                rows = order[start:start + chunk]
                enc = s.encode([texts[r] for r in rows], max_length=max_length)
                logits = plain(s, enc).logits[:, -1].float()
                if keep:
                    scores[rows] = (logits[:, answers.yes_id] - logits[:, answers.no_id]).cpu()
            return scores

        n_cfg = len(settings.layers) * len(settings.alphas)
        per_prompt = 1 + 2 * n_cfg  # unsteered, then the vector and the random control per (layer, alpha)
        per_neutral = 1 + 2 * n_cfg
        parts: dict[str, list[float]] = {"code": [], "prompts": [], "neutral": []}

        def ours():
            return evaluate(s, pairs, settings)

        def base():
            # times itself: the passes it must make once, and the others counted as often as the evaluation needs them
            took = {}
            for key, fn in (("code", lambda: passes(codes, ctx)), ("prompts", lambda: passes(prompts, None, True)),
                            ("neutral", lambda: passes(neutral, kl))):
                took[key], out = self.meter.timed(fn)
                parts[key].append(took[key])
                if key == "prompts":
                    scores = out
            totals.append(took["code"] + per_prompt * took["prompts"] + per_neutral * took["neutral"])
            return scores

        totals: list[float] = []
        # no warm-up call: a whole evaluation is long, and the other rows have run its code paths
        p = interleave(self.meter, ours, base, self.plan.repeats,
                       warm=(lambda: None, lambda: None), min_seconds=1.5 * self.plan.min_seconds)
        p.base = totals
        res = p.ours_out
        by_id = {f["id"]: f["baseline_score"] for f in res.files}
        diff = max(abs(by_id[sm.id] - float(p.base_out[k])) for k, sm in enumerate(samples) if sm.id in by_id)
        tol = 1e-3 if s.hf.dtype == torch.float32 else 0.1
        files = len(res.files)
        n_tokens = sum(self._tokens(t) for t in prompts)
        row = self._row("verdict evaluation", p, tokens=n_tokens, unit="tokens of all verdict prompts", target=None,
                        steertui=f"evaluate: {len(pairs)} pairs, {settings.folds} folds, layer {self.layer}, "
                                 f"alpha {ALPHA:g}, vector + random control, KL on {kl} tokens",
                        baseline=f"the plain forwards it cannot avoid: 1 over the code files, {per_prompt} over the "
                                 f"verdict prompts, {per_neutral} over the patched files' first {kl} tokens",
                        check=f"unsteered verdict scores vs the plain pass: max |Δ| {diff:.2g} (≤ {tol:g})",
                        check_ok=diff <= tol,
                        extra={"files": files, "files_per_s": files / p.median,
                               "passes": {k: statistics.median(v) for k, v in parts.items()}})
        return row


    def evaluation_split(self) -> BenchRow:
        """The evaluation with ``attribution`` (each file's shift split, read in the scoring forwards) against the
        same evaluation without: what the split costs on top."""
        return self._evaluation_with(
            "evaluation split", "attribution", 1.10,
            "evaluate with attribution: each held-out file's shift split into direct and through, read in the "
            "scoring forwards",
            lambda res: ("every file split", all(x["direct"] is not None for f in res.files for x in f["steered"])))

    def evaluation_fix_site(self) -> BenchRow:
        """The evaluation with ``fix_site`` (each held-out pair's fix-site preference scored unsteered, steered and
        under the control: teacher-forced forwards of its two continuations) against the same evaluation without:
        what it costs on top, reported without a target."""
        def scored(res):
            vulnerable = [f for f in res.files if f["label"] == 1]
            return "every pair's fix site scored", all(f["fix_baseline"] is not None for f in vulnerable)

        return self._evaluation_with(
            "evaluation fix site", "fix_site", None,
            "evaluate with fix_site: each held-out pair's fix-site preference unsteered, steered and under the "
            "control, teacher-forced", scored)

    def _evaluation_with(self, name: str, option: str, target: float | None, steertui: str,
                         done: Callable[[Any], tuple[str, bool]]) -> BenchRow:
        """The evaluation of :meth:`evaluation_split` with the boolean setting ``option`` on, against it off; the
        check: the verdict scores bit for bit the same, and ``done`` (what the option adds is there)."""
        import dataclasses

        from steertui.engine.evaluate import EvalSettings, evaluate

        s = self.model
        pairs = spread(self.pairs, self.plan.eval_pairs)
        settings = EvalSettings(layers=(self.layer,), alphas=(ALPHA,), folds=self.plan.eval_folds)
        on = dataclasses.replace(settings, **{option: True})
        p = interleave(self.meter, lambda: evaluate(s, pairs, on), lambda: evaluate(s, pairs, settings),
                       self.plan.repeats, warm=(lambda: None, lambda: None), min_seconds=1.5 * self.plan.min_seconds)
        ours, base = p.ours_out, p.base_out

        def scores(res):
            return [(x["score"], x["random_scores"]) for f in res.files for x in f["steered"]]

        same = scores(ours) == scores(base)
        what, ok = done(ours)
        return self._row(name, p, tokens=len(ours.files), unit="held-out files", target=target, steertui=steertui,
                         baseline=f"the same evaluation without {option}",
                         check=f"scores bit for bit the same: {same}; {what}: {ok}", check_ok=same and ok)


def spread(pairs: Sequence["Pair"], n: int | None) -> list["Pair"]:
    """``n`` pairs taken one CWE after another (the first pair of each CWE, then the second, ...); all for None."""
    if n is None or n >= len(pairs):
        return list(pairs)
    by_cwe: dict[str, list["Pair"]] = {}
    for p in pairs:
        by_cwe.setdefault(p.cwe, []).append(p)
    out: list["Pair"] = []
    depth = 0
    while len(out) < n:
        for group in by_cwe.values():
            if depth < len(group) and len(out) < n:
                out.append(group[depth])
        depth += 1
    return out


def _k(n: int) -> str:
    return f"{n // 1024}k" if n % 1024 == 0 else str(n)


def _tolerance(model: "LoadedModel") -> float:
    import torch

    return 1e-4 if model.hf.dtype == torch.float32 else 5e-2


# ---- startup ------------------------------------------------------------------------------------------------
def _child(cmd: list[str]) -> tuple[float, int]:
    """(seconds, return code) of one child process."""
    t = time.perf_counter()
    rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    return time.perf_counter() - t, rc


def startup_row(repeats: int) -> BenchRow:
    ours_cmd = [sys.executable, "-m", "steertui", "--help"]
    base_cmd = [sys.executable, "-c", "pass"]
    _child(ours_cmd)
    _child(base_cmd)
    t_o, t_b, codes = [], [], []
    for _ in range(repeats):
        took, rc = _child(ours_cmd)
        t_o.append(took)
        codes.append(rc)
        took, rc = _child(base_cmd)
        t_b.append(took)
        codes.append(rc)
    ok = all(c == 0 for c in codes)
    return BenchRow(name="steertui --help", model="-", tokens=0, median_s=statistics.median(t_o),
                    baseline_s=statistics.median(t_b), target=None, peak_mem_mb=None, baseline_peak_mem_mb=None,
                    steertui="python -m steertui --help (a new process)", baseline="python -c pass (a new process)",
                    check=f"both exited 0: {ok}", check_ok=ok, unit="-", repeats=repeats, times=t_o, base_times=t_b)


# ---- a whole run ------------------------------------------------------------------------------------------
def machine() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()}-core CPU ({cpu})"


def run_bench(model: "LoadedModel", pairs: Sequence["Pair"], plan: Plan, *, source: str = "",
              progress: Progress | None = None,
              partial: Callable[[BenchReport], None] | None = None) -> BenchReport:
    """Every row of ``plan`` on ``model``; ``partial`` gets the report so far after each group of rows."""
    import torch

    t = time.perf_counter()
    report = BenchReport(device=str(model.info.device), dtype=model.info.dtype, threads=torch.get_num_threads(),
                         machine=machine(), model=model.info.name, memory="")
    report.notes.append(f"data: {source}" if source else "data: builtin examples")

    report.weight_bytes = weight_bytes(model)
    if report.weight_bytes >= FLOOR_MIN_BYTES:
        report.bandwidth_gbs = measure_bandwidth(str(model.info.device)) / 1e9

    def on_rows(rows: list[BenchRow]) -> None:
        if report.bandwidth_gbs:
            attach_floors(rows, report.weight_bytes, report.bandwidth_gbs * 1e9)
        report.results = rows
        report.seconds = time.perf_counter() - t
        if partial is not None:
            partial(report)

    bench = Bench(model, pairs, plan, source=source, progress=progress, on_rows=on_rows)
    report.memory = bench.meter.how
    report.results = bench.run()
    report.seconds = time.perf_counter() - t
    return report
