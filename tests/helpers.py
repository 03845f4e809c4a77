"""Shared test helpers: tiny, randomly initialised models of several architectures, a tiny BPE tokenizer,
the strategy cases every suite runs, and the comparison runner's own fixture data and config builders.
Test modules import from here, never from each other."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    AutoModel,
    Gemma2Config,
    Gemma3TextConfig,
    GemmaConfig,
    GPT2Config,
    LlamaConfig,
    MistralConfig,
    PreTrainedTokenizerFast,
    Qwen2Config,
)

ARCHITECTURES = ["llama", "mistral", "qwen2", "gemma3_text", "gpt2"]
# Also built for the attention tests: every architecture decemb claims bidirectional attention for.
BIDIRECTIONAL_ARCHITECTURES = [*ARCHITECTURES, "gemma", "gemma2"]
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
    if arch == "gemma":
        return GemmaConfig(**decoder, head_dim=8)
    if arch == "gemma2":
        return Gemma2Config(
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
        tokenizer = build_tokenizer(add_bos=arch in ("gemma", "gemma2", "gemma3_text", "llama"))
        attention = "eager" if arch == "gemma2" else "sdpa"  # transformers has no SDPA path for Gemma-2
        model = AutoModel.from_config(tiny_config(arch, len(tokenizer)), attn_implementation=attention)
        _CACHE[arch] = (model.eval(), tokenizer)
    return _CACHE[arch]


# -- strategy cases (every strategy and every pooling variant) ----------------------------------------

INSTRUCTION = "Retrieve semantically similar text."
# (strategy, options) pairs covering every strategy and every pooling variant.
CASES = [
    ("mean", {}),
    ("last", {}),
    ("sgpt", {}),
    ("echo", {"pooling": "mean"}),
    ("echo", {"pooling": "last"}),
    ("prompteol", {}),
    ("prompteol", {"demonstrations": [{"sentence": "A jockey riding a horse.", "word": "Equestrian"}]}),
    ("eos", {}),
    ("eos", {"style": "cpt-text"}),
    ("instruct", {"instruction": INSTRUCTION}),
    ("llm2vec", {"pooling": "mean", "instruction": "Find similar text:"}),
    ("llm2vec", {"pooling": "weighted_mean"}),
    ("llm2vec", {"pooling": "eos"}),
]
CASE_IDS = [f"{name}-{'-'.join(str(v)[:12] for v in opts.values()) or 'default'}" for name, opts in CASES]


# -- the comparison runner's own fixture data and configs ---------------------------------------------

OWN_DATA = Path(__file__).parent / "fixtures" / "compare" / "data"

OWN_TASKS = {
    "sts": {
        "type": "sts",
        "name": "own-sts",
        "path": "sts.csv",
        "format": "csv",
        "columns": {"text1": "sentence1", "text2": "sentence2", "score": "score"},
    },
    "retrieval": {"type": "retrieval", "name": "own-retrieval", "path": "retrieval", "format": "beir"},
    "classification": {
        "type": "classification",
        "name": "own-classification",
        "train": "classification-train.csv",
        "test": "classification-test.csv",
        "format": "csv",
        "text": "text",
        "label": "label",
    },
    "clustering": {
        "type": "clustering",
        "name": "own-clustering",
        "path": "clustering.csv",
        "format": "csv",
        "header": False,
        "text": [1, 2],
        "label": 0,
    },
}


def save_tiny_model(folder: Path) -> Path:
    """The tiny random Llama, saved as a model folder (a config's model ``source``)."""
    model, tokenizer = tiny_backbone("llama")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Never touch the user's ~/.cache/decemb; never inherit a data root from the environment; one
    torch thread (the tiny models gain nothing from more, and spin-waiting threads on a busy 2-core
    machine make their forwards 100× slower)."""
    monkeypatch.setenv("DECEMB_CACHE", str(tmp_path / "decemb-cache"))
    monkeypatch.delenv("DECEMB_DATA", raising=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_config(model_dir: Path, tmp_path: Path, *, strategies=("mean",), tasks=("sts",), **extra) -> dict:
    """A config mapping over the own fixture data (``tasks`` names OWN_TASKS entries or is a dict)."""
    return {
        "data_root": str(OWN_DATA),
        "output": str(tmp_path / "out"),
        "cache": str(tmp_path / "cache.sqlite"),
        "models": [{"name": "tiny", "source": str(model_dir), "batch_size": 4}],
        "strategies": copy.deepcopy(list(strategies)),
        "tasks": [copy.deepcopy(OWN_TASKS[t] if isinstance(t, str) else t) for t in tasks],
        **extra,
    }


def parse_report(text: str) -> dict[tuple[str, str, str, int, str], tuple[float, bool]]:
    """(task, model, strategy, layer, metric) → (value, bold) from each task's score table of a report (a cell
    is ``value [low, high]``; ``###`` subsections, e.g. a rerank stage, are skipped)."""
    found, task, header = {}, None, None
    for line in text.splitlines():
        if line.startswith(("## ", "### ")):
            task, header = (line[3:].strip() if line.startswith("## ") else None), None
        elif line.startswith("| ") and task and task != "Timing":
            cells = [c.strip() for c in line.strip("|").split("|")]
            if header is None:
                header = cells
            elif not set(cells[0]) <= {"-", ":"}:
                model, strategy, layer = cells[:3]
                for metric, cell in zip(header[3:], cells[3:]):
                    value = float(cell.split(" [")[0].strip("*"))
                    found[(task, model, strategy, int(layer), metric)] = (value, cell.startswith("**"))
    return found


# -- search indexes --------------------------------------------------------------------------------------


def search_embedder():
    """The tiny Llama as a ``mean`` embedder (the search tests' bi-encoder)."""
    import decemb

    model, tok = tiny_backbone("llama")
    return decemb.from_backbone(model, tok, "mean")


SEARCH_IDS = [f"d{i}" for i in range(len(CORPUS))]  # the search tests' ids of CORPUS


def build_index(folder: Path, embedder, ids=SEARCH_IDS, texts=CORPUS, **options):
    from decemb.search import SearchIndex

    return SearchIndex.build(folder, ids, texts, embedder, source="tiny", **options)


def folder_files(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


def generation_files(generation: int) -> list[str]:
    """What an index folder holds after commit ``generation``, sorted as :func:`folder_files` lists them."""
    return [f"bm25-{generation}.npz", f"docs-{generation}.jsonl", "manifest.json", f"vectors-{generation}.faiss"]


def one_line_not_damaged(error: BaseException) -> str:
    """``str(error)``, asserted to be one line that does not call a healthy index damaged."""
    text = str(error)
    assert "\n" not in text and "rebuild" not in text and "corrupt" not in text.lower(), text
    return text


def rrf_order(*rankings: list[str], k: float = 60) -> list[str]:
    """Reciprocal rank fusion by hand (equal weights, ranks from 1): the fused order, best first."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc in enumerate(ranking):
            scores[doc] = scores.get(doc, 0.0) + 1 / (k + rank + 1)
    return sorted(scores, key=lambda d: -scores[d])
