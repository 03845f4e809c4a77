"""LoadOptions: one validation per loading key, shared by decemb.load, load_backbone and load_reranker."""

from __future__ import annotations

import pytest
import torch

import decemb
from decemb.load_options import LOAD_KEYS, LoadOptions, load_options
from decemb.rerank import load_reranker


def test_every_key_has_a_description_and_unknown_keys_are_refused():
    assert set(LOAD_KEYS) >= {"dtype", "device", "device_map", "attn_implementation", "revision", "adapter"}
    assert all(field.description for field in LoadOptions.model_fields.values())
    with pytest.raises(ValueError, match="dtyp"):
        load_options(dtyp="float32")


def test_values_are_normalised_and_bad_ones_named():
    assert load_options(dtype=torch.bfloat16).dtype == "bfloat16"
    assert load_options(device=torch.device("cpu")).device == "cpu"
    with pytest.raises(ValueError, match="dtype: unknown dtype 'float8'"):
        load_options(dtype="float8")
    base = LoadOptions(dtype="bf16")
    assert load_options(base, backend="int8").model_dump() == {**base.model_dump(), "backend": "int8"}


@pytest.mark.parametrize("entry", [decemb.load, decemb.load_backbone, load_reranker])
def test_every_entry_point_validates_before_loading(entry):
    with pytest.raises(ValueError, match="dtype: unknown dtype"):
        entry("no-such-model-anywhere", dtype="float8")
    with pytest.raises(ValueError, match=r"(?i)did you mean 'int8'"):
        entry("no-such-model-anywhere", backend="int8x")
