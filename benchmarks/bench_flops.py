"""Achieved GFLOP/s of the model forward vs this machine's measured fp32 GEMM peak, in one run.

FLOPs are counted analytically from what the model is actually fed, by a forward pre-hook on the base
model that reads each call's ``input_ids`` (B x T_new: the tokens this call computes, padding included)
and ``attention_mask`` (B x T_ctx: cached prefix + new tokens):

    linear    = 2 * P_lin * B * T_new                  (one multiply-add per weight per token)
    attention = 4 * L * d_attn * B * T_new * T_ctx     (Q K^T and A V: 2 * T_new * T_ctx * d_attn each)
    total     = linear + attention

``P_lin`` is the number of weights of all ``nn.Linear`` layers of the base model (q, k, v, o, gate, up,
down projections; the embedding lookup and the absent LM head do no matmul), ``L`` the number of layers,
``d_attn = heads * head_dim``. Norms, rotary embeddings, SiLU, softmax and pooling (O(T * d) each) are left
out, as is the causal half of the attention matrix (CPU SDPA with a padding mask computes it all), so the
count is a slight underestimate of the work done and the achieved rate is conservative.

Two forwards are timed on the same STS-B sentences (default 512): the bare model over pre-tokenized,
token-length-sorted, right-padded batches (no tokenization, no pooling), and the full decemb Engine path
(``Engine.embed`` with ``mean``: rendering, batching, forward, pooling). GEMM peak, measured in the same
process with the same threads: median GFLOP/s of ``torch.matmul`` on 2048 x 2048 fp32 and of
``F.linear`` on the model's own shapes at M = the average padded tokens per batch (M x 576 @ 576 x 1536,
...). Printed: each rate, forward GFLOP/s / peak (target >= 75%), and / the model-shape ceiling (the rate
the forward's linear FLOPs would reach if each ran at its measured shape's rate).
"""

from __future__ import annotations

import statistics
import time

import _common as c
import torch
import torch.nn.functional as F


class FlopCounter:
    """Analytic FLOPs (formula in the module docstring) of every call of ``model.forward`` while attached."""

    def __init__(self, model: torch.nn.Module) -> None:
        config = model.config.get_text_config()
        self.linear_params = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
        self.layers = config.num_hidden_layers
        head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        self.d_attn = config.num_attention_heads * head_dim
        self.flops = self.linear = self.tokens = self.calls = 0
        self._handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs) -> None:
        ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask")
        batch, new = ids.shape
        context = mask.shape[1] if isinstance(mask, torch.Tensor) and mask.ndim == 2 else new
        linear = 2 * self.linear_params * batch * new
        self.linear += linear
        self.flops += linear + 4 * self.layers * self.d_attn * batch * new * context
        self.tokens += batch * new
        self.calls += 1

    def take(self) -> dict[str, int]:
        counts = {"flops": self.flops, "linear": self.linear, "tokens": self.tokens, "calls": self.calls}
        self.flops = self.linear = self.tokens = self.calls = 0
        return counts

    def remove(self) -> None:
        self._handle.remove()


def gemm_rate(a: torch.Tensor, b: torch.Tensor, repeats: int, *, linear: bool) -> float:
    """Median GFLOP/s of ``a @ b`` (or ``F.linear(a, b)``, i.e. ``a @ b.T``)."""
    op = (lambda: F.linear(a, b)) if linear else (lambda: torch.matmul(a, b))
    flops = 2 * a.shape[0] * a.shape[1] * (b.shape[0] if linear else b.shape[1])
    with torch.inference_mode():
        for _ in range(2):
            op()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            op()
            times.append(time.perf_counter() - start)
    return flops / statistics.median(times) / 1e9


def padded_batches(tokenizer, texts, batch_size: int) -> list[dict[str, torch.Tensor]]:
    ids = tokenizer(list(texts), add_special_tokens=True)["input_ids"]
    ids = sorted(ids, key=len, reverse=True)
    pad = tokenizer.pad_token_id or 0
    out = []
    for start in range(0, len(ids), batch_size):
        rows = ids[start : start + batch_size]
        width = len(rows[0])
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            input_ids[r, : len(row)] = torch.tensor(row)
            mask[r, : len(row)] = 1
        out.append({"input_ids": input_ids, "attention_mask": mask})
    return out


