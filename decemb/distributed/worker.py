"""What each worker runs: load the model once, then embed whole shards and write each one atomically.

The same :class:`ShardEncoder` serves the in-process path (one instance, the driver's engine) and Ray
(``map_batches`` over shard descriptions with a pool of these as actors). Inside a shard the engine sorts
the rendered inputs by token length and cuts batches by count and, with ``max_batch_tokens``, by padded
tokens, so short texts never wait behind long ones. User errors (a model that does not load, an input that
changed) come back as data, one line each, instead of a Ray traceback.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields, replace
from typing import Any

from decemb.distributed.shards import write_shard
from decemb.distributed.sources import Shard, Source, read_shard
from decemb.errors import ConfigError
from decemb.files import sha256_of
from decemb.load_options import LoadOptions
from decemb.normalize import l2_normalize

__all__ = ["SHARD_FIELDS", "EncodeJob", "ShardEncoder", "load_engine", "probe"]

SHARD_FIELDS = tuple(f.name for f in fields(Shard))
RESULT_FIELDS = ("shard", "rows", "seconds", "cpu", "sha256", "error")
# The encode settings that change a vector (padding side and batching do not).
VECTOR_SETTINGS = ("max_length", "layer", "add_special_tokens")


@dataclass(frozen=True)
class EncodeJob:
    """Everything a worker needs to embed exactly like every other worker (plain data: sent to Ray actors)."""

    model: str
    strategy: str = "mean"
    options: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)  # EncodeSettings fields
    kind: str = "query"
    instruction: str | None = None
    normalize: bool = False
    loading: LoadOptions = field(default_factory=LoadOptions)  # dtype, device, backend, ... (plain data too)
    quiet: bool = True

    @property
    def device(self) -> str | None:
        return self.loading.device

    def build_strategy(self) -> Any:
        from decemb.strategy_entry import build_checked_strategy

        return build_checked_strategy(self.strategy, dict(self.options))

    def on(self, device: str | None) -> EncodeJob:
        """This job for workers on ``device``, loading quietly (their output is relayed to the driver)."""
        return replace(self, loading=self.loading.model_copy(update={"device": device}), quiet=True)

    def identity(self, fingerprint: str) -> dict[str, Any]:
        """The part of a run's identity this job decides (the model weights, strategy and vector settings)."""
        from decemb.settings import settings_from

        settings = settings_from(**self.settings)
        spec = self.build_strategy()
        return {
            "fingerprint": fingerprint,
            "strategy": {"name": spec.name, "options": spec.options()},
            "settings": {key: getattr(settings, key) for key in VECTOR_SETTINGS},
            "kind": self.kind,
            "instruction": self.instruction,
            "normalize": self.normalize,
        }


def load_engine(job: EncodeJob) -> Any:
    """Load the model into an :class:`~decemb.engine.Engine`, refusing before any work a layer, strategy or
    ``max_length`` it cannot take (``ConfigError`` naming the option)."""
    from decemb.attention import UnsupportedArchitectureError
    from decemb.engine import Engine
    from decemb.errors import ModelSourceError
    from decemb.loading import load_backbone
    from decemb.progress import transformers_progress
    from decemb.settings import settings_from
    from decemb.templates import TemplateError

    strategy = job.build_strategy()
    settings = settings_from(**job.settings)
    try:
        with transformers_progress(not job.quiet):
            model, tokenizer = load_backbone(job.model, job.loading)
    except ModelSourceError as error:
        raise ConfigError(str(error), key="--model") from None
    try:
        engine = Engine(model, tokenizer, settings)  # binds the settings: the layer must be in range
    except ValueError as error:
        raise ConfigError(str(error), key="--layer") from None
    try:
        engine.core.check(strategy, [job.instruction])
    except (UnsupportedArchitectureError, TemplateError) as error:
        raise ConfigError(str(error), key="--strategy") from None
    except ValueError as error:  # the template leaves no room for the text within max_length
        raise ConfigError(str(error), key="--max-length") from None
    return engine


def _threads(count: int | None) -> None:
    if count:
        import torch

        torch.set_num_threads(count)


def probe(job: EncodeJob, threads: int | None = None) -> dict[str, Any]:
    """Load the model where the workers will run: ``{fingerprint, hidden_size, error}`` (error: one line)."""
    from decemb.engine import fingerprint

    _threads(threads)
    try:
        engine = load_engine(job)
    except ConfigError as error:
        return {"fingerprint": "", "hidden_size": 0, "error": str(error)}
    return {"fingerprint": fingerprint(engine.model), "hidden_size": engine.core.hidden_size, "error": ""}


class ShardEncoder:
    """One model per process; ``__call__`` takes a batch of shard descriptions (Ray Data's dict of arrays)."""

    def __init__(
        self, job: EncodeJob, source: Source, folder: str, key: str, *, fingerprint: str | None = None,
        threads: int | None = None, engine: Any = None,
    ) -> None:  # fmt: skip
        from decemb.engine import EmbeddingJob
        from decemb.engine import fingerprint as model_fingerprint

        _threads(threads)
        self.source, self.folder, self.key, self.error = source, folder, key, ""
        try:
            self.engine = engine if engine is not None else load_engine(job)
            if fingerprint is not None and model_fingerprint(self.engine.model) != fingerprint:
                raise ConfigError(
                    f"--model {job.model!r} loads other weights on this node than where the run was planned: "
                    "every node needs the same model files"
                )
        except ConfigError as error:
            self.error = str(error)
        self.embedding = EmbeddingJob(job.build_strategy(), job.kind, (), instruction=job.instruction)
        self.normalize = job.normalize

    def encode(self, shard: Shard) -> str:
        """Embed one whole shard and write it (atomically: a shard file is always complete); its sha256."""
        ids, texts = read_shard(self.source, shard)
        vectors = self.engine.embed([replace(self.embedding, texts=texts)])[0]
        if self.normalize:
            vectors = l2_normalize(vectors)
        return sha256_of(write_shard(self.folder, shard.index, shard.start, ids, vectors, self.key))

    def run(self, shard: Shard) -> dict[str, Any]:
        """Embed one shard: ``{shard, rows, seconds, cpu, sha256, error}`` (wall and CPU seconds; the written
        file's sha256, for the manifest; error: one line or "")."""
        wall, cpu, error, digest = time.perf_counter(), time.process_time(), self.error, ""
        if not error:
            try:
                digest = self.encode(shard)
            except ConfigError as problem:
                error = str(problem)
        rows = 0 if error else shard.stop - shard.start
        seconds, cpu = time.perf_counter() - wall, time.process_time() - cpu
        return {"shard": shard.index, "rows": rows, "seconds": seconds, "cpu": cpu, "sha256": digest, "error": error}

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        """Ray Data's entry: a batch of shard descriptions (a dict of arrays) → one result row per shard."""
        results = [
            self.run(Shard(*(int(value) for value in values)))
            for values in zip(*(batch[name] for name in SHARD_FIELDS))
        ]
        return {key: [result[key] for result in results] for key in RESULT_FIELDS}
