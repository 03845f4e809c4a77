"""``decemb serve`` under load (issue 24): 32 concurrent clients on loopback against in-process ``encode``.

Phases, all in one run on the same sentences (STS-B test, each text sent once):

1. ``decemb serve`` in a subprocess, and in this process the same model at the same threads;
2. ``--rounds`` rounds of: in-process ``model.encode`` of the round's texts (the baseline throughput and the
   reference vector of each text), then ``--clients`` concurrent clients send the same texts to the server
   (``--requests`` requests over all rounds, of 1, 4 or 16 texts, base64 as the ``openai`` client asks) with a
   bad request (empty text, unknown model, text past the token limit, a token-id array) after every
   ``--bad-every`` good ones. Every answer is checked: each vector against the in-process vector of its text
   (max difference <= 1e-5 of the largest component: float32 sums differ slightly with the batch a text
   shares, in process too), each bad request for its 4xx and field;
3. another load of one-text requests, and ``kill -9`` of the server once ``--kill-after`` answers are in: the
   clients get connection errors, never a wrong or half-read answer; a restarted server then answers correctly.

    python benchmarks/bench_serve.py --threads 1            # smollm2-135m, mean; a few minutes on 2 cores
"""

from __future__ import annotations

import asyncio
import base64
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

import numpy as np
from _common import REPO_ROOT, data_root, load_average, parse, parser, print_footer, sts_sentences

SIZES = (1, 4, 16)
TOLERANCE = 1e-5


@dataclass
class Request:
    texts: list[str]
    body: dict
    bad: str | None = None  # the field a bad request must be refused on


@dataclass
class Outcome:
    ok: int = 0
    refused_right: int = 0
    transport_errors: int = 0
    mismatched: list[str] = field(default_factory=list)
    latencies: dict[int, list[float]] = field(default_factory=dict)
    texts: int = 0
    largest: tuple[float, float] = (0.0, 0.0)  # the largest difference from in-process: absolute, relative


