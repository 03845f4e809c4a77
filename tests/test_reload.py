"""A saved decemb folder as a new user meets it: the ``requirements`` sentence-transformers checks, the model
card, and the plain export that loads with a bare ``SentenceTransformer(path)`` and gives the same vectors."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import ARCHITECTURES, CORPUS, tiny_backbone
from sentence_transformers import SentenceTransformer
from tokenizers import processors

import decemb
from decemb.api import export_plain
from decemb.st.export import NotExportableError

TEXTS = [*CORPUS, "a text that names <eos> and <bos> as characters", "x"]
TOLERANCE = 2e-6


@pytest.fixture
def saved_backbone(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """The tiny backbone of ``request.param`` saved as a model folder (reloaded as a user would load it)."""
    model, tokenizer = tiny_backbone(request.param)
    folder = tmp_path / f"backbone-{request.param}"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _config(folder: Path) -> dict:
    return json.loads((folder / "config_sentence_transformers.json").read_text())


def test_save_writes_requirements_and_plain_resave_keeps_them(tmp_path):
    model = decemb.from_backbone(*tiny_backbone("mistral"), "echo")
    model.save(str(tmp_path / "saved"))
    requirement = _config(tmp_path / "saved")["requirements"]["decemb"]
    assert requirement["specifier"] == f">={decemb.__version__}"
    assert "install decemb" in requirement["reason"]
    plain = SentenceTransformer(str(tmp_path / "saved"), trust_remote_code=True)  # not a DecembModel
    plain.save(str(tmp_path / "again"))
    assert _config(tmp_path / "again")["requirements"] == _config(tmp_path / "saved")["requirements"]


def test_without_decemb_installed_sentence_transformers_says_install_it(tmp_path, monkeypatch):
    from sentence_transformers.util import environment

    decemb.from_backbone(*tiny_backbone("mistral"), "mean").save(str(tmp_path / "saved"))
    real = environment.get_installed_version
    monkeypatch.setattr(environment, "get_installed_version", lambda name: None if name == "decemb" else real(name))
    with pytest.raises(ImportError) as caught:
        SentenceTransformer(str(tmp_path / "saved"), trust_remote_code=True)
    message = str(caught.value)
    assert "decemb>=" in message and "it is not installed" in message and "pip install -U" in message


def test_without_the_flag_sentence_transformers_asks_for_trust_remote_code(tmp_path):
    decemb.from_backbone(*tiny_backbone("mistral"), "mean").save(str(tmp_path / "saved"))
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        SentenceTransformer(str(tmp_path / "saved"))


def test_model_card_shows_base_model_strategy_template_and_load_lines(tmp_path):
    model = decemb.from_backbone(*tiny_backbone("llama"), "echo", base_model="HuggingFaceTB/SmolLM2-135M-Instruct")
    folder = tmp_path / "saved"
    model.save(str(folder))
    card = (folder / "README.md").read_text()
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in card  # the card's YAML metadata
    assert "**Strategy:** `echo`" in card and '"pooling": "mean"' in card
    assert decemb.explain(model, "A man is playing a guitar.") in card  # the exact rendered template
    assert f'decemb.load("{folder}")' in card and f'SentenceTransformer("{folder}", trust_remote_code=True)' in card
    assert "pip install -U sentence-transformers decemb" in card and "finetuned from" not in card
    assert "sentence_transformers_model_id" not in card
    again = decemb.load(folder)  # reuses the card read from the folder: one decemb section, new location
    again.card_results = {"after": {"stsb": {"spearman": 71.5}}}
    again.save(str(tmp_path / "moved"))
    moved = (tmp_path / "moved" / "README.md").read_text()
    assert moved.count("<!-- decemb:begin -->") == 1 and f'decemb.load("{tmp_path / "moved"}")' in moved
    assert "| after | stsb | spearman | 71.5 |" in moved


@pytest.mark.parametrize("saved_backbone", ARCHITECTURES, indirect=True)
@pytest.mark.parametrize("strategy", ["mean", "last", "sgpt"])
def test_plain_export_loads_without_decemb_modules_and_gives_the_same_vectors(saved_backbone, strategy, tmp_path):
    model = decemb.load(saved_backbone, strategy, max_length=24)  # short: truncation is compared too
    bos = bool(model[0].tokenizer("x")["input_ids"][0] == model[0].tokenizer.bos_token_id)
    if bos and strategy != "last":
        with pytest.raises(NotExportableError, match="before every text"):
            export_plain(model, tmp_path / "plain")
        return
    folder = export_plain(model, tmp_path / "plain")
    types = [entry["type"] for entry in json.loads((folder / "modules.json").read_text())]
    assert all(name.startswith("sentence_transformers.") for name in types)
    assert "requirements" not in _config(folder)
    plain = SentenceTransformer(str(folder))  # no trust_remote_code
    ours, theirs = model.encode(TEXTS, batch_size=4), plain.encode(TEXTS, batch_size=4)
    assert float(np.abs(ours - theirs).max()) <= TOLERANCE
    assert "No decemb and no `trust_remote_code` needed" in (folder / "README.md").read_text()


def test_plain_export_keeps_normalize(tmp_path):
    model = decemb.from_backbone(*tiny_backbone("gpt2"), "mean", normalize=True)
    plain = SentenceTransformer(str(export_plain(model, tmp_path / "plain")))
    assert type(plain[-1]).__name__ == "Normalize"
    assert float(np.abs(model.encode(TEXTS) - plain.encode(TEXTS)).max()) <= TOLERANCE


@pytest.mark.parametrize(
    ("strategy", "options", "match"),
    [
        ("echo", {}, "cannot express"),
        ("llm2vec", {}, "cannot express"),
        ("mean", {"layer": 1}, "not the final layer"),
        ("mean", {"add_special_tokens": False}, "add_special_tokens=False"),
    ],
)
def test_plain_export_refuses_in_one_line(strategy, options, match, tmp_path):
    model = decemb.from_backbone(*tiny_backbone("llama"), strategy, **options)
    with pytest.raises(NotExportableError, match=match) as caught:
        export_plain(model, tmp_path / "plain")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "plain").exists()  # refused before writing anything


def test_plain_export_refuses_a_tokenizer_that_appends_eos(tmp_path):
    model, tokenizer = tiny_backbone("mistral")
    appends = copy.deepcopy(tokenizer)
    appends.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="$A <eos>", special_tokens=[("<eos>", 2)]
    )
    with pytest.raises(NotExportableError, match="appends"):
        export_plain(decemb.from_backbone(model, appends, "last"), tmp_path / "plain")


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["mean", "last", "sgpt"])
def test_smollm2_plain_export_matches(strategy, tmp_path):
    import torch

    torch.set_num_threads(1)
    model = decemb.load("smollm2-135m", strategy, max_length=64)
    plain = SentenceTransformer(str(export_plain(model, tmp_path / "plain")))
    texts = ["A man is playing a guitar.", "The cat sat on the mat while it rained all afternoon.", "Hi"]
    assert float(np.abs(model.encode(texts) - plain.encode(texts)).max()) <= TOLERANCE
