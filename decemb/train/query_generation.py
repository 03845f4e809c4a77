"""Queries a decoder writes for corpus documents (InPars / GPL style): (query -> document) training pairs from the
corpus alone, by the model that will be trained (no second model).

The prompt follows the tokenizer, never a model name (chat template: a user turn per document, assistant turn
opened; else ``Document: ...\\nQuery:`` after the tokenizer's leading special tokens), after demonstrations
(``examples``; InPars' few-shot prompt: without them SmolLM2-135M answers with a lead-in line). Documents are cut
to ``max_document_tokens``; the query is the new text up to the first newline or end token, and ``score`` the mean
log-probability of its tokens (end token included) under the model (InPars-v1's filter score: :func:`keep_top`).

Rows ``{"doc_id", "query", "document", "score"}`` are appended to a JSONL file batch by batch (flushed): run again
with the same settings, a killed run skips the documents done (a torn last line is cut off) and ends with the file
an uninterrupted run writes (sampling is seeded per batch, batches sit at fixed places). :func:`drop_reason`'s
queries are counted, never written. ``<stem>.settings.json`` holds the settings and each document's drop count.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, NonNegativeFloat, PositiveInt, ValidationError

from decemb.config_base import StrictModel
from decemb.errors import ConfigError, pydantic_message
from decemb.files import atomic_write, write_text
from decemb.loading import ensure_pad_token
from decemb.rendering import glues_leading_space, special_affixes
from decemb.search.corpus import check_corpus

__all__ = ["GenerationReport", "GenerationSettings", "QueryPrompt", "check_output", "cut_query", "drop_reason"]
__all__ += ["default_query_prompt", "generate_queries", "generation_settings", "keep_top", "prompt_ids"]

INSTRUCTION = "Write one short search query that this document answers. Reply with the query only."
_WALL = "The Great Wall of China was built over many centuries, most of what stands today during the Ming dynasty "
_EXERCISE = "Regular aerobic exercise lowered resting systolic blood pressure by about 5 mmHg in adults with "
EXAMPLES = (  # (document, query) demonstrations written for decemb (no benchmark's text)
    (_WALL + "(1368-1644), to protect Chinese states from raids by nomads.", "when was the great wall of china built"),
    (_EXERCISE + "hypertension in 27 trials.", "does aerobic exercise lower blood pressure in hypertension"),
)
_SLOT = "\u27e6DECEMB-DOCUMENT\u27e7"
_QUOTES = ('"', "'", "\u201c\u201d", "\u2018\u2019")


class GenerationSettings(StrictModel, frozen=True):
    """``temperature`` 0 decodes greedily (InPars); above 0 samples with ``top_p`` (GPL; ``per_document`` > 1)."""

    per_document: PositiveInt = 1
    max_new_tokens: PositiveInt = 32
    max_document_tokens: PositiveInt = 256
    batch_size: PositiveInt = 8
    temperature: NonNegativeFloat = 0.0
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    seed: int = 0
    instruction: str = Field(INSTRUCTION, min_length=1)
    examples: tuple[tuple[str, str], ...] = EXAMPLES

    def model_post_init(self, context: Any) -> None:
        if self.per_document > 1 and self.temperature == 0:
            raise ConfigError("temperature 0 (greedy) writes one query: set temperature > 0", key="per_document")


def generation_settings(**values: Any) -> GenerationSettings:
    """:class:`GenerationSettings` of ``values``; a bad one is a one-line ``ConfigError`` naming its key."""
    try:
        return GenerationSettings(**values)
    except ValidationError as error:
        first = error.errors()[0]
        if isinstance(cause := first.get("ctx", {}).get("error"), ConfigError):  # the cross-field check's own
            raise cause from None
        raise ConfigError(pydantic_message(first), key=".".join(str(p) for p in first["loc"]) or None) from None


@dataclass(frozen=True)
class QueryPrompt:
    """``prefix + DOCUMENT + suffix``; ``special_tokens``: after the tokenizer's leading ones (not for chat)."""

    prefix: str
    suffix: str
    special_tokens: bool
    family: str


