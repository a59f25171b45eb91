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

if TYPE_CHECKING:  # pragma: no cover
    from steertui.engine.model import LoadedModel

DEFAULT_PROMPT = "#include <string.h>\n\nvoid copy(char *dst, const char *src)\n{\n    strcpy(dst, src);\n}\n"

FLAG_ZERO = "all-zero"
FLAG_NAN = "nan"
FLAG_INF = "inf"
FLAG_NOT_RUN = "not-run"
FLAG_SHAPE = "unexpected-shape"


@dataclass(frozen=True)
class Element:
    """One element of a tuple or ModelOutput output."""

    key: str  # "0", "1" or a field name
    type: str
    shape: list[int] | None = None
    dtype: str | None = None


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


def probe_layers(model: "LoadedModel", prompt: str = DEFAULT_PROMPT) -> LayersReport:
    """Run one real forward of ``prompt`` and describe every module's output."""
    import torch

    hf = model.hf
    adapter = model.adapter
    block_paths = {adapter.block_path(i): i for i in range(adapter.n_layers)}
    first: dict[str, Any] = {}
    calls: dict[str, int] = {}
    order: list[str] = []

    def hook_for(name: str):
        def hook(_module, _inputs, output):
            calls[name] = calls.get(name, 0) + 1
            if name not in first:
                first[name] = _detach(output)
                order.append(name)
        return hook

    enc = model.encode([prompt])
    with model.lock, torch.no_grad():
        handles = [m.register_forward_hook(hook_for(n)) for n, m in hf.named_modules()]
        try:
            hf(**enc)
        finally:
            for h in handles:
                h.remove()
    n_tokens = int(enc["input_ids"].shape[1])
    # Containers (ModuleList/ModuleDict) are never called: they have no output to show.
    names = order + [n for n, m in hf.named_modules()
                     if n not in first and not isinstance(m, (torch.nn.ModuleList, torch.nn.ModuleDict))]
    modules = {n: m for n, m in hf.named_modules()}
    reports = []
    for name in names:
        kind, main_tensor, main_key, elements = _describe(first.get(name))
        flags: list[str] = []
        shape = dtype = device = None
        norm_mean = abs_max = None
        if name not in first:
            flags.append(FLAG_NOT_RUN)
            kind = "not run"
        if main_tensor is not None:
            shape, dtype, device = list(main_tensor.shape), str(main_tensor.dtype).removeprefix("torch."), \
                str(main_tensor.device)
            flags += _value_flags(main_tensor)
            if main_tensor.is_floating_point() and main_tensor.numel():
                finite = torch.nan_to_num(main_tensor.float(), nan=0.0, posinf=0.0, neginf=0.0)
                norm_mean = float(finite.norm(dim=-1).mean()) if finite.ndim else float(finite.abs())
                abs_max = float(finite.abs().max())
        layer = block_paths.get(name)
        if layer is not None and shape != [1, n_tokens, adapter.d_model]:
            hidden = adapter.hidden(first[name]) if name in first else None
            if hidden is None or list(hidden.shape) != [1, n_tokens, adapter.d_model]:
                flags.append(FLAG_SHAPE)
        reports.append(ModuleReport(
            path=name, access=_access(name, main_key, kind), module=type(modules[name]).__name__, type=kind,
            shape=shape, dtype=dtype, device=device, flags=flags, main=main_key, elements=elements,
            is_block=layer is not None, layer=layer, norm_mean=norm_mean, abs_max=abs_max, calls=calls.get(name, 0),
        ))
    return LayersReport(model.info.name, prompt, n_tokens, adapter.d_model, adapter.n_layers,
                        adapter.to_dict(), reports)


def _detach(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    if isinstance(value, (tuple, list)):
        return type(value)(_detach(v) for v in value) if isinstance(value, tuple) else [_detach(v) for v in value]
    return value


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
