"""The layer-access debugger's data: one real forward, every module's real output.

For every module: its dotted path, the nnsight expression that reaches it, its output type (tensor, tuple
and which element holds the hidden state, or a ModelOutput and its fields), shape, dtype, device, norms,
and flags for outputs that are all zero or hold NaN/inf. The values come from plain torch forward hooks
on the same module objects nnsight wraps, so they are exactly what a trace would see.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from steertui.engine.adapters import access_path
from steertui.engine.lens import TokenDecoder

if TYPE_CHECKING:  # pragma: no cover
    from steertui.engine.model import LoadedModel

DEFAULT_PROMPT = "#include <string.h>\n\nvoid copy(char *dst, const char *src)\n{\n    strcpy(dst, src);\n}\n"

FLAG_ZERO = "all-zero"
FLAG_NAN = "nan"
FLAG_INF = "inf"
FLAG_NOT_RUN = "not-run"
FLAG_SHAPE = "unexpected-shape"
VALUES_SHOWN = 8  # the first components of the last position's vector kept per module
TOP_DIMS = 3  # the components of largest magnitude at the last position kept per module


@dataclass(frozen=True)
class Element:
    """One element of a tuple or ModelOutput output."""

    key: str  # "0", "1" or a field name
    type: str
    shape: list[int] | None = None
    dtype: str | None = None


@dataclass(frozen=True)
class Values:
    """What one module's main output holds, for reading it rather than its shape: statistics over every number
    (non-finite ones left out and counted), each position's L2 norm (batch row 0, over the last dimension; a
    position that dwarfs the others is an attention sink, one that is zero a dead read), the first
    :data:`VALUES_SHOWN` components at the last position and the :data:`TOP_DIMS` largest in magnitude there (a
    few huge dimensions are the massive activations of the residual stream). Positions are dimension 1 of a
    ``[1, tokens, ...]`` output; for any other shape ``last``/``top`` read the flattened tensor."""

    count: int
    finite: int
    mean: float | None
    std: float | None
    min: float | None
    max: float | None
    token_norms: list[float] | None  # one per position, None when the output has no position dimension
    last: list[float]  # the first components at the last position (or of the flattened tensor)
    top: list[tuple[int, float]]  # (index, value): largest |value| at the last position (or flattened)
    per_position: bool  # last/top read the last position (True) or the flattened tensor (False)


@dataclass(frozen=True)
class ModuleReport:
    path: str
    access: str  # nnsight expression that yields the main tensor, e.g. model.transformer.h[0].attn.output[0]
    module: str  # module class name
    type: str  # "tensor", "tuple", "ModelOutput", "none", ...
    shape: list[int] | None
    dtype: str | None
    device: str | None
    flags: list[str]
    main: str | None = None  # which element holds the main tensor ("0", "logits", ...); None for a tensor
    elements: list[Element] = field(default_factory=list)
    is_block: bool = False
    layer: int | None = None
    norm_mean: float | None = None  # mean over positions of the L2 norm along the last dim
    abs_max: float | None = None
    calls: int = 0
    values: Values | None = None
    other_access: str | None = None  # the access that looks right and is not, and what it gives here

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LayersReport:
    model: str
    prompt: str
    n_tokens: int
    d_model: int
    n_layers: int
    adapter: dict[str, Any]
    modules: list[ModuleReport]
    tokens: list[str] = field(default_factory=list)  # the prompt's tokens as text, one per position

    def module(self, path: str) -> ModuleReport:
        """The module at ``path``: a dotted path (``transformer.h.3``, ``""`` the model itself) or the access
        expression the table shows (``model.transformer.h[3].output``). A path the model lacks is a
        :class:`~steertui.errors.ModulePathError` naming the closest paths it has."""
        import difflib
        import re

        from steertui.errors import ModulePathError

        trailing = re.sub(r"\.output(\[[^\]]*\]|\.[A-Za-z_]\w*)?$", "", path.strip())  # the access's own suffix
        dotted = re.sub(r"\[(\d+)\]", r".\1", trailing)
        dotted = "" if dotted == "model" else dotted.removeprefix("model.")
        for m in self.modules:
            if m.path == dotted:
                return m
        paths = [m.path for m in self.modules if m.path]
        close = [p for p in paths if dotted and p.endswith("." + dotted)][:3]
        close += difflib.get_close_matches(dotted, [p for p in paths if p not in close], n=3 - len(close),
                                           cutoff=0.5) if len(close) < 3 else []
        raise ModulePathError(f"{self.model} has no module '{path}'",
                              (f"did you mean {', '.join(close)}? " if close else "")
                              + "`steertui layers` lists every module's path")

    def blocks(self) -> list[ModuleReport]:
        return [m for m in self.modules if m.is_block]

    def flagged(self) -> list[ModuleReport]:
        return [m for m in self.modules if m.flags]


def _describe(value: Any) -> tuple[str, Any, str | None, list[Element]]:
    """(type name, main tensor or None, main key, elements) of one module output."""
    import torch

    if isinstance(value, torch.Tensor):
        return "tensor", value, None, []
    if isinstance(value, (tuple, list)):
        elements = [Element(str(k), type(v).__name__ if not isinstance(v, torch.Tensor) else "tensor",
                            list(v.shape) if isinstance(v, torch.Tensor) else None,
                            str(v.dtype).removeprefix("torch.") if isinstance(v, torch.Tensor) else None)
                    for k, v in enumerate(value)]
        main = next(((str(k), v) for k, v in enumerate(value) if isinstance(v, torch.Tensor)), (None, None))
        return "tuple", main[1], main[0], elements
    if isinstance(value, dict) or hasattr(value, "keys"):
        items = list(value.items())
        elements = [Element(str(k), "tensor" if isinstance(v, torch.Tensor) else type(v).__name__,
                            list(v.shape) if isinstance(v, torch.Tensor) else None,
                            str(v.dtype).removeprefix("torch.") if isinstance(v, torch.Tensor) else None)
                    for k, v in items]
        main = next(((str(k), v) for k, v in items if isinstance(v, torch.Tensor)), (None, None))
        return type(value).__name__, main[1], main[0], elements
    if value is None:
        return "none", None, None, []
    return type(value).__name__, None, None, []


def _access(path: str, main: str | None, kind: str) -> str:
    base = access_path(path) + ".output"
    if main is None:
        return base
    if kind == "tuple":
        return f"{base}[{main}]"
    return f"{base}.{main}" if main.isidentifier() else f"{base}[{main!r}]"


def _other_access(access: str, kind: str, main: str | None, shape: list[int] | None,
                  elements: list[Element], is_block: bool) -> str | None:
    """The access that looks right and is not, with what it gives on this output: ``.output[0]`` on a tensor is
    its batch row 0 (one dimension short, and silently wrong wherever a hidden state is read or added); bare
    ``.output`` on a tuple or ModelOutput is the container, not its tensor."""
    base = access[:access.rindex(".output")] + ".output"
    if kind == "tensor" and shape and len(shape) >= 2:
        what = "the hidden state" if is_block else "the whole output"
        return f"{base}[0] is batch row 0, shape {tuple(shape[1:])}: not {what}"
    if main is not None and elements:
        parts = ", ".join(e.type if e.shape is None else f"tensor {tuple(e.shape)}" for e in elements)
        what = f"a tuple ({parts})" if kind == "tuple" else f"a {kind} ({parts})"
        return f"{base} is {what}: the tensor is {access.removeprefix(base)}"
    return None


SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float], width: int) -> str:
    """``values`` as one line of block characters, at most ``width`` wide (each character the largest of the
    values it covers, so a single spike stays visible), scaled from the smallest value to the largest."""
    width = max(1, width)
    n = len(values)
    if not n:
        return ""
    m = min(n, width)
    buckets = [max(values[b * n // m: (b + 1) * n // m]) for b in range(m)]
    lo, hi = min(values), max(buckets)
    if hi <= lo:
        return SPARK[0] * len(buckets)
    top = len(SPARK) - 1
    return "".join(SPARK[min(top, int((v - lo) / (hi - lo) * top + 0.5))] for v in buckets)


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:+.4g}"


def module_detail(report: LayersReport, m: ModuleReport, width: int = 72) -> list[tuple[str, str]]:
    """What one module's output is and holds, as (label, text) lines for the console and ``layers --module``:
    the module and its output, the access that reads it and the one that looks right and is not, statistics,
    each position's norm as a sparkline (scaled from the smallest to the largest) with both named, the first
    values at the last position and the largest components there. ``width``: the sparkline's room."""
    shape = f"{tuple(m.shape)} {m.dtype} on {m.device}" if m.shape else ""
    if m.elements:
        key = f"[{m.main}]" if m.type == "tuple" else f".{m.main}"
        output = f"{m.type} of {len(m.elements)}" + (f", {key} {shape}" if shape else "")
    else:
        output = f"{m.type} {shape}".strip()
    out = [("module", f"{m.path or '(the model)'} · {m.module} · {output} · called {m.calls}×")]
    out.append(("read", m.access + ("  ← steering reads and adds here" if m.is_block else "")))
    if m.other_access:
        out.append(("not", m.other_access))
    if m.flags:
        out.append(("flags", ", ".join(m.flags)))
    v = m.values
    if v is None:
        return out
    bad = f" · {v.count - v.finite:,} not finite" if v.finite < v.count else ""
    out.append(("values", f"{v.count:,} numbers: mean {_num(v.mean)} · std {_num(v.std).lstrip('+')} · "
                          f"min {_num(v.min)} · max {_num(v.max)}{bad}"))
    if v.token_norms:
        norms = v.token_norms
        hi = max(range(len(norms)), key=norms.__getitem__)
        lo = min(range(len(norms)), key=norms.__getitem__)

        def at(i: int) -> str:
            tok = report.tokens[i] if i < len(report.tokens) else "?"
            return f"{norms[i]:.4g} at {i} {tok!r}"

        out.append(("‖x‖ by token", sparkline(norms, width)))
        out.append(("", f"largest {at(hi)} · smallest {at(lo)} · mean {sum(norms) / len(norms):.4g}"))
        tok = report.tokens[-1] if report.tokens else "?"
        where = f"last token {tok!r} [:{len(v.last)}]"
    else:
        where = f"flattened [:{len(v.last)}]"
    out.append(("values at", f"{where} " + " ".join(f"{x:+.3g}" for x in v.last)))
    out.append(("largest |x|", " · ".join(f"[{i}] {x:+.4g}" for i, x in v.top)
                + (" (at the last token)" if v.per_position else " (flattened)")))
    return out