def default_query_prompt(
    tokenizer: Any, instruction: str = INSTRUCTION, examples: Sequence[tuple[str, str]] = EXAMPLES
) -> QueryPrompt:
    """The tokenizer's chat template when it can render the turns (document slot once), else the plain prompt."""
    if getattr(tokenizer, "chat_template", None):
        turns = []
        for text, query in [*examples, (_SLOT, "")]:
            turns.append({"role": "user", "content": f"Document: {text}\n\n{instruction}"})
            turns += [{"role": "assistant", "content": query}] if query else []
        try:
            rendered = tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        except Exception:  # jinja raises its own types; any failure means "not usable"
            rendered = None
        if isinstance(rendered, str) and rendered.count(_SLOT) == 1:
            prefix, suffix = rendered.split(_SLOT)
            return QueryPrompt(prefix, suffix, special_tokens=False, family="chat")
    shown = "".join(f"Document: {text}\nQuery: {query}\n\n" for text, query in examples)
    return QueryPrompt(shown + "Document: ", "\nQuery:", special_tokens=True, family="plain")


def prompt_ids(tokenizer: Any, prompt: QueryPrompt, text: str, budget: int) -> list[int]:
    """The ids of the prompt around ``text`` cut to ``budget`` tokens (pieces tokenized apart; no special text)."""

    def ids(value: str, **extra: Any) -> list[int]:
        return list(tokenizer(value, add_special_tokens=False, **extra)["input_ids"]) if value else []

    prefix, lead = prompt.prefix, ""
    if prefix.endswith(" ") and glues_leading_space(tokenizer):  # the space belongs to the text's first word
        prefix, lead = prefix[:-1], " "
    before = special_affixes(tokenizer)[0] if prompt.special_tokens else []
    document = ids(lead + text, split_special_tokens=True)[:budget]
    return [*before, *ids(prefix), *document, *ids(prompt.suffix)]


def cut_query(tokenizer: Any, tokens: list[int], logprobs: list[float], stops: set[int]) -> tuple[str, float, bool]:
    """(query, mean log-probability, finished): the text to the first stop token or newline (scored), unquoted."""
    end, finished = len(tokens), False
    for index, token in enumerate(tokens):
        if token in stops or "\n" in tokenizer.decode([token]):
            end, finished = index + 1, True
            break
    kept = [t for t in tokens[:end] if t not in stops]
    text = tokenizer.decode(kept, skip_special_tokens=True).split("\n")[0].strip()
    if len(text) > 1 and any(text[0] == quote[0] and text[-1] == quote[-1] for quote in _QUOTES):
        text = text[1:-1].strip()
    return text, (sum(logprobs[:end]) / end if end else float("-inf")), finished


def drop_reason(query: str, seen: set[str], examples: Sequence[tuple[str, str]]) -> str | None:
    """Why a query is not written: ``empty`` (no letter or digit), ``duplicate`` (in ``seen``, the document's
    queries so far) or ``example`` (4 words in a row of a demonstration's query: a small model copies them)."""
    words = query.lower().split()
    copied = {tuple(words[i : i + 4]) for i in range(len(words) - 3)}
    shown = {tuple(q.lower().split()[i : i + 4]) for _, q in examples for i in range(len(q.split()) - 3)}
    empty = not any(character.isalnum() for character in query)
    return "empty" if empty else "duplicate" if query in seen else "example" if copied & shown else None


@dataclass
class GenerationReport:
    """What a call did: ``documents`` asked for, ``skipped`` (done before), ``written`` queries, ``dropped``
    by :func:`drop_reason`, ``unfinished`` (cut at max_new_tokens, kept) and ``batches`` generated."""

    documents: int
    skipped: int = 0
    written: int = 0
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(("empty", "duplicate", "example"), 0))
    unfinished: int = 0
    batches: int = 0