def main() -> None:
    p = c.parser(__doc__, quick_pairs=24)
    p.add_argument("--gemm-repeats", type=int, default=None, help="timed GEMM calls per shape (default 20, quick 5)")
    args = c.parse(p)
    gemm_repeats = args.gemm_repeats or (5 if args.quick else 20)
    from decemb.engine import EmbeddingJob, Engine
    from decemb.settings import EncodeSettings
    from decemb.strategies import build_strategy

    texts = c.sts_sentences(c.data_root(args.data_root), args.pairs)
    model, tokenizer = c.load_model(args)
    batches = padded_batches(tokenizer, texts, args.batch_size)
    counter = FlopCounter(model)
    config = model.config.get_text_config()
    print(
        f"FLOPs per forward call = 2 * P_lin * B * T_new + 4 * L * d_attn * B * T_new * T_ctx with "
        f"P_lin = {counter.linear_params:,} linear weights, L = {counter.layers}, d_attn = {counter.d_attn} "
        f"(about {2 * counter.linear_params / 1e9:.3f} GFLOP per token + attention)"
    )

    def bare():
        with torch.inference_mode():
            for batch in batches:
                model(**batch)

    job = EmbeddingJob(build_strategy("mean"), "query", texts)

    def engine():
        return Engine(model, tokenizer, EncodeSettings(batch_size=args.batch_size)).embed([job])

    counts: dict[str, dict[str, int]] = {}

    def count(name: str) -> None:
        counts[name] = counter.take()
        if name == "decemb engine":
            counter.remove()

    bare()  # first-call effects
    counter.take()
    timings = c.measure({"bare forward": bare, "decemb engine": engine}, args.repeats, after_warmup=count)

    m = round(sum(b["input_ids"].numel() for b in batches) / len(batches))
    dtype = model.dtype
    hidden, inter = config.hidden_size, config.intermediate_size
    kv = config.num_key_value_heads * (getattr(config, "head_dim", None) or hidden // config.num_attention_heads)
    shapes = {  # (rows, in) @ (out, in)^T, as nn.Linear runs; weight: linear layers of that shape per block
        f"{m}x{hidden} @ {hidden}x{inter} (gate, up)": ((m, hidden), (inter, hidden), 2),
        f"{m}x{inter} @ {inter}x{hidden} (down)": ((m, inter), (hidden, inter), 1),
        f"{m}x{hidden} @ {hidden}x{counter.d_attn} (q, o)": ((m, hidden), (counter.d_attn, hidden), 2),
        f"{m}x{hidden} @ {hidden}x{kv} (k, v)": ((m, hidden), (kv, hidden), 2),
    }
    print(f"\nGEMM rates (median of {gemm_repeats} calls each, {args.threads} threads, {dtype}):")
    square = torch.randn(2048, 2048, dtype=dtype)
    rates = {"matmul 2048x2048 @ 2048x2048": gemm_rate(square, square.clone(), gemm_repeats, linear=False)}
    ceiling_flops = ceiling_time = 0.0
    for label, (a_shape, w_shape, per_block) in shapes.items():
        rate = gemm_rate(
            torch.randn(a_shape, dtype=dtype), torch.randn(w_shape, dtype=dtype), gemm_repeats, linear=True
        )
        rates[f"linear {label}"] = rate
        flops = 2 * a_shape[0] * a_shape[1] * w_shape[0] * per_block
        ceiling_flops += flops
        ceiling_time += flops / rate
    peak = max(rates.values())
    ceiling = ceiling_flops / ceiling_time
    print(c.table([[k, f"{v:.1f}"] for k, v in rates.items()], ["GEMM", "GFLOP/s"]))
    print(f"peak (best GEMM above): {peak:.1f} GFLOP/s; model-shape ceiling (FLOP-weighted): {ceiling:.1f} GFLOP/s")

    rows = []
    for name, t in timings.items():
        k = counts[name]
        rate = k["flops"] / t.median / 1e9
        rows.append(
            [
                name,
                f"{t.median:.3f}",
                t.spread,
                k["tokens"],
                f"{k['flops'] / 1e9:.1f}",
                f"{100 * k['linear'] / k['flops']:.1f}%",
                f"{rate:.1f}",
                f"{100 * rate / peak:.0f}%",
                f"{100 * rate / ceiling:.0f}%",
            ]
        )
    print()
    header = ["path", "median s", "range s", "tokens run", "GFLOP", "linear", "GFLOP/s", "of peak", "of ceiling"]
    print(c.table(rows, header))
    print("(tokens run: B * T_new summed over forward calls, padding included; linear: share of the FLOPs)")
    for name, t in timings.items():
        ratio = counts[name]["flops"] / t.median / 1e9 / peak
        print(f"{name}: achieved / peak = {100 * ratio:.0f}% ({c.verdict(100 * ratio, 75, at_most=False)}%)")
    c.print_footer()


if __name__ == "__main__":
    main()
