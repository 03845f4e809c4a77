"""The report's timing section: seconds and tokens per (model, task), per strategy, and the engine's totals.

Token counts have one definition throughout: *rendered tokens* are the tokens of the inputs the model ran
(template and text, no padding), which is what the encode progress bar counts; cache hits run nothing. The
engine table adds *padded tokens*: rendered tokens plus each batch's padding up to its longest input, what
the model computed. Time per strategy attributes shared forwards as :class:`decemb.engine.JobCost` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from decemb.compare.results import Result
from decemb.compare.tables import cell, markdown_table

__all__ = ["timing_section"]

ENGINE_FIELDS = {
    "forward_passes": "forwards",
    "sequences_run": "sequences",
    "tokens_rendered": "rendered tokens",
    "tokens_run": "padded tokens",
    "cache_hits": "cache hits",
    "cache_misses": "cache misses",
}


def _per_strategy(results: Sequence[Result]) -> dict[tuple[str, str, str, int], dict[str, Result]]:
    """One bi-encoder record and (when the task has one) one rerank record per model × task × strategy × layer."""
    found: dict[tuple[str, str, str, int], dict[str, Result]] = {}
    for r in results:
        found.setdefault((r.model, r.task, r.strategy, r.layer), {}).setdefault(r.stage or "score", r)
    return found


def _count(value: float | None) -> str:
    return "" if value is None else f"{round(value):,}"


def timing_section(results: Sequence[Result]) -> list[str]:
    entries = _per_strategy(results)
    if not entries:
        return []
    pairs: dict[tuple[str, str], dict[str, Any]] = {}
    for (model, task, _, _), stages in entries.items():
        first = stages.get("score") or next(iter(stages.values()))
        totals = pairs.setdefault((model, task), {"encode": first.encode_seconds, "score": 0.0, "rerank": None})
        if "score" in stages:
            totals["score"] += stages["score"].seconds
            tokens = stages["score"].encode_share_tokens
            if tokens is not None:
                totals["tokens"] = totals.get("tokens", 0.0) + tokens
        if "rerank" in stages:
            totals["rerank"] = (totals["rerank"] or 0.0) + stages["rerank"].seconds
    reranked = any(totals["rerank"] is not None for totals in pairs.values())
    loads = getattr(results, "load_seconds", {})
    rows = []
    for (model, task), totals in pairs.items():
        row = [cell(model), cell(task), f"{loads[model]:.1f}" if model in loads else ""]
        row += [f"{totals['encode']:.1f}", _count(totals.get("tokens")), f"{totals['score']:.1f}"]
        rows.append(row + ([f"{totals['rerank'] or 0.0:.1f}"] if reranked else []))
    lines = [
        "## Timing",
        "",
        "Seconds: load the model, encode the task (all strategies × layers in one shared pass), score them"
        + (", run the rerank stage" if reranked else "")
        + ". Tokens: rendered tokens (template and text, no padding) run through the model, the count the "
        "encode progress bar shows; cache hits run nothing.",
        "",
    ]
    header = ["model", "task", "load s", "encode s", "tokens", "score s", *(["rerank s"] if reranked else [])]
    lines += markdown_table(header, rows, numeric_from=2)
    lines += _strategy_table(entries)
    lines += _engine_table(getattr(results, "stats", {}))
    return [*lines, ""]


def _strategy_table(entries: dict[tuple[str, str, str, int], dict[str, Result]]) -> list[str]:
    rows = []
    for (model, task, strategy, layer), stages in entries.items():
        record = stages.get("score")
        if record is None or record.encode_share_seconds is None:
            continue
        share = record.encode_share_seconds / record.encode_seconds if record.encode_seconds > 0 else 0.0
        tokens, seconds = _count(record.encode_share_tokens), f"{record.encode_share_seconds:.2f}"
        rows.append([cell(model), cell(task), cell(strategy), str(layer), tokens, seconds, f"{share:.0%}"])
    if not rows:
        return []
    return [
        "",
        "### Encode time per strategy",
        "",
        "Shared forwards are attributed: a forward batch's time is split over its inputs by token count, and an "
        "input that several strategies or layers read (mean, last and sgpt read the same rendering) is split "
        "evenly among them; each strategy also carries its own rendering and cache lookups. Per task the tokens "
        "add up to the task's tokens above, the seconds to its encode time but for a little bookkeeping.",
        "",
        *markdown_table(["model", "task", "strategy", "layer", "tokens", "encode s", "of encode"], rows, 3),
    ]


def _engine_table(stats: dict[str, Any]) -> list[str]:
    if not stats:
        return []
    rows = [[cell(model), *(_count(getattr(s, name, None)) for name in ENGINE_FIELDS)] for model, s in stats.items()]
    return [
        "",
        "### Engine totals",
        "",
        "Per model, over all its tasks. Rendered tokens as above; padded tokens add each batch's padding up to "
        "its longest input: what the model computed.",
        "",
        *markdown_table(["model", *ENGINE_FIELDS.values()], rows, numeric_from=1),
    ]
