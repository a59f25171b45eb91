"""Tiny randomly-initialised causal LMs of each supported architecture, built locally from configs."""

from __future__ import annotations

import functools

CORPUS = [
    "#include <stdio.h>\nint main(int argc, char **argv) {\n    char buf[16];\n    strcpy(buf, argv[1]);\n"
    "    printf(\"%s\\n\", buf);\n    return 0;\n}\n",
    "def handler(request):\n    name = request.args.get('name')\n    return f'<p>{name}</p>'\n",
    "Question: Does this code contain a bug? Answer: Yes No yes no\n",
]
VOCAB = 300


@functools.lru_cache(maxsize=1)
def tokenizer():
    """A byte-level BPE trained on a few lines of code (deterministic), with <|endoftext|> as id 0."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<|endoftext|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(CORPUS * 4, trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>",
                                   unk_token="<|endoftext|>", pad_token="<|endoftext|>")


def configs():
    import transformers as T

    common = dict(vocab_size=VOCAB, bos_token_id=0, eos_token_id=0, pad_token_id=0)
    llama_like = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=128, **common)
    return {
        "gpt_bigcode": T.GPTBigCodeConfig(n_positions=128, n_embd=32, n_layer=3, n_head=4, multi_query=True, **common),
        "gpt2": T.GPT2Config(n_positions=128, n_embd=32, n_layer=3, n_head=4, **common),
        "llama": T.LlamaConfig(**llama_like),
        "mistral": T.MistralConfig(**llama_like),
        "qwen2": T.Qwen2Config(**llama_like),
        "starcoder2": T.Starcoder2Config(**llama_like),
    }


ARCHS = tuple(configs())


def build(arch: str, seed: int = 0):
    """(hf_model, tokenizer) with fixed random weights, in eval mode."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(configs()[arch]).eval()
    return model, tokenizer()
