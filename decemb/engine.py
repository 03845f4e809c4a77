"""Many strategies, layers and text lists through one model: shared forwards, one cache.

``Engine.embed`` renders every job, looks each (rendered input, attention, layer, pooling) up in the
cache, and runs each distinct (rendered ids, attention) sequence through the model once, however
many jobs need it (``mean``, ``last`` and ``sgpt`` on the same texts share a forward; so do echo-mean
and echo-last, and all layers of a sweep). Batches are length-sorted; results come back in input order.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from decemb.attention import AttentionMode
from decemb.cache import EmbeddingCache
from decemb.core import EncodingCore
from decemb.forward import collate, place
from decemb.pooling import pool_weights, weighted_sum
from decemb.rendering import Rendered
from decemb.settings import EncodeSettings
from decemb.strategies import Kind, Strategy


@dataclass(frozen=True)
class EmbeddingJob:
    """Texts to embed with one strategy, on one side (query/document), at one layer (default: the settings')."""

    strategy: Strategy
    kind: Kind = "query"
    texts: Sequence[str] = ()
    layer: int | None = None
    instruction: str | None = None


@dataclass
class EngineStats:
    forward_passes: int = 0  # batches run through the model
    sequences_run: int = 0  # distinct rendered inputs run
    tokens_run: int = 0  # padded tokens run (rows × longest row of each batch): what the model computed
    tokens_rendered: int = 0  # tokens of the rendered inputs run, no padding: what the progress bar counts
    cache_hits: int = 0
    cache_misses: int = 0


@dataclass
class JobCost:
    """One job's share of an ``embed`` call: its own rendering and cache lookups, plus a share of every forward
    batch it needed (a batch's time split over its inputs by token count, an input shared by several jobs
    split evenly among them). ``tokens``: its share of the rendered tokens run, on the same terms."""

    seconds: float = 0.0
    tokens: float = 0.0


@dataclass
class _Consumer:
    job: int
    row: int
    layer: int
    pooling: str
    pool_mask: list[bool]
    key: str


@dataclass
class _Sequence:
    attention: AttentionMode
    rendered: Rendered
    prefix: tuple[int, ...]  # the template's fixed opening ids: sequences sharing it share a KV prefix
    consumers: list[_Consumer] = field(default_factory=list)


def fingerprint(model: PreTrainedModel) -> str:
    """sha256 of the model's config, dtype, compute backend (other than torch) and every parameter's bytes."""
    from decemb.backends import DEFAULT_BACKEND, backend_of

    digest = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True, default=str).encode())
    digest.update(str(model.dtype).encode())
    if backend_of(model) != DEFAULT_BACKEND:  # float32 fingerprints stay as they were
        digest.update(f"backend={backend_of(model)}".encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def batches(lengths: Sequence[int], batch_size: int, max_batch_tokens: int | None) -> list[list[int]]:
    """Index batches over inputs sorted longest first, capped by count and by padded tokens."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    out: list[list[int]] = []
    current: list[int] = []
    for index in order:
        widest = lengths[current[0]] if current else lengths[index]
        too_many = len(current) >= batch_size
        too_big = max_batch_tokens is not None and current and widest * (len(current) + 1) > max_batch_tokens
        if current and (too_many or too_big):
            out.append(current)
            current = []
        current.append(index)
    if current:
        out.append(current)
    return out


class Engine:
    """Embeds many jobs through one :class:`~decemb.core.EncodingCore`, sharing forwards and the cache."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        settings: EncodeSettings | None = None,
        *,
        cache: EmbeddingCache | None = None,
        model_fingerprint: str | None = None,
        show_progress: bool = False,
    ) -> None:
        self.core = EncodingCore(model, tokenizer, settings)
        self.model, self.tokenizer, self.settings = model, tokenizer, self.core.settings
        self.cache = cache
        self.model_fingerprint = model_fingerprint or (fingerprint(model) if cache is not None else "")
        self.show_progress = show_progress
        self.stats = EngineStats()
        self.job_costs: list[JobCost] = []  # per job of the last embed call

    def _key(self, attention: AttentionMode, layer: int, pooling: str, rendered: Rendered) -> str:
        digest = hashlib.sha256(f"{self.model_fingerprint}|{attention.name}|{layer}|{pooling}|".encode())
        digest.update(np.asarray(rendered.input_ids, dtype=np.int64).tobytes())
        digest.update(np.packbits(np.asarray(rendered.pool_mask, dtype=bool)).tobytes())
        return digest.hexdigest()

    def embed(self, jobs: Sequence[EmbeddingJob], desc: str = "Encoding") -> list[np.ndarray]:
        width = self.core.hidden_size
        results = [np.zeros((len(job.texts), width), dtype=np.float32) for job in jobs]
        sequences: dict[tuple[str, tuple[int, ...]], _Sequence] = {}
        consumers: list[_Consumer] = []
        self.job_costs = [JobCost() for _ in jobs]
        for j, job in enumerate(jobs):
            started = time.perf_counter()
            attention, pooling = job.strategy.attention, job.strategy.pooling_name
            layer = self.core.resolve_layer(job.layer)
            renderer = self.core.renderer(job.strategy, job.kind, job.instruction)
            prefix = tuple(renderer.static_prefix)
            for row, rendered in enumerate(renderer.render(list(job.texts))):
                key = self._key(attention, layer, pooling, rendered)
                consumer = _Consumer(j, row, layer, pooling, rendered.pool_mask, key)
                consumers.append(consumer)
                sequence = sequences.setdefault(
                    (attention, tuple(rendered.input_ids)), _Sequence(attention, rendered, prefix)
                )
                sequence.consumers.append(consumer)
            self.job_costs[j].seconds += time.perf_counter() - started
        started = time.perf_counter()
        cached = self.cache.get_many(c.key for c in consumers) if self.cache is not None else {}
        lookup = (time.perf_counter() - started) / max(len(consumers), 1)  # per input looked up
        for consumer in consumers:
            self.job_costs[consumer.job].seconds += lookup
            if consumer.key in cached:
                results[consumer.job][consumer.row] = cached[consumer.key]
        self.stats.cache_hits += sum(c.key in cached for c in consumers)
        self.stats.cache_misses += sum(c.key not in cached for c in consumers)
        pending = [s for s in sequences.values() if any(c.key not in cached for c in s.consumers)]
        self._run(pending, cached, results, desc)
        return results

    def _run(
        self, pending: list[_Sequence], cached: dict[str, np.ndarray], results: list[np.ndarray], desc: str
    ) -> None:
        # Batches never mix attention modes, and keep one template's inputs together (longest first
        # within it), so that their shared opening is computed once by the prefix KV cache.
        by_attention: dict[tuple[AttentionMode, tuple[int, ...]], list[_Sequence]] = defaultdict(list)
        for sequence in pending:
            by_attention[(sequence.attention, sequence.prefix)].append(sequence)
        total = sum(len(s.rendered) for s in pending)
        with tqdm(total=total, desc=desc, unit="tok", disable=not self.show_progress) as bar:
            for (attention, _), group in by_attention.items():
                lengths = [len(s.rendered) for s in group]
                plan = batches(lengths, self.settings.batch_size, self.settings.max_batch_tokens)
                for indices in plan:
                    self._run_batch([group[i] for i in indices], attention, cached, results)
                    bar.update(sum(len(group[i].rendered) for i in indices))

    @torch.inference_mode()
    def _run_batch(
        self, batch: list[_Sequence], attention: AttentionMode, cached: dict[str, np.ndarray], results: list[np.ndarray]
    ) -> None:
        started = time.perf_counter()
        features = collate([s.rendered for s in batch], self.tokenizer, self.settings.padding_side)
        # One pooled vector per distinct key: a text repeated across jobs or rows is pooled once.
        needed: dict[str, tuple[int, _Consumer]] = {}
        for b, sequence in enumerate(batch):
            for consumer in sequence.consumers:
                if consumer.key not in cached:
                    needed.setdefault(consumer.key, (b, consumer))
        layers = sorted({c.layer for _, c in needed.values()})
        states = self.core.hidden_states(features["input_ids"], features["attention_mask"], attention, layers)
        self.stats.forward_passes += 1
        self.stats.sequences_run += len(batch)
        self.stats.tokens_run += int(features["input_ids"].numel())
        self.stats.tokens_rendered += sum(len(s.rendered) for s in batch)
        fresh: dict[str, np.ndarray] = {}
        groups: dict[tuple[int, str], list[tuple[int, _Consumer]]] = defaultdict(list)
        for b, consumer in needed.values():
            groups[(consumer.layer, consumer.pooling)].append((b, consumer))
        length = features["input_ids"].shape[1]
        for (layer, pooling), members in groups.items():
            rows = torch.tensor([b for b, _ in members])
            masks = place([c.pool_mask for _, c in members], length, self.settings.padding_side, False, torch.bool)
            hidden = states[layer].index_select(0, rows.to(states[layer].device))
            vectors = weighted_sum(hidden, pool_weights(pooling, masks)).cpu().numpy()
            for (_, consumer), vector in zip(members, vectors):
                fresh[consumer.key] = vector
        for sequence in batch:
            for consumer in sequence.consumers:
                if consumer.key in fresh:
                    results[consumer.job][consumer.row] = fresh[consumer.key]
        if self.cache is not None and fresh:
            self.cache.put_many(fresh)
        self._charge(batch, cached, time.perf_counter() - started)

    def _charge(self, batch: list[_Sequence], cached: dict[str, np.ndarray], seconds: float) -> None:
        """Split a batch's time over its inputs by token count, and each input's share of time and tokens
        evenly over the jobs that needed it (see :class:`JobCost`)."""
        total = sum(len(s.rendered) for s in batch)
        for sequence in batch:
            jobs = {c.job for c in sequence.consumers if c.key not in cached}
            tokens = len(sequence.rendered)
            for job in jobs:
                self.job_costs[job].tokens += tokens / len(jobs)
                self.job_costs[job].seconds += seconds * tokens / max(total, 1) / len(jobs)
