"""decemb models in mteb: a proper ``ModelMeta`` and the E5 instruction for each mteb task.

    import mteb, decemb
    from decemb.mteb import as_mteb_model
    model = as_mteb_model(decemb.load("smollm2-135m", "instruct"))
    results = mteb.evaluate(model, mteb.get_tasks(tasks=["SciFact", "STSBenchmark"]))

* ``ModelMeta``: name ``decemb/<base model>__<strategy(non-default options)>``, revision = the first 12 hex
  digits of a sha256 over the backbone's fingerprint (config, dtype, every weight), the strategy's options
  and the encode settings; embedding dimension, max tokens (``max_length``), parameter count, similarity.
* Instructions (Wang et al. 2024, E5-mistral, Table 13; :mod:`decemb.instructions`) go on queries only
  (documents never get one) and on symmetric tasks (STS, classification, clustering: every text is a
  query). An mteb task maps to the table by its name (``SciFact`` → ``scifact``), else to mteb's own
  task prompt, else to the table's entry for its type (``Retrieval`` → ``retrieval``). By default the
  strategy decides whether it wants task instructions (``instruct`` without an explicit ``instruction`` or
  ``task`` does; ``echo`` and ``llm2vec`` keep their own); ``instructions=True`` gives them to every strategy
  that takes one (echo with an ``%%instruction%%`` template, llm2vec), ``False`` to none.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

try:
    from mteb.models.abs_encoder import AbsEncoder
    from mteb.models.model_meta import ModelMeta
    from mteb.types import PromptType
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError("decemb.mteb needs mteb: pip install 'decemb[mteb]' (or pip install mteb)") from error

from decemb.instructions import instruction_for

if TYPE_CHECKING:
    from mteb.abstasks.task_metadata import TaskMetadata
    from sentence_transformers import SentenceTransformer

__all__ = [
    "MTEB_TASK_KEYS",
    "DecembMtebModel",
    "as_mteb_model",
    "e5_instruction",
    "load_task_data",
    "model_meta",
    "side_of",
    "stand_in_meta",
    "with_local_data",
]

# mteb task names → keys of decemb's E5 instruction table (mteb task types map by lower-casing).
MTEB_TASK_KEYS = {
    "MSMARCO": "msmarco",
    "NQ": "nq",
    "ArguAna": "arguana",
    "ClimateFEVER": "climate-fever",
    "DBPedia": "dbpedia",
    "FEVER": "fever",
    "FiQA2018": "fiqa",
    "HotpotQA": "hotpotqa",
    "NFCorpus": "nfcorpus",
    "QuoraRetrieval": "quora",
    "SCIDOCS": "scidocs",
    "SciFact": "scifact",
    "Touche2020": "touche2020",
    "TRECCOVID": "trec-covid",
    "AmazonPolarityClassification": "amazon-polarity",
    "Banking77Classification": "banking77",
    "EmotionClassification": "emotion",
    "ImdbClassification": "imdb",
    "ToxicConversationsClassification": "toxic-conversations",
    "TweetSentimentExtractionClassification": "tweet-sentiment",
    "ArxivClusteringP2P": "arxiv-clustering-p2p",
    "RedditClustering": "reddit-clustering",
    "StackExchangeClustering": "stackexchange-clustering",
    "TwentyNewsgroupsClustering": "twentynewsgroups",
    "AskUbuntuDupQuestions": "askubuntu",
    "StackOverflowDupQuestions": "stackoverflow-dupquestions",
    "SummEval": "summeval",
    "STSBenchmark": "stsb",
}


def _table(key: str | None) -> str | None:
    if not key:
        return None
    try:
        return instruction_for(key)
    except KeyError:
        return None


def e5_instruction(task: TaskMetadata, prompt_type: PromptType | None = None) -> str | None:
    """The E5 instruction for an mteb task and side (``None`` for documents, and where nothing fits)."""
    if prompt_type == PromptType.document:
        return None
    by_name = _table(MTEB_TASK_KEYS.get(task.name, task.name))
    if by_name is not None:
        return by_name
    prompt = task.prompt
    if isinstance(prompt, dict):
        prompt = prompt.get((prompt_type or PromptType.query).value)
    if isinstance(prompt, str) and prompt.strip():
        return prompt.strip()
    return _table(str(task.type))


def side_of(prompt_type: PromptType | None) -> str:
    """The decemb side that renders an mteb encode call: ``document`` for documents; queries, and both sides
    of symmetric tasks (no prompt type), are ``query``."""
    return "document" if prompt_type == PromptType.document else "query"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=,()+-]+", "_", text).strip("_")[:80] or "model"


def model_fingerprint(model: SentenceTransformer) -> str:
    """sha256 over the backbone's fingerprint, the strategy and its options, and the encode settings."""
    from decemb.engine import fingerprint

    embedder = model[0]
    digest = hashlib.sha256(fingerprint(embedder.auto_model).encode())
    digest.update(json.dumps([embedder.strategy, embedder.strategy_options], sort_keys=True, default=str).encode())
    settings = embedder.settings.model_dump(exclude={"batch_size", "max_batch_tokens", "deterministic"})
    digest.update(json.dumps(settings, sort_keys=True).encode())
    digest.update(json.dumps([type(module).__name__ for module in model]).encode())
    return digest.hexdigest()


