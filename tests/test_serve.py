"""``decemb serve`` (issue 24) against a live uvicorn server in this test session: the official ``openai`` client
and plain ``httpx`` get the vectors in-process ``encode`` gives, usage counts the rendered tokens, every bad
request is a 4xx naming its field (never a 500, never disturbing the others), rerank orders by the reranker's
own scores, and the API key is enforced."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import openai
import pytest
import torch
import uvicorn
from helpers import CORPUS, build_tokenizer, tiny_backbone, tiny_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import AutoModelForCausalLM

import decemb
from decemb.rerank import reranker_from_causal_lm
from decemb.serve import ServedEmbedder, ServedReranker, ServeLimits, build_app
from decemb.strategies.instruct import DEFAULT_INSTRUCTION

KEY = "test-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
TOLERANCE = 1e-5


def tiny_reranker():
    tokenizer = build_tokenizer(add_bos=True)
    tokenizer.add_tokens([" yes", " no"])  # the plain pair template's answer words, one token each
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config("llama", len(tokenizer))).eval()
    return reranker_from_causal_lm(model, tokenizer, max_length=128)


class Live:
    """A running server: its base URL, the in-process models it serves, its app (for the batcher's stats)."""

    def __init__(self, app, embedder, reranker) -> None:
        self.app, self.embedder, self.reranker = app, embedder, reranker
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.http = httpx.Client(timeout=60)  # one client: building one (its TLS context) costs ~0.1 s

    def __enter__(self) -> Live:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the server did not start"
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(30)

    def post(self, path: str, body: object) -> httpx.Response:
        """``body`` as ASCII JSON (a lone surrogate travels as its ``\\ud800`` escape, as any client may send it)."""
        headers = {**AUTH, "content-type": "application/json"}
        return self.http.post(self.url + path, content=json.dumps(body).encode(), headers=headers, timeout=60)


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    model, tokenizer = tiny_backbone("llama")
    embedder = decemb.from_backbone(model, tokenizer, "instruct", max_length=64)  # sides render differently
    reranker = tiny_reranker()
    limits = ServeLimits(max_inputs=8, max_wait_ms=20, max_batch_tokens=4096, api_key=KEY)
    app = build_app(ServedEmbedder(embedder, "tiny"), ServedReranker(reranker, "tiny-rerank"), limits)
    with Live(app, embedder, reranker) as server:
        yield server
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def client(live: Live) -> openai.OpenAI:
    return openai.OpenAI(base_url=live.url + "/v1", api_key=KEY, max_retries=0)


def vectors(response) -> np.ndarray:
    return np.array([item.embedding for item in sorted(response.data, key=lambda item: item.index)])


def test_openai_client_gets_the_in_process_vectors_on_both_sides(live: Live, client: openai.OpenAI) -> None:
    texts = CORPUS[:6]
    query = client.embeddings.create(input=texts, model="tiny", encoding_format="float")
    document = client.embeddings.create(input=texts, model="tiny", extra_body={"input_type": "document"})
    np.testing.assert_allclose(vectors(query), live.embedder.encode_query(texts), atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(vectors(document), live.embedder.encode_document(texts), atol=TOLERANCE, rtol=0)
    assert np.abs(vectors(query) - vectors(document)).max() > 1e-3  # the sides really differ (instruct)
    single = client.embeddings.create(input=texts[0], model="tiny", encoding_format="float")
    assert len(single.data) == 1 and np.allclose(vectors(single)[0], vectors(query)[0], atol=TOLERANCE)


def test_base64_decodes_to_the_float_answer(live: Live) -> None:
    body = {"input": CORPUS[:5], "model": "tiny"}
    floats = live.post("/v1/embeddings", {**body, "encoding_format": "float"}).json()["data"]
    packed = live.post("/v1/embeddings", {**body, "encoding_format": "base64"}).json()["data"]
    for plain, encoded in zip(floats, packed):
        decoded = np.frombuffer(base64.b64decode(encoded["embedding"]), dtype="<f4")
        np.testing.assert_array_equal(decoded, np.asarray(plain["embedding"], dtype=np.float32))


def test_usage_counts_the_rendered_tokens(live: Live, client: openai.OpenAI) -> None:
    tokenizer = live.embedder[0].tokenizer
    texts = CORPUS[:4]

    def tokens(text: str, special: bool = False) -> int:
        return len(tokenizer(text, add_special_tokens=special)["input_ids"])

    # documents: BOS (the tokenizer's own) + text + EOS; queries: "Instruct: {task}\nQuery:" + " text" between them
    documents = sum(tokens(text, special=True) + 1 for text in texts)
    head = tokens(f"Instruct: {DEFAULT_INSTRUCTION}\nQuery:")
    queries = sum(2 + head + tokens(" " + text) for text in texts)
    assert client.embeddings.create(input=texts, model="tiny").usage.prompt_tokens == queries
    answer = live.post("/v1/embeddings", {"input": texts, "model": "tiny", "input_type": "document"}).json()
    assert answer["usage"] == {"prompt_tokens": documents, "total_tokens": documents}


BAD_EMBEDDINGS = [
    ({"input": [], "model": "tiny"}, 400, "input"),
    ({"input": "", "model": "tiny"}, 400, "input[0]"),
    ({"input": ["ok", ""], "model": "tiny"}, 400, "input[1]"),
    ({"input": ["ok", 7], "model": "tiny"}, 400, "input[1]"),
    ({"input": [[1, 2, 3]], "model": "tiny"}, 400, "input[0]"),
    ({"input": 5, "model": "tiny"}, 400, "input"),
    ({"input": ["x"] * 9, "model": "tiny"}, 400, "input"),
    ({"input": ["fine", "word " * 80], "model": "tiny"}, 400, "input[1]"),
    ({"input": ["\ud800"], "model": "tiny"}, 400, "input[0]"),
    ({"input": "x"}, 400, "model"),
    ({"input": "x", "model": "other"}, 404, "model"),
    ({"input": "x", "model": "tiny-rerank"}, 400, "model"),
    ({"input": "x", "model": "tiny", "encoding_format": "int8"}, 400, "encoding_format"),
    ({"input": "x", "model": "tiny", "dimensions": 16}, 400, "dimensions"),
    ({"input": "x", "model": "tiny", "input_type": "passage"}, 400, "input_type"),
    ({"input": "x", "model": "tiny", "extra": 1}, 400, "extra"),
    ([1, 2], 400, "body"),
]


@pytest.mark.parametrize(("body", "status", "param"), BAD_EMBEDDINGS, ids=[case[2] for case in BAD_EMBEDDINGS])
def test_bad_embedding_requests_name_the_field(live: Live, body: object, status: int, param: str) -> None:
    answer = live.post("/v1/embeddings", body)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert error["param"] == param and error["message"].startswith(f"{param}: ")


def test_not_json_and_unknown_routes_are_json_errors(live: Live) -> None:
    headers = {**AUTH, "content-type": "application/json"}
    garbage = live.http.post(live.url + "/v1/embeddings", content=b"{nope", headers=headers)
    assert garbage.status_code == 400 and garbage.json()["error"]["param"] == "body"
    missing = live.http.get(live.url + "/v1/nothing", headers=AUTH)
    assert missing.status_code == 404 and "/v1/nothing" in missing.json()["error"]["message"]


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.dictionaries(
        st.sampled_from(["input", "model", "encoding_format", "dimensions", "input_type", "user", "other"]),
        st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=8), st.lists(st.text(max_size=6))),
    )
)
def test_no_body_is_ever_a_server_error(live: Live, body: dict) -> None:
    answer = live.post("/v1/embeddings", body)
    assert answer.status_code in (200, 400, 404), answer.text
    if answer.status_code != 200:
        assert answer.json()["error"]["param"]


