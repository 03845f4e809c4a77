"""Request and response bodies of ``decemb serve``: OpenAI's embeddings API and the Cohere/Jina rerank API.

Requests refuse unknown fields (``extra="forbid"``): a misspelt ``encoding_fromat`` is an error naming it rather
than silently ignored. Responses are documented here (the OpenAPI page at ``/docs``); the app writes them
straight to JSON without re-validating millions of floats.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr


def _one_or_many(value: Any) -> Any:
    """OpenAI's ``input`` is a string or a list of strings: a string is a list of one."""
    return [value] if isinstance(value, str) else value


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmbeddingRequest(_Request):
    """``POST /v1/embeddings``. ``input_type`` (not in OpenAI's API, pass it with the client's ``extra_body``)
    selects the rendering side: ``query`` (default, also the symmetric side) or ``document``."""

    input: Annotated[list[StrictStr], BeforeValidator(_one_or_many)] = Field(
        min_length=1, description="a string or a list of strings (token id arrays are not accepted)"
    )
    model: StrictStr
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: StrictInt | None = Field(default=None, description="only the model's own dimension is accepted")
    user: StrictStr | None = None
    input_type: Literal["query", "document"] = "query"


class RerankRequest(_Request):
    """``POST /v1/rerank`` (Cohere / Jina shape). ``model`` may be left out: the server has one reranker."""

    query: StrictStr
    documents: list[StrictStr] = Field(min_length=1)
    model: StrictStr | None = None
    top_n: StrictInt | None = Field(default=None, ge=1)
    return_documents: StrictBool = False


class EmbeddingItem(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="floats, or base64 of little-endian float32 bytes")


class Usage(BaseModel):
    prompt_tokens: int = Field(description="tokens the strategy feeds the model: template and special tokens too")
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: Usage


class RerankDocument(BaseModel):
    text: str


class RerankResult(BaseModel):
    index: int
    relevance_score: float = Field(description='the reranker\'s log-odds, logit("yes") - logit("no")')
    document: RerankDocument | None = None


class RerankResponse(BaseModel):
    model: str
    results: list[RerankResult] = Field(description="best first")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "decemb"
    kind: Literal["embedding", "rerank"]


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """Every 4xx/5xx answer: OpenAI's error shape, ``param`` naming the offending field (``input[3]``)."""

    error: ErrorBody