def model_meta(model: SentenceTransformer, name: str | None = None, revision: str | None = None) -> ModelMeta:
    """An mteb ``ModelMeta`` for a decemb model (see the module doc for the name and revision)."""
    from decemb.st.card import HUB_ID
    from decemb.strategy_entry import default_label

    embedder = model[0]
    base = embedder.base_model or "decoder"
    hub = base if HUB_ID.fullmatch(base) else None
    label = default_label(embedder.strategy_spec)
    parameters = sum(parameter.numel() for parameter in embedder.auto_model.parameters())
    memory = sum(p.numel() * p.element_size() for p in embedder.auto_model.parameters()) / 2**20
    return _meta(
        name=name or f"decemb/{_slug(base.split('/')[-1])}__{_slug(label)}",
        revision=revision or model_fingerprint(model)[:12],
        n_parameters=int(parameters),
        memory_usage_mb=round(memory, 1),
        max_tokens=embedder.settings.max_length,
        embed_dim=int(model.get_embedding_dimension()),
        reference=f"https://huggingface.co/{hub}" if hub else None,
        similarity_fn_name=model.similarity_fn_name or "cosine",
        use_instructions=bool(embedder.strategy_spec.takes_instruction),
        adapted_from=hub,
    )


def stand_in_meta(dim: int) -> ModelMeta:
    """The ``ModelMeta`` of the encoders that run an mteb task inside ``decemb compare``
    (:mod:`decemb.tasks.mteb_replay`): cosine similarity over ``dim``-dimensional vectors."""
    return _meta(name="decemb/compare", revision="replay", embed_dim=dim, similarity_fn_name="cosine")


def _meta(
    *,
    name: str,
    revision: str,
    embed_dim: int,
    similarity_fn_name: str,
    n_parameters: int | None = None,
    memory_usage_mb: float | None = None,
    max_tokens: int | None = None,
    reference: str | None = None,
    use_instructions: bool | None = None,
    adapted_from: str | None = None,
) -> ModelMeta:
    """A text ``ModelMeta`` with what decemb does not know (licence, release, training data) left empty."""
    return ModelMeta(
        loader=None,
        name=name,
        revision=revision,
        release_date=None,
        languages=None,
        n_parameters=n_parameters,
        memory_usage_mb=memory_usage_mb,
        max_tokens=max_tokens,
        embed_dim=embed_dim,
        license=None,
        open_weights=None,
        public_training_code=None,
        public_training_data=None,
        framework=["Sentence Transformers", "PyTorch"],
        reference=reference,
        similarity_fn_name=similarity_fn_name,
        use_instructions=use_instructions,
        training_datasets=None,
        adapted_from=adapted_from,
        modalities=["text"],
        model_type=["dense"],
    )


class DecembMtebModel(AbsEncoder):
    """A decemb SentenceTransformer as an mteb encoder (``mteb.evaluate(model, tasks)``)."""

    def __init__(
        self, model: SentenceTransformer, *, instructions: bool | None = None, meta: ModelMeta | None = None
    ) -> None:
        from decemb.st.embedder import DecembEmbedder

        if not isinstance(model[0], DecembEmbedder):
            raise TypeError("as_mteb_model() needs a decemb model (its first module is a DecembEmbedder)")
        self.model = model
        self.instructions = instructions
        self.mteb_model_meta = meta or model_meta(model)

    @property
    def strategy(self) -> Any:
        return self.model[0].strategy_spec

    def wants_task_instructions(self) -> bool:
        strategy = self.strategy
        if not strategy.takes_instruction or self.instructions is False:
            return False
        return self.instructions is True or strategy.task_instruction("sts", "sts") is not None

    def instruction(self, task: TaskMetadata, prompt_type: PromptType | None) -> str | None:
        """The per-call instruction for ``task`` and side (``None``: the strategy's own setting)."""
        return e5_instruction(task, prompt_type) if self.wants_task_instructions() else None

    def encode(
        self,
        inputs: Iterable[dict[str, Any]],
        *,
        task_metadata: TaskMetadata,
        hf_split: str,
        hf_subset: str,
        prompt_type: PromptType | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        texts = [text for batch in inputs for text in batch["text"]]
        encode = self.model.encode_document if side_of(prompt_type) == "document" else self.model.encode_query
        options = {key: value for key, value in kwargs.items() if key in ("batch_size", "show_progress_bar")}
        vectors = encode(texts, prompt=self.instruction(task_metadata, prompt_type), convert_to_numpy=True, **options)
        return np.asarray(vectors, dtype=np.float32)


def as_mteb_model(
    model: SentenceTransformer, *, instructions: bool | None = None, name: str | None = None
) -> DecembMtebModel:
    """Wrap a decemb model for ``mteb.evaluate`` (``instructions``: see the module doc)."""
    meta = model_meta(model, name=name) if name else None
    return DecembMtebModel(model, instructions=instructions, meta=meta)


def with_local_data(task: Any, folder: str) -> Any:
    """Point ``task`` at a local copy of its dataset (a folder in the layout of the task's Hub dataset, e.g.
    ``huggingface-cli download mteb/scifact --repo-type dataset --local-dir DIR``). The task gets its own
    copy of its metadata: mteb shares one metadata object between every instance of a task class."""
    task.metadata = task.metadata.model_copy(update={"dataset": {**task.metadata.dataset, "path": str(folder)}})
    return task


def load_task_data(task: Any) -> Any:
    """``task.load_data()`` with a one-line error when its data must come from the Hub and cannot.

    A task reads ``task.metadata.dataset`` with ``datasets.load_dataset``: a Hub dataset (cached after its
    first download) or a local folder in the same layout (:func:`with_local_data`).
    """
    try:
        task.load_data()
    except (OSError, ConnectionError, ValueError) as error:
        where = task.metadata.dataset.get("path")
        raise RuntimeError(
            f"mteb task {task.metadata.name!r} cannot load its data {where!r} ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:160]}); offline, it needs the dataset in the Hugging Face cache (run "
            "it once online) or a local folder in the layout of its Hub dataset"
        ) from error
    return task
