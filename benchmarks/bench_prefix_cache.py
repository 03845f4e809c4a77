"""Shared-prefix KV cache: ``instruct`` queries with a long instruction, cached vs uncached.

Every query reads ``Instruct: {instruction}\\nQuery: {text}<eos>`` with a ~25-token instruction, so all
rows of a batch start with the same ~30 tokens. ``decemb.forward.hidden_states`` (``prefix_cache=True``,
its default, which the ST module and the Engine use) runs that prefix once per batch and reuses its keys
and values for every row; ``prefix_cache=False`` runs every row in full.

Both paths are the same decemb SentenceTransformer (``decemb.from_backbone(model, tok, "instruct",
instruction=...)``) calling ``encode_query(queries, batch_size=B)``. The uncached path is measured by
temporarily setting the default of ``prefix_cache`` to ``False`` (``__defaults__``, by parameter name) on
every function of ``decemb.forward`` that takes it (``hidden_states`` and wrappers such as
``hidden_states_splitting``) around the call, and restoring them after: the function objects are shared
by every caller, so the whole ST path runs uncached and nothing else changes. A probe on
``decemb.forward._run`` counts, during the warm-ups, the batches that took the prefix path, and the script
stops if the uncached path took it even once (or the cached one never did).

Queries: the first N SciFact queries (``scifact/queries.jsonl``; N = ``--pairs``, default 512, quick 48) or,
with ``--source sts``, the sentence1s of the first N STS-B pairs. Printed: times, speedup uncached/cached
(target >= 1.5), tokens per query, and the max |cached - uncached| over the pooled embeddings (<= 1e-4).
"""

from __future__ import annotations

import contextlib
import inspect

import _common as c

INSTRUCTION = (
    "Given a web search query about science, retrieve relevant scientific documents and passages that answer or "
    "support the query well"
)


@contextlib.contextmanager
def prefix_cache_disabled():
    """Every function of ``decemb.forward`` that takes ``prefix_cache`` gets ``False`` as its default
    (``__defaults__``, by parameter name), restored on exit. Callers that pass no ``prefix_cache`` (the ST
    module, the Engine, wrappers such as ``hidden_states_splitting`` that pass their own default on) then
    run uncached."""
    from decemb import forward

    saved = {}
    for function in vars(forward).values():
        if not inspect.isfunction(function) or function.__module__ != forward.__name__:
            continue
        params = inspect.signature(function).parameters
        if "prefix_cache" not in params or function.__defaults__ is None:
            continue
        names = [
            name for name, p in params.items() if p.default is not inspect.Parameter.empty and p.kind != p.KEYWORD_ONLY
        ]
        defaults = dict(zip(names, function.__defaults__))
        defaults["prefix_cache"] = False
        saved[function] = function.__defaults__
        function.__defaults__ = tuple(defaults[name] for name in names)
    if not saved:
        raise RuntimeError("no function of decemb.forward takes prefix_cache: this benchmark needs updating")
    try:
        yield
    finally:
        for function, defaults in saved.items():
            function.__defaults__ = defaults


class PrefixProbe:
    """Counts the runs of ``decemb.forward._run`` on top of a cached prefix (one per batch that takes the
    prefix path) while installed; it proves the uncached path really ran uncached (and the cached one cached)."""

    def __init__(self) -> None:
        from decemb import forward

        self.module, self.original = forward, forward._run
        self.with_cache = self.without = 0

        def run(*args, **kwargs):
            cache = kwargs.get("cache", args[5] if len(args) > 5 else None)
            if cache is not None and cache.get_seq_length() > 0:  # a run on top of the cached prefix
                self.with_cache += 1
            else:
                self.without += 1
            return self.original(*args, **kwargs)

        forward._run = run

    def take(self) -> tuple[int, int]:
        counts = (self.with_cache, self.without)
        self.with_cache = self.without = 0
        return counts

    def remove(self) -> None:
        self.module._run = self.original


def main() -> None:
    p = c.parser(__doc__, pairs=512, quick_pairs=48)
    p.add_argument("--source", choices=["scifact", "sts"], default="scifact", help="query texts (default scifact)")
    args = c.parse(p)
    import decemb
    from decemb.forward import shared_prefix_length

    root = c.data_root(args.data_root)
    if args.source == "scifact":
        queries = c.scifact_queries(root, args.pairs)
    else:
        queries = [first for first, _ in c.sts_pairs(root, args.pairs)]
    model, tokenizer = c.load_model(args)
    st = decemb.from_backbone(model, tokenizer, "instruct", instruction=INSTRUCTION)
    instruction_tokens = len(tokenizer(INSTRUCTION, add_special_tokens=False)["input_ids"])
    print(f"queries: {len(queries)} ({args.source}); instruction: {instruction_tokens} tokens: {INSTRUCTION!r}")
    print(f"a query reads: {decemb.explain(st, queries[0])!r}")
    probe_batch = st[0].preprocess(queries[:2], task="query")
    shared = shared_prefix_length(probe_batch["input_ids"], probe_batch["attention_mask"])
    print(f"prefix shared by every query (instruction + template): {shared} tokens")

    def cached():
        return st.encode_query(queries, batch_size=args.batch_size)

    def uncached():
        with prefix_cache_disabled():
            return st.encode_query(queries, batch_size=args.batch_size)

    counter = c.FeedCounter(st[0])
    probe = PrefixProbe()
    feeds: dict[str, dict[str, int]] = {}

    def count(name: str) -> None:  # after each warm-up: what it fed, and whether the prefix path ran
        feeds[name] = counter.take()
        feeds[name]["prefix runs"], _ = probe.take()
        if name == "uncached":
            feeds[name]["computed"] = feeds[name]["padded"]  # the prefix is not skipped
            counter.remove()
            probe.remove()

    st.encode_query(queries[: args.batch_size], batch_size=args.batch_size)  # first-call effects
    counter.take()
    probe.take()
    timings = c.measure({"cached": cached, "uncached": uncached}, args.repeats, after_warmup=count)
    if feeds["uncached"]["prefix runs"] or not feeds["cached"]["prefix runs"]:
        raise SystemExit(f"the cache switch did not work: prefix-cached forwards {feeds}")

    n = len(queries)
    rows = [
        [
            name,
            f"{t.median:.3f}",
            t.spread,
            f"{feeds[name]['real'] / n:.1f}",
            f"{feeds[name]['padded'] / n:.1f}",
            f"{feeds[name]['computed'] / n:.1f}",
            f"{feeds[name]['prefix runs']}/{feeds[name]['batches']}",
        ]
        for name, t in timings.items()
    ]
    print()
    header = ["path", "median s", "range s", "tokens/query", "padded/query", "computed/query", "prefix-cached batches"]
    print(c.table(rows, header))
    speedup = timings["uncached"].median / timings["cached"].median
    diff = c.max_abs_diff(timings["cached"].result, timings["uncached"].result)
    print()
    print(f"speedup uncached/cached = {speedup:.2f}x ({c.verdict(speedup, 1.5, at_most=False)})")
    print(f"max |cached - uncached| = {diff:.2e} ({c.verdict(diff, 1e-4, at_most=True)})")
    c.print_footer()


if __name__ == "__main__":
    main()
