"""Architecture adapters: where a causal LM keeps its embedding, blocks, final norm and unembedding,
and what a block really returns.

Known families have a fixed table of module paths; every other model goes through a generic search
that says what it guessed. Either way the adapter *probes* each block with a real two-token forward,
so engine code never assumes a structure: :meth:`ArchAdapter.hidden` always yields ``[batch, seq, d_model]``
(a block that returns a tensor is used as is — never ``output[0]``, which would be batch row 0; a block
that returns a tuple is indexed at the element the probe found).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from steertui.errors import ModelLoadError


@dataclass(frozen=True)
class ArchSpec:
    """Module paths of one architecture family, relative to the HF ``*ForCausalLM`` module."""

    family: str
    model_types: tuple[str, ...]
    embed: str
    blocks: str
    final_norm: str
    unembed: str
    pos_embed: str | None = None


KNOWN_SPECS: tuple[ArchSpec, ...] = (
    ArchSpec("gpt_bigcode", ("gpt_bigcode",), "transformer.wte", "transformer.h", "transformer.ln_f",
             "lm_head", "transformer.wpe"),
    ArchSpec("gpt2", ("gpt2",), "transformer.wte", "transformer.h", "transformer.ln_f", "lm_head", "transformer.wpe"),
    ArchSpec("llama", ("llama", "mistral", "qwen2", "starcoder2"), "model.embed_tokens", "model.layers",
             "model.norm", "lm_head"),
)


def resolve(root: Any, path: str) -> Any:
    """Follow a dotted path (``transformer.h.3.attn``) on a torch module or an nnsight envoy."""
    obj = root
    for part in path.split("."):
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj


def access_path(path: str, root: str = "model") -> str:
    """The nnsight access expression for a dotted module path: ``transformer.h.3`` → ``model.transformer.h[3]``."""
    out = root
    for part in path.split(".") if path else []:
        out += f"[{part}]" if part.isdigit() else f".{part}"
    return out


@dataclass(frozen=True)
class BlockOutput:
    """What a block returns, as probed: a tensor, or a tuple whose element ``index`` is the hidden state."""

    kind: str  # "tensor" or "tuple"
    index: int | None = None
    length: int | None = None  # tuple length

    def describe(self) -> str:
        if self.kind == "tensor":
            return "tensor [batch, seq, d_model]"
        return f"tuple of {self.length}, hidden state at [{self.index}]"

    @property
    def access_suffix(self) -> str:
        return ".output" if self.kind == "tensor" else f".output[{self.index}]"


@dataclass(frozen=True)
class ArchAdapter:
    """A resolved, probed view of one loaded model. Plain data plus tiny helpers."""

    family: str
    model_type: str
    embed: str
    blocks: str
    final_norm: str
    unembed: str
    pos_embed: str | None
    n_layers: int
    d_model: int
    block_output: BlockOutput
    guessed: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)
    # transformers' output_hidden_states: entry i+1 is block i's output for i < n-1; the last entry is
    # the last block's output after the final norm (True), before it (False), or unknown (None): probed.
    hidden_states_last_normed: bool | None = None

    def hidden(self, out: Any) -> Any:
        """The ``[batch, seq, d_model]`` hidden state inside a block's output (tensor or tuple)."""
        if self.block_output.kind == "tensor":
            return out
        return out[self.block_output.index]

    def block_path(self, i: int) -> str:
        return f"{self.blocks}.{i}"

    def block_access(self, i: int) -> str:
        """nnsight expression that yields layer i's hidden state, e.g. ``model.transformer.h[3].output``."""
        return access_path(self.block_path(i)) + self.block_output.access_suffix

    @property
    def block_access_template(self) -> str:
        """:meth:`block_access` with ``{layer}`` for the layer, e.g. ``model.transformer.h[{layer}].output``: where a
        steering vector is read and added, as a session records it."""
        return access_path(self.blocks) + "[{layer}]" + self.block_output.access_suffix

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family, "model_type": self.model_type, "embed": self.embed, "blocks": self.blocks,
            "final_norm": self.final_norm, "unembed": self.unembed, "pos_embed": self.pos_embed,
            "n_layers": self.n_layers, "d_model": self.d_model, "block_output": self.block_output.describe(),
            "guessed": self.guessed, "notes": list(self.notes),
            "hidden_states_last_normed": self.hidden_states_last_normed,
        }


def _spec_for(model_type: str) -> ArchSpec | None:
    for spec in KNOWN_SPECS:
        if model_type in spec.model_types:
            return spec
    return None


def _is_norm(module: Any) -> bool:
    name = type(module).__name__.lower()
    return "norm" in name and not list(module.children())