def _values(t: Any, n_tokens: int) -> Values | None:
    """:class:`Values` of one output tensor (floating point, non-empty), else None."""
    import torch

    if not t.is_floating_point() or not t.numel():
        return None
    x = t.detach().double()
    ok = torch.isfinite(x)
    fin = x[ok]
    stats = ((float(fin.mean()), float(fin.std(unbiased=False)), float(fin.min()), float(fin.max()))
             if fin.numel() else (None,) * 4)
    per_position = x.ndim == 3 and x.shape[0] == 1 and x.shape[1] == n_tokens
    norms = None
    if per_position:
        norms = [float(v) for v in torch.nan_to_num(x[0], nan=0.0, posinf=0.0, neginf=0.0).norm(dim=-1)]
    at = x[0, -1] if per_position else x.reshape(-1)
    mag = torch.nan_to_num(at.abs(), nan=float("inf"))  # a NaN component is shown among the largest
    top = [(int(i), float(at[i])) for i in mag.topk(min(TOP_DIMS, at.numel())).indices]
    return Values(int(x.numel()), int(ok.sum()), *stats, norms, [float(v) for v in at[:VALUES_SHOWN]], top,
                  per_position)


def probe_layers(model: "LoadedModel", prompt: str = DEFAULT_PROMPT) -> LayersReport:
    """Run one real forward of ``prompt`` and describe every module's output. Each output is described inside
    its hook, as the forward runs (its first call; later calls are counted), and nothing of it is kept: the
    probe's memory is one module's output at a time, whatever the prompt's length."""
    import dataclasses

    import torch

    hf = model.hf
    adapter = model.adapter
    block_paths = {adapter.block_path(i): i for i in range(adapter.n_layers)}
    first: dict[str, ModuleReport] = {}
    calls: dict[str, int] = {}
    enc = model.encode([prompt])
    n_tokens = int(enc["input_ids"].shape[1])

    def hook_for(name: str, module: Any):
        def hook(_module, _inputs, output):
            calls[name] = calls.get(name, 0) + 1
            if name not in first:
                first[name] = _report(name, type(module).__name__, output, block_paths.get(name), n_tokens,
                                      adapter)
        return hook

    with model.lock, torch.no_grad():
        handles = [m.register_forward_hook(hook_for(n, m)) for n, m in hf.named_modules()]
        try:
            hf(**enc)
        finally:
            for h in handles:
                h.remove()
    reports = [dataclasses.replace(r, calls=calls[name]) for name, r in first.items()]
    # Containers (ModuleList/ModuleDict) are never called: they have no output to show.
    for name, m in hf.named_modules():
        if name not in first and not isinstance(m, (torch.nn.ModuleList, torch.nn.ModuleDict)):
            layer = block_paths.get(name)
            reports.append(ModuleReport(
                path=name, access=_access(name, None, "not run"), module=type(m).__name__, type="not run",
                shape=None, dtype=None, device=None, flags=[FLAG_NOT_RUN] + ([FLAG_SHAPE] if layer is not None else []),
                is_block=layer is not None, layer=layer))
    dec = TokenDecoder(model.tokenizer)
    return LayersReport(model.info.name, prompt, n_tokens, adapter.d_model, adapter.n_layers,
                        adapter.to_dict(), reports, [dec(int(t)) for t in enc["input_ids"][0].tolist()])


