"""Shared test helpers: tiny, randomly initialised models of several architectures and a tiny BPE tokenizer."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    AutoModel,
    Gemma3TextConfig,
    GPT2Config,
    LlamaConfig,
    MistralConfig,
    PreTrainedTokenizerFast,
    Qwen2Config,
)

ARCHITECTURES = ["llama", "mistral", "qwen2", "gemma3_text", "gpt2"]
DATA_ROOT = Path(os.environ.get("DECEMB_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

CORPUS = [
    "A man is playing a guitar.",
    "A woman is slicing an onion.",
    "The cat sat on the mat.",
    "Retrieve semantically similar text.",
    "This sentence : means in one word:",
    "Rewrite the following sentence",
    "The rewritten sentence",
    "Instruct: Query: what is rlhf? RLHF is reinforcement learning from human feedback.",
    "Dogs run in the park while children play football.",
    "{braces} %%text%% [brackets] 'quotes' \"double\"",
    "0123456789 , . ; : ! ? - _ ( ) / \\ \n \t",
]


def build_tokenizer(add_bos: bool) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer (vocab ~400) trained on a few sentences; optionally adds BOS."""
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<pad>", "<bos>", "<eos>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    backend.train_from_iterator(CORPUS * 3, trainer=trainer)
    if add_bos:
        backend.post_processor = processors.TemplateProcessing(single="<bos> $A", special_tokens=[("<bos>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", padding_side="right"
    )


def tiny_config(arch: str, vocab_size: int):
    common = {"vocab_size": vocab_size, "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}
    decoder = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 256,
        **common,
    }
    if arch == "llama":
        return LlamaConfig(**decoder)
    if arch == "mistral":
        return MistralConfig(**decoder, sliding_window=64)
    if arch == "qwen2":
        return Qwen2Config(
            **decoder,
            use_sliding_window=True,
            sliding_window=64,
            max_window_layers=1,
            layer_types=["full_attention", "sliding_attention"],
        )
    if arch == "gemma3_text":
        return Gemma3TextConfig(
            **decoder, head_dim=8, sliding_window=64, layer_types=["sliding_attention", "full_attention"]
        )
    if arch == "gpt2":
        return GPT2Config(n_embd=32, n_layer=2, n_head=4, n_positions=256, **common)
    raise ValueError(arch)


# Tiny models gain nothing from intra-op threads, and oversubscribed threads slow a busy machine a lot.
if os.environ.get("RUN_SLOW") != "1":
    torch.set_num_threads(1)

_CACHE: dict[str, tuple] = {}


def tiny_backbone(arch: str):
    """(model, tokenizer) for an architecture; Gemma and Llama-style models get a BOS-adding tokenizer."""
    if arch not in _CACHE:
        torch.manual_seed(0)
        tokenizer = build_tokenizer(add_bos=arch in ("gemma3_text", "llama"))
        model = AutoModel.from_config(tiny_config(arch, len(tokenizer)), attn_implementation="sdpa")
        _CACHE[arch] = (model.eval(), tokenizer)
    return _CACHE[arch]
