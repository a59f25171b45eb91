"""One loaded model, wrapped for nnsight, with its adapter and its lock.

Loading is offline-first: a local folder, or a Hugging Face id that is already in the local cache.
The HF model is built by transformers, put in eval mode, and wrapped with ``TransformersModel(hf,
tokenizer=tok)`` (the robust path for nnsight 0.8 with transformers 5). Two threads tracing one model
break nnsight, so every engine operation takes :attr:`LoadedModel.lock`.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from steertui.engine.adapters import ArchAdapter, build_adapter, resolve
from steertui.errors import ContextLengthError, LayerIndexError, ModelLoadError, SteertuiError
from steertui.paths import demo_model_dir

DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16", "half": "float16"}


@dataclass(frozen=True)
class ModelInfo:
    """What was loaded, as plain data (for the UI, sessions and results)."""

    name: str  # the id or path the user gave (or "demo")
    path: str  # resolved local folder
    model_type: str
    n_layers: int
    d_model: int
    vocab_size: int
    n_params: int
    dtype: str
    device: str
    revision: str | None
    weights_sha256: str
    is_demo: bool
    adapter: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def pick_device(device: str | None) -> str:
    import torch

    if device:
        if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", device):
            raise ModelLoadError(f"unknown device '{device}'", "pass --device cpu, cuda, cuda:N or mps")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ModelLoadError(f"device '{device}' asked for, but CUDA is not available here",
                                 "drop --device or pass --device cpu")
        if device == "mps" and not torch.backends.mps.is_available():
            raise ModelLoadError("device 'mps' asked for, but MPS is not available here", "pass --device cpu")
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def mask_positions(attention_mask: Any) -> Any:
    """The position ids ``generate`` derives from an attention mask: each row counts from its first real token, so
    a left-padded row's tokens sit at the positions they have alone (padding gets 1; it is masked anyway)."""
    positions = attention_mask.long().cumsum(-1) - 1
    positions.masked_fill_(attention_mask == 0, 1)
    return positions


def pick_dtype(dtype: str | None, device: str) -> str:
    if dtype is None:
        return "bfloat16" if device.startswith("cuda") else "float32"
    if dtype not in DTYPES:
        raise ModelLoadError(f"unknown dtype '{dtype}'", f"use one of {', '.join(sorted(set(DTYPES.values())))}")
    return DTYPES[dtype]


