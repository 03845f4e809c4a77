"""Task instructions of E5-mistral (Wang et al. 2024, Table 13), keyed by task name and by task type."""

from __future__ import annotations

from decemb.registry import Registry

E5_INSTRUCTIONS: Registry[str] = Registry("task instruction")

_TABLE = {
    # by task type (the runner's fallbacks)
    "sts": "Retrieve semantically similar text.",
    "retrieval": "Given a web search query, retrieve relevant passages that answer the query",
    "classification": "Classify the intent of the given text",
    "clustering": "Identify the topic or theme of the given texts",
    # retrieval
    "msmarco": "Given a web search query, retrieve relevant passages that answer the query",
    "nq": "Given a question, retrieve Wikipedia passages that answer the question",
    "arguana": "Given a claim, find documents that refute the claim",
    "climate-fever": "Given a claim about climate change, retrieve documents that support or refute the claim",
    "dbpedia": "Given a query, retrieve relevant entity descriptions from DBPedia",
    "fever": "Given a claim, retrieve documents that support or refute the claim",
    "fiqa": "Given a financial question, retrieve user replies that best answer the question",
    "hotpotqa": "Given a multi-hop question, retrieve documents that can help answer the question",
    "nfcorpus": "Given a question, retrieve relevant documents that best answer the question",
    "quora": "Given a question, retrieve questions that are semantically equivalent to the given question",
    "scidocs": "Given a scientific paper title, retrieve paper abstracts that are cited by the given paper",
    "scifact": "Given a scientific claim, retrieve documents that support or refute the claim",
    "touche2020": "Given a question, retrieve detailed and persuasive arguments that answer the question",
    "trec-covid": "Given a query on COVID-19, retrieve documents that answer the query",
    # classification
    "amazon-polarity": "Classify Amazon reviews into positive or negative sentiment",
    "banking77": "Given a online banking query, find the corresponding intents",
    "emotion": (
        "Classify the emotion expressed in the given Twitter message into one of the six emotions: anger, "
        "fear, joy, love, sadness, and surprise"
    ),
    "imdb": "Classify the sentiment expressed in the given movie review text from the IMDB dataset",
    "toxic-conversations": "Classify the given comments as either toxic or not toxic",
    "tweet-sentiment": "Classify the sentiment of a given tweet as either positive, negative, or neutral",
    # clustering
    "arxiv-clustering-p2p": (
        "Identify the main and secondary category of Arxiv papers based on the titles and abstracts"
    ),
    "reddit-clustering": "Identify the topic or theme of Reddit posts based on the titles",
    "stackexchange-clustering": "Identify the topic or theme of StackExchange posts based on the titles",
    "twentynewsgroups": "Identify the topic or theme of the given news articles",
    "agnews": "Identify the topic or theme of the given news articles",
    # reranking / STS
    "askubuntu": "Retrieve duplicate questions from AskUbuntu forum",
    "stackoverflow-dupquestions": "Retrieve duplicate questions from StackOverflow forum",
    "summeval": "Given a news summary, retrieve other semantically similar summaries",
    "stsb": "Retrieve semantically similar text.",
}
for _name, _instruction in _TABLE.items():
    E5_INSTRUCTIONS.add(_name, _instruction)


def instruction_for(task: str) -> str:
    """The E5 instruction for a task name or type (case-insensitive); unknown names get suggestions."""
    return E5_INSTRUCTIONS.get(task.lower())
