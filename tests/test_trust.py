"""Opening a folder someone else saved never runs code from it: each tampered folder below plants code that
would write a marker file; loading it is one line of error and the marker never appears. With an explicit
``trust_remote_code=True`` the caller decides (the flag reaches transformers)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import build_tokenizer, tiny_backbone, tiny_config
from transformers import AutoModelForCausalLM

import decemb
from decemb.cli import main
from decemb.loading import load_backbone
from decemb.rerank import load_reranker, reranker_from_causal_lm
from decemb.rerank.templates import PairTemplate
from decemb.search import SearchIndex
from decemb.trust import UnsafeModelError, check_saved_folder, installed_module_class

TEMPLATE = PairTemplate(prefix="Query: ", middle="\nText: ", suffix="\nSame?", yes=" man", no=" the", family="test")


def planted(marker: Path, body: str) -> str:
    return f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n{body}"


def one_line(error: BaseException) -> str:
    text = str(error)
    assert "\n" not in text.strip(), text
    return text


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "planted-code-ran"


def saved_embedder(folder: Path) -> Path:
    decemb.from_backbone(*tiny_backbone("llama"), "mean").save(str(folder))
    return folder


def saved_reranker(folder: Path) -> Path:
    tokenizer = build_tokenizer(add_bos=True)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(tiny_config("llama", len(tokenizer))).eval()
    reranker_from_causal_lm(model, tokenizer, template=TEMPLATE, max_length=64).save(str(folder))
    return folder


def plant_module_class(folder: Path, marker: Path) -> Path:
    """modules.json's first module becomes ``decemb.Evil``, defined by a ``decemb.py`` placed in the folder."""
    modules = json.loads((folder / "modules.json").read_text())
    modules[0]["type"] = "decemb.Evil"
    (folder / "modules.json").write_text(json.dumps(modules))
    (folder / "decemb.py").write_text(planted(marker, "import torch\nclass Evil(torch.nn.Module):\n    pass\n"))
    return folder


def plant_auto_map(config: Path, marker: Path, kind: str, *also: Path) -> None:
    """``auto_map`` in ``config`` pointing at a ``{kind}_evil.py`` written next to it (and into ``also``)."""
    data = json.loads(config.read_text())
    if kind == "modeling":
        data["auto_map"] = {"AutoModel": "modeling_evil.EvilModel"}
        body = "from transformers import LlamaModel\nclass EvilModel(LlamaModel):\n    pass\n"
    else:
        data["auto_map"] = {"AutoTokenizer": ["tokenization_evil.EvilTokenizer", "tokenization_evil.EvilTokenizer"]}
        body = "from transformers import PreTrainedTokenizerFast as Fast\nclass EvilTokenizer(Fast):\n    pass\n"
    config.write_text(json.dumps(data))
    for folder in (config.parent, *also):
        (folder / f"{kind}_evil.py").write_text(planted(marker, body))


def test_a_planted_module_class_is_refused_by_load(tmp_path, marker):
    folder = plant_module_class(saved_embedder(tmp_path / "saved"), marker)
    with pytest.raises(UnsafeModelError) as caught:
        decemb.load(folder)
    message = one_line(caught.value)
    assert "modules.json" in message and "'decemb.Evil'" in message and "trust_remote_code=True" in message
    assert not marker.exists()


def test_a_planted_module_class_is_refused_by_load_reranker(tmp_path, marker):
    folder = plant_module_class(saved_reranker(tmp_path / "reranker"), marker)
    with pytest.raises(UnsafeModelError, match=r"modules.json: module type 'decemb.Evil'"):
        load_reranker(folder)
    assert not marker.exists()


