"""decemb ``encode`` vs a raw length-sorted HF forward vs sentence-transformers' default modules.

Three paths embed the same STS-B sentences (default: the first 256 pairs of sts-test, 512 sentences) in
one process, each with ``batch_size`` texts per forward:

* decemb: ``decemb.from_backbone(model, tokenizer, strategy).encode(texts, batch_size=B)`` — the whole
  SentenceTransformer stack (ST's char-length sort, decemb rendering, ``decemb.forward.hidden_states``,
  ``DecembPooling``), for ``mean``, ``last`` and ``sgpt``.
* decemb-mean-token-sorted (diagnostic): decemb ``mean`` with ST's batching sort key (``_input_length``,
  characters per text) replaced on the instance by the rendered token count (rendering counted in the
  time): the gap between it and decemb-mean is the padding cost of sorting by characters.
* raw: a minimal loop over the *same* model object — tokenize, sort by token length, pad right,
  ``model(input_ids, attention_mask)`` under ``torch.inference_mode()``, pool. One timed pass computes
  the mean (the reference of the ratio), last-token and SGPT position-weighted vectors from the same
  hidden states (the two extra poolings are a few microseconds), and those vectors also check decemb's.
* st-default: ``SentenceTransformer(modules=[Transformer(folder), Pooling(mode)])`` on the dequantized
  folder that decemb caches (a plain HF folder): ST 6's default text path, which renders every text
  through the tokenizer's chat template (for SmolLM2, a system prompt plus ``<|im_start|>user``...).
  Pooling modes ``mean``, ``lasttoken``, ``weightedmean``.

Printed: per path the median time, the tokens it actually fed (real and padded, counted in the
warm-up pass), tokens/s (real tokens fed / median time), texts/s; decemb/raw (target <= 1.0) and
st-default/decemb (target >= 3) time ratios; the max |decemb - raw| difference of the vectors.
"""

from __future__ import annotations

from collections.abc import Sequence

import _common as c
import numpy as np
import torch

STRATEGIES = ("mean", "last", "sgpt")
ST_POOLING = {"mean": "mean", "last": "lasttoken", "sgpt": "weightedmean"}


def raw_encode(model, tokenizer, texts: Sequence[str], batch_size: int, stats: dict | None = None) -> dict:
    """A minimal embedder: token-length-sorted batches, right padding, one forward each, three poolings."""
    ids = tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=512)["input_ids"]
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    width = model.config.get_text_config().hidden_size
    pad = tokenizer.pad_token_id or 0
    out = {name: np.empty((len(ids), width), dtype=np.float32) for name in STRATEGIES}
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            lengths = torch.tensor([len(ids[i]) for i in rows])
            input_ids = torch.full((len(rows), int(lengths.max())), pad, dtype=torch.long)
            for r, i in enumerate(rows):
                input_ids[r, : len(ids[i])] = torch.tensor(ids[i])
            mask = (torch.arange(input_ids.shape[1]) < lengths[:, None]).long()
            hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state.float()
            m = mask.unsqueeze(-1).float()
            weights = torch.cumsum(mask, dim=1).float() * mask
            weights = (weights / weights.sum(dim=1, keepdim=True)).unsqueeze(-1)
            out["mean"][rows] = ((hidden * m).sum(1) / m.sum(1)).numpy()
            out["last"][rows] = hidden[torch.arange(len(rows)), lengths - 1].numpy()
            out["sgpt"][rows] = (hidden * weights).sum(1).numpy()
            if stats is not None:
                stats["real"] = stats.get("real", 0) + int(mask.sum())
                stats["padded"] = stats.get("padded", 0) + int(mask.numel())
    return out