def _settings_path(out: Path) -> Path:
    return out.with_name(out.stem + ".settings.json")


def check_output(out_path: str | os.PathLike[str], settings: GenerationSettings) -> dict[str, Any] | None:
    """The side file of an existing ``out_path`` (``None``: nothing to resume); a file it did not write, or one
    written with other settings, is a ``ConfigError`` naming it (checked before any model loads)."""
    out, side = Path(out_path), _settings_path(Path(out_path))
    if not out.exists() or (out.stat().st_size == 0 and not side.exists()):
        return None
    try:
        record = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ConfigError(f"exists without a readable {side.name}: not written by generate-queries", file=out) from None
    if record.get("settings") != settings.model_dump(mode="json"):
        raise ConfigError(f"was generated with other settings ({side.name}); give those or another file", file=out)
    return record


def _resume_rows(out: Path) -> tuple[dict[str, int], set[tuple[str, str]]]:
    """Rows per doc id and the (doc id, query) pairs already in ``out``; a torn last line is cut off."""
    data = out.read_bytes()
    complete = data[: data.rfind(b"\n") + 1]
    if len(complete) < len(data):
        os.truncate(out, len(complete))
    pairs = []
    for number, line in enumerate(complete.decode("utf-8").splitlines(), 1):
        try:
            pairs.append((str((row := json.loads(line))["doc_id"]), str(row["query"])))
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"line {number} is not a generated-query row", file=out) from None
    return Counter(doc_id for doc_id, _ in pairs), set(pairs)


def _stop_ids(model: Any, tokenizer: Any) -> set[int]:
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = configured if isinstance(configured, list) else [configured]
    return {int(i) for i in [tokenizer.eos_token_id, *ids] if i is not None}


def _generate(model: Any, tokenizer: Any, prompts: list[list[int]], settings: GenerationSettings, seed: int) -> Any:
    """``(new tokens, their log-probabilities)`` per sequence (``per_document`` per prompt), left-padded batch."""
    import torch

    width = max(len(ids) for ids in prompts)
    pad = int(tokenizer.pad_token_id)
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=model.device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=model.device)
    sample = settings.temperature > 0
    options = {"temperature": settings.temperature, "top_p": settings.top_p, "top_k": 0} if sample else {}
    options |= {"stop_strings": ["\n"], "tokenizer": tokenizer, "return_dict_in_generate": True, "output_logits": True}
    cuda = [model.device.index or 0] if model.device.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        out = model.generate(
            input_ids=ids,
            attention_mask=mask,
            max_new_tokens=settings.max_new_tokens,
            do_sample=sample,
            num_return_sequences=settings.per_document,
            pad_token_id=pad,
            eos_token_id=sorted(_stop_ids(model, tokenizer)),
            **options,
        )
    new = out.sequences[:, width:]
    steps = torch.stack([logits.float().log_softmax(-1) for logits in out.logits], dim=1)
    logprobs = steps.gather(2, new[:, : steps.shape[1], None]).squeeze(2)
    return new.tolist(), logprobs.tolist()


