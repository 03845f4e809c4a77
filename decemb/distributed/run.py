"""Run a sharded encode: plan the input, check the output folder, embed the unfinished shards in this
process or on Ray Data (a local cluster or ``ray.init(address=...)``), then mark the run complete.

Order of work: the output folder and the input are checked first (no model loaded yet), then the model is
loaded once where the workers run (in this process, or by one Ray task on a worker: the driver never holds
the model) to take its fingerprint, then the manifest is compared with the folder's (another model or run is
refused), and only the shards not already on disk are embedded. On Ray the shards are the rows of a Ray
dataset, ``map_batches`` hands them one at a time to a pool of :class:`ShardEncoder` actors (CPU or GPU),
each of which loaded the model once; a lost actor or node is restarted by Ray Data and its shard redone.
Either way each worker returns the sha256 of the shard file it wrote, and the driver records it in the
manifest as the shard lands; a shard on disk that fails its recorded sha256 is encoded again, said in one line.
"""

from __future__ import annotations

import logging
import math
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from decemb.distributed.shards import FORMAT, ShardFolder, run_key
from decemb.distributed.sources import Plan, Shard, Source, plan_input
from decemb.distributed.worker import EncodeJob, ShardEncoder, load_engine, probe
from decemb.errors import ConfigError

__all__ = ["RayOptions", "ShardRun", "connect", "encode_shards"]