def weights_sha256(folder: Path) -> str:
    """sha256 over the weight files' names and bytes (sorted), so a replay can tell the weights changed."""
    digest = hashlib.sha256()
    files = sorted(p for p in folder.iterdir() if p.suffix in {".safetensors", ".bin"} and p.is_file())
    for p in files:
        digest.update(p.name.encode())
        with open(p, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _looks_like_path(spec: str) -> bool:
    """A spec that cannot be a Hugging Face id (``name`` or ``org/name``) is a local path."""
    return spec.startswith((".", "/", "~")) or spec.endswith("/") or spec.count("/") > 1 or "\\" in spec


def resolve_model_folder(spec: str | os.PathLike | None, revision: str | None = None,
                         allow_download: bool = False) -> tuple[Path, str, bool]:
    """Turn ``--model`` into a local folder. Returns (folder, display name, is_demo)."""
    if spec is None or str(spec) in ("", "demo"):
        folder = demo_model_dir()
        if not (folder / "config.json").is_file():
            raise ModelLoadError(f"the shipped demo model is missing at {folder}",
                                 "run `python scripts/train_demo_model.py` or pass --model PATH")
        return folder, "demo", True
    text = os.path.expanduser(str(spec))
    path = Path(text)
    if path.exists() or _looks_like_path(text):
        if not path.exists():
            raise ModelLoadError(f"model path '{text}' does not exist",
                                 "pass a folder holding config.json and weights, or a Hugging Face id like org/name")
        if not path.is_dir() or not (path / "config.json").is_file():
            raise ModelLoadError(f"'{text}' is not a model folder (no config.json in it)",
                                 "pass the folder that `save_pretrained` wrote (config.json, *.safetensors, tokenizer)")
        return path.resolve(), text, path.resolve() == demo_model_dir().resolve()
    # A Hugging Face id: local cache only unless downloads are allowed.
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        folder = snapshot_download(text, revision=revision, local_files_only=not allow_download,
                                   allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model", "tokenizer*"])
    except LocalEntryNotFoundError as err:
        raise ModelLoadError(
            f"model '{text}' is not in the local Hugging Face cache",
            f"on a machine with network run `hf download {text}` (or pass --download), "
            "or pass a local folder with --model PATH") from err
    except Exception as err:  # repository not found, gated, network errors
        raise ModelLoadError(f"could not get model '{text}': {type(err).__name__}: {str(err).splitlines()[0]}",
                             "check the id and your access, or pass a local folder with --model PATH") from err
    return Path(folder), text, False


class LockedTokenizer:
    """A loaded model's tokenizer whose every call takes the model's lock.

    A fast tokenizer keeps its padding and truncation settings as state that each call rewrites, so two
    threads encoding at once can mix them up (one thread's batch padded with another's settings). Every
    method call and ``tokenizer(...)`` goes through the lock (an ``RLock``: calls made inside an engine
    operation, which already holds it, pass straight through); attributes are read and set on the tokenizer.
    """

    def __init__(self, tokenizer: Any, lock: threading.RLock) -> None:
        object.__setattr__(self, "_tokenizer", tokenizer)
        object.__setattr__(self, "_lock", lock)
        object.__setattr__(self, "token_texts", {})  # id -> decoded text, filled by engine.lens.TokenDecoder
        # Whole files are tokenized on purpose, to count their tokens and cut them to the context (what runs is
        # fitted first: LoadedModel.encode refuses a prompt that does not fit), so the tokenizer's warning that a
        # text is longer than the model's maximum ("... will result in indexing errors") would be a false alarm.
        warned = getattr(tokenizer, "deprecation_warnings", None)
        if isinstance(warned, dict):
            warned["sequence-length-is-longer-than-the-specified-maximum"] = True

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return self._tokenizer(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._tokenizer, name)
        if not callable(attr) or isinstance(attr, type):
            return attr
        lock = self._lock

        def locked(*args: Any, **kwargs: Any) -> Any:
            with lock:
                return attr(*args, **kwargs)

        return locked

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._tokenizer, name, value)

    def __len__(self) -> int:
        return len(self._tokenizer)


class LoadedModel:
    """A loaded model: the HF module, its tokenizer, the nnsight wrapper, the adapter and the lock."""

    def __init__(self, hf: Any, tokenizer: Any, info: ModelInfo, adapter: ArchAdapter) -> None:
        from nnsight import TransformersModel

        self.hf = hf
        self.info = info
        self.adapter = adapter
        self.lock = threading.RLock()
        self.nn = TransformersModel(hf, tokenizer=tokenizer)
        self.tokenizer = LockedTokenizer(tokenizer, self.lock)
        self._context: int | None = None
        self._norm32: Any = None
        self._keeps_logits: bool | None = None
        # nnsight sets left padding on the tokenizer; the engine relies on it and checks it.
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token

    # ---- loading -------------------------------------------------------------------------------
    @classmethod
    def load(cls, spec: str | os.PathLike | None = None, *, device: str | None = None, dtype: str | None = None,
             revision: str | None = None, trust_remote_code: bool = False,
             allow_download: bool = False) -> "LoadedModel":
        folder, name, is_demo = resolve_model_folder(spec, revision, allow_download)
        import torch
        from safetensors import SafetensorError
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        dev = pick_device(device)
        dt = pick_dtype(dtype, dev)
        weights: list[Path] = []
        try:
            config = AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code)  # architecture first
            weights = sorted(Path(folder).glob("*.safetensors"))
            if not weights:
                pickles = sorted(p.name for p in Path(folder).glob("*.bin"))
                raise ModelLoadError(f"no *.safetensors weights in {folder}"
                                     + (f" (only the pickle checkpoint {', '.join(pickles)}, which steertui never loads)"
                                        if pickles else ""),
                                     "convert the weights to safetensors (model.save_pretrained(folder) writes them)")
            hf = AutoModelForCausalLM.from_pretrained(folder, config=config, dtype=getattr(torch, dt),
                                                      use_safetensors=True, trust_remote_code=trust_remote_code)
            tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
        except (SafetensorError, RuntimeError, KeyError) as err:  # truncated, random or empty weight files
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ModelLoadError(f"the weights of '{name}' ({', '.join(w.name for w in weights)}) cannot be read: "
                                 f"{first[:200]}", "the file is damaged or incomplete: copy or download it again") from err
        except ValueError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            hint = ("it needs its own code: pass --trust-remote-code only if you trust it"
                    if "trust_remote_code" in str(err) else "check that the folder holds a causal language model")
            raise ModelLoadError(f"could not load model '{name}': {first}", hint) from err
        except OSError as err:
            raise ModelLoadError(f"could not load model '{name}': {str(err).splitlines()[0]}",
                                 "the folder needs config.json, weights (*.safetensors) and a tokenizer") from err
        hf = hf.to(dev).eval()
        hf.requires_grad_(False)
        adapter = build_adapter(hf)
        info = ModelInfo(
            name=name, path=str(folder), model_type=adapter.model_type, n_layers=adapter.n_layers,
            d_model=adapter.d_model, vocab_size=int(resolve(hf, adapter.unembed).weight.shape[0]),
            n_params=sum(p.numel() for p in hf.parameters()), dtype=dt, device=dev,
            revision=revision or _revision_of(folder), weights_sha256=weights_sha256(folder), is_demo=is_demo,
            adapter=adapter.to_dict(),
        )
        return cls(hf, tok, info, adapter)

    @classmethod
    def from_modules(cls, hf: Any, tokenizer: Any, name: str = "in-memory") -> "LoadedModel":
        """Wrap an already-built HF model (tests, notebooks). Puts it in eval mode."""
        hf = hf.eval()
        hf.requires_grad_(False)
        adapter = build_adapter(hf)
        p = next(hf.parameters())
        info = ModelInfo(
            name=name, path="", model_type=adapter.model_type, n_layers=adapter.n_layers, d_model=adapter.d_model,
            vocab_size=int(resolve(hf, adapter.unembed).weight.shape[0]),
            n_params=sum(x.numel() for x in hf.parameters()), dtype=str(p.dtype).removeprefix("torch."),
            device=str(p.device), revision=None, weights_sha256="", is_demo=False, adapter=adapter.to_dict(),
        )
        return cls(hf, tokenizer, info, adapter)

    # ---- access ----------------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        return self.adapter.n_layers

    @property
    def d_model(self) -> int:
        return self.adapter.d_model

    @property
    def device(self) -> Any:
        return next(self.hf.parameters()).device

    def check_layer(self, layer: int) -> int:
        """Validate a layer index (negative counts from the end); returns the non-negative index."""
        n = self.n_layers
        if not isinstance(layer, int) or not -n <= layer < n:
            raise LayerIndexError(f"layer {layer} is out of range for {self.info.name} ({n} layers)",
                                  f"use 0..{n - 1} (or -1 for the last)")
        return layer % n

    def envoy(self, path: str) -> Any:
        """The nnsight envoy at a dotted module path (``transformer.h.3``)."""
        return resolve(self.nn, path)

    def block_envoys(self) -> Any:
        return self.envoy(self.adapter.blocks)

    def hf_module(self, path: str) -> Any:
        return resolve(self.hf, path)

    @property
    def context_length(self) -> int:
        """The model's context length, by the one rule (:func:`steertui.engine.data.budget.context_length`)."""
        if self._context is None:
            from steertui.engine.data.budget import context_length

            value = context_length(self.hf.config, self.tokenizer)
            if value is None:
                raise SteertuiError(f"the context length of {self.info.name} is unknown: its config names none of "
                                    "n_positions, max_position_embeddings, n_ctx, seq_length, and its tokenizer has "
                                    "no limit", "use a model whose config.json gives its context length")
            self._context = value
        return self._context

    def logits_only_at(self, columns: Any, attention_mask: Any) -> dict[str, Any]:
        """Inputs to add to an encoding so that the model's head computes logits at ``columns`` only (a 1-D
        tensor of positions; the head's output is then ``[B, len(columns), V]`` in that order), or ``{}`` when
        its forward cannot (the output then keeps every position). Transformers' causal LMs take
        ``logits_to_keep``: at the answer slot of a 250-token prompt the head's product shrinks 250 times.

        The position ids derived from ``attention_mask`` come with it: nnsight supplies them for a left-padded
        batch only when the encoding holds nothing but per-row inputs, and without them a padded row's tokens
        sit at the wrong positions (its logits moved by up to 3.5 on the demo model)."""
        if self._keeps_logits is None:
            import inspect

            self._keeps_logits = "logits_to_keep" in inspect.signature(self.hf.forward).parameters
        if not self._keeps_logits:
            return {}
        return {"logits_to_keep": columns, "position_ids": mask_positions(attention_mask)}

    def float32_head(self) -> Any:
        """The final norm and the unembedding as one float32 function ``hidden [..., D] -> logits [..., V]``.

        A model in bfloat16 or float16 rounds its logits to 8 or 11 bits of mantissa (a logit of 20 to steps of
        0.125 in bfloat16), which is as large as the verdict shifts steering makes; the verdict score and the
        lens read logits through this head instead. For a float32 model it is the model's own modules; for
        another dtype a float32 copy of the final norm (d_model numbers, made once) and the unembedding weight
        cast to float32 for this head (a transient copy of vocab × d_model floats). Call it outside a trace."""
        import copy

        import torch

        norm, unembed = self.hf_module(self.adapter.final_norm), self.hf_module(self.adapter.unembed)
        if self.hf.dtype == torch.float32:
            return lambda h: unembed(norm(h))
        if self._norm32 is None:
            self._norm32 = copy.deepcopy(norm).float()
        norm32 = self._norm32
        if isinstance(unembed, torch.nn.Linear):
            weight = unembed.weight.float()
            bias = None if unembed.bias is None else unembed.bias.float()
            return lambda h: torch.nn.functional.linear(norm32(h.float()), weight, bias)
        unembed32 = copy.deepcopy(unembed).float()
        return lambda h: unembed32(norm32(h.float()))

    def encode(self, texts: list[str], max_length: int | None = None, new_tokens: int = 0) -> dict[str, Any]:
        """Tokenize a batch with left padding; returns ``input_ids`` and ``attention_mask`` on the model's device.

        With ``max_length`` each text is cut to that many tokens. Without it, every text (plus ``new_tokens``
        to be generated after it) must fit the model's context, and no text may be empty: otherwise a
        :class:`ContextLengthError` says which prompt and what to do, before the model sees anything."""
        texts = list(texts)
        enc = self.tokenizer(texts, return_tensors="pt", padding=True, truncation=max_length is not None,
                             max_length=max_length)  # under the model's lock (LockedTokenizer)
        lengths = enc["attention_mask"].sum(-1).tolist() if texts else []
        which = (lambda r: "the prompt" if len(texts) == 1 else f"prompt {r + 1} of {len(texts)}")
        for r, n in enumerate(lengths):
            if n == 0:
                raise ContextLengthError(f"{which(r)} is empty (0 tokens)", "give at least one token of text")
        if max_length is None and lengths:
            r = max(range(len(lengths)), key=lengths.__getitem__)
            n, ctx = int(lengths[r]), self.context_length
            if n + new_tokens > ctx:
                need = f"{n} tokens" + (f" + {new_tokens} new tokens" if new_tokens else "")
                room = ctx - n
                hint = ("ask for at most {} new tokens".format(room) if new_tokens and room > 0 else
                        "shorten it: the dataset commands keep a window of whole lines that fits "
                        "(see `steertui data budget`)")
                raise ContextLengthError(f"{which(r)} is {need}, more than {self.info.name}'s context of {ctx}",
                                         hint)
        return {"input_ids": enc["input_ids"].to(self.device), "attention_mask": enc["attention_mask"].to(self.device)}

    def token_id(self, text: str) -> int | None:
        """The single token id that ``text`` encodes to, or None when it is several tokens."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids[0] if len(ids) == 1 else None


def _revision_of(folder: Path) -> str | None:
    """For a hub snapshot folder (…/snapshots/<commit>), the commit hash."""
    if folder.parent.name == "snapshots" and len(folder.name) == 40:
        return folder.name
    return None