def test_concurrent_requests_with_bad_ones_interleaved_all_get_their_own_answer(live: Live) -> None:
    requests = []
    for index in range(24):
        if index % 5 == 2:
            requests.append(({"input": ["ok", ""], "model": "tiny"}, None))
        else:
            texts = [CORPUS[(index + k) % len(CORPUS)] for k in range(1 + index % 4)]
            kind = "document" if index % 2 else "query"
            requests.append(({"input": texts, "model": "tiny", "input_type": kind}, (texts, kind)))
    before = live.app.state.batcher.stats.batches
    with ThreadPoolExecutor(12) as pool:
        answers = list(pool.map(lambda item: live.post("/v1/embeddings", item[0]), requests))
    for (_, expected), answer in zip(requests, answers):
        if expected is None:
            assert answer.status_code == 400 and answer.json()["error"]["param"] == "input[1]"
            continue
        texts, kind = expected
        encode = live.embedder.encode_document if kind == "document" else live.embedder.encode_query
        got = np.array([item["embedding"] for item in answer.json()["data"]])
        np.testing.assert_allclose(got, encode(texts), atol=TOLERANCE, rtol=0)
    good = sum(expected is not None for _, expected in requests)
    assert live.app.state.batcher.stats.batches - before < good  # requests really shared model calls


