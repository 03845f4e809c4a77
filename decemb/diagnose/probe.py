"""The echo probe (Springer et al. 2024, arXiv:2402.15449, section 3): does the representation of the
*start* of a text already know how the text ends?

Each probe item is four sentences: a shared prefix A, a sentence B, a paraphrase B+ of B and an unrelated
B−. The model reads three texts, "A B", "A B+" and "A B−", with its strategy (template, attention). The
representation of A is the mean of the pooled layer's states over A's tokens in the *last* copy of the
text the strategy renders (echo: the second copy; every other strategy has one). The probe asks whether
A's representation in "A B" is closer (cosine) to its representation in "A B+" than in "A B−":

* a causal strategy with one copy cannot tell: A's states never see B, so the three are identical (a tie,
  by construction);
* echo's second copy of A has read the whole first copy, B included, so it can; so can bidirectional
  attention (llm2vec).

Reported per strategy: ``prefix_accuracy`` (share of items where B+ wins by more than ``TIE``),
``prefix_ties`` (share of ties), ``prefix_margin`` (mean cos(A|AB, A|AB+) − cos(A|AB, A|AB−)), and the
same check on the whole embedding, ``embedding_accuracy`` / ``embedding_margin``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from decemb.diagnose.gap import unit_rows

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

TIE = 1e-5  # cosine differences below this are ties (float32 noise between batch rows)


@dataclass(frozen=True)
class ProbeItem:
    a: str
    b: str
    b_plus: str
    b_minus: str

    def texts(self) -> list[str]:
        return [f"{self.a} {self.b}", f"{self.a} {self.b_plus}", f"{self.a} {self.b_minus}"]


def _common_prefix(*sequences: list[int]) -> int:
    length = 0
    for column in zip(*sequences):
        if any(value != column[0] for value in column):
            break
        length += 1
    return length


def last_copy_spans(embedder: Any, item: ProbeItem) -> list[tuple[int, list[int]]]:
    """``(start, ids)`` of A's tokens in the last text copy of each of the item's three renderings
    (positions in the unpadded rendering, special prefix included)."""
    renderer = embedder.renderer("query")
    tokenizer = embedder.tokenizer

    def encode(value: str, lead: str) -> list[int]:
        value = renderer.preprocess(value) if renderer.preprocess is not None else value
        ids = tokenizer(lead + value, add_special_tokens=False, split_special_tokens=True)["input_ids"]
        return list(ids)[: renderer.text_budget]

    starts, slots = [], []
    for text in item.texts():
        position, last = len(renderer.prefix), (0, [])
        for segment in renderer.segments:
            if segment.ids is None:
                ids = encode(text, segment.lead)
                last = (position, ids)
                position += len(ids)
            else:
                position += len(segment.ids)
        starts.append(last[0])
        slots.append(last[1])
    lead = next(segment.lead for segment in reversed(renderer.segments) if segment.ids is None)
    length = _common_prefix(encode(item.a, lead), *slots)
    if length == 0:
        raise ValueError(f"probe prefix {item.a[:40]!r} has no tokens of its own in the rendered texts")
    return [(start, slots[0][:length]) for start in starts]


def _batch_vectors(model: SentenceTransformer, items: list[ProbeItem]) -> tuple[np.ndarray, np.ndarray]:
    """(A's representations, whole embeddings), each ``(len(items), 3, hidden)``, from one forward."""
    import torch

    embedder = model[0]
    texts = [text for item in items for text in item.texts()]
    features = embedder.preprocess(texts, task="query")
    features = {key: value.to(embedder.core.device) for key, value in features.items()}
    with torch.no_grad():
        out = embedder.forward(features)
        pooled = model[1].forward(dict(out))["sentence_embedding"].float().cpu().numpy()
    states = out["token_embeddings"].float().cpu().numpy()
    mask, input_ids = features["attention_mask"].cpu().numpy(), features["input_ids"].cpu().numpy()
    prefixes = []
    for index, item in enumerate(items):
        for row, (start, ids) in zip(range(3 * index, 3 * index + 3), last_copy_spans(embedder, item)):
            offset = int(np.argmax(mask[row] > 0)) + start  # left padding shifts the rendering
            if input_ids[row, offset : offset + len(ids)].tolist() != ids:
                raise RuntimeError(f"probe item {index}: the prefix tokens are not where the template puts them")
            prefixes.append(states[row, offset : offset + len(ids)].mean(axis=0))
    hidden = states.shape[-1]
    return np.asarray(prefixes).reshape(len(items), 3, hidden), pooled.reshape(len(items), 3, -1)


def _wins(vectors: np.ndarray) -> np.ndarray:
    """cos(anchor, positive) − cos(anchor, negative) per item, for ``(n, 3, d)`` vectors."""
    unit = unit_rows(vectors.reshape(-1, vectors.shape[-1])).reshape(vectors.shape)
    positive = (unit[:, 0] * unit[:, 1]).sum(axis=1)
    negative = (unit[:, 0] * unit[:, 2]).sum(axis=1)
    return positive - negative


def echo_probe(model: SentenceTransformer, items: list[ProbeItem], *, batch_size: int = 8) -> dict[str, Any]:
    """Run the probe over ``items`` (``batch_size`` items, three texts each, per forward)."""
    from decemb.st.embedder import DecembEmbedder

    if not isinstance(model[0], DecembEmbedder):
        raise TypeError("the echo probe needs a decemb model (it reads the strategy's rendering)")
    if not items:
        raise ValueError("the echo probe needs at least one item")
    prefix_parts, embedding_parts = [], []
    for start in range(0, len(items), batch_size):
        prefixes, embeddings = _batch_vectors(model, items[start : start + batch_size])
        prefix_parts.append(_wins(prefixes))
        embedding_parts.append(_wins(embeddings))
    prefix, embedding = np.concatenate(prefix_parts), np.concatenate(embedding_parts)
    return {
        "items": len(items),
        "prefix_accuracy": round(float((prefix > TIE).mean()), 4),
        "prefix_ties": round(float((np.abs(prefix) <= TIE).mean()), 4),
        "prefix_margin": round(float(prefix.mean()), 5),
        "embedding_accuracy": round(float((embedding > TIE).mean()), 4),
        "embedding_margin": round(float(embedding.mean()), 5),
    }
