"""PEFT adapters: a matching adapter is merged into the base model; a mismatched one is a clear error."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import tiny_backbone

import decemb
from decemb.loading import ModelSourceError

peft = pytest.importorskip("peft")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    for arch in ("llama", "gpt2"):
        model, tokenizer = tiny_backbone(arch)
        model.save_pretrained(root / arch)
        tokenizer.save_pretrained(root / arch)
    base, _ = tiny_backbone("llama")
    lora = peft.get_peft_model(
        type(base)(base.config), peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    lora.base_model.model.load_state_dict(base.state_dict(), strict=False)
    lora.save_pretrained(root / "lora")
    return root


def test_matching_adapter_is_merged(folders):
    texts = ["A man is playing a guitar.", "Hi"]
    plain = decemb.load(folders / "llama", "mean").encode(texts)
    adapted = decemb.load(folders / "llama", "mean", adapter=str(folders / "lora")).encode(texts)
    assert np.abs(plain - adapted).max() > 1e-4, "the adapter changes the vectors"
    model = decemb.load(folders / "llama", "mean", adapter=str(folders / "lora"))
    assert not any("lora" in name for name, _ in model[0].auto_model.named_parameters()), "merged, plain modules"
    assert isinstance(model[0].auto_model, torch.nn.Module)


def test_adapter_for_another_architecture_is_a_clear_error(folders):
    with pytest.raises(ModelSourceError, match="does not fit this base model"):
        decemb.load(folders / "gpt2", "mean", adapter=str(folders / "lora"))