def build_requests(texts: list[str], count: int, bad_every: int, name: str, sizes=SIZES) -> list[Request]:
    bad_inputs = [(["fine", ""], name, "input[1]"), (["x"], "nope", "model"), (["word " * 2000], name, "input[0]")]
    bad_bodies = [
        ({"input": given, "model": model}, param) for given, model, param in [*bad_inputs, ([[1]], name, "input[0]")]
    ]
    out, start = [], 0
    for index in range(count):
        size = sizes[index % len(sizes)]
        chunk = texts[start : start + size]
        start += size
        out.append(Request(chunk, {"input": chunk, "model": name, "encoding_format": "base64"}))
        if bad_every and index % bad_every == bad_every - 1:
            body, param = bad_bodies[(index // bad_every) % len(bad_bodies)]
            out.append(Request([], body, bad=param))
    return out


def texts_needed(count: int, sizes=SIZES) -> int:
    return sum(sizes[i % len(sizes)] for i in range(count))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(args, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "decemb.cli", "serve", args.model, "--strategy", args.strategy]
    command += ["--port", str(port), "--threads", str(args.threads), "--no-access-log", "--served-model-name", "m"]
    command += ["--max-wait-ms", str(args.max_wait_ms), "--max-batch-tokens", str(args.max_batch_tokens)]
    return subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 300) -> float:
    import httpx

    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            sys.exit(f"the server exited with {process.returncode} before it came up")
        try:
            if httpx.get(url + "/health", timeout=2).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            time.sleep(0.3)
    sys.exit("the server did not come up")


def check(request: Request, answer, reference: dict[str, np.ndarray], outcome: Outcome) -> None:
    if request.bad is not None:
        ok = 400 <= answer.status_code < 500 and answer.json()["error"]["param"] == request.bad
        outcome.refused_right += ok
        if not ok:
            outcome.mismatched.append(f"bad request {request.bad}: {answer.status_code} {answer.text[:80]}")
        return
    if answer.status_code != 200:
        outcome.mismatched.append(f"{answer.status_code} {answer.text[:80]}")
        return
    data = sorted(answer.json()["data"], key=lambda item: item["index"])
    got = np.stack([np.frombuffer(base64.b64decode(item["embedding"]), dtype="<f4") for item in data])
    want = np.stack([reference[text] for text in request.texts])
    if got.shape != want.shape:
        outcome.mismatched.append(f"{len(request.texts)} texts: shape {got.shape}, expected {want.shape}")
        return
    error = float(np.abs(got - want).max())
    relative = error / float(np.abs(want).max())
    outcome.largest = (max(outcome.largest[0], error), max(outcome.largest[1], relative))
    if relative > TOLERANCE:
        outcome.mismatched.append(f"{len(request.texts)} texts: max difference {error:.2e} ({relative:.1e} relative)")
    else:
        outcome.ok += 1
        outcome.texts += len(request.texts)


async def load(url, requests: list[Request], reference, clients: int, limit: float, on_answer=None, outcome=None):
    """Send ``requests`` from ``clients`` concurrent workers (each takes the next one; none after ``limit`` s);
    the answers are counted into ``outcome`` (a new one by default), which is returned."""
    import httpx

    outcome = outcome or Outcome(latencies={size: [] for size in SIZES})
    queue: asyncio.Queue[Request] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    deadline = time.perf_counter() + limit
    pool = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=600, limits=pool) as client:

        async def worker() -> None:
            while not queue.empty() and time.perf_counter() < deadline:
                request = queue.get_nowait()
                started = time.perf_counter()
                try:
                    answer = await client.post(url + "/v1/embeddings", json=request.body)
                except httpx.TransportError:
                    outcome.transport_errors += 1
                    continue
                if request.bad is None:
                    outcome.latencies[len(request.texts)].append(time.perf_counter() - started)
                check(request, answer, reference, outcome)
                if on_answer is not None:
                    on_answer(outcome)

        await asyncio.gather(*(worker() for _ in range(clients)))
    return outcome


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def client_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(args, model, url: str, measured: list[Request], reference: dict[str, np.ndarray]) -> Outcome:
    """Rounds of (in-process ``encode`` of a round's texts, then the server's load of the same texts): a slow
    phase of the shared machine hits both alike. The in-process vectors are the reference of the round."""
    outcome = Outcome(latencies={size: [] for size in SIZES})
    per_round = -(-len(measured) // args.rounds)
    encoded = served = cpu = 0.0
    for number, start in enumerate(range(0, len(measured), per_round), 1):
        chunk = measured[start : start + per_round]
        texts = [text for request in chunk for text in request.texts]
        started = time.perf_counter()
        reference.update(zip(texts, model.encode(texts, batch_size=args.batch_size)))
        encoded += (took := time.perf_counter() - started)
        before = outcome.texts
        started, cpu_before = time.perf_counter(), client_cpu()
        asyncio.run(load(url, chunk, reference, args.clients, args.time_limit, outcome=outcome))
        served += (wall := time.perf_counter() - started)
        cpu += client_cpu() - cpu_before
        baseline, rate = len(texts) / took, (outcome.texts - before) / wall
        print(
            f"round {number}: {len(texts)} texts; in-process {baseline:.2f} texts/s, server {rate:.2f} texts/s "
            f"({rate / baseline:.2f}x) | load average {load_average()}"
        )
    sent = sum(len(request.texts) for request in measured)
    print(
        f"served: {outcome.texts} texts of {outcome.ok} good requests at {outcome.texts / served:.2f} texts/s; "
        f"in-process {sent / encoded:.2f} texts/s: {outcome.texts / served / (sent / encoded):.2f}x | "
        f"{args.clients} clients | client CPU {cpu:.1f} s in {served:.1f} s of load (checks included)"
    )
    return outcome


def report(outcome: Outcome, measured: list[Request], url: str) -> None:
    import httpx

    good = sum(request.bad is None for request in measured)
    stats = httpx.get(url + "/health", timeout=10).json()
    print(f"server batches: {stats['requests']} requests in {stats['batches']} model calls (warm-up included)")
    print(f"largest difference from in-process: {outcome.largest[0]:.2e} ({outcome.largest[1]:.1e} relative)")
    answered = outcome.ok + len(outcome.mismatched) + outcome.refused_right
    unsent = len(measured) - answered - outcome.transport_errors
    print(
        f"good requests answered correctly: {outcome.ok}/{good} | bad requests refused with the right field: "
        f"{outcome.refused_right}/{len(measured) - good} | mismatched: {len(outcome.mismatched)} | transport "
        f"errors: {outcome.transport_errors} | not sent (time limit): {unsent}"
    )
    for problem in outcome.mismatched[:5]:
        print(f"  MISMATCH {problem}")
    for size, values in outcome.latencies.items():
        print(
            f"  latency, {size:>2} texts/request: p50 {percentile(values, 0.5):.2f} s, p99 "
            f"{percentile(values, 0.99):.2f} s over {len(values)} requests"
        )


def kill_and_restart(args, server: subprocess.Popen, url: str, port: int, killed: list[Request], reference) -> None:
    def kill_when_ready(state: Outcome) -> None:
        if state.ok + state.refused_right == args.kill_after:  # once: the count only grows
            os.kill(server.pid, signal.SIGKILL)

    crashed = asyncio.run(load(url, killed, reference, args.clients, args.time_limit, kill_when_ready))
    server.wait()
    print(
        f"kill -9 after {args.kill_after} answers (exit {server.returncode}): {crashed.ok} correct, "
        f"{crashed.refused_right} refused right, {crashed.transport_errors} connection errors, "
        f"{len(crashed.mismatched)} mismatched, of {len(killed)} requests"
    )
    restarted = start_server(args, port)
    try:
        up = wait_healthy(url, restarted)
        again = asyncio.run(load(url, killed[:8], reference, 4, 120))
        expected = sum(request.bad is None for request in killed[:8])
        print(
            f"restart: up in {up:.1f} s; {again.ok}/{expected} correct, {again.refused_right} refused right, "
            f"{len(again.mismatched)} mismatched"
        )
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(60)


def main() -> None:
    p = parser(__doc__.split("\n\n")[0], pairs=0)
    p.add_argument("--strategy", default="mean")
    p.add_argument("--clients", type=int, default=32)
    p.add_argument("--requests", type=int, default=96, help="good requests of the measured load (default 96)")
    p.add_argument("--rounds", type=int, default=3, help="in-process / server rounds of the measured load")
    p.add_argument("--bad-every", type=int, default=6, help="a bad request after every N good ones")
    p.add_argument("--time-limit", type=float, default=240.0, help="seconds per load: no new request after this")
    p.add_argument("--kill-after", type=int, default=40, help="answers before the kill -9")
    p.add_argument("--max-wait-ms", type=float, default=5.0)
    p.add_argument("--max-batch-tokens", type=int, default=16384)
    args = parse(p)
    if args.quick:
        args.requests, args.clients, args.kill_after, args.rounds = 12, 8, 10, 2
    import decemb

    kill_requests = 3 * args.clients  # one text each: the load is still going when the kill comes
    needed = texts_needed(args.requests) + kill_requests
    pairs = min(needed, 1379)  # STS-B test: 1,379 pairs, 2 sentences each
    texts = list(dict.fromkeys(sts_sentences(data_root(args.data_root), pairs)))[:needed]  # each text once
    if len(texts) < needed:
        sys.exit(f"STS-B has only {len(texts)} distinct sentences, {needed} needed")
    measured = build_requests(texts, args.requests, args.bad_every, "m")
    rest = texts[texts_needed(args.requests) :]
    killed = build_requests(rest, kill_requests, args.bad_every, "m", sizes=(1,))
    model = decemb.load(args.model, args.strategy, dtype=args.dtype)
    model.encode(texts[:8], batch_size=args.batch_size)  # warm-up
    reference = dict(zip(rest, model.encode(rest, batch_size=args.batch_size)))  # the kill phase's texts
    alone = np.stack([model.encode([text])[0] for text in rest[:16]])
    noise = float(np.abs(alone - np.stack([reference[text] for text in rest[:16]])).max())
    print(f"in-process, 16 texts alone vs in one batch of {len(rest)}: max difference {noise:.2e}")

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(args, port)
    print(f"server up in {wait_healthy(url, server):.1f} s (pid {server.pid}) | load average {load_average()}")
    asyncio.run(load(url, killed[:4], reference, 2, 60))  # warm-up (these texts are sent again below)
    outcome = measure(args, model, url, measured, reference)
    report(outcome, measured, url)
    kill_and_restart(args, server, url, port, killed, reference)
    print_footer()


if __name__ == "__main__":
    main()
