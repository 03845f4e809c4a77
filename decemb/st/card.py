"""What a saved decemb folder tells its reader: the ``requirements`` sentence-transformers checks before
loading, and a model card (sentence-transformers' own, plus a decemb section between markers).

sentence-transformers 6 reads ``requirements`` from ``config_sentence_transformers.json`` before it imports
any module (``check_version_requirements``), so a user without decemb gets "requires decemb ..., but it
is not installed" and the ``pip install`` line instead of a bare ``ModuleNotFoundError``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

CONFIG_FILE = "config_sentence_transformers.json"
BEGIN, END = "<!-- decemb:begin -->", "<!-- decemb:end -->"
EXAMPLE = "A man is playing a guitar."
# Built-in aliases → the Hub model their GGUF file was converted from.
ALIAS_BASE_MODELS = {"smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct", "gemma3-270m": "google/gemma-3-270m"}
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


def requirements() -> dict[str, Any]:
    """The ``requirements`` entry of a folder that lists decemb's module classes."""
    from decemb import __version__

    reason = (
        "This folder's modules are decemb classes (decemb.st.*): install decemb, then load it with "
        "decemb.load(path) or SentenceTransformer(path, trust_remote_code=True)."
    )
    return {"decemb": {"specifier": f">={__version__}", "reason": reason}}


def add_requirements(folder: str | os.PathLike[str]) -> None:
    """Add decemb's ``requirements`` to ``folder``'s ``config_sentence_transformers.json`` (if it exists)."""
    path = Path(os.fspath(folder)) / CONFIG_FILE
    if not path.is_file():
        return
    config = json.loads(path.read_text(encoding="utf-8"))
    wanted = {**(config.get("requirements") or {}), **requirements()}
    if config.get("requirements") != wanted:
        config["requirements"] = wanted
        path.write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")


def base_model_of(source: str | os.PathLike[str] | None, model: Any = None) -> str | None:
    """A name for the base model: the Hub id of an alias or Hub source, else the file or folder name, else
    the backbone's ``_name_or_path`` when that is a Hub id."""
    if source is not None:
        text = os.fspath(source)
        if text in ALIAS_BASE_MODELS:
            return ALIAS_BASE_MODELS[text]
        if HUB_ID.fullmatch(text) and not Path(text).expanduser().exists():
            return text
        return Path(text).expanduser().name or text
    name = str(getattr(getattr(model, "config", None), "_name_or_path", "") or "")
    return name if HUB_ID.fullmatch(name) and not Path(name).exists() else None


def prepare_card_data(model: SentenceTransformer, base_model: str | None, tags: list[str]) -> None:
    """Fill sentence-transformers' card data from what decemb knows, without any Hub lookup."""
    data = model.model_card_data
    data.local_files_only = True  # the base model is known here; no network probing at save time
    if base_model and HUB_ID.fullmatch(base_model) and not data.base_model:
        data.base_model = base_model
    if not data.model_name:
        data.model_name = f"decemb {tags[1]} embedder on {base_model or 'a decoder-only model'}"
    data.add_tags(tags)


def _settings_line(embedder: Any) -> str:
    from decemb.st.embedder import SAVED_SETTINGS

    return ", ".join(f"`{key}={json.dumps(getattr(embedder.settings, key))}`" for key in SAVED_SETTINGS)


def _renderings(model: SentenceTransformer) -> list[str]:
    from decemb.st.explain import explain

    query, document = explain(model, EXAMPLE, "query"), explain(model, EXAMPLE, "document")
    lines = ["What the model reads (`decemb.explain`; the pooled tokens are between ⟦ ⟧):", ""]
    sides = [("queries and plain `encode`", query)]
    sides += [("documents (`encode_document`)", document)] if document != query else []
    for label, shown in sides:
        lines += [f"{label}:", "", "```text", shown, "```", ""]
    return lines


def _results_table(results: dict[str, Any]) -> list[str]:
    """``{stage: {task: {metric: value}}}`` (``decemb train``'s before/after scores) as a Markdown table."""
    rows = [
        (stage, task, metric, value)
        for stage, tasks in results.items()
        if isinstance(tasks, dict)
        for task, metrics in tasks.items()
        if isinstance(metrics, dict)
        for metric, value in metrics.items()
    ]
    if not rows:
        return []
    lines = ["### Evaluation (decemb train)", "", "| stage | task | metric | value |", "|---|---|---|---|"]
    lines += [f"| {stage} | {task} | {metric} | {value} |" for stage, task, metric, value in rows]
    return [*lines, ""]


