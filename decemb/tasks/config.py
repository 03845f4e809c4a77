"""Pydantic configs for evaluation tasks, one class per task type (``type`` tells them apart).

The union of them (``TaskConfig``) and ``TASK_TYPES`` derive from the task-type registry,
:mod:`decemb.tasks.types`.

Every model forbids unknown keys, so a typo is a ``ValidationError`` whose ``loc`` names the key.
Paths are relative to the data root (``load_task``'s ``data_root``) unless absolute.

Column references (``ColumnRef``) are a column name (csv/tsv with a header, or a jsonl key) or a
0-based column index (csv/tsv). Header defaults: ``csv`` files have a header row unless
``header: false``; ``tsv`` files have none unless ``header: true``; ``jsonl`` takes no ``header``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationInfo, field_validator

from decemb.search.fusion import FusionSettings
from decemb.search.lexical import Bm25Settings

__all__ = [
    "ClassificationTaskConfig",
    "ClusteringTaskConfig",
    "ColumnRef",
    "RetrievalFields",
    "RetrievalTaskConfig",
    "STSColumns",
    "STSTaskConfig",
]

ColumnRef = str | Annotated[int, Field(ge=0)]
TableFormat = Literal["csv", "tsv", "jsonl"]


def default_header(fmt: str, header: bool | None) -> bool:
    """Whether a csv/tsv file starts with a header row: ``csv`` yes, ``tsv`` no, unless set."""
    if header is not None:
        return header
    return fmt == "csv"


def _check_header(value: bool | None, info: ValidationInfo) -> bool | None:
    fmt = info.data.get("format")
    if value is not None and fmt not in (None, "csv", "tsv"):
        raise ValueError(f"header applies only to csv/tsv files, not to format {fmt!r}")
    return value


def _check_refs(value: Any, info: ValidationInfo) -> Any:
    """Column names need a header (or jsonl); indices need csv/tsv."""
    if value is None:
        return value
    refs = value if isinstance(value, list) else [value]
    if isinstance(value, STSColumns):
        refs = [value.text1, value.text2, value.score]
    fmt = info.data.get("format")
    if fmt == "jsonl" and any(isinstance(ref, int) for ref in refs):
        raise ValueError("jsonl records are addressed by key: use field names, not column indices")
    if fmt in ("csv", "tsv") and not default_header(fmt, info.data.get("header")):
        names = [ref for ref in refs if isinstance(ref, str)]
        if names:
            raise ValueError(f"column names {names} need header: true; without a header use 0-based indices")
    return value


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _TaskBase(_Config):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    limit: PositiveInt | None = None
    seed: int = 0


class STSColumns(_Config):
    model_config = ConfigDict(extra="forbid")

    text1: ColumnRef
    text2: ColumnRef
    score: ColumnRef


class STSTaskConfig(_TaskBase):
    """Sentence pairs with a gold similarity score.

    ``format: stsb`` is the STS Benchmark preset (tab-separated, no header, score in column 4,
    sentences in columns 5 and 6, extra trailing columns ignored); it takes no ``columns``/``header``.
    ``limit`` keeps a seeded random sample of pairs. ``score_range`` (``[low, high]``; STS-B: ``[0, 5]``)
    makes gold scores outside it a data error.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["sts"] = "sts"
    path: str = Field(min_length=1)
    format: Literal["stsb", "csv", "tsv", "jsonl"]
    header: bool | None = None
    columns: STSColumns | None = Field(default=None, validate_default=True)
    score_range: tuple[float, float] | None = None

    _header = field_validator("header")(_check_header)

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: STSColumns | None, info: ValidationInfo) -> STSColumns | None:
        fmt = info.data.get("format")
        if fmt == "stsb" and value is not None:
            raise ValueError("format 'stsb' fixes the columns; remove columns or use format csv/tsv/jsonl")
        if fmt in ("csv", "tsv", "jsonl") and value is None:
            raise ValueError(f"columns (text1, text2, score) are required for format {fmt!r}")
        return _check_refs(value, info)

    @field_validator("score_range")
    @classmethod
    def _range(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not value[0] < value[1]:
            raise ValueError(f"score_range must be [low, high] with low < high, got {list(value)}")
        return value


class RetrievalFields(_Config):
    """Field names of the jsonl corpus/queries files (BEIR names by default)."""

    model_config = ConfigDict(extra="forbid")

    doc_id: str = "_id"
    doc_title: str | None = "title"
    doc_text: str = "text"
    query_id: str = "_id"
    query_text: str = "text"


class RetrievalTaskConfig(_TaskBase):
    """Queries ranked against a corpus by cosine similarity; relevance judgements from qrels.

    ``format: beir`` reads the BEIR layout under the ``path`` folder: ``corpus.jsonl`` (``_id``, ``title``,
    ``text``), ``queries.jsonl`` (``_id``, ``text``) and ``qrels/{split}.tsv`` (query-id, corpus-id, score,
    header row). ``format: jsonl`` is the same reader with overridable file names (``corpus``,
    ``queries``, ``qrels``; relative to ``path`` unless absolute; ``{split}`` in ``qrels`` is replaced),
    ``qrels_header`` and ``fields``. A qrels score > 0 marks a relevant document (binary relevance).

    ``limit`` samples that many queries (seeded) among those with a relevant document. The corpus is
    kept whole unless ``corpus_limit`` is set: then it holds every document relevant to a kept query
    plus a seeded sample of the other documents, ``max(corpus_limit, #relevant)`` documents in all.
    ``use_title`` makes a document's text ``title + " " + text`` (the BEIR convention).

    ``retriever``: ``dense`` (cosine of the model's vectors; the default), ``bm25`` (lexical, no model:
    :mod:`decemb.search.lexical`, settings in ``bm25``) or ``hybrid`` (both, fused by ``fusion``:
    :mod:`decemb.search.fusion`; ``method`` rrf or weighted, ``k``, ``weights`` [bm25, dense], ``depth``).
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["retrieval"] = "retrieval"
    retriever: Literal["dense", "bm25", "hybrid"] = "dense"
    bm25: Bm25Settings | None = None
    fusion: FusionSettings | None = None
    path: str = Field(min_length=1)
    format: Literal["beir", "jsonl"] = "beir"
    split: str = Field(default="test", min_length=1)
    corpus: str | None = None
    queries: str | None = None
    qrels: str | None = None
    qrels_header: bool | None = None
    fields: RetrievalFields | None = None
    corpus_limit: PositiveInt | None = None
    use_title: bool = True

    @field_validator("corpus", "queries", "qrels", "qrels_header", "fields")
    @classmethod
    def _jsonl_only(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and info.data.get("format") == "beir":
            raise ValueError(f"{info.field_name} applies only to format 'jsonl'; 'beir' uses the fixed layout")
        return value

    @field_validator("bm25", "fusion")
    @classmethod
    def _retriever_options(cls, value: Any, info: ValidationInfo) -> Any:
        retriever = info.data.get("retriever", "dense")
        uses = {"bm25": ("bm25", "hybrid"), "fusion": ("hybrid",)}[str(info.field_name)]
        if value is not None and retriever not in uses:
            raise ValueError(f"{info.field_name} applies only to retriever {' or '.join(uses)} (got {retriever!r})")
        return value

    def corpus_file(self) -> str:
        return self.corpus or "corpus.jsonl"

    def queries_file(self) -> str:
        return self.queries or "queries.jsonl"

    def qrels_file(self) -> str:
        return (self.qrels or "qrels/{split}.tsv").replace("{split}", self.split)

    def resolved_fields(self) -> RetrievalFields:
        return self.fields or RetrievalFields()


class _LabelledTable(_TaskBase):
    format: TableFormat
    header: bool | None = None
    text: ColumnRef | Annotated[list[ColumnRef], Field(min_length=1)]
    label: ColumnRef
    text_separator: str = " "

    _header = field_validator("header")(_check_header)
    _refs = field_validator("text", "label")(_check_refs)


class ClassificationTaskConfig(_LabelledTable):
    """Logistic regression fitted on train embeddings, scored on test embeddings.

    Data: ``path`` is a folder holding ``train.<format>`` and ``test.<format>``, or a single file; or
    give ``train`` and ``test`` files (relative to ``path`` when it is set, else to the data root). A
    single file (``path`` to a file, or ``train`` without ``test``) is split deterministically and
    stratified by label, ``test_fraction`` of each class going to test. ``text`` may list several
    columns, joined with ``text_separator``. ``limit`` caps each split with a seeded stratified sample
    (every class present once ``limit`` >= the number of classes).
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["classification"] = "classification"
    path: str | None = None
    train: str | None = Field(default=None, validate_default=True)
    test: str | None = None
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    max_iter: PositiveInt = 1000

    @field_validator("train")
    @classmethod
    def _train(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and info.data.get("path") is None:
            raise ValueError("set path (a folder with train/test files, or one file) or train")
        return value

    @field_validator("test")
    @classmethod
    def _test(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and info.data.get("train") is None:
            raise ValueError("test needs train (or use path for a folder with train/test files)")
        return value


class ClusteringTaskConfig(_LabelledTable):
    """k-means on the embeddings of one labelled file, scored by V-measure against the labels.

    ``n_clusters`` defaults to the number of distinct labels among the kept rows. ``limit`` keeps a
    seeded stratified sample. Example (AG News, title + description):
    ``{type: clustering, name: agnews, path: ag_news/test.csv, format: csv, header: false, text: [1, 2],
    label: 0}``.
    """

    model_config = ConfigDict(extra="forbid")

    type: Literal["clustering"] = "clustering"
    path: str = Field(min_length=1)
    n_clusters: int | None = Field(default=None, ge=2)
    n_init: PositiveInt = 10
