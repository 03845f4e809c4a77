"""Corpus encoding past one process: Parquet shards, resumable, in process or on Ray Data.

``decemb encode INPUT OUTPUT_FOLDER`` (add ``--ray`` for a local Ray cluster, ``--ray-address ADDR`` for a
running one) plans the input into shards of rows, embeds each shard with a worker that loaded the model
once, writes it atomically, and records the model fingerprint, strategy and settings in a manifest; a
re-run skips the finished shards. :func:`read_vectors` gives ``(ids, vectors)`` back in input order.
Ray is the optional ``ray`` extra (``pip install 'decemb[ray]'``). See ``docs/scale.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from decemb.lazy import lazy_exports

__getattr__, __all__ = lazy_exports(__name__, __file__)  # the names below load on first use

if TYPE_CHECKING:
    from decemb.distributed.run import DEFAULT_SHARD_SIZE, RayOptions, ShardRun, connect, encode_shards
    from decemb.distributed.shards import MANIFEST, ShardFolder, read_vectors
    from decemb.distributed.sources import Plan, Shard, Source, open_source, plan_input, read_shard
    from decemb.distributed.worker import EncodeJob, ShardEncoder, load_engine, probe
