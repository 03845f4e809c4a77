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

from pydantic import Field, PositiveInt, ValidationInfo, field_validator

from decemb.config_base import StrictModel
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
HEADER_KEY = "Whether a csv/tsv file starts with a header row (default: csv yes, tsv no); not for jsonl."
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


class _TaskBase(StrictModel):
    name: str = Field(min_length=1, description="The task's name in results and reports (unique in a config).")
    limit: PositiveInt | None = Field(
        default=None, description="Keep a seeded sample of this many items (pairs, queries, rows); default all."
    )
    seed: int = Field(default=0, description="The seed of every sample the task draws.")


class STSColumns(StrictModel):
    """Where an STS file's pair and score are: column names (a header, or jsonl keys) or 0-based indices."""

    text1: ColumnRef = Field(description="The first sentence's column.")
    text2: ColumnRef = Field(description="The second sentence's column.")
    score: ColumnRef = Field(description="The gold similarity score's column (a number).")


class STSTaskConfig(_TaskBase):
    """Sentence pairs with a gold similarity score.

    ``format: stsb`` is the STS Benchmark preset (tab-separated, no header, score in column 4,
    sentences in columns 5 and 6, extra trailing columns ignored); it takes no ``columns``/``header``.
    ``limit`` keeps a seeded random sample of pairs. ``score_range`` (``[low, high]``; STS-B: ``[0, 5]``)
    makes gold scores outside it a data error.
    """

    type: Literal["sts"] = "sts"
    path: str = Field(min_length=1, description="The pairs file, relative to the data root.")
    format: Literal["stsb", "csv", "tsv", "jsonl"] = Field(
        description="``stsb``: the STS Benchmark layout (tab-separated, no header, score in column 4, sentences in "
        "5 and 6, extra trailing columns ignored; no ``columns``/``header``); else a table with ``columns``."
    )
    header: bool | None = Field(
        default=None,
        description=HEADER_KEY,
    )
    columns: STSColumns | None = Field(
        default=None, validate_default=True, description="The pair and score columns (required unless ``stsb``)."
    )
    score_range: tuple[float, float] | None = Field(
        default=None, description="``[low, high]``: a gold score outside it is a data error (``stsb``: ``[0, 5]``)."
    )

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


class RetrievalFields(StrictModel):
    """Field names of the jsonl corpus/queries files (BEIR names by default)."""

    doc_id: str = Field(default="_id", description="A corpus record's id key.")
    doc_title: str | None = Field(default="title", description="A corpus record's title key (``null``: none).")
    doc_text: str = Field(default="text", description="A corpus record's text key.")
    query_id: str = Field(default="_id", description="A query record's id key.")
    query_text: str = Field(default="text", description="A query record's text key.")


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

    type: Literal["retrieval"] = "retrieval"
    retriever: Literal["dense", "bm25", "hybrid"] = Field(
        default="dense",
        description="``dense``: cosine of the model's vectors; ``bm25``: lexical, no model; ``hybrid``: both, fused.",
    )
    bm25: Bm25Settings | None = Field(default=None, description="BM25's settings (``bm25`` and ``hybrid`` only).")
    fusion: FusionSettings | None = Field(default=None, description="How ``hybrid`` fuses the two rankings.")
    path: str = Field(min_length=1, description="The task's folder, relative to the data root.")
    format: Literal["beir", "jsonl"] = Field(
        default="beir",
        description="``beir``: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/{split}.tsv`` under ``path``; "
        "``jsonl``: the same reader with the file names, ``qrels_header`` and ``fields`` configurable.",
    )
    split: str = Field(default="test", min_length=1, description="The qrels split (``{split}`` in ``qrels``).")
    corpus: str | None = Field(default=None, description="``jsonl``: the corpus file (default ``corpus.jsonl``).")
    queries: str | None = Field(default=None, description="``jsonl``: the queries file (default ``queries.jsonl``).")
    qrels: str | None = Field(
        default=None, description="``jsonl``: the qrels file (default ``qrels/{split}.tsv``; ``{split}`` replaced)."
    )
    qrels_header: bool | None = Field(default=None, description="``jsonl``: whether the qrels file has a header row.")
    fields: RetrievalFields | None = Field(default=None, description="``jsonl``: the records' field names.")
    corpus_limit: PositiveInt | None = Field(
        default=None,
        description="Keep every document relevant to a kept query plus a seeded sample of the others, this many "
        "in all (at least the relevant ones); default the whole corpus.",
    )
    use_title: bool = Field(default=True, description="A document's text is ``title + ' ' + text`` (BEIR's way).")

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
    format: TableFormat = Field(description="The files' format: csv, tsv or jsonl.")
    header: bool | None = Field(
        default=None,
        description=HEADER_KEY,
    )
    text: ColumnRef | Annotated[list[ColumnRef], Field(min_length=1)] = Field(
        description="The text column, or several joined with ``text_separator`` (names, or 0-based indices)."
    )
    label: ColumnRef = Field(description="The label column.")
    text_separator: str = Field(default=" ", description="What joins several ``text`` columns (blank parts left out).")

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

    type: Literal["classification"] = "classification"
    path: str | None = Field(
        default=None, description="A folder holding ``train.<format>`` and ``test.<format>``, or one file to split."
    )
    train: str | None = Field(
        default=None,
        validate_default=True,
        description="The train file (relative to ``path`` when set, else to the data root).",
    )
    test: str | None = Field(default=None, description="The test file (with ``train``); without it train is split.")
    test_fraction: float = Field(
        default=0.2, gt=0, lt=1, description="A single file's share of each class that goes to test (stratified)."
    )
    max_iter: PositiveInt = Field(default=1000, description="LogisticRegression's ``max_iter``.")

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

    type: Literal["clustering"] = "clustering"
    path: str = Field(min_length=1, description="The labelled file, relative to the data root.")
    n_clusters: int | None = Field(
        default=None, ge=2, description="k of k-means; default the number of distinct labels among the kept rows."
    )
    n_init: PositiveInt = Field(default=10, description="k-means' ``n_init``.")