def _guess_spec(hf: Any, model_type: str) -> tuple[ArchSpec, list[str]]:
    """Generic fallback: the longest ModuleList of identical blocks, the norm after it, HF's embeddings."""
    import torch

    notes: list[str] = []
    names = {id(m): n for n, m in hf.named_modules()}
    lists = [(n, m) for n, m in hf.named_modules()
             if isinstance(m, torch.nn.ModuleList) and len(m) > 0 and len({type(c) for c in m}) == 1]
    if not lists:
        raise ModelLoadError(
            f"no adapter for model type '{model_type}' and no list of identical blocks was found in it",
            "steertui supports GPTBigCode, GPT-2, Llama, Mistral, Qwen2 and Starcoder2; "
            "load one of those or add an ArchSpec for this architecture")
    n_layers = getattr(hf.config, "num_hidden_layers", None)
    exact = [x for x in lists if len(x[1]) == n_layers]
    blocks_name, blocks = max(exact or lists, key=lambda x: len(x[1]))
    notes.append(f"blocks guessed as '{blocks_name}' ({len(blocks)} x {type(blocks[0]).__name__})")
    emb = hf.get_input_embeddings()
    unemb = hf.get_output_embeddings()
    if emb is None or unemb is None or id(emb) not in names or id(unemb) not in names:
        raise ModelLoadError(f"model type '{model_type}': could not find its input embedding or its unembedding",
                             "load a causal LM with a language-modelling head")
    parent = blocks_name.rpartition(".")[0]
    norms = [n for n, m in hf.named_modules()
             if _is_norm(m) and not n.startswith(blocks_name + ".") and n.rpartition(".")[0] == parent]
    if not norms:
        raise ModelLoadError(f"model type '{model_type}': no final norm found beside '{blocks_name}'",
                             "the logit lens needs the final norm; add an ArchSpec for this architecture")
    notes.append(f"final norm guessed as '{norms[-1]}'")
    spec = ArchSpec("generic", (model_type,), names[id(emb)], blocks_name, norms[-1], names[id(unemb)])
    return spec, notes


def _probe_block_outputs(hf: Any, blocks: Any, d_model: int) -> tuple[BlockOutput, list[Any], Any]:
    """Run a real 2-token forward with plain torch hooks and record what each block returns.

    Returns the structure, the raw block outputs and transformers' ``hidden_states`` of the same forward."""
    import torch

    seen: list[Any] = []
    handles = [b.register_forward_hook(lambda _m, _i, o: seen.append(o)) for b in blocks]
    try:
        device = next(hf.parameters()).device
        with torch.no_grad():
            result = hf(input_ids=torch.tensor([[1, 2]], device=device), output_hidden_states=True)
    finally:
        for h in handles:
            h.remove()
    shapes: set[BlockOutput] = set()
    for out in seen:
        if isinstance(out, torch.Tensor):
            if tuple(out.shape) != (1, 2, d_model):
                raise ModelLoadError(f"a block returned a tensor of shape {tuple(out.shape)}, expected (1, 2, {d_model})",
                                     "this architecture needs its own ArchSpec")
            shapes.add(BlockOutput("tensor"))
            continue
        if isinstance(out, (tuple, list)):
            idx = next((k for k, el in enumerate(out)
                        if isinstance(el, torch.Tensor) and tuple(el.shape) == (1, 2, d_model)), None)
            if idx is None:
                raise ModelLoadError("a block returned a tuple without a [batch, seq, d_model] tensor",
                                     "this architecture needs its own ArchSpec")
            shapes.add(BlockOutput("tuple", idx, len(out)))
            continue
        raise ModelLoadError(f"a block returned {type(out).__name__}, not a tensor or tuple",
                             "this architecture needs its own ArchSpec")
    if len(shapes) != 1:
        raise ModelLoadError(f"blocks return different structures: {sorted(s.describe() for s in shapes)}",
                             "this architecture needs its own ArchSpec")
    return shapes.pop(), seen, getattr(result, "hidden_states", None)


def _last_hidden_state_normed(hf: Any, spec: ArchSpec, structure: BlockOutput, outputs: list[Any],
                              hidden_states: Any) -> bool | None:
    """Whether transformers' last ``hidden_states`` entry is the last block's output after the final norm
    (True for every listed family in transformers 5), or before it (False); None if not reported."""
    import torch

    if not hidden_states or len(hidden_states) != len(outputs) + 1:
        return None
    last = outputs[-1] if structure.kind == "tensor" else outputs[-1][structure.index]
    with torch.no_grad():
        normed = resolve(hf, spec.final_norm)(last)
    if torch.allclose(hidden_states[-1], normed, atol=1e-5):
        return True
    if torch.allclose(hidden_states[-1], last, atol=1e-5):
        return False
    return None


def build_adapter(hf: Any) -> ArchAdapter:
    """Find the parts of ``hf`` (a transformers causal LM) and probe what its blocks return."""
    model_type = getattr(hf.config, "model_type", "") or type(hf).__name__
    spec = _spec_for(model_type)
    notes: list[str] = []
    guessed = spec is None
    if spec is None:
        spec, notes = _guess_spec(hf, model_type)
    else:
        try:
            for p in (spec.embed, spec.blocks, spec.final_norm, spec.unembed):
                resolve(hf, p)
        except (AttributeError, IndexError) as err:
            raise ModelLoadError(f"model type '{model_type}' does not have the expected module ({err})",
                                 "the checkpoint may be a variant; report its module tree (print(model))") from err
    blocks = resolve(hf, spec.blocks)
    d_model = resolve(hf, spec.embed).weight.shape[1]
    block_output, outputs, hidden_states = _probe_block_outputs(hf, blocks, d_model)
    last_normed = _last_hidden_state_normed(hf, spec, block_output, outputs, hidden_states)
    return ArchAdapter(
        family=spec.family, model_type=model_type, embed=spec.embed, blocks=spec.blocks,
        final_norm=spec.final_norm, unembed=spec.unembed, pos_embed=spec.pos_embed,
        n_layers=len(blocks), d_model=int(d_model), block_output=block_output, guessed=guessed, notes=tuple(notes),
        hidden_states_last_normed=last_normed,
    )
