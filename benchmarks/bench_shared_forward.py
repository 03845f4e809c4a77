"""Shared forwards: K strategies over one rendered input in ONE ``Engine.embed`` call vs K separate calls.

``mean``, ``last``, ``sgpt`` and ``eos`` with ``append_eos=False`` ("eos-less last") all render the bare
text, so their inputs are identical token for token; ``Engine.embed`` runs each distinct (rendered ids,
attention) sequence once and pools it K ways. Three paths on the same STS-B sentences (default 512):

* single: one strategy (``mean``) alone, ``Engine(model, tok, batch_size=B).embed([job])``;
* K-in-one: the K jobs in one ``embed`` call of a fresh Engine;
* K separate: K ``embed`` calls, a fresh Engine for each (no embedding cache anywhere).

Printed: median times, ``engine.stats`` of each path (forward passes, sequences and padded tokens run),
K-in-one / single (target <= 1.2) and K separate / K-in-one; the K-in-one vectors are checked against
the separate ones.
"""

from __future__ import annotations

import _common as c


def main() -> None:
    args = c.parse(c.parser(__doc__, quick_pairs=24))
    from decemb.engine import EmbeddingJob, Engine, EngineStats
    from decemb.settings import EncodeSettings
    from decemb.strategies import build_strategy

    texts = c.sts_sentences(c.data_root(args.data_root), args.pairs)
    model, tokenizer = c.load_model(args)
    strategies = {
        "mean": build_strategy("mean"),
        "last": build_strategy("last"),
        "sgpt": build_strategy("sgpt"),
        "eos-less last": build_strategy("eos", append_eos=False),
    }
    jobs = [EmbeddingJob(strategy, "query", texts) for strategy in strategies.values()]
    print(f"texts: {len(texts)} STS-B sentences; K = {len(jobs)} strategies: {', '.join(strategies)}")
    stats: dict[str, EngineStats] = {}

    def engine(name: str) -> Engine:
        stats[name] = EngineStats()
        e = Engine(model, tokenizer, EncodeSettings(batch_size=args.batch_size))
        e.stats = stats[name]  # the separate path's K engines add into one record
        return e

    def single():
        return engine("single").embed(jobs[:1])

    def k_in_one():
        return engine("K-in-one").embed(jobs)

    def k_separate():
        shared = EngineStats()
        out = []
        for job in jobs:
            e = Engine(model, tokenizer, EncodeSettings(batch_size=args.batch_size))
            e.stats = shared
            out.extend(e.embed([job]))
        stats["K separate"] = shared
        return out

    single()  # first-call effects
    timings = c.measure({"single": single, "K-in-one": k_in_one, "K separate": k_separate}, args.repeats)

    rows = [
        [
            name,
            f"{t.median:.3f}",
            t.spread,
            stats[name].forward_passes,
            stats[name].sequences_run,
            stats[name].tokens_run,
        ]
        for name, t in timings.items()
    ]
    print()
    print(c.table(rows, ["path", "median s", "range s", "forward passes", "sequences run", "padded tokens run"]))
    print("(engine.stats of the last repeat of each path)")
    one = timings["K-in-one"].median / timings["single"].median
    separate = timings["K separate"].median / timings["K-in-one"].median
    diff = max(c.max_abs_diff(a, b) for a, b in zip(timings["K-in-one"].result, timings["K separate"].result))
    print()
    print(f"K-in-one / single = {one:.3f} ({c.verdict(one, 1.2, at_most=True)})")
    print(f"K separate / K-in-one = {separate:.2f} (K = {len(jobs)})")
    print(f"max |K-in-one - K separate| = {diff:.2e}")
    c.print_footer()


if __name__ == "__main__":
    main()