def _report(name: str, module: str, output: Any, layer: int | None, n_tokens: int, adapter: Any) -> ModuleReport:
    """One module's :class:`ModuleReport` from its output (``calls`` left at 0)."""
    import torch

    kind, main_tensor, main_key, elements = _describe(output)
    flags: list[str] = []
    shape = dtype = device = None
    norm_mean = abs_max = None
    values = None
    if main_tensor is not None:
        main_tensor = main_tensor.detach()
        shape, dtype, device = list(main_tensor.shape), str(main_tensor.dtype).removeprefix("torch."), \
            str(main_tensor.device)
        flags += _value_flags(main_tensor)
        if main_tensor.is_floating_point() and main_tensor.numel():
            finite = torch.nan_to_num(main_tensor.float(), nan=0.0, posinf=0.0, neginf=0.0)
            norm_mean = float(finite.norm(dim=-1).mean()) if finite.ndim else float(finite.abs())
            abs_max = float(finite.abs().max())
        values = _values(main_tensor, n_tokens)
    if layer is not None and shape != [1, n_tokens, adapter.d_model]:
        hidden = adapter.hidden(output)
        if hidden is None or list(hidden.shape) != [1, n_tokens, adapter.d_model]:
            flags.append(FLAG_SHAPE)
    access = _access(name, main_key, kind)
    return ModuleReport(
        path=name, access=access, module=module, type=kind, shape=shape, dtype=dtype, device=device, flags=flags,
        main=main_key, elements=elements, is_block=layer is not None, layer=layer, norm_mean=norm_mean,
        abs_max=abs_max, values=values, other_access=_other_access(access, kind, main_key, shape, elements,
                                                                   layer is not None))


def _value_flags(t: Any) -> list[str]:
    import torch

    flags = []
    if t.numel() == 0:
        return flags
    if not t.is_floating_point():
        return flags
    if bool((t == 0).all()):
        flags.append(FLAG_ZERO)
    if bool(torch.isnan(t).any()):
        flags.append(FLAG_NAN)
    if bool(torch.isinf(t).any()):
        flags.append(FLAG_INF)
    return flags