def describe_for_card(model: SentenceTransformer, where: str | os.PathLike[str], *, plain_export: bool = False) -> str:
    """The decemb section of the card of ``model`` saved at ``where`` (``plain_export``: the plain-ST copy)."""
    embedder = model[0]
    spec = embedder.strategy_spec
    location = card_location(model, where)
    normalized = any(type(module).__name__ == "Normalize" for module in model)
    lines = [
        BEGIN,
        "## decemb: how this model embeds",
        "",
        f"- **Base model:** {embedder.base_model or 'unknown'}",
        f"- **Strategy:** `{spec.name}`: {spec.summary} ({spec.reference})",
        f"- **Strategy options:** `{json.dumps(spec.options(), ensure_ascii=False)}`",
        f"- **Encode settings:** {_settings_line(embedder)}",
        f"- **Attention:** {spec.attention.name}",
        f"- **Normalized output:** {'yes' if normalized else 'no'}",
        "",
        *_renderings(model),
        *_results_table(getattr(model, "card_results", None) or {}),
        "### Load",
        "",
    ]
    if plain_export:
        lines += [
            "Exported by `decemb.export_plain`: sentence-transformers' own modules only, the same vectors as "
            f"decemb's `{spec.name}` strategy. No decemb and no `trust_remote_code` needed:",
            "",
            "```python",
            "from sentence_transformers import SentenceTransformer",
            f"model = SentenceTransformer({json.dumps(location)})",
            "```",
        ]
    else:
        lines += [
            "This folder lists decemb's module classes, so loading it needs decemb installed "
            "(`pip install decemb`); without it sentence-transformers stops with the `requirements` "
            "message of `config_sentence_transformers.json`.",
            "",
            "```python",
            "import decemb",
            f"model = decemb.load({json.dumps(location)})",
            "# or with sentence-transformers alone (decemb installed; non-built-in modules need the flag):",
            "from sentence_transformers import SentenceTransformer",
            f"model = SentenceTransformer({json.dumps(location)}, trust_remote_code=True)",
            "```",
        ]
    return "\n".join([*lines, END])


def card_location(model: SentenceTransformer, where: str | os.PathLike[str]) -> str:
    """What the card's load lines name: the Hub id given to ``save(model_name=...)``, else the folder."""
    return model.model_card_data.model_id or os.fspath(where)


def rewrite_card(text: str, section: str, location: str, *, plain_export: bool, trained: bool) -> str:
    """sentence-transformers' card with the decemb section (replacing an earlier one), decemb's install and
    load lines in the generic usage snippet, and no "finetuned from" for a model that was not trained."""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    elif "\n## Model Details" in text:
        text = text.replace("\n## Model Details", f"\n{section}\n\n## Model Details", 1)
    else:
        text = f"{text.rstrip()}\n\n{section}\n"
    if not plain_export:
        text = text.replace(
            "First install the Sentence Transformers library:\n\n```bash\npip install -U sentence-transformers\n```",
            "First install sentence-transformers and decemb (this folder's modules are decemb classes):\n\n"
            "```bash\npip install -U sentence-transformers decemb\n```",
        )
        text = re.sub(r'(model = SentenceTransformer\("[^"\n]*")\)', r"\1, trust_remote_code=True)", text)
    placeholder = 'SentenceTransformer("sentence_transformers_model_id"'  # ST's snippet without a model_id
    text = text.replace(placeholder, f"SentenceTransformer({json.dumps(location)}")
    if not trained:
        text = text.replace(") model finetuned from [", ") model built on [", 1)
    return text


def save_with_card(model: SentenceTransformer, folder: str | os.PathLike[str], section: str, **save: Any) -> None:
    """``model.save(folder)`` then the decemb section and lines written into the card sentence-transformers made."""
    model.save(os.fspath(folder), **save)
    patch_card(model, folder, section, plain_export=True)


def patch_card(model: SentenceTransformer, folder: str | os.PathLike[str], section: str, *, plain_export: bool) -> None:
    path = Path(os.fspath(folder)) / "README.md"
    if not path.is_file():
        return
    trained = "generated_from_trainer" in model.model_card_data.tags or bool(getattr(model, "card_results", None))
    text = path.read_text(encoding="utf-8")
    location = card_location(model, folder)
    text = rewrite_card(text, section, location, plain_export=plain_export, trained=trained)
    path.write_text(text, encoding="utf-8")
