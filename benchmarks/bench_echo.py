"""Echo embeddings' cost: echo (mean pooling) time / mean time on the same sentences.

Both paths are decemb SentenceTransformers on the same loaded model (``decemb.from_backbone``), encoding
the same STS-B sentences (default: first 256 pairs of sts-test, 512 sentences) with
``encode(texts, batch_size=B)``. Echo reads ``Rewrite the following sentence: {text}\\nThe rewritten
sentence: {text}``, so it feeds a bit more than twice the tokens of the bare text; the target is an echo /
mean time ratio <= 2.2 (the 2x token floor plus 10%).

Printed: median times, tokens per text each path feeds (real, padded, and computed: padded minus the
shared template prefix that decemb's prefix KV cache runs once per batch), the time ratio, the token
ratios, and the time ratio per computed-token ratio (1.0: echo costs exactly its extra tokens).
"""

from __future__ import annotations

import _common as c


def main() -> None:
    args = c.parse(c.parser(__doc__, quick_pairs=24))
    import decemb

    texts = c.sts_sentences(c.data_root(args.data_root), args.pairs)
    model, tokenizer = c.load_model(args)
    print(f"texts: {len(texts)} STS-B sentences (first {args.pairs} pairs of sts-test)")
    models = {
        "mean": decemb.from_backbone(model, tokenizer, "mean"),
        "echo": decemb.from_backbone(model, tokenizer, "echo"),
    }
    print(f"echo reads: {decemb.explain(models['echo'], texts[0])!r}")
    counters = {name: c.FeedCounter(st[0]) for name, st in models.items()}
    feeds: dict[str, dict[str, int]] = {}

    def count(name: str) -> None:
        feeds[name] = counters[name].take()
        counters[name].remove()

    paths = {name: (lambda st=st: st.encode(texts, batch_size=args.batch_size)) for name, st in models.items()}
    models["mean"].encode(texts[: args.batch_size], batch_size=args.batch_size)  # first-call effects
    counters["mean"].take()
    timings = c.measure(paths, args.repeats, after_warmup=count)

    n = len(texts)
    rows = [
        [
            name,
            f"{t.median:.3f}",
            t.spread,
            f"{feeds[name]['real'] / n:.1f}",
            f"{feeds[name]['padded'] / n:.1f}",
            f"{feeds[name]['computed'] / n:.1f}",
            f"{feeds[name]['real'] / t.median:,.0f}",
        ]
        for name, t in timings.items()
    ]
    print()
    print(c.table(rows, ["strategy", "median s", "range s", "tokens/text", "padded/text", "computed/text", "tokens/s"]))
    ratio = timings["echo"].median / timings["mean"].median
    tokens = {key: feeds["echo"][key] / feeds["mean"][key] for key in ("real", "padded", "computed")}
    print()
    print(f"echo/mean time ratio = {ratio:.3f} ({c.verdict(ratio, 2.2, at_most=True)})")
    print(
        f"echo/mean token ratios: real {tokens['real']:.2f}, padded {tokens['padded']:.2f}, "
        f"computed {tokens['computed']:.2f}; time ratio / computed-token ratio = {ratio / tokens['computed']:.2f}"
    )
    c.print_footer()


if __name__ == "__main__":
    main()
