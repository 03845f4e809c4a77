"""Query generation from a corpus with the decoder itself: the prompt follows the tokenizer, the score is the mean
log-probability of an independent greedy decoding, a killed run resumes to the file an uninterrupted one writes,
a seed fixes the sampling, degenerate queries are dropped, bad input fails in one line before any model loads,
and the output file is training data as ``decemb train`` reads it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import CORPUS, build_tokenizer, tiny_config
from transformers import AutoModelForCausalLM

import decemb.rerank.loading
from decemb.cli import main
from decemb.config_base import data_root
from decemb.errors import ConfigError
from decemb.train.data import load_train_data
from decemb.train.parsing import load_train_config
from decemb.train.query_generation import (
    EXAMPLES,
    cut_query,
    default_query_prompt,
    drop_reason,
    generate_queries,
    keep_top,
    prompt_ids,
)

CHAT = (
    "{% for m in messages %}<bos>{{ m['role'] }}\n{{ m['content'] }}<eos>\n{% endfor %}"
    "{% if add_generation_prompt %}<bos>assistant\n{% endif %}"
)
DOCS = [(f"d{i}", text) for i, text in enumerate(CORPUS[:5])]
RECIPE = Path(__file__).resolve().parents[1] / "configs" / "train-retrieval-generated.yaml"


def generator(chat: bool = True, seed: int = 0):
    tok = build_tokenizer(add_bos=True)
    if chat:
        tok.chat_template = CHAT
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(tiny_config("llama", len(tok))).eval(), tok


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_prompt_follows_the_tokenizer_not_the_model():
    _, chat_tok = generator(chat=True)
    plain_tok = build_tokenizer(add_bos=True)
    text, shown = DOCS[0][1], [("The cat sat on the mat.", "where did the cat sit")]
    chat = default_query_prompt(chat_tok, "Write a query.", shown)
    assert chat.family == "chat"
    turns = [
        {"role": "user", "content": "Document: The cat sat on the mat.\n\nWrite a query."},
        {"role": "assistant", "content": "where did the cat sit"},
        {"role": "user", "content": f"Document: {text}\n\nWrite a query."},
    ]
    expected = chat_tok.apply_chat_template(turns, add_generation_prompt=True, tokenize=True)
    expected = list(expected["input_ids"]) if hasattr(expected, "keys") else list(expected)
    assert prompt_ids(chat_tok, chat, text, 256) == expected
    plain = default_query_prompt(plain_tok, "Write a query.", shown)
    assert plain.family == "plain"
    ids = prompt_ids(plain_tok, plain, text, 256)
    assert ids[0] == plain_tok.bos_token_id
    assert plain_tok.decode(ids[1:]) == f"Document: {shown[0][0]}\nQuery: {shown[0][1]}\n\nDocument: {text}\nQuery:"
    cut = prompt_ids(plain_tok, plain, text, 2)  # the document alone is cut to the budget
    assert len(cut) == len(ids) - (len(plain_tok(" " + text, add_special_tokens=False)["input_ids"]) - 2)
    assert all(query in default_query_prompt(chat_tok).prefix for _, query in EXAMPLES)  # shown by default


def test_cut_query_stops_at_a_newline_or_an_end_token_and_scores_those_tokens():
    tok = build_tokenizer(add_bos=False)
    query = tok("The cat sat", add_special_tokens=False)["input_ids"]
    after = tok("\nDogs run", add_special_tokens=False)["input_ids"]
    tokens = query + after
    logprobs = [-float(i + 1) for i in range(len(tokens))]
    newline = next(i for i, t in enumerate(after) if "\n" in tok.decode([t]))
    end = len(query) + newline + 1
    assert cut_query(tok, tokens, logprobs, {2}) == ("The cat sat", sum(logprobs[:end]) / end, True)
    quoted = tok('"The cat"', add_special_tokens=False)["input_ids"] + [2, *after]
    text, score, finished = cut_query(tok, quoted, [-1.0] * (len(quoted) - 1) + [-9.0], {2})
    assert (text, score, finished) == ("The cat", -1.0, True)
    assert cut_query(tok, query, logprobs[: len(query)], {2}) == (
        "The cat sat",
        sum(logprobs[: len(query)]) / len(query),
        False,
    )


def test_drop_reason_names_empty_duplicate_and_copied_queries():
    assert drop_reason(" ?! ", set(), EXAMPLES) == "empty"
    assert drop_reason("cat on a mat", {"cat on a mat"}, EXAMPLES) == "duplicate"
    assert drop_reason("does the Great Wall of China have curves", set(), EXAMPLES) == "example"  # 4 words shown
    assert drop_reason("does aerobic exercise help memory", set(), EXAMPLES) is None  # 3 words in a row only
    assert drop_reason("does the great wall of china have curves", set(), []) is None


def test_query_and_score_match_an_independent_greedy_decoding(tmp_path):
    model, tok = generator()
    report = generate_queries((model, tok), DOCS, tmp_path / "q.jsonl", batch_size=3, max_new_tokens=6)
    prompt = default_query_prompt(tok)
    found = rows(tmp_path / "q.jsonl")
    assert report.written == len(found) == len(DOCS) and [r["doc_id"] for r in found] == [d for d, _ in DOCS]
    for row, (_, text) in zip(found, DOCS):
        ids, tokens, logprobs = prompt_ids(tok, prompt, text, 256), [], []
        with torch.no_grad():
            for _ in range(6):  # no padding, no cache: a full forward per step
                step = model(torch.tensor([ids + tokens])).logits[0, -1].log_softmax(-1)
                tokens.append(int(step.argmax()))
                logprobs.append(float(step[tokens[-1]]))
        query, score, _ = cut_query(tok, tokens, logprobs, {tok.eos_token_id})
        assert row["query"] == query and row["document"] == text
        assert row["score"] == pytest.approx(score, abs=1e-4)


def test_a_killed_run_resumes_to_the_file_an_uninterrupted_run_writes(tmp_path, monkeypatch):
    settings = {"batch_size": 2, "per_document": 2, "temperature": 1.0, "max_new_tokens": 5, "seed": 3}
    whole = generate_queries(generator(), DOCS, tmp_path / "whole.jsonl", **settings)
    expected = (tmp_path / "whole.jsonl").read_text(encoding="utf-8")

    def kill(report):
        raise KeyboardInterrupt

    model, tok = generator()
    with pytest.raises(KeyboardInterrupt):
        generate_queries((model, tok), DOCS, tmp_path / "part.jsonl", on_batch=kill, **settings)
    part = tmp_path / "part.jsonl"
    first = part.read_text(encoding="utf-8")
    assert first and expected.startswith(first)
    with part.open("a", encoding="utf-8") as handle:  # a kill in the middle of the next batch's write
        handle.write(expected[len(first) :].splitlines(keepends=True)[0][:25])
    calls = []
    original = model.generate
    monkeypatch.setattr(model, "generate", lambda **kw: calls.append(kw["input_ids"].shape[0]) or original(**kw))
    resumed = generate_queries((model, tok), DOCS, part, **settings)
    assert part.read_text(encoding="utf-8") == expected
    assert calls == [2, 1] and resumed.skipped == 2 and resumed.written == whole.written - len(first.splitlines())
    again = generate_queries((model, tok), DOCS, part, **settings)
    assert again.skipped == len(DOCS) and again.written == 0 and calls == [2, 1]


def test_a_seed_fixes_the_sampled_queries(tmp_path):
    settings = {"batch_size": 2, "temperature": 1.0, "max_new_tokens": 6}
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        generate_queries(generator(), DOCS, tmp_path / f"{name}.jsonl", seed=seed, **settings)
    a, b, c = (rows(tmp_path / f"{name}.jsonl") for name in "abc")
    assert a == b
    assert [r["query"] for r in a] != [r["query"] for r in c]


def test_degenerate_queries_are_dropped_and_counted_never_written(tmp_path, monkeypatch):
    model, tok = generator()
    with torch.no_grad():
        model.lm_head.weight.zero_()  # every logit equal: greedy writes <pad> tokens, which decode to nothing
    report = generate_queries((model, tok), DOCS, tmp_path / "q.jsonl", batch_size=2, max_new_tokens=4)
    assert report.written == 0 and report.dropped == {"empty": len(DOCS), "duplicate": 0, "example": 0}
    assert (tmp_path / "q.jsonl").read_text() == ""
    monkeypatch.setattr(model, "generate", lambda **kw: pytest.fail("a document done is generated again"))
    again = generate_queries((model, tok), DOCS, tmp_path / "q.jsonl", batch_size=2, max_new_tokens=4)
    assert again.skipped == len(DOCS)


def test_the_library_checks_documents_settings_and_the_file_before_the_model(tmp_path):
    nothing = (None, None)  # any use of the generator would raise
    with pytest.raises(ConfigError, match="duplicate document id 'd0'"):
        generate_queries(nothing, [*DOCS, ("d0", "again")], tmp_path / "q.jsonl")
    with pytest.raises(ConfigError, match="document 'd9' has no text"):
        generate_queries(nothing, [*DOCS, ("d9", "  ")], tmp_path / "q.jsonl")
    with pytest.raises(ConfigError, match=r"^batch_size: must be > 0"):
        generate_queries(nothing, DOCS, tmp_path / "q.jsonl", batch_size=0)
    generate_queries(generator(), DOCS[:2], tmp_path / "q.jsonl", max_new_tokens=3)
    with pytest.raises(ConfigError, match=r"q\.jsonl: was generated with other settings"):
        generate_queries(nothing, DOCS, tmp_path / "q.jsonl", max_new_tokens=4)
    with pytest.raises(ConfigError, match="another model or prompt"):
        generate_queries(generator(chat=False), DOCS, tmp_path / "q.jsonl", max_new_tokens=3)


def write_corpus(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("records", "flags", "message"),
    [
        ([{"_id": "a", "text": "A text."}, {"_id": "b", "title": "", "text": " "}], [], "document 'b' has no text"),
        ([{"_id": "a", "text": "A text."}, {"_id": "a", "text": "B."}], [], "duplicate document id 'a'"),
        ([{"_id": "a", "text": "A text."}], ["--per-document", "2"], "--per-document: temperature 0"),
        ([{"_id": "a", "text": "A text."}], ["--top-p", "0"], "--top-p: must be > 0"),
        ([{"_id": "a", "text": "A text."}], ["--keep-top", "2"], "--keep-top: must be in (0, 1]"),
        ([{"_id": "a", "text": "A text."}], ["--out", "foreign.jsonl"], "not written by generate-queries"),
    ],
    ids=["no-text", "duplicate-id", "greedy-k", "top-p", "keep-top", "foreign-file"],
)
def test_bad_input_is_one_line_before_the_model_loads(tmp_path, monkeypatch, capsys, records, flags, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "foreign.jsonl").write_text('{"some": "file"}\n')
    monkeypatch.setattr(decemb.rerank.loading, "load_backbone", lambda *a, **k: pytest.fail("the model loaded"))
    corpus = write_corpus(tmp_path / "corpus.jsonl", records)
    code = main(["generate-queries", str(corpus), "--model", "smollm2-135m", "--out", "q.jsonl", *flags])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err


def test_the_command_writes_queries_and_the_top_fraction(tmp_path, capsys):
    model, tok = generator()
    model.save_pretrained(tmp_path / "lm")
    tok.save_pretrained(tmp_path / "lm")
    corpus = write_corpus(tmp_path / "corpus.jsonl", [{"_id": d, "title": "T", "text": t} for d, t in DOCS])
    out = tmp_path / "out" / "q.jsonl"
    argv = ["generate-queries", str(corpus), "--model", str(tmp_path / "lm"), "--out", str(out), "--limit", "4"]
    assert main([*argv, "--max-new-tokens", "4", "--keep-top", "0.5", "--threads", "1"]) == 0
    written = rows(out)
    assert [r["doc_id"] for r in written] == ["d0", "d1", "d2", "d3"] and written[0]["document"] == f"T {DOCS[0][1]}"
    best = sorted(written, key=lambda r: -r["score"])[:2]
    assert rows(out.with_name("q.top50.jsonl")) == [r for r in written if r in best]
    assert "wrote 4 queries" in capsys.readouterr().err


def test_keep_top_keeps_the_best_scores_in_file_order(tmp_path):
    scores = [-2.0, -0.5, -3.0, -0.1, -1.0]
    source = write_corpus(
        tmp_path / "q.jsonl", [{"doc_id": str(i), "query": "q", "score": s} for i, s in enumerate(scores)]
    )
    assert keep_top(source, tmp_path / "top.jsonl", 0.5) == (3, 5)  # ceil(2.5)
    assert [r["doc_id"] for r in rows(tmp_path / "top.jsonl")] == ["1", "3", "4"]
    with pytest.raises(ConfigError, match="keep_top: must be in"):
        keep_top(source, tmp_path / "top.jsonl", 0.0)


def test_the_output_is_training_data_for_the_shipped_recipe(tmp_path):
    generate_queries(generator(), DOCS, tmp_path / "q.jsonl", max_new_tokens=4)
    config = load_train_config(RECIPE, [f"data.path={tmp_path / 'q.jsonl'}"])
    data = load_train_data(config.data_sources[0], data_root(config.data_root))
    written = rows(tmp_path / "q.jsonl")
    assert data.shape == "pairs" and data.sides == {"anchor": "query", "positive": "document"}
    assert data.columns == {"anchor": [r["query"] for r in written], "positive": [r["document"] for r in written]}


def test_help_imports_nothing_heavy():
    probe = "import sys\nfrom decemb.cli import main\nmain(sys.argv[1:])\nprint('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", probe, "generate-queries", "--help"], capture_output=True, text=True)
    assert done.stdout.strip().endswith("False") and "--per-document" in done.stdout