def test_a_planted_reranker_is_one_line_in_decemb_search_query(tmp_path, marker, capsys):
    model = saved_embedder(tmp_path / "model")
    texts = ["A man plays.", "The cat sat."]
    SearchIndex.build(tmp_path / "idx", ["a", "b"], texts, decemb.load(model), source=str(model))
    reranker = plant_module_class(saved_reranker(tmp_path / "reranker"), marker)
    status = main(["search", "query", str(tmp_path / "idx"), "a man", "--reranker", str(reranker), "--threads", "1"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line.lower()]
    assert status == 2 and "Traceback" not in err and len(errors) == 1, err
    assert errors[0].startswith("decemb search: error: --reranker: ") and "'decemb.Evil'" in errors[0]
    assert not marker.exists()


def test_a_sub_module_whose_config_maps_to_folder_code_is_refused(tmp_path, marker):
    folder = saved_embedder(tmp_path / "saved")
    sub = folder / "2_Transformer"
    model, tokenizer = tiny_backbone("llama")
    model.save_pretrained(sub)
    tokenizer.save_pretrained(sub)
    plant_auto_map(sub / "config.json", marker, "modeling", folder)  # transformers looks in the root
    modules = json.loads((folder / "modules.json").read_text())
    modules.append({"idx": 2, "name": "2", "path": "2_Transformer", "type": "sentence_transformers.models.Transformer"})
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(UnsafeModelError) as caught:
        decemb.load(folder)
    assert "2_Transformer/config.json: key 'auto_map'" in one_line(caught.value)
    assert not marker.exists()


def test_an_auto_map_in_a_plain_model_folder_is_refused(tmp_path, marker):
    model, tokenizer = tiny_backbone("llama")
    model.save_pretrained(tmp_path / "plain")
    tokenizer.save_pretrained(tmp_path / "plain")
    text_config = json.loads((tmp_path / "plain" / "config.json").read_text())
    text_config["nested"] = {"auto_map": {"AutoModel": "modeling_evil.EvilModel"}}  # nested keys count too
    (tmp_path / "plain" / "config.json").write_text(json.dumps(text_config))
    with pytest.raises(UnsafeModelError, match=r"plain/config.json: key 'nested.auto_map'"):
        load_backbone(tmp_path / "plain")
    with pytest.raises(UnsafeModelError, match=r"config.json: key 'nested.auto_map'"):
        decemb.load(tmp_path / "plain", "mean")
    with pytest.raises(UnsafeModelError, match=r"config.json: key 'nested.auto_map'"):
        load_reranker(tmp_path / "plain")


def test_a_tokenizer_auto_map_is_refused_without_a_prompt(tmp_path, marker):
    """In a child process with no terminal: one line, no transformers "run the custom code? [y/N]" prompt."""
    folder = saved_embedder(tmp_path / "saved")
    plant_auto_map(folder / "tokenizer_config.json", marker, "tokenization")
    code = f"import decemb, sys\ntry:\n    decemb.load({str(folder)!r})\nexcept ValueError as e:\n    print(e)\n"
    done = subprocess.run(
        [sys.executable, "-c", code], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "tokenizer_config.json: key 'auto_map'" in done.stdout and "[y/N]" not in done.stdout + done.stderr
    assert not marker.exists()


def test_with_trust_remote_code_the_caller_decides(tmp_path, marker):
    """The flag is the caller's: the folder's tokenizer class is then used, as transformers would."""
    folder = saved_embedder(tmp_path / "saved")
    plant_auto_map(folder / "tokenizer_config.json", marker, "tokenization")
    model = decemb.load(folder, trust_remote_code=True)
    assert marker.exists() and type(model[0].tokenizer).__name__ == "EvilTokenizer"


def test_an_untampered_folder_still_loads_without_the_flag(tmp_path):
    folder = saved_embedder(tmp_path / "saved")
    assert [m["type"] for m in check_saved_folder(folder)] == [
        "decemb.st.embedder.DecembEmbedder",
        "decemb.st.pooling.DecembPooling",
    ]
    again = decemb.load(folder)
    assert torch.equal(torch.as_tensor(again.encode(["a b"])), torch.as_tensor(decemb.load(folder).encode(["a b"])))


class NotInstalled(torch.nn.Module):
    """A module class defined outside decemb's package folder (here: in the tests)."""


def test_class_resolution_checks_where_the_class_lives_not_its_name(monkeypatch):
    assert installed_module_class("decemb.st.pooling.DecembPooling").__name__ == "DecembPooling"
    assert installed_module_class("sentence_transformers.models.Normalize").__name__ == "Normalize"
    monkeypatch.setattr(decemb, "NotInstalled", NotInstalled, raising=False)  # decemb.* by name, not by file
    with pytest.raises(UnsafeModelError, match=r"resolves to .*test_trust.py, outside the installed decemb"):
        installed_module_class("decemb.NotInstalled")
    for ref, why in [
        ("evil.Module", "outside decemb and sentence-transformers"),
        ("decemb.api.load", "not a module class"),  # a function, not a module class
        ("decemb.nowhere.Module", "not a module class"),
        ("Module", "outside decemb"),
    ]:
        with pytest.raises(UnsafeModelError, match=why):
            installed_module_class(ref)