def test_rerank_orders_by_the_rerankers_own_scores(live: Live) -> None:
    query, documents = CORPUS[0], CORPUS[1:8]
    scores = live.reranker.predict([(query, document) for document in documents])
    answer = live.post("/v1/rerank", {"query": query, "documents": documents, "model": "tiny-rerank"}).json()
    assert [r["index"] for r in answer["results"]] == sorted(range(len(documents)), key=lambda i: -scores[i])
    np.testing.assert_allclose([r["relevance_score"] for r in answer["results"]], sorted(scores, reverse=True),
                               atol=TOLERANCE)  # fmt: skip
    top = live.post("/v1/rerank", {"query": query, "documents": documents, "top_n": 2, "return_documents": True})
    results = top.json()["results"]
    assert [r["index"] for r in results] == [r["index"] for r in answer["results"][:2]]
    assert [r["document"]["text"] for r in results] == [documents[r["index"]] for r in results]


BAD_RERANKS = [
    ({"query": "q", "documents": []}, 400, "documents"),
    ({"query": "q", "documents": ["a", ""]}, 400, "documents[1]"),
    ({"query": "", "documents": ["a"]}, 400, "query"),
    ({"query": "word " * 100, "documents": ["a"]}, 400, "query"),
    ({"query": "q", "documents": ["a"] * 9}, 400, "documents"),
    ({"query": "q", "documents": ["a"], "top_n": 0}, 400, "top_n"),
    ({"query": "q", "documents": ["a"], "model": "tiny"}, 400, "model"),
    ({"query": "q", "documents": ["a"], "model": "other"}, 404, "model"),
    ({"documents": ["a"]}, 400, "query"),
]


@pytest.mark.parametrize(("body", "status", "param"), BAD_RERANKS, ids=[case[2] for case in BAD_RERANKS])
def test_bad_rerank_requests_name_the_field(live: Live, body: object, status: int, param: str) -> None:
    answer = live.post("/v1/rerank", body)
    assert answer.status_code == status, answer.text
    assert answer.json()["error"]["param"] == param


def test_a_normalizing_model_without_a_reranker() -> None:
    model, tokenizer = tiny_backbone("llama")
    normalizing = decemb.from_backbone(model, tokenizer, "mean", normalize=True)
    with Live(build_app(ServedEmbedder(normalizing, "tiny")), None, None) as server:
        answer = server.post("/v1/rerank", {"query": "q", "documents": ["a"]})
        models = server.http.get(server.url + "/v1/models").json()  # no key configured: open
        embedded = server.post("/v1/embeddings", {"input": CORPUS[:3], "model": "tiny"}).json()
    assert answer.status_code == 404 and "--reranker" in answer.json()["error"]["message"]
    assert [card["id"] for card in models["data"]] == ["tiny"]
    got = np.array([item["embedding"] for item in embedded["data"]])
    np.testing.assert_allclose(got, normalizing.encode(CORPUS[:3]), atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)


def test_the_api_key_is_enforced(live: Live) -> None:
    body = {"input": "x", "model": "tiny"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        answer = live.http.post(live.url + "/v1/embeddings", json=body, headers=headers)
        assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=live.url + "/v1", api_key="wrong", max_retries=0).embeddings.create(**body)
    assert live.http.get(live.url + "/health").json()["status"] == "ok"  # probes need no key
    listed = live.http.get(live.url + "/v1/models", headers=AUTH).json()["data"]
    assert {(card["id"], card["kind"]) for card in listed} == {("tiny", "embedding"), ("tiny-rerank", "rerank")}