def st_default(folder, dtype: torch.dtype):
    """One ST ``Transformer`` module (shared) and an ST model per pooling mode."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    transformer = Transformer(str(folder), model_kwargs={"dtype": dtype})
    transformer.model.eval()
    dim = transformer.get_embedding_dimension()
    models = {
        name: SentenceTransformer(modules=[transformer, Pooling(dim, ST_POOLING[name])], device="cpu")
        for name in STRATEGIES
    }
    return transformer, models


def main() -> None:
    p = c.parser(__doc__, quick_pairs=24)
    p.add_argument("--no-st", action="store_true", help="skip the sentence-transformers default path (slow)")
    args = c.parse(p)
    import decemb

    texts = c.sts_sentences(c.data_root(args.data_root), args.pairs)
    model, tokenizer = c.load_model(args)
    bs = args.batch_size
    print(f"texts: {len(texts)} STS-B sentences (first {args.pairs} pairs of sts-test)")

    decemb_models = {s: decemb.from_backbone(model, tokenizer, s) for s in STRATEGIES}
    raw_stats: dict = {}
    paths = {"raw": lambda: raw_encode(model, tokenizer, texts, bs, raw_stats)}
    for s, st in decemb_models.items():
        paths[f"decemb-{s}"] = lambda st=st: st.encode(texts, batch_size=bs, convert_to_numpy=True)
    # Diagnostic: ST sorts a call's texts by *character* length before batching; the same decemb model with
    # ST's sort key replaced by the rendered *token* length separates that padding cost from decemb's own.
    token_sorted = decemb.from_backbone(model, tokenizer, "mean")
    renderer = token_sorted[0].renderer("query")
    token_sorted._input_length = lambda text: len(renderer.render([text])[0]) if isinstance(text, str) else 0
    paths["decemb-mean-token-sorted"] = lambda: token_sorted.encode(texts, batch_size=bs, convert_to_numpy=True)
    decemb_models["mean-token-sorted"] = token_sorted
    counters = {f"decemb-{s}": c.FeedCounter(st[0]) for s, st in decemb_models.items()}
    if not args.no_st:
        transformer, st_models = st_default(c.model_folder(args.model), model.dtype)
        st_model = transformer.model
        print(
            f"st-default: {type(st_model).__name__} from {c.model_folder(args.model)}, dtype {st_model.dtype}, "
            f"attention {st_model.config._attn_implementation}"
        )
        shared = c.FeedCounter(transformer, prefix_cache=False)  # one module serves the three pooling modes
        for s, st in st_models.items():
            paths[f"st-default-{s}"] = lambda st=st: st.encode(texts, batch_size=bs, convert_to_numpy=True)
            counters[f"st-default-{s}"] = shared

    feeds: dict[str, dict[str, int]] = {}

    def count(name: str) -> None:  # after each warm-up: what that path fed the model
        if name in counters:
            feeds[name] = counters[name].take()
        else:
            feeds[name] = {"real": raw_stats.pop("real"), "padded": raw_stats.pop("padded")}
        if name == list(paths)[-1]:  # all warmed up: no hooks in the timed passes
            for counter in set(counters.values()):
                counter.remove()

    raw_encode(model, tokenizer, texts[:bs], bs)  # first-call effects (allocator, kernels) before the warm-ups
    timings = c.measure(paths, args.repeats, after_warmup=count)

    rows = []
    for name, t in timings.items():
        real, padded = feeds[name]["real"], feeds[name]["padded"]
        computed = feeds[name].get("computed", padded)
        rows.append(
            [
                name,
                f"{t.median:.3f}",
                t.spread,
                f"{real / len(texts):.1f}",
                f"{padded / len(texts):.1f}",
                f"{computed / len(texts):.1f}",
                f"{real / t.median:,.0f}",
                f"{len(texts) / t.median:.1f}",
            ]
        )
    header = ["path", "median s", "range s", "tokens/text", "padded/text", "computed/text", "tokens/s", "texts/s"]
    print()
    print(c.table(rows, header))
    print(
        "tokens/text: real tokens each path feeds the model per sentence; padded/text: with padding; "
        "computed/text: padded minus what decemb's shared-prefix cache skips; tokens/s: real tokens / median s"
    )
    print()
    raw = timings["raw"]
    for s in STRATEGIES:
        d = timings[f"decemb-{s}"]
        ratio = d.median / raw.median
        diff = c.max_abs_diff(d.result, raw.result[s])
        print(
            f"{s:5s} decemb/raw time = {ratio:.3f} ({c.verdict(ratio, 1.0, at_most=True)}); max|decemb-raw| {diff:.2e}"
        )
        if f"st-default-{s}" in timings:
            st_ratio = timings[f"st-default-{s}"].median / d.median
            print(f"{s:5s} st-default/decemb time = {st_ratio:.2f} ({c.verdict(st_ratio, 3.0, at_most=False)})")
    sorted_ratio = timings["decemb-mean-token-sorted"].median / raw.median
    diff = c.max_abs_diff(timings["decemb-mean-token-sorted"].result, raw.result["mean"])
    print(
        f"diagnostic: mean with ST's batches sorted by token length: decemb/raw time = {sorted_ratio:.3f}; "
        f"max|decemb-raw| {diff:.2e}"
    )
    c.print_footer()


if __name__ == "__main__":
    main()