def generate_queries(
    generator: tuple[Any, Any],
    documents: Sequence[tuple[str, str]],
    out_path: str | os.PathLike[str],
    *,
    prompt: QueryPrompt | None = None,
    on_batch: Callable[[GenerationReport], None] = lambda report: None,
    **settings: Any,
) -> GenerationReport:
    """Write queries for ``documents`` (``(doc_id, text)``) to the JSONL ``out_path``, resuming a killed run.

    ``generator``: ``(causal LM, tokenizer)`` (:func:`decemb.rerank.load_causal_lm`); ``settings``: the fields of
    :class:`GenerationSettings` (``per_document``, ``max_new_tokens``, ``max_document_tokens``, ``batch_size``,
    ``temperature``, ``top_p``, ``seed``, ``instruction``, ``examples``); ``prompt``: :func:`default_query_prompt`.
    ``on_batch`` sees the report after every batch written. Documents and settings are checked first."""
    ids, texts = check_corpus([d for d, _ in documents], [t for _, t in documents])
    config = generation_settings(**settings)
    previous = check_output(out_path, config)
    model, tokenizer = generator
    ensure_pad_token(tokenizer)  # left padding needs one (the loader gives every tokenizer one already)
    prompt = prompt or default_query_prompt(tokenizer, config.instruction, config.examples)
    out, k, stops, budget = Path(out_path), config.per_document, _stop_ids(model, tokenizer), config.max_document_tokens
    record = {"settings": config.model_dump(mode="json"), "prompt": asdict(prompt), "model": model.config.name_or_path}
    if previous is not None and {key: previous.get(key) for key in record} != record:
        raise ConfigError(f"was generated with another model or prompt ({_settings_path(out).name})", file=out)
    dropped: dict[str, int] = dict(previous.get("dropped", {})) if previous else {}
    counts, written = _resume_rows(out) if previous is not None else ({}, set())
    done = {d for d in ids if counts.get(d, 0) + dropped.get(d, 0) >= k}
    report = GenerationReport(documents=len(ids), skipped=len(done))
    write_text(_settings_path(out), json.dumps({**record, "dropped": dropped}, indent=1))
    with open(out, "a", encoding="utf-8", newline="\n") as handle:
        for start in range(0, len(ids), size := config.batch_size):
            batch = [i for i in range(start, min(start + size, len(ids))) if ids[i] not in done]
            if not batch:
                continue
            prompts = [prompt_ids(tokenizer, prompt, text, budget) for text in texts[start : start + size]]
            tokens, logprobs = _generate(model, tokenizer, prompts, config, config.seed * 1_000_003 + start)
            lines = []
            for i in batch:
                dropped.pop(ids[i], None)  # counted afresh: a document not done has no complete count
                seen: set[str] = set()
                for row in range((i - start) * k, (i - start + 1) * k):
                    query, score, finished = cut_query(tokenizer, tokens[row], logprobs[row], stops)
                    if (reason := drop_reason(query, seen, config.examples)) is not None:
                        dropped[ids[i]] = dropped.get(ids[i], 0) + 1
                        report.dropped[reason] += 1
                    elif (ids[i], query) not in written:  # else written before the run was killed
                        report.unfinished += not finished
                        row_of = {"doc_id": ids[i], "query": query, "document": texts[i], "score": score}
                        lines.append(json.dumps(row_of, ensure_ascii=False) + "\n")
                    seen.add(query)
            handle.write("".join(lines))
            handle.flush()
            write_text(_settings_path(out), json.dumps({**record, "dropped": dropped}, indent=1))
            report.written, report.batches = report.written + len(lines), report.batches + 1
            on_batch(report)
    return report


def keep_top(rows_path: str | os.PathLike[str], out_path: str | os.PathLike[str], fraction: float) -> tuple[int, int]:
    """Write the ``fraction`` (0 < f <= 1; rounded up) of ``rows_path``'s queries with the highest scores to
    ``out_path`` in their file order (InPars-v1's filter); returns ``(kept, total)``."""
    if not 0 < fraction <= 1:
        raise ConfigError(f"must be in (0, 1], got {fraction}", key="keep_top")
    lines = [line for line in Path(rows_path).read_text(encoding="utf-8").splitlines(keepends=True) if line.strip()]
    scores = [float(json.loads(line)["score"]) for line in lines]
    count = math.ceil(fraction * len(lines))
    best = sorted(range(len(lines)), key=lambda i: (-scores[i], i))[:count]
    atomic_write(out_path, lambda handle: handle.writelines(lines[i] for i in sorted(best)))
    return count, len(lines)