DEFAULT_SHARD_SIZE = 10_000


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide: ``address`` ``None`` starts a local cluster of ``actors × cpus_per_actor`` CPUs."""

    address: str | None = None
    actors: int = 1
    cpus_per_actor: int = 1
    gpus_per_actor: float = 0.0


@dataclass(frozen=True)
class ShardRun:
    """What a run did: its plan (rows, shards), the shards it embedded (the others were on disk), the vector
    width, the wall time, and the shards on disk it encoded again (index -> why, one line)."""

    folder: Path
    plan: Plan
    embedded: int
    hidden_size: int
    seconds: float
    redone: dict[int, str] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return self.plan.rows

    @property
    def shards(self) -> int:
        return len(self.plan.shards)


def _check_address(address: str) -> None:
    """Fail at once, in one line, when nothing listens at a ``host:port`` (``ray.init`` would retry for a minute)."""
    if address in ("auto", "local"):
        return
    client = address.startswith("ray://")
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        host, port = address.removeprefix("ray://"), "10001" if client else "6379"
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ConfigError(
            f"no Ray cluster answers at {address} ({reason}); start one with 'ray start --head' or check the address",
            key="--ray-address",
        ) from None


def connect(options: RayOptions) -> bool:
    """Start or join the Ray cluster; ``True`` when this call started it (then the caller shuts it down)."""
    try:
        import ray
    except ImportError:
        raise ConfigError("Ray is not installed: pip install 'decemb[ray]'", key="--ray") from None
    if ray.is_initialized():
        return False
    quiet = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": True}
    if options.address is None:
        cpus = math.ceil(options.actors * options.cpus_per_actor)
        ray.init(address="local", num_cpus=cpus, **quiet)
        return True
    _check_address(options.address)
    try:
        ray.init(address=options.address, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as error:
        message = " ".join(str(error).split())[:300]
        raise ConfigError(
            f"cannot join the Ray cluster at {options.address} ({message})", key="--ray-address"
        ) from None
    return True


def _remote_resources(options: RayOptions) -> dict[str, Any]:
    resources: dict[str, Any] = {"num_cpus": options.cpus_per_actor}
    if options.gpus_per_actor:
        resources["num_gpus"] = options.gpus_per_actor
    return resources


def _probe_on_ray(job: EncodeJob, options: RayOptions) -> dict[str, Any]:
    import ray

    # max_calls=1: the worker process exits afterwards, so no GPU memory stays held next to the actors.
    task = ray.remote(**_remote_resources(options), max_retries=0, max_calls=1)(probe)
    return ray.get(task.remote(job, options.cpus_per_actor))


def _embed_on_ray(
    encoder: dict[str, Any], pending: list[Shard], options: RayOptions, report: Callable[[dict[str, Any]], None]
) -> None:
    import ray.data
    from ray.data import ActorPoolStrategy, DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False  # this driver shows its own bar (rows); Ray's are one per operator
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)  # "progress bars disabled"
    shards = ray.data.from_items([asdict(shard) for shard in pending], override_num_blocks=len(pending))
    results = shards.map_batches(
        ShardEncoder,
        batch_size=1,
        compute=ActorPoolStrategy(size=min(options.actors, len(pending))),
        fn_constructor_kwargs=encoder,
        **_remote_resources(options),
    )
    for row in results.iter_rows():
        report(row)


def encode_shards(
    job: EncodeJob,
    source: Source,
    output: str | Path,
    *,
    shard_size: int = DEFAULT_SHARD_SIZE,
    ray: RayOptions | None = None,
    show_progress: bool = False,
    plan: Plan | None = None,
    on_shard: Callable[[dict[str, Any]], None] | None = None,
) -> ShardRun:
    """Embed ``source`` into the shard folder ``output`` (resuming a run there), in process or on Ray.
    ``on_shard`` is called with each shard's result as it lands: ``{shard, rows, seconds, cpu, sha256, error}``.
    A shard on disk that fails its recorded sha256 (or has none) is encoded again, with a line on stderr."""
    from tqdm.auto import tqdm

    started = time.perf_counter()
    folder = ShardFolder(output)
    folder.check()  # a file, or a folder of other files: refused before the input is even read
    plan = plan or plan_input(source, shard_size)
    rows = [shard.stop - shard.start for shard in plan.shards]
    owns_ray = False
    with folder:
        if ray is None:
            from decemb.engine import fingerprint

            engine = load_engine(job)
            info = {"fingerprint": fingerprint(engine.model), "hidden_size": engine.core.hidden_size}
        else:
            job = job.on(job.device or ("cuda" if ray.gpus_per_actor else "cpu"))  # quiet: no bars from actors
            owns_ray = connect(ray)
            info = _probe_on_ray(job, ray)
            if info["error"]:
                raise ConfigError(info["error"])
        try:
            identity = {**job.identity(info["fingerprint"]), "input": _input_identity(plan), "shard_size": shard_size}
            key = run_key(identity)
            manifest = {
                "format": FORMAT,
                "run_key": key,
                "identity": identity,
                "model_source": job.model,
                "input_path": source.path,
                "rows": plan.rows,
                "shards": len(plan.shards),
                "hidden_size": info["hidden_size"],
            }
            finished = folder.begin(manifest, rows)
            for reason in folder.redone.values():
                print(f"decemb: {folder.path}: {reason}", file=sys.stderr)
            pending = [shard for shard in plan.shards if shard.index not in finished]
            done = sum(rows[i] for i in finished)
            with tqdm(total=plan.rows, initial=done, unit="text", disable=not show_progress, desc="Encoding") as bar:

                def report(result: dict[str, Any]) -> None:
                    if result["error"]:
                        raise ConfigError(result["error"])
                    folder.record(int(result["shard"]), str(result["sha256"]))
                    bar.update(result["rows"])
                    if on_shard is not None:
                        on_shard(result)

                encoder = {"job": job, "source": source, "folder": str(folder.path), "key": key}
                if ray is None:
                    worker = ShardEncoder(**encoder, engine=engine)
                    for shard in pending:
                        report(worker.run(shard))
                elif pending:
                    encoder.update(fingerprint=info["fingerprint"], threads=ray.cpus_per_actor)
                    _embed_on_ray(encoder, pending, ray, report)
            folder.finish(manifest, rows)
        finally:
            if owns_ray:
                import ray as ray_module

                ray_module.shutdown()
    seconds = time.perf_counter() - started
    return ShardRun(folder.path, plan, len(pending), info["hidden_size"], seconds, dict(folder.redone))


def _input_identity(plan: Plan) -> dict[str, Any]:
    source = plan.source
    return {
        "format": source.format,
        "column": source.column,
        "id_column": source.id_column,
        "rows": plan.rows,
        "digest": plan.digest,
    }
