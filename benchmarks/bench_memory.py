"""Peak memory of a streaming encode to disk: flat in N, at most the model plus 1 GiB.

For each N (default 10k, 50k, 100k texts; ``--quick``: 2k, 5k, 10k) a fresh Python process loads the
model and reads its resident set size (``VmRSS`` of ``/proc/self/status``: "RSS loaded"), resets the
kernel's peak counter (``echo 5 > /proc/self/clear_refs``, so the load's own transient peak is not
counted), encodes one warm-up batch and reads the RSS again ("RSS warm": transformers memory-maps the
safetensors weights, which enter the RSS as file-backed pages only when a forward first reads them), then
streams the N texts to a ``.npy`` file with ``decemb.streaming.encode_to_npy(encoder, texts, path,
strategy=mean, chunk_size=C)`` (C = 4096; quick: 1000, so that every N spans several chunks) and reads
the peak (``VmHWM``). Reported: peak RSS, peak - RSS loaded (the figure the targets name), peak - RSS
warm (what the encode itself adds), the model's parameter bytes, and, from a sampler thread reading
``/proc/self/status`` every 10 ms, the peak growth over RSS warm of anonymous memory (``RssAnon``:
tensors, Python objects, tokenizer buffers) and of file-backed memory (``RssFile``: the written pages of
the output memmap count there until the file is closed). Targets: peak RSS <= parameter bytes + 1 GiB,
and flat as N grows.

Texts: the STS-B sts-test sentences (all 2758 by default, ``--pairs`` pairs; quick: 128 sentences)
repeated to N. The default encoder is a ``decemb.engine.Engine`` (``--encoder st``: the decemb
SentenceTransformer). An Engine runs each distinct rendered input once per ``embed`` call, so a chunk of
repeated sentences costs at most the pool's size in forwards (the texts/s this prints are not throughput
figures), but it pools once per text: a chunk with many copies of each sentence holds more pooling
memory than one of distinct texts. The output file lives in a temporary folder and is deleted.

``--cli``: the command line instead (default N = 10k, 100k; quick: 2k, 10k). For each N the texts are
written to a ``.txt`` file (one per line) and a fresh ``python -m decemb.cli encode --model M --dtype D
--batch-size B -q texts.txt out.npy`` (``--cli-format npz``: ``out.npz``) runs as a subprocess with
``OMP_NUM_THREADS=--threads``; its peak RSS is the ``ru_maxrss`` that ``os.wait4`` reports for it (the
whole process: interpreter, imports, model load and the encode; no counter reset). Printed: wall time,
peak RSS, output size, and the growth of the peak per extra text. Target: flat in N.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import _common as c

FULL_SIZES = "10000,50000,100000"
QUICK_SIZES = "2000,5000,10000"
CLI_SIZES = "10000,100000"
CLI_QUICK_SIZES = "2000,10000"


class RssSampler(threading.Thread):
    """Peak ``RssAnon`` and ``RssFile`` seen every ``interval`` seconds until stopped."""

    def __init__(self, interval: float = 0.01) -> None:
        super().__init__(daemon=True)
        self.interval, self.peaks, self._stop_event = interval, {"RssAnon": 0, "RssFile": 0}, threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            status = c.proc_status()
            for key in self.peaks:
                self.peaks[key] = max(self.peaks[key], status.get(key, 0))
            self._stop_event.wait(self.interval)

    def stop(self) -> dict[str, int]:
        self._stop_event.set()
        self.join()
        return self.peaks


def child(args) -> None:
    """One N in this (fresh) process; prints one JSON line."""
    import gc

    import numpy as np

    from decemb.settings import EncodeSettings
    from decemb.strategies import build_strategy
    from decemb.streaming import encode_to_npy

    pool = c.sts_sentences(c.data_root(args.data_root), args.pairs)
    texts = [pool[i % len(pool)] for i in range(args.child)]
    before_load = c.proc_status()
    model, tokenizer = c.load_model(args)
    strategy = build_strategy("mean")
    if args.encoder == "engine":
        from decemb.engine import Engine

        encoder = Engine(model, tokenizer, EncodeSettings(batch_size=args.batch_size))
        kwargs = {"strategy": strategy}
    else:
        import decemb

        encoder = decemb.from_backbone(model, tokenizer, strategy)
        kwargs = {}
    gc.collect()
    loaded = c.proc_status()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current RSS
        reset = True
    except OSError:
        reset = False
    sampler = RssSampler()
    sampler.start()
    with tempfile.TemporaryDirectory(prefix="decemb-bench-memory-") as folder:
        # One batch first: the weights of a safetensors file that transformers memory-maps enter the RSS
        # (as file-backed pages) only when a forward first reads them.
        encode_to_npy(
            encoder, texts[: args.batch_size], Path(folder) / "warm.npy", batch_size=args.batch_size, **kwargs
        )
        gc.collect()
        warm = c.proc_status()
        start = time.perf_counter()
        path = encode_to_npy(
            encoder, texts, Path(folder) / "out.npy", chunk_size=args.chunk_size, batch_size=args.batch_size, **kwargs
        )
        seconds = time.perf_counter() - start
        peaks = sampler.stop()
        after = c.proc_status()
        out = np.load(path, mmap_mode="r")
        ok = out.shape == (len(texts), model.config.get_text_config().hidden_size) and bool(np.isfinite(out[-1]).all())
        out_bytes = out.nbytes
        del out
    record = {
        "n": args.child,
        "seconds": seconds,
        "rss_before_load": before_load["VmRSS"],
        "rss_loaded": loaded["VmRSS"],
        "anon_loaded": loaded["RssAnon"],
        "file_loaded": loaded["RssFile"],
        "hwm_load": loaded["VmHWM"],
        "rss_warm": warm["VmRSS"],
        "anon_warm": warm["RssAnon"],
        "file_warm": warm["RssFile"],
        "output_bytes": int(out_bytes),
        "hwm": after["VmHWM"],
        "hwm_reset": reset,
        "peak_anon": peaks["RssAnon"],
        "peak_file": peaks["RssFile"],
        "param_bytes": c.parameter_bytes(model),
        "sequences_run": getattr(getattr(encoder, "stats", None), "sequences_run", None),
        "output_ok": ok,
    }
    print("RESULT " + json.dumps(record), flush=True)


def main() -> None:
    p = c.parser(__doc__, pairs=1379, quick_pairs=64, repeats=1)
    p.add_argument("--sizes", default=None, help=f"comma-separated N (default {FULL_SIZES}; quick {QUICK_SIZES})")
    p.add_argument("--chunk-size", type=int, default=None, help="texts per chunk (default 4096; quick 1000)")
    p.add_argument("--encoder", choices=["engine", "st"], default="engine")
    p.add_argument("--cli", action="store_true", help="measure `decemb encode` (a subprocess per N) instead")
    p.add_argument("--cli-format", choices=["npy", "npz"], default="npy", help="`decemb encode` output format")
    p.add_argument("--child", type=int, default=None, help=argparse_hidden())
    args = c.parse(p, header=False)
    args.chunk_size = args.chunk_size or (1000 if args.quick else 4096)
    if args.child is not None:
        child(args)
        return
    c.print_header(args)
    if args.cli:
        cli(args)
        c.print_footer()
        return
    sizes = [int(n) for n in (args.sizes or (QUICK_SIZES if args.quick else FULL_SIZES)).split(",")]
    print(
        f"texts: {2 * args.pairs} distinct STS-B sentences repeated to N; encoder {args.encoder}; "
        f"chunk_size {args.chunk_size}; one fresh process per N"
    )
    records = []
    for n in sizes:
        command = [sys.executable, __file__, "--child", str(n), "--threads", str(args.threads), "--model", args.model]
        command += ["--dtype", args.dtype, "--batch-size", str(args.batch_size), "--pairs", str(args.pairs)]
        command += ["--chunk-size", str(args.chunk_size), "--encoder", args.encoder]
        if args.data_root:
            command += ["--data-root", args.data_root]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if done.returncode or not lines:
            sys.exit(f"child for N={n} failed ({done.returncode}):\n{done.stdout}\n{done.stderr[-3000:]}")
        record = json.loads(lines[-1][len("RESULT ") :])
        records.append(record)
        print(f"  N={n}: {record['seconds']:.1f} s, peak RSS {c.mib(record['hwm'])}", flush=True)

    model_bytes = records[0]["param_bytes"]
    rows = []
    for r in records:
        rows.append(
            [
                f"{r['n']:,}",
                f"{r['seconds']:.1f}",
                c.mib(r["rss_loaded"]),
                c.mib(r["rss_warm"]),
                c.mib(r["hwm"]),
                c.mib(r["hwm"] - r["rss_loaded"]),
                c.mib(r["hwm"] - r["rss_warm"]),
                c.mib(r["peak_anon"] - r["anon_warm"]),
                c.mib(r["peak_file"] - r["file_warm"]),
                c.mib(r["output_bytes"]),
                r["sequences_run"] if r["sequences_run"] is not None else "-",
            ]
        )
    print()
    header = ["N", "s", "RSS loaded", "RSS warm", "peak RSS", "peak-loaded", "peak-warm", "anon", "file", "output"]
    print(c.table(rows, [*header, "forwards"]))
    print(
        "RSS loaded: after the model load; RSS warm: after one warm-up batch (the memory-mapped weights paged in);\n"
        "peak RSS: VmHWM over warm-up + encode (counter reset after the load); anon / file: peak growth of RssAnon /\n"
        "RssFile over RSS warm (10 ms sampling); output: the .npy size; forwards: distinct inputs the Engine ran."
    )
    print(
        f"model parameters: {c.mib(model_bytes)}; peak counter reset after load: "
        f"{all(r['hwm_reset'] for r in records)}; outputs complete: {all(r['output_ok'] for r in records)}"
    )
    worst = max(r["hwm"] for r in records)
    worst_delta = max(r["hwm"] - r["rss_loaded"] for r in records)
    limit = model_bytes + 2**30
    growth = [r["hwm"] - r["rss_warm"] for r in records]
    per_text = (growth[-1] - growth[0]) / max(1, records[-1]["n"] - records[0]["n"])
    print()
    print(f"max peak RSS {c.mib(worst)} vs model + 1 GiB = {c.mib(limit)}: {'meets' if worst <= limit else 'MISSES'}")
    print(f"max peak - loaded {c.mib(worst_delta)} vs model + 1 GiB: {'meets' if worst_delta <= limit else 'MISSES'}")
    print(
        f"flatness: peak - warm from N={records[0]['n']:,} to N={records[-1]['n']:,}: {c.mib(growth[0])} -> "
        f"{c.mib(growth[-1])} ({per_text:.0f} bytes per extra text; the output rows are "
        f"{records[0]['output_bytes'] / records[0]['n']:.0f} bytes each)"
    )
    c.print_footer()


def run_cli(args, n: int, folder: Path) -> dict:
    """``decemb encode`` of N texts in a fresh process; its peak RSS from ``os.wait4``."""
    import os

    import numpy as np

    pool = c.sts_sentences(c.data_root(args.data_root), args.pairs)
    source = folder / f"texts-{n}.txt"
    source.write_text("".join(pool[i % len(pool)] + "\n" for i in range(n)), encoding="utf-8")
    output = folder / f"out-{n}.{args.cli_format}"
    command = [sys.executable, "-m", "decemb.cli", "encode", "--model", args.model, "--dtype", args.dtype]
    command += ["--batch-size", str(args.batch_size), "-q", str(source), str(output)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(c.REPO_ROOT)}
    log = folder / f"log-{n}.txt"  # a file, not a pipe: a full pipe would block the child
    with log.open("w") as sink:
        start = time.perf_counter()
        process = subprocess.Popen(command, env=env, stdout=sink, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
    process.returncode = code = os.waitstatus_to_exitcode(status)
    if code:
        sys.exit(f"decemb encode for N={n} failed ({code}):\n{log.read_text()[-3000:]}")
    if args.cli_format == "npz":
        with np.load(output) as archive:
            shape = archive["embeddings"].shape
    else:
        shape = np.load(output, mmap_mode="r").shape
    record = {"n": n, "seconds": seconds, "hwm": usage.ru_maxrss * 1024, "output_bytes": output.stat().st_size}
    record["output_ok"] = shape[0] == n
    output.unlink()
    source.unlink()
    return record


def cli(args) -> None:
    """Peak RSS of ``decemb encode`` per N (one subprocess each), and its growth in N."""
    sizes = [int(n) for n in (args.sizes or (CLI_QUICK_SIZES if args.quick else CLI_SIZES)).split(",")]
    print(
        f"decemb encode (CLI, .{args.cli_format} output): {2 * args.pairs} distinct STS-B sentences repeated to N "
        f"in a .txt file; OMP_NUM_THREADS={args.threads}; one fresh process per N"
    )
    records = []
    with tempfile.TemporaryDirectory(prefix="decemb-bench-memory-cli-") as folder:
        for n in sizes:
            records.append(run_cli(args, n, Path(folder)))
            print(f"  N={n}: {records[-1]['seconds']:.1f} s, peak RSS {c.mib(records[-1]['hwm'])}", flush=True)
    rows = [[f"{r['n']:,}", f"{r['seconds']:.1f}", c.mib(r["hwm"]), c.mib(r["output_bytes"])] for r in records]
    print()
    print(c.table(rows, ["N", "s (whole process)", "peak RSS", "output"]))
    first, last = records[0], records[-1]
    per_text = (last["hwm"] - first["hwm"]) / max(1, last["n"] - first["n"])
    print(
        f"outputs complete: {all(r['output_ok'] for r in records)}; flatness: peak RSS from N={first['n']:,} to "
        f"N={last['n']:,}: {c.mib(first['hwm'])} -> {c.mib(last['hwm'])} ({per_text:.0f} bytes per extra text; "
        f"the output rows are {first['output_bytes'] / first['n']:.0f} bytes each)"
    )


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
