"""Shared helpers of the benchmark scripts: arguments, machine header, data, model, timing, memory.

Every script follows the same protocol: ``torch.set_num_threads`` set explicitly (and printed), a
header naming the machine, one warm-up pass of every measured path, then ``repeats`` timed passes run
round-robin over the paths (path A, path B, path A, path B, ...) so that a slow phase of a shared
machine hits every path alike; figures are medians. All paths of a script run in one process, on the
same sentences.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python benchmarks/x.py` from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402

from decemb.threads import usable_cores  # noqa: E402

DEFAULT_MODEL = "smollm2-135m"


# -- arguments ---------------------------------------------------------------------------------------
def parser(description: str, *, pairs: int = 256, quick_pairs: int = 32, repeats: int = 3) -> argparse.ArgumentParser:
    """The options every script takes; scripts add their own on the returned parser."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="small smoke-test sizes (figures are not measurements)")
    p.add_argument("--data-root", default=None, help="data folder (default: $DECEMB_DATA or ../shared/data)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: usable CPU cores)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"decemb model source (default {DEFAULT_MODEL})")
    p.add_argument("--dtype", default="float32", help="model dtype (default float32)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--pairs",
        type=int,
        default=None,
        help=f"sample size: STS-B pairs, or queries / pool size where the script says so (default {pairs}, "
        f"quick {quick_pairs})",
    )
    p.add_argument("--repeats", type=int, default=None, help=f"timed repeats (default {repeats}, quick 1)")
    p.set_defaults(_pairs=pairs, _quick_pairs=quick_pairs, _repeats=repeats)
    return p


def parse(p: argparse.ArgumentParser, argv: Sequence[str] | None = None, *, header: bool = True) -> argparse.Namespace:
    """Parse, fill the size defaults (full or ``--quick``), set the torch threads and print the header."""
    args = p.parse_args(argv)
    if args.pairs is None:
        args.pairs = args._quick_pairs if args.quick else args._pairs
    if args.repeats is None:
        args.repeats = 1 if args.quick else args._repeats
    args.threads = set_threads(args.threads)
    if header:
        print_header(args)
    return args


def set_threads(threads: int | None) -> int:
    """torch threads: ``threads``, else all usable cores (a benchmark names its thread count explicitly)."""
    from decemb.threads import set_threads as set_decemb_threads

    set_decemb_threads(threads or usable_cores())
    return torch.get_num_threads()


# -- machine header ----------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover
        return "n/a"


def print_header(args: argparse.Namespace) -> None:
    import sentence_transformers
    import transformers

    script = Path(sys.argv[0]).name
    mode = "QUICK (smoke test, not a measurement)" if args.quick else "full"
    print(f"== {script} [{mode}]")
    print(
        f"machine: {cpu_model()} | {os.cpu_count()} logical CPUs ({usable_cores()} usable) | "
        f"torch {torch.__version__} | transformers {transformers.__version__} | "
        f"sentence-transformers {sentence_transformers.__version__} | python {platform.python_version()}"
    )
    print(
        f"settings: torch.set_num_threads({args.threads}) | dtype {args.dtype} | model {args.model} | "
        f"batch {args.batch_size} | repeats {args.repeats} (+1 warm-up) | load average {load_average()}"
    )
    busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if busy > 0.5:
        print(
            f"WARNING: the machine is busy before this run starts (1-min load average {busy:.2f} on "
            f"{usable_cores()} cores): other processes compete for the cores and torch's threads wait on "
            "each other; these figures are not measurements (use a quiet machine, or --threads 1)."
        )
    sys.stdout.flush()


def print_footer() -> None:
    print(f"load average at end: {load_average()}")


# -- data --------------------------------------------------------------------------------------------
def data_root(arg: str | None) -> Path:
    """``--data-root``, else ``$DECEMB_DATA``, else ``../shared/data`` (:func:`decemb.config_base.data_root`)."""
    from decemb.config_base import data_root as resolve_root

    root = resolve_root(arg)
    if not root.is_dir():
        sys.exit(f"data root {root} does not exist (pass --data-root or set DECEMB_DATA)")
    return root


def sts_pairs(root: Path, pairs: int, split: str = "test") -> list[tuple[str, str]]:
    """The first ``pairs`` (sentence1, sentence2) of STS-B ``sts-{split}.csv`` (tab-separated, no header)."""
    from decemb.records import iter_rows

    path = root / "stsbenchmark" / f"sts-{split}.csv"
    out: list[tuple[str, str]] = []
    for _, parts in iter_rows(path, "tsv", header=False, ragged=True):  # STS-B's layout (decemb.records)
        if len(parts) < 7:
            continue
        out.append((parts[5], parts[6]))
        if len(out) == pairs:
            break
    if len(out) < pairs:
        sys.exit(f"{path} has only {len(out)} pairs, {pairs} requested")
    return out


def sts_sentences(root: Path, pairs: int, split: str = "test") -> list[str]:
    """``2 * pairs`` sentences: sentence1, sentence2 of each of the first ``pairs`` STS-B pairs."""
    return [s for pair in sts_pairs(root, pairs, split) for s in pair]


def scifact_queries(root: Path, count: int) -> list[str]:
    """The first ``count`` SciFact query texts (``scifact/queries.jsonl``)."""
    from decemb.records import iter_rows

    out: list[str] = []
    for _, record in iter_rows(root / "scifact" / "queries.jsonl", "jsonl"):
        out.append(record["text"])  # type: ignore[call-overload]
        if len(out) == count:
            break
    return out


# -- model -------------------------------------------------------------------------------------------
def load_model(args: argparse.Namespace) -> tuple[Any, Any]:
    """(base model, tokenizer) through ``decemb.load_backbone``, eval mode, on CPU."""
    from decemb.loading import load_backbone

    start = time.perf_counter()
    model, tokenizer = load_backbone(args.model, dtype=args.dtype)
    config = model.config.get_text_config()
    print(
        f"model: {type(model).__name__} | {parameter_count(model) / 1e6:.1f} M parameters "
        f"({parameter_bytes(model) / 2**20:.0f} MiB) | {config.num_hidden_layers} layers, hidden "
        f"{config.hidden_size} | attention {model.config._attn_implementation} | loaded in "
        f"{time.perf_counter() - start:.1f} s"
    )
    return model, tokenizer


def model_folder(source: str) -> Path:
    """A plain Hugging Face folder of ``source`` (for a GGUF/alias, decemb's dequantized cache folder)."""
    from decemb.loading import dequantized_gguf, resolve_source

    resolved = resolve_source(source)
    if resolved.gguf_file is not None:
        return dequantized_gguf(resolved.gguf_file)
    return Path(resolved.location)


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def parameter_bytes(model: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


class FeedCounter:
    """Counts what a module is fed through a forward pre-hook on it: real (unpadded) tokens, padded tokens,
    and the tokens the forward actually computes once decemb's shared-prefix KV cache is accounted for
    (a prefix that every row of a batch shares, at least ``min_prefix`` tokens long, runs once).

    Attach it to the first module of a SentenceTransformer (whose input is the ``features`` dict)."""

    def __init__(self, module: torch.nn.Module, *, prefix_cache: bool = True) -> None:
        import inspect

        from decemb.forward import hidden_states

        self.min_prefix = inspect.signature(hidden_states).parameters["min_prefix"].default
        self.prefix_cache = prefix_cache
        self.real = self.padded = self.computed = self.batches = 0
        self._handle = module.register_forward_pre_hook(self._hook)

    def _hook(self, module: torch.nn.Module, args: tuple[Any, ...]) -> None:
        from decemb.forward import shared_prefix_length

        ids, mask = args[0]["input_ids"], args[0]["attention_mask"]
        batch, length = ids.shape
        prefix = min(shared_prefix_length(ids, mask), length - 1) if self.prefix_cache else 0
        saved = (batch - 1) * prefix if batch > 1 and prefix >= self.min_prefix else 0
        self.real += int(mask.sum())
        self.padded += int(mask.numel())
        self.computed += int(mask.numel()) - saved
        self.batches += 1

    def take(self) -> dict[str, int]:
        """Counts since the last ``take`` (real, padded, computed, batches); they restart from zero."""
        counts = {"real": self.real, "padded": self.padded, "computed": self.computed, "batches": self.batches}
        self.real = self.padded = self.computed = self.batches = 0
        return counts

    def remove(self) -> None:
        self._handle.remove()


# -- timing ------------------------------------------------------------------------------------------
@dataclass
class Timing:
    name: str
    times: list[float] = field(default_factory=list)
    warmup: float = 0.0
    result: Any = None

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def spread(self) -> str:
        return f"{min(self.times):.3f}-{max(self.times):.3f}" if len(self.times) > 1 else "-"


def measure(
    paths: dict[str, Callable[[], Any]],
    repeats: int,
    *,
    after_warmup: Callable[[str], None] | None = None,
    verbose: bool = True,
) -> dict[str, Timing]:
    """Warm every path up once (its result is kept; ``after_warmup(name)`` runs after each warm-up), then
    time ``repeats`` round-robin passes of all paths."""
    timings = {name: Timing(name) for name in paths}
    for name, fn in paths.items():
        start = time.perf_counter()
        timings[name].result = fn()
        timings[name].warmup = time.perf_counter() - start
        if after_warmup is not None:
            after_warmup(name)
        if verbose:
            print(f"  warm-up {name}: {timings[name].warmup:.3f} s", flush=True)
    for repeat in range(repeats):
        for name, fn in paths.items():
            start = time.perf_counter()
            fn()
            timings[name].times.append(time.perf_counter() - start)
        if verbose:
            done = ", ".join(f"{name} {t.times[-1]:.3f}" for name, t in timings.items())
            print(f"  repeat {repeat + 1}/{repeats}: {done}", flush=True)
    return timings


def max_abs_diff(a: Any, b: Any) -> float:
    import numpy as np

    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def verdict(value: float, target: float, *, at_most: bool) -> str:
    ok = value <= target if at_most else value >= target
    return f"{'meets' if ok else 'MISSES'} target {'<=' if at_most else '>='} {target:g}"


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A plain fixed-width text table."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


# -- memory ------------------------------------------------------------------------------------------
def proc_status() -> dict[str, int]:
    """``/proc/self/status`` memory fields in bytes (VmRSS, VmHWM, RssAnon, RssFile, ...)."""
    out: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if len(parts) == 2 and parts[1] == "kB":
            out[key] = int(parts[0]) * 1024
    return out


def mib(n: float) -> str:
    return f"{n / 2**20:.0f} MiB"
